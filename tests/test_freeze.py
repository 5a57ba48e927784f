"""Freeze detector on handmade pictures (frozen content, re-encoded frozen content, flat pictures, still
content with sensor noise) and on a real still talking head, clean and with a frozen picture injected."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from detector_runs import run_detector

from lambdas.converter.decode import iter_seconds
from lambdas.detectors.freeze import FreezeConfig, detect
from lambdas.shared.media import StreamSecond, VideoFrame
from sample_streams import Freeze, inject_defects

FPS = 25
RNG = np.random.default_rng(7)
TEXTURE = RNG.integers(0, 255, (180, 320), dtype=np.uint8)
STILL_HEAD = Path(__file__).resolve().parents[1] / "media" / "grid-still-bbaf2n.mp4"


def _moving(t: float) -> np.ndarray:
    return np.roll(TEXTURE, int(t * 40), axis=1)


def _stream(picture_at, seconds: int) -> list[StreamSecond]:
    """Build `seconds` stream-seconds whose frame at time t shows picture_at(t)."""
    out = []
    for index in range(seconds):
        frames = [
            VideoFrame(
                pts_s=round(index + i / FPS, 6),
                luma=picture_at(index + i / FPS),
                key_frame=i == 0,
                corrupt=False,
            )
            for i in range(FPS)
        ]
        out.append(StreamSecond(index=index, frames=frames, audio=None, is_last=index == seconds - 1))
    return out


def _run(seconds: list[StreamSecond], through_json: bool = False) -> list[dict]:
    return run_detector(detect, seconds, through_json)[0]


def test_moving_content_is_not_frozen() -> None:
    assert _run(_stream(_moving, 4)) == []


def test_a_freeze_across_second_boundaries_is_reported_with_its_bounds() -> None:
    # Given content that stops at 1.2 s and moves again at 4.4 s
    def picture(t: float) -> np.ndarray:
        return _moving(1.2 if 1.2 <= t < 4.4 else t)

    # When analysed second by second
    found = _run(_stream(picture, 6))
    # Then one freeze from 1.2 s to 4.4 s is reported
    assert len(found) == 1
    assert found[0]["type"] == "freeze"
    assert abs(found[0]["start_s"] - 1.2) < 0.05 and abs(found[0]["end_s"] - 4.4) < 0.05
    assert 0.5 <= found[0]["confidence"] <= 1.0


def test_a_frozen_picture_that_keeps_being_re_encoded_is_still_a_freeze() -> None:
    # Given a frozen picture as an encoder keeps coding it: its coding noise (±3 levels per pixel) is
    # drawn anew at each keyframe (every 12 frames) and repeated by the frames in between
    noise = np.random.default_rng(3)
    coded = {n: noise.integers(-3, 4, TEXTURE.shape) for n in range(20)}

    def picture(t: float) -> np.ndarray:
        if 0.5 <= t < 3.5:
            keyframe = round(t * FPS) // 12
            return np.clip(_moving(0.5).astype(int) + coded[keyframe], 0, 255).astype(np.uint8)
        return _moving(t)

    found = _run(_stream(picture, 5))
    assert [(d["type"], round(d["start_s"], 1), round(d["end_s"], 1)) for d in found] == [
        ("freeze", 0.5, 3.5)
    ]


def test_a_still_picture_with_fresh_noise_on_every_frame_is_live_content() -> None:
    # Given content that stops moving at 0.5 s but whose every frame carries fresh sensor-like noise
    # (±3 levels per pixel: block means of 25 sampled pixels move by ~0.4 levels, so the largest of the
    # 220 blocks moves by more than 0.75 on every frame), as a static camera on a still scene does
    noise = np.random.default_rng(3)

    def picture(t: float) -> np.ndarray:
        if 0.5 <= t < 3.5:
            jitter = noise.integers(-3, 4, TEXTURE.shape)
            return np.clip(_moving(0.5).astype(int) + jitter, 0, 255).astype(np.uint8)
        return _moving(t)

    # When analysed, Then no freeze: every frame of the run changed a little from the previous one
    assert _run(_stream(picture, 5)) == []


def test_a_short_pause_below_the_minimum_is_not_reported() -> None:
    found = _run(_stream(lambda t: _moving(1.0 if 1.0 <= t < 2.5 else t), 4))
    assert found == []


def test_a_black_screen_is_kept_apart_from_a_freeze_of_content() -> None:
    black = np.full(TEXTURE.shape, 16, np.uint8)
    found = _run(_stream(lambda t: black if 1.0 <= t < 4.0 else _moving(t), 5))
    assert found == []


def test_a_freeze_running_to_the_end_of_the_stream_is_closed_at_the_last_second() -> None:
    found = _run(_stream(lambda t: _moving(min(t, 2.0)), 5))
    assert len(found) == 1 and found[0]["start_s"] == 2.0 and found[0]["end_s"] == 5.0


def test_state_round_tripped_through_json_gives_the_same_findings() -> None:
    seconds = _stream(lambda t: _moving(1.2 if 1.2 <= t < 4.4 else t), 6)
    assert _run(seconds, through_json=True) == _run(seconds)
    _, state = detect(seconds[0], None)
    assert len(json.dumps(state)) < 8_000  # small enough for a Step Functions payload


def test_damage_hitting_a_frozen_picture_does_not_end_the_freeze() -> None:
    # Given a freeze from 1.0 s to 4.0 s whose picture is hit by decoder-flagged damage at 2.5 s,
    # after which the damaged picture is what keeps repeating (until the content moves again)
    damaged = _moving(1.0).copy()
    damaged[40:80, :] = 128

    def frame_at(index: int, i: int) -> VideoFrame:
        t = round(index + i / FPS, 6)
        picture = _moving(t) if not 1.0 <= t < 4.0 else (_moving(1.0) if t < 2.5 else damaged)
        return VideoFrame(pts_s=t, luma=picture, key_frame=i == 0, corrupt=2.5 <= t < 2.62)

    seconds = [
        StreamSecond(index=n, frames=[frame_at(n, i) for i in range(FPS)], audio=None, is_last=n == 4)
        for n in range(5)
    ]
    # When analysed, Then one freeze covers the whole interval
    found = _run(seconds)
    assert [(d["start_s"], d["end_s"]) for d in found] == [(1.0, 4.0)]


def test_a_still_talking_head_is_not_a_freeze() -> None:
    # Given a GRID sentence: a talking head on a static camera whose lips move a little, close enough to
    # the picture at 1.0 s for the block-mean rule alone to call 1.0-3.0 s a freeze
    seconds = list(iter_seconds(STILL_HEAD))
    # When analysed, Then nothing is reported: its frames keep changing a little from one to the next
    assert _run(seconds) == []


def test_a_frozen_picture_of_the_talking_head_is_still_found(tmp_path: Path) -> None:
    # Given the same clip with its picture at 0.8 s held to the end (3.0 s), re-encoded with noise ±2
    frozen = tmp_path / "frozen.mp4"
    inject_defects(STILL_HEAD, frozen, [Freeze(0.8, 2.2, noise=2.0)], seed=3)
    # When analysed second by second through JSON state
    found = _run(list(iter_seconds(frozen)), through_json=True)
    # Then one freeze, ending with the stream (last frame 2.96 s + 0.04 s). It starts at the last
    # picture change the block-mean rule sees: 0.64 s, the lips moving less in the 4 frames before 0.8 s
    # than any block may change within a freeze
    assert [(d["type"], d["start_s"], d["end_s"]) for d in found] == [("freeze", 0.64, 3.0)]


def _blinking(t: float) -> np.ndarray:
    """Content that stops at 0.5 s, but for a 12x12 light in one block that switches on and off on
    alternate frames (+20 levels: its block mean moves by 12.8 levels, 16 of the block's 25 sampled
    pixels, within the 16 a freeze allows; every other block stays exactly the same)."""
    if t < 0.5:
        return _moving(t)
    picture = _moving(0.5).copy()
    if round(t * FPS) % 2:
        picture[30:42, 30:42] = np.clip(picture[30:42, 30:42].astype(int) + 20, 0, 255)
    return picture


@pytest.mark.parametrize(
    "config",
    [
        pytest.param(FreezeConfig(), id="both rules"),
        pytest.param(FreezeConfig(max_lively_share=1.0), id="one block keeps changing"),
        pytest.param(FreezeConfig(max_busy_share=1.0), id="most frames change"),
    ],
)
def test_a_light_blinking_in_a_still_scene_is_live_content(config: FreezeConfig) -> None:
    # Given a still scene with a blinking light, When analysed with either rule on its own,
    # Then no freeze: the light's block changes on every frame of the run (share 1.0 > 0.3 and > 0.4)
    assert run_detector(partial(detect, config=config), _stream(_blinking, 4))[0] == []
    # while without both rules the block-mean comparison alone calls the still scene a freeze, from
    # its first still frame (0.52 s: frames come every 0.04 s) to the end
    both_off = FreezeConfig(max_lively_share=1.0, max_busy_share=1.0)
    found = run_detector(partial(detect, config=both_off), _stream(_blinking, 4))[0]
    assert [(d["start_s"], d["end_s"]) for d in found] == [(0.52, 4.0)]


def test_the_state_of_a_720p_stream_stays_small() -> None:
    # Given a 720p picture (the largest thumbnail: 36x64 blocks), When one second is analysed,
    # Then the state (reference and previous thumbnails, busy counts) stays well under 20 KB
    texture = np.random.default_rng(5).integers(0, 255, (720, 1280), dtype=np.uint8)
    frames = [VideoFrame(pts_s=i / FPS, luma=texture, key_frame=i == 0, corrupt=False) for i in range(FPS)]
    _, state = detect(StreamSecond(index=0, frames=frames, audio=None, is_last=False), None)
    assert len(json.dumps(state)) < 16_000


def test_a_freeze_longer_than_the_busy_count_window_is_found_however_seconds_are_fed() -> None:
    # Given 11 s of a frozen picture (275 compared frames: the busy counts are halved at 250)
    seconds = _stream(lambda t: _moving(min(t, 1.0)), 12)
    # When analysed in one process and through JSON state, Then the same single freeze, 1.0-12.0 s
    found = _run(seconds, through_json=True)
    assert found == _run(seconds)
    assert [(d["start_s"], d["end_s"]) for d in found] == [(1.0, 12.0)]


def test_an_encoder_settling_on_a_frozen_picture_does_not_make_it_live() -> None:
    # Given a picture frozen from 1.0 s to 4.0 s that the encoder refines over the freeze's first second
    # (a different block each frame moves by 2 levels, as VP9 realtime does), then nearly leaves alone
    # (every other frame one block moves by 1 level)
    frozen = _moving(1.0)

    def picture(t: float) -> np.ndarray:
        if not 1.0 <= t < 4.0:
            return _moving(t)
        frame = round((t - 1.0) * FPS)
        out = frozen.astype(np.int16)
        block_row, block_col = divmod(frame % 40, 20)  # 16-px blocks of the 180x320 picture
        rows, cols = slice(16 * block_row, 16 * block_row + 16), slice(16 * block_col, 16 * block_col + 16)
        out[rows, cols] += 2 if frame < FPS else (frame % 2)  # settling: 2 levels; then 0/1 on one block
        return np.clip(out, 0, 255).astype(np.uint8)

    # When analysed, Then the freeze is found: counted after its first second, 15 of its 50 compared
    # frames are lively (0.30, under 0.4)
    found = _run(_stream(picture, 5))
    assert [(d["type"], d["start_s"], d["end_s"]) for d in found] == [("freeze", 1.0, 4.0)]
    # while counted from the run's start, the settling frames make it live: 39 of 74 (0.53)
    counted_from_start = FreezeConfig(settle_s=0.0)
    assert run_detector(partial(detect, config=counted_from_start), _stream(picture, 5))[0] == []
