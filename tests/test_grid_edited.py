"""The edited-speech tuning source of the A/V-shift evaluation (media/grid_edited.py, media/grid-edited.mp4):
its listener and wide shots on hand-made pictures, its shot plan, and the committed clip decoded."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lambdas.converter.decode import iter_seconds, probe
from media.grid_edited import BACKGROUND, FPS, LEAD_IN, SHOTS, SIZE, SPEAKERS, listener, wide
from sample_streams.av_sources import SOURCES

CLIP = Path(__file__).resolve().parents[1] / "media" / "grid-edited.mp4"


def _numbered(count: int) -> list[np.ndarray]:
    """Pictures whose every pixel holds their number."""
    return [np.full((SIZE[1], SIZE[0], 3), n, np.uint8) for n in range(count)]


def test_a_listener_plays_the_silent_lead_in_forward_and_back() -> None:
    # Given a sentence's 75 pictures, of which the first 9 (LEAD_IN) come before its first word
    assert LEAD_IN == 9
    # When 20 pictures of it are shown as a listener
    shown = [int(p[0, 0, 0]) for p in listener(_numbered(75), 20)]
    # Then pictures 0-8 play forward, 7-1 back, and again from 0: nothing of the speech is shown
    assert shown == [0, 1, 2, 3, 4, 5, 6, 7, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3]


def test_a_wide_shot_shows_the_speaker_left_and_the_listener_right_at_half_size() -> None:
    speaker = np.full((SIZE[1], SIZE[0], 3), 200, np.uint8)
    listening = np.full((SIZE[1], SIZE[0], 3), 50, np.uint8)
    picture = wide(speaker, listening)
    # 360x288 halves to 180x144, placed 72 lines down, the studio's colour above and below
    assert picture.shape == (288, 360, 3)
    assert (picture[72:216, :180] == 200).all() and (picture[72:216, 180:] == 50).all()
    assert (picture[:72] == BACKGROUND).all() and (picture[216:] == BACKGROUND).all()


def test_each_sentence_is_cut_into_shots_of_1_to_2_s_that_cover_its_3_s() -> None:
    assert len(SHOTS) == len(SPEAKERS) == 5
    for speaker, shots in zip(SPEAKERS, SHOTS, strict=True):
        assert sum(n for _, n, _ in shots) == 3 * FPS
        assert all(FPS <= n <= 2 * FPS for _, n, _ in shots)
        kinds = [kind for kind, _, _ in shots]
        assert "close" in kinds and len(set(kinds)) == len(kinds)  # a cut inside every sentence
        # a listener is someone else, and only close-ups show no one but the speaker
        assert all((other != "") == (kind != "close") and other != speaker for kind, _, other in shots)


def test_the_committed_clip_is_a_tied_tuning_source_of_15_s_with_its_wide_shot_at_2_s() -> None:
    source = next(s for s in SOURCES if s.name == "grid-edited")
    assert (source.path, source.tied, source.held_out) == ("media/grid-edited.mp4", True, False)
    info = probe(CLIP)
    assert (info.video_codec, info.audio_codec, info.width, info.height) == ("h264", "aac", 360, 288)
    # at least 12 s: 4 s windows before and after a shift drawn in its middle
    assert info.duration_s is not None and 14.9 <= info.duration_s <= 15.1
    seconds = list(iter_seconds(CLIP, info))
    # The first sentence: a close-up for 45 pictures (1.8 s), then the wide shot with its dark bands
    close_up, wide_shot = seconds[0].frames[12].luma, seconds[2].frames[0].luma
    band = slice(0, 60)  # the top band of the wide shot, above the faces
    assert float(np.abs(wide_shot[band].astype(float) - wide_shot[band].mean()).mean()) < 3.0
    assert float(close_up[band].mean()) - float(wide_shot[band].mean()) > 40.0
    # speech and pictures in every second (the AAC encoder's last frame may reach a 16th)
    assert all(second.audio is not None and len(second.frames) == FPS for second in seconds[:15])
