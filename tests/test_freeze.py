"""Freeze detector on handmade pictures: frozen content, re-encoded frozen content, flat pictures."""

from __future__ import annotations

import json

import numpy as np
from detector_runs import run_detector

from lambdas.detectors.freeze import detect
from lambdas.shared.media import StreamSecond, VideoFrame

FPS = 25
RNG = np.random.default_rng(7)
TEXTURE = RNG.integers(0, 255, (180, 320), dtype=np.uint8)


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
    # Given a frozen picture with fresh small noise on every frame (an encoder re-encoding it)
    noise = np.random.default_rng(3)

    def picture(t: float) -> np.ndarray:
        if 0.5 <= t < 3.5:
            jitter = noise.integers(-3, 4, TEXTURE.shape)
            return np.clip(_moving(0.5).astype(int) + jitter, 0, 255).astype(np.uint8)
        return _moving(t)

    found = _run(_stream(picture, 5))
    assert [(d["type"], round(d["start_s"], 1), round(d["end_s"], 1)) for d in found] == [
        ("freeze", 0.5, 3.5)
    ]


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
