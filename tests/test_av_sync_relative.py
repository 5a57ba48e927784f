"""A/V sync, relative method: a change of lag between sound and motion, on handmade seconds and real clips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from detector_runs import run_detector

from lambdas.converter.decode import iter_seconds, probe, read_second
from lambdas.detectors import av_sync, av_sync_relative
from lambdas.shared.media import AudioSecond, StreamSecond, VideoFrame
from sample_streams import AvOffset, inject_defects

MEDIA = Path(__file__).resolve().parents[1] / "media"
FPS = 25
RATE = 8000


def _relative(seconds, through_json: bool = False) -> tuple[list[dict], dict]:
    return run_detector(av_sync_relative.detect, seconds, through_json)


def _handmade(duration_s: int, lag_ms, seed: int = 3) -> list[StreamSecond]:
    """Irregular events: a patch of the picture changes at once and a noise burst sounds `lag_ms(t)` later.

    The patch keeps its new texture (a sudden appearance), so each event is one frame of visual change.
    """
    rng = np.random.default_rng(seed)
    events = np.cumsum(rng.uniform(0.3, 0.9, 64)) + 0.2
    events = np.round(events[events < duration_s - 0.2] * FPS) / FPS  # on frame boundaries
    picture = rng.integers(40, 160, (72, 128)).astype(np.uint8)
    audio = rng.normal(0, 0.003, duration_s * RATE).astype(np.float32)  # quiet background
    burst = (rng.normal(0, 0.3, int(0.08 * RATE)) * np.exp(-np.arange(int(0.08 * RATE)) / 200)).astype(
        np.float32
    )
    for t in events:
        at = round((t + lag_ms(t) / 1000.0) * RATE)
        if 0 <= at < len(audio) - len(burst):
            audio[at : at + len(burst)] += burst
    pictures = []
    for k in range(duration_s * FPS):
        if np.any(np.isclose(events, k / FPS)):
            y, x = rng.integers(0, 48), rng.integers(0, 96)
            picture = picture.copy()
            picture[y : y + 24, x : x + 32] = rng.integers(0, 255, (24, 32))
        pictures.append(picture)
    return [
        StreamSecond(
            index=n,
            frames=[
                VideoFrame(k / FPS, pictures[k], k % FPS == 0, False) for k in range(n * FPS, (n + 1) * FPS)
            ],
            audio=AudioSecond(audio[n * RATE : (n + 1) * RATE], RATE, 0, 0, [(float(n), RATE)]),
            is_last=n == duration_s - 1,
        )
        for n in range(duration_s)
    ]


def test_a_change_of_lag_is_one_episode_with_the_change_as_its_offset() -> None:
    # Given sound 20 ms after each change of picture, then 320 ms after it from 6 s on
    seconds = _handmade(12, lambda t: 20.0 if t < 6.0 else 320.0)
    # When the relative method follows them second by second
    found, state = _relative(seconds)
    # Then the reference is the first lag, and one episode from about 6 s to the end reports +300 ms
    # (each lag is measured on a 10 ms grid, the change is their difference: within ±20 ms)
    assert state["ref"] == pytest.approx(20.0, abs=10.0)
    assert len(found) == 1, found
    episode = found[0]
    assert episode["method"] == "relative" and episode["offset_ms"] == pytest.approx(300.0, abs=20.0)
    assert abs(episode["start_s"] - 6.0) <= 1.0 and episode["end_s"] == pytest.approx(11.96)
    # measured by 4 windows (2 confirm a shift: 0.6, and 0.1 for each of the 2 more), whatever the margins
    assert episode["measurements"] == 4 and episode["confidence"] == pytest.approx(0.8)


def test_a_constant_lag_is_in_sync_and_unrelated_sound_is_unknown() -> None:
    # Given a constant lag, and the same pictures with bursts at other, unrelated times
    steady = _relative(_handmade(10, lambda t: 40.0))
    pictures = _handmade(10, lambda t: 0.0, seed=3)
    sounds = _handmade(10, lambda t: 0.0, seed=11)
    unrelated = [
        StreamSecond(p.index, p.frames, s.audio, p.is_last) for p, s in zip(pictures, sounds, strict=True)
    ]
    other = _relative(unrelated)
    # Then nothing is reported; the first is in sync, the second has no lag to trust
    assert steady[0] == [] and av_sync_relative.status(steady[1]) == ("in_sync", 0.0)
    assert other[0] == [] and av_sync_relative.status(other[1]) == ("unknown", None)


def test_the_state_round_trips_through_json_and_stays_small() -> None:
    # Given the shifted handmade stream, with the state carried in memory and through JSON
    seconds = _handmade(12, lambda t: 20.0 if t < 6.0 else 320.0)
    in_memory, through_json = _relative(seconds), _relative(seconds, through_json=True)
    # Then the findings and the final state are the same, and the state is a few KB
    assert in_memory[0] == through_json[0] and in_memory[0]
    assert json.dumps(in_memory[1]) == json.dumps(through_json[1])
    assert len(json.dumps(through_json[1])) < 5000


# --- real clips ------------------------------------------------------------------------------


# GRID sentences (one speaker, speech and cuts) with the audio content shifted mid-stream. The last two:
# while the 4 s windows straddle the shift their peak stands at a ghost lag (+610 ms, then -450 ms),
# confirmed by two windows before the true lag fills the window: one episode, not a ghost and a shift.
SHIFTS = [
    ("grid-speech-b.mp4", 5.5, -300.0),
    ("grid-speech-b.mp4", 6.0, 350.0),
    ("grid-speech-a.mp4", 6.3, 300.0),
    ("grid-speech-b.mp4", 5.14, 400.0),
]


@pytest.fixture(scope="module")
def shifted(tmp_path_factory: pytest.TempPathFactory) -> dict[float, Path]:
    out = tmp_path_factory.mktemp("relative")
    paths = {}
    for clip, start_s, offset_ms in SHIFTS:
        paths[offset_ms] = out / f"grid{offset_ms:+.0f}.mp4"
        inject_defects(MEDIA / clip, paths[offset_ms], [AvOffset(start_s, offset_ms)], seed=1)
    return paths


@pytest.mark.parametrize(("clip", "start_s", "offset_ms"), SHIFTS)
def test_a_content_shift_in_real_speech_is_found_with_its_sign_and_size(
    shifted, clip, start_s, offset_ms
) -> None:
    # Given real speech whose audio is shifted by offset_ms from start_s on (content mode)
    found, _ = run_detector(av_sync.detect, iter_seconds(shifted[offset_ms]))
    # Then av_sync reports one relative episode from near the shift to the end, of that sign and size
    assert len(found) == 1, found
    episode = found[0]
    assert episode["method"] == "relative"
    assert episode["offset_ms"] == pytest.approx(offset_ms, abs=60.0)
    assert abs(episode["start_s"] - start_s) <= 1.5 and episode["end_s"] >= 11.9


@pytest.mark.parametrize("offset_ms", [350.0, 300.0])
def test_random_access_with_json_state_finds_the_same_shift(shifted, offset_ms) -> None:
    # Given a shifted clip read as the Lambda path reads it: each second on its own, state through JSON
    # (+300 ms: the windows' correlation margins differ between the two decodes, 0.66 and 0.68)
    path = shifted[offset_ms]
    info = probe(path)
    sequential = run_detector(av_sync.detect, iter_seconds(path, info))
    lambda_path = run_detector(
        av_sync.detect, (read_second(path, n, info) for n in range(info.seconds)), True
    )
    # Then the findings are identical (AAC's noise bands differ between the two decodes: not the band used)
    assert lambda_path[0] == sequential[0] and sequential[0]


@pytest.mark.parametrize(
    ("clip", "status"),
    [("grid-speech-a.mp4", "in_sync"), ("chaplin.mp4", "unknown"), ("bbb-vp8-11s.webm", "unknown")],
)
def test_clean_real_clips_raise_no_av_alarm(clip, status) -> None:
    # Given clean real clips: speech and cuts, a silent film with its score, an animation with music
    found, state = run_detector(av_sync.detect, iter_seconds(MEDIA / clip), through_json=True)
    # Then no A/V finding; the relative method trusts a lag only where sound follows the pictures
    assert [d for d in found if d["type"] == "av_sync"] == []
    assert av_sync_relative.status(state["rel"])[0] == status


def test_the_correlation_of_every_lag_matches_a_hand_computation() -> None:
    # Given a sound onset one step after a picture change: a = [0, 1, 0, 0], v = [1, 0, 0, 0]
    from lambdas.detectors.av_sync_relative import _xcorr

    r = _xcorr(np.array([0.0, 1.0, 0.0, 0.0]), np.array([1.0, 0.0, 0.0, 0.0]), 1)
    # Then lag -1 overlaps v's flat tail (no variance: 0), lag 0 gives cov -1/16 over variances 3/16 each
    # (-1/3), and lag +1 lines the two up exactly (1)
    assert r == pytest.approx([0.0, -1 / 3, 1.0], abs=1e-12)
