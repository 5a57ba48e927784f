"""Damage that decoders conceal without a flag: found from the pictures alone, never on clean clips.

VP8, VP9 and HEVC decode damaged packets silently; `block_corruption` opens an event from concealment
evidence (blocks that follow no motion and gain steps on the transform grid) and closes it at the next
keyframe. Start times below were checked by hand: the first damaged packet is the first frame at or
after the requested time (frame n at n/25 s), and the event ends at the next keyframe.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from detector_runs import run_detector

from lambdas.converter import decode
from lambdas.converter.decode import iter_seconds, probe, read_second
from lambdas.detectors import block_corruption
from lambdas.detectors.block_corruption import concealment_features, concealment_score
from lambdas.shared.media import StreamSecond, VideoFrame
from monolith.evaluation_cases import concealed_damage_cases
from sample_streams import BlockCorruption, generate_stream, inject_defects

REPO = Path(__file__).resolve().parents[1]


def _events(path: Path) -> list[dict[str, Any]]:
    return run_detector(block_corruption.detect, iter_seconds(path))[0]


# --- the score on handmade pictures ----------------------------------------------------------------


def _texture(shift: int = 0, height: int = 360, width: int = 640) -> np.ndarray:
    """Smooth, non-periodic texture moved `shift` px to the right (content in motion)."""
    y, x = np.mgrid[0:height, 0 - shift : width - shift].astype(np.float32)
    return (110 + 40 * np.sin(x / 23.0) * np.cos(y / 17.0) + 0.08 * x).astype(np.uint8)


def test_content_in_motion_is_not_concealment() -> None:
    # Given two pictures of the same texture, the second moved by 3 px
    before, after = concealment_features(_texture(0)), concealment_features(_texture(3))
    # When scored, Then no block is suspect: every block follows the motion
    assert concealment_score(before, after) == 0.0


def test_garbage_blocks_in_a_band_are_concealment() -> None:
    # Given the moved picture with block rows 6-8 (y 192-288) replaced by random flat 8x8 blocks,
    # what a decoder that lost its place in the bitstream paints
    rng = np.random.default_rng(1)
    damaged = _texture(3)
    damaged[192:288] = np.kron(rng.integers(30, 220, (12, 80)), np.ones((8, 8))).astype(np.uint8)
    # When scored against the picture before
    score = concealment_score(concealment_features(_texture(0)), concealment_features(damaged))
    # Then about the band's 3 of 11 block rows are suspect (60 of 220 blocks = 0.27), well over 0.10
    assert 0.2 <= score <= 0.3


def test_a_picture_of_another_size_scores_nothing() -> None:
    # Given pictures of two sizes (a resolution change), When scored, Then 0 instead of an error
    small = concealment_features(_texture(0, 240, 320))
    assert concealment_score(small, concealment_features(_texture(0))) == 0.0


def _blocky(picture: np.ndarray) -> np.ndarray:
    """`picture` coded coarsely: every 8x8 cell its own mean, so steps on every 8-px grid boundary."""
    height, width = picture.shape
    cells = picture.reshape(height // 8, 8, width // 8, 8).mean(axis=(1, 3))
    return np.kron(cells, np.ones((8, 8))).astype(np.uint8)


def _garbage_rows(picture: np.ndarray, block_rows: int) -> np.ndarray:
    """`picture` with `block_rows` 32-px block rows from y 192 replaced by random flat 8x8 blocks."""
    damaged = picture.copy()
    noise = np.random.default_rng(1).integers(30, 220, (4 * block_rows, 80))
    damaged[192 : 192 + 32 * block_rows] = np.kron(noise, np.ones((8, 8)))
    return damaged


@pytest.mark.parametrize(
    ("block_rows", "expected"),
    # 2 block rows: 40 of 220 blocks (0.18) follow no motion and gained steps since the picture two back.
    # 3 block rows: 60 of 220 (0.27) follow no motion, over the quarter that a flash starting reaches.
    [(2, 0.1), (3, 0.0)],
    ids=["damage", "a-quarter-moves"],
)
def test_damage_hidden_by_content_whose_steps_come_and_go_is_seen_against_the_picture_two_back(
    block_rows: int, expected: float
) -> None:
    # Given smooth texture, then the moved texture coded coarsely (steps on the whole grid), then the
    # texture moved again, smooth but for a band of garbage blocks: steps come and go every other picture
    two_back, previous = concealment_features(_texture(0)), concealment_features(_blocky(_texture(3)))
    current = concealment_features(_garbage_rows(_texture(6), block_rows))
    # When scored against the previous picture alone, Then nothing: the band has no more steps than it had
    assert block_corruption.concealment(previous, current) == (0.0, round(block_rows * 20 / 220, 4))
    # When the picture two back is also given, Then the band counts as a hit (the threshold itself),
    # unless over a quarter of the blocks moved
    score, _ = block_corruption.concealment(previous, current, two_back=two_back)
    assert score == expected


def test_vp9_damage_one_picture_pair_misses_shows_against_the_picture_two_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the evaluation's seed-1 VP9 damage case (8 s at 360p, damaged packets at 5.12-5.20 s), decoded
    # by FFmpeg's decoder, which flags none of it (libvpx, the converter's VP9 decoder, rejects it: so this
    # tests the concealment rule on FFmpeg's pictures): the damage grows over frames, and its steps show
    # against the picture two back
    (case,) = [c for c in concealed_damage_cases(1) if c.name == "synthetic 360p vp9 webm, damage"]
    path = tmp_path / f"damaged{case.suffix}"
    truth = case.make(path)
    assert [d["start_s"] for d in truth["defects"]] == [5.12]
    assert any(f.dropped_after for second in iter_seconds(path) for f in second.frames)  # libvpx's
    monkeypatch.setattr(decode, "REFERENCE_DECODERS", {})
    # When detected without the comparison with the picture two back (a threshold nothing reaches)
    no_two_back = dataclasses.replace(block_corruption.DEFAULT, conceal_fraction_two_back=1.1)
    found = run_detector(lambda s, st: block_corruption.detect(s, st, no_two_back), iter_seconds(path))[0]
    # Then nothing; and with it at 0.075 (its value until the damage corpus), one event from 5.16 s (the
    # second damaged picture, where the steps show: hand-checked) to libvpx's next keyframe at 5.52 s
    assert found == []
    at_0075 = dataclasses.replace(block_corruption.DEFAULT, conceal_fraction_two_back=0.075)
    events = run_detector(lambda s, st: block_corruption.detect(s, st, at_0075), iter_seconds(path))[0]
    assert [(e["start_s"], e["end_s"], e["evidence"][0]) for e in events] == [(5.16, 5.52, "concealment")]
    # And at the committed 0.095 (set on the corpus's tuning sources: 0.075 fired on a clean stream at
    # 0.080, the damage only this rule found there scores 0.109), not on FFmpeg's pictures: libvpx's
    # rejections find it
    assert block_corruption.DEFAULT.conceal_fraction_two_back == 0.095
    assert _events(path) == []
    monkeypatch.undo()
    assert [(e["start_s"], e["evidence"]) for e in _events(path)] == [(5.12, ["dropped_pictures"])]


# --- real damage, per codec ----------------------------------------------------------------------

# (codec, extension, stream seed, damage at, (start, end) found): checked by hand against the truth.
DAMAGE = [
    # VP8: first damaged packet 2.3 s -> frame 58 = 2.32 s; next keyframe 4.0 s. Found exactly.
    ("vp8", ".webm", 1, 2.3, (2.32, 4.0)),
    # HEVC: the same: 2.32 s to the keyframe at 4.0 s.
    ("hevc", ".mp4", 1, 2.3, (2.32, 4.0)),
    # VP9: damage from frame 28 (1.12 s) until libvpx's keyframe at the flash (1.52 s). It grows over
    # five frames and shows grid steps only at 1.32 s; the event starts where its blocks stopped
    # following the motion, 1.12 s.
    ("vp9", ".webm", 19767455, 1.12, (1.12, 1.52)),
]


@pytest.mark.parametrize(("codec", "suffix", "seed", "at_s", "expected"), DAMAGE, ids=[d[0] for d in DAMAGE])
def test_damage_without_a_decoder_flag_is_found(
    tmp_path: Path, codec: str, suffix: str, seed: int, at_s: float, expected: tuple[float, float],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given 3 damaged packets in a 4 s synthetic stream of this codec, which FFmpeg's decoder never flags
    # (VP9 by FFmpeg's decoder, not libvpx, which rejects them: this tests concealment on what FFmpeg shows)
    monkeypatch.setattr(decode, "REFERENCE_DECODERS", {})
    path = tmp_path / f"damaged{suffix}"
    truth = generate_stream(
        path, duration_s=4, video_codec=codec, audio=False, defects=[BlockCorruption(at_s)], seed=seed
    )
    frames = [f for second in iter_seconds(path) for f in second.frames]
    assert not any(f.corrupt or f.decode_errors for f in frames)
    # When detected
    events = _events(path)
    # Then one event, seen through concealment alone, from the hand-checked start to the keyframe
    assert [(e["start_s"], e["end_s"], e["evidence"][0]) for e in events] == [(*expected, "concealment")]
    (true_event,) = truth.defects_of("block_corruption")
    assert abs(events[0]["start_s"] - true_event["start_s"]) <= 0.5
    assert events[0]["confidence"] == 0.8


def test_the_lambda_path_finds_the_same_event_with_a_small_json_state(tmp_path: Path) -> None:
    # Given the damaged HEVC stream, When each second is read on its own and the state goes through JSON
    path = tmp_path / "damaged.mp4"
    generate_stream(
        path, duration_s=4, video_codec="hevc", audio=False, defects=[BlockCorruption(2.3)], seed=1
    )
    info = probe(path)
    seconds = [read_second(path, index, info) for index in range(info.seconds)]
    found, state = run_detector(block_corruption.detect, seconds, through_json=True)
    # Then the defects are exactly the monolith's, and the state stays small
    assert found == _events(path)
    assert len(json.dumps(state)) < 2048


# --- clean clips, heavily compressed ones included ------------------------------------------------

MEDIA_SUFFIXES = {".mp4", ".mkv", ".webm", ".ts", ".avi"}
CLEAN_CLIPS = sorted(
    path
    for folder in (REPO / "media", REPO / "media" / "parity")
    for path in folder.iterdir()
    if path.suffix in MEDIA_SUFFIXES
)
# Starved encodes: x264 at CRF 50, the others at 100 kbit/s (VP9 realtime, as the writer sets it).
STARVED = {
    "h264": (".mp4", {"crf": "50"}),
    "mpeg4": (".mp4", {"b": "100k"}),
    "vp8": (".webm", {"b": "100k"}),
    "vp9": (".webm", {"b": "100k"}),
    "hevc": (".mp4", {"b": "100k"}),
}


def test_clean_clips_give_no_block_corruption(tmp_path: Path) -> None:
    # Given every clip in media/ and media/parity/ (SMPTE bars, cartoons, real scenes, 7 codecs), clean
    # synthetic streams of each codec at a starved bitrate, and a real clip at x264 CRF 50 and VP9 100k
    started = time.process_time()
    streams = list(CLEAN_CLIPS)
    for codec, (suffix, options) in STARVED.items():
        path = tmp_path / f"starved-{codec}{suffix}"
        generate_stream(path, duration_s=4, video_codec=codec, audio=False, seed=7, encoder_options=options)
        streams.append(path)
    # (.mkv: inject_defects into .webm fails on this clip's audio, on main too: "Invalid layout: 0 channels")
    for codec, suffix, options in (("h264", ".mp4", {"crf": "50"}), ("vp9", ".mkv", {"b": "100k"})):
        path = tmp_path / f"chaplin-starved-{codec}{suffix}"
        inject_defects(
            REPO / "media" / "chaplin.mp4", path, [], duration_s=4, video_codec=codec, encoder_options=options
        )
        streams.append(path)
    assert len(streams) >= 28
    # When detected, Then not one block-corruption event on any of them
    found = {path.name: _events(path) for path in streams}
    assert {name: events for name, events in found.items() if events} == {}
    assert time.process_time() - started < 60


# --- the cheap gates in front of the full comparison ------------------------------------------------


def _garbage_band(picture: np.ndarray) -> np.ndarray:
    """`picture` with block rows 6-8 (y 192-288) replaced by random flat 8x8 blocks."""
    damaged = picture.copy()
    damaged[192:288] = np.kron(np.random.default_rng(1).integers(30, 220, (12, 80)), np.ones((8, 8)))
    return damaged


def test_the_coarse_motion_test_sees_the_band_and_not_the_motion() -> None:
    # Given the texture moved by 3 px, then the same with a band of garbage blocks
    lumas = [_texture(0), _texture(3), _garbage_band(_texture(6))]
    # When the coarse test (every 4th pixel, 4-px shifts) runs, Then the first picture has no predecessor,
    # no block fails to follow 3 px of motion, and the band's 3 of 11 block rows do (60 of 220 = 0.27)
    first, moved, damaged = block_corruption.coarse_unexplained(lumas)
    assert (first, moved) == (None, 0.0)
    assert 0.2 <= damaged <= 0.3


def test_seams_per_block_count_the_16px_grid_segments_of_each_32px_block() -> None:
    # Given a checkerboard of 16-px cells (a seam on every 16-px boundary) at 360p
    y, x = np.mgrid[0:360, 0:640]
    checker = (((y // 16 + x // 16) % 2) * 100 + 60).astype(np.uint8)
    # When measured, Then every 64-px segment is a seam, and each 32-px block holds the 32-px segments of
    # the boundaries at its top edge and middle, both directions (2 + 2), less the picture's edges: the
    # rows y 16..336 (21) x 20 segments, and the columns x 16..624 (39) x 10 segments (whole 64-px
    # segments reach y 320 only, so the last block row has no column segments)
    seams = block_corruption.grid_seams(checker)
    assert seams.fractions == (1.0, 1.0)
    assert seams.per_block.shape == (11, 20)
    assert seams.per_block[:2, :3].tolist() == [[2, 3, 3], [3, 4, 4]]
    assert seams.per_block[10].tolist() == [2] * 20
    assert int(seams.per_block.sum()) == 21 * 20 + 39 * 10


def test_damage_in_handmade_pictures_passes_the_gates_and_opens_an_event() -> None:
    # Given a second of 25 pictures of texture moving 3 px a frame, a band of garbage from picture 10 on
    frames = [
        VideoFrame(
            round(n * 0.04, 2), _garbage_band(_texture(3 * n)) if n >= 10 else _texture(3 * n), n == 0, False
        )
        for n in range(25)
    ]
    # When detected, Then one event, from picture 10 (0.40 s) to the stream's end, seen through
    # concealment first, then through the band's seams on the 16-px grid
    events, _ = block_corruption.detect(StreamSecond(0, frames, None, True), None)
    assert [(e["start_s"], e["end_s"], e["evidence"]) for e in events] == [
        (0.4, 1.0, ["concealment", "seams"])
    ]


# --- legitimate content that looks like concealment ---------------------------------------------------


def test_blocky_content_where_the_picture_was_flat_is_not_concealment() -> None:
    # Given a picture whose block rows 6-8 hold a flat bright rectangle (a flash), then the moved picture
    # where the rectangle is gone and the background comes back coarsely coded (blocky) in that band
    flashed = _texture(0)
    flashed[192:288] = 225
    back = _garbage_band(_texture(3))
    # When scored, Then no block counts: the band was flat, so its new grid steps replaced nothing
    # (without that rule the band's 60 of 220 blocks, 0.27, would count)
    assert concealment_score(concealment_features(flashed), concealment_features(back)) == 0.0
    # while the same blocky band over the textured picture before still counts
    assert concealment_score(concealment_features(_texture(0)), concealment_features(back)) >= 0.2


@pytest.mark.parametrize(
    ("moving", "expected"),
    # Moving: the damage on frame 6 (0.24 s) opens an event to the stream's end (12 frames, 0.48 s).
    # Frozen: frame 6 is the first to move after a repeated picture, so the same band opens nothing.
    [(True, [(0.24, 0.48, ["concealment", "seams"])]), (False, [])],
    ids=["after-moving-pictures", "after-a-freeze"],
)
def test_the_picture_that_ends_a_freeze_opens_no_concealment_event(
    moving: bool, expected: list[tuple[float, float, list[str]]]
) -> None:
    # Given six pictures of the texture, moving 2 px a frame or frozen, then six of the moved texture
    # with a blocky band (as at a freeze's end: the content jumped and was coded afresh)
    pictures = [_texture(2 * k if moving else 0) for k in range(6)] + [_garbage_band(_texture(12))] * 6
    frames = [VideoFrame(k / 25, luma, key_frame=k == 0, corrupt=False) for k, luma in enumerate(pictures)]
    # When detected
    events, _ = block_corruption.detect(StreamSecond(0, frames, None, True), None)
    # Then an event only where the pictures before were moving
    assert [(e["start_s"], e["end_s"], e["evidence"]) for e in events] == expected


def test_a_freeze_that_ends_on_the_second_picture_of_a_second_is_judged_from_the_state() -> None:
    # Given a second that ends on two repeated pictures, then a second whose first picture repeats them
    # and whose second jumps to a blocky band (the freeze ends there)
    frozen = [VideoFrame(k / 25, _texture(0), key_frame=k == 0, corrupt=False) for k in range(25)]
    jumped = [
        VideoFrame(1.0, _texture(0), key_frame=False, corrupt=False),
        *(VideoFrame(1 + k / 25, _garbage_band(_texture(12)), False, False) for k in (1, 2)),
    ]
    seconds = [StreamSecond(0, frozen, None, False), StreamSecond(1, jumped, None, True)]
    # When detected, through JSON between the seconds as on the Lambda path
    found, state = run_detector(block_corruption.detect, seconds, through_json=True)
    # Then no event: the state said the pictures before were still
    assert found == []
    assert state is not None and state["still"] is True
