"""Block corruption: decoder evidence opens an event, a clean keyframe closes it, both paths agree."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from detector_runs import run_detector

from lambdas.converter.decode import iter_seconds, probe, read_second
from lambdas.detectors import block_corruption
from lambdas.detectors.block_corruption import seam_fractions
from lambdas.shared.media import StreamSecond, VideoFrame
from sample_streams.api import generate_stream
from sample_streams.defects import BlockCorruption

FPS = 25


def _run(path: Path) -> list[dict[str, Any]]:
    """The monolith's way: decode once, keep the state in memory."""
    return run_detector(block_corruption.detect, iter_seconds(path))[0]


def _run_lambda_path(path: Path) -> list[dict[str, Any]]:
    """The Lambda way: each second decoded on its own, the state carried as JSON between calls."""
    info = probe(path)
    seconds = (read_second(path, index, info) for index in range(info.seconds))
    return run_detector(block_corruption.detect, seconds, through_json=True)[0]


def _matches(event: dict[str, Any], truth: dict[str, Any], tolerance_s: float = 0.5) -> bool:
    return (
        abs(event["start_s"] - truth["start_s"]) <= tolerance_s
        and abs(event["end_s"] - truth["end_s"]) <= tolerance_s
    )


@pytest.fixture(scope="module")
def damaged_once(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    path = tmp_path_factory.mktemp("bc") / "once.mp4"
    truth = generate_stream(
        path, duration_s=4, width=320, height=240, audio=False, defects=[BlockCorruption(1.3, 3, 20)], seed=3
    )
    return path, truth.defects_of("block_corruption")


@pytest.fixture(scope="module")
def damaged_twice(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    path = tmp_path_factory.mktemp("bc") / "twice.mp4"
    defects = [BlockCorruption(0.7, 2, 20), BlockCorruption(4.4, 4, 10)]
    truth = generate_stream(path, duration_s=6, width=320, height=240, audio=False, defects=defects, seed=5)
    return path, truth.defects_of("block_corruption")


# --- the visual score on handmade pictures ----------------------------------------------------


def _gradient(height: int = 128, width: int = 256) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return (40 + 0.5 * x + 0.3 * y + 10 * np.sin(x / 7.0) * np.cos(y / 5.0)).astype(np.uint8)


def test_smooth_gradients_and_off_grid_edges_are_not_seams() -> None:
    # Given a textured gradient, and the same with a sharp edge that does not lie on the 16-px grid
    clean = _gradient()
    edged = clean.copy()
    edged[:, 100:] = np.clip(edged[:, 100:].astype(int) + 60, 0, 255)  # x=100 is not a multiple of 16
    edged[70:, :] = np.clip(edged[70:, :].astype(int) - 50, 0, 255)  # nor is y=70
    # When scored, Then neither has a single macroblock seam
    assert seam_fractions(clean) == (0.0, 0.0)
    assert seam_fractions(edged) == (0.0, 0.0)


def test_concealed_macroblocks_leave_seams_on_the_grid() -> None:
    # Given the gradient with a band of macroblocks replaced by flat grey (what concealment often shows)
    damaged = _gradient()
    damaged[32:64, 64:192] = 128
    # When scored, Then seams appear along both horizontal and vertical macroblock boundaries
    horizontal, vertical = seam_fractions(damaged)
    assert horizontal > 0.05 and vertical > 0.05


# --- the event logic on handmade seconds --------------------------------------------------------


def _frame(t: float, *, key: bool = False, corrupt: bool = False, errors: int = 0) -> VideoFrame:
    return VideoFrame(round(t, 6), _gradient(), key_frame=key, corrupt=corrupt, decode_errors=errors)


def _second(index: int, marks: dict[int, dict[str, Any] | None], is_last: bool = False) -> StreamSecond:
    # A mark of None drops the frame: its packet was lost.
    kept = [k for k in range(FPS) if k not in marks or marks[k] is not None]
    frames = [_frame(index + k / FPS, **(marks.get(k) or {})) for k in kept]
    return StreamSecond(index=index, frames=frames, audio=None, is_last=is_last)


def test_decoder_evidence_opens_and_a_clean_keyframe_closes_across_seconds() -> None:
    # Given frame 10 of second 0 flagged corrupt, and the next keyframe at 2.0 s
    key = {"key": True}
    seconds = [_second(0, {0: key, 10: {"corrupt": True}}), _second(1, {}), _second(2, {0: key})]
    # When detected second by second with the state round-tripped through JSON
    state, events = None, []
    for second in seconds:
        found, state = block_corruption.detect(second, json.loads(json.dumps(state)))
        events += found
    # Then one event runs from the damaged frame to the clean keyframe, counting the frames in between
    assert len(events) == 1
    event = events[0]
    assert (event["start_s"], event["end_s"], event["frames"]) == (0.4, 2.0, 40)
    # (the learned model reads the same flag, and a still picture does not silence what it reads)
    assert event["evidence"] == ["decoder_flag", "learned"] and event["type"] == "block_corruption"


def test_lost_packets_date_the_damage_to_the_missing_picture_and_a_corrupt_keyframe_does_not_close() -> None:
    # Given frame 5's packet lost (the error lands on frame 6, the next picture), then a damaged keyframe
    lost = {5: None, 6: {"errors": 1}}
    seconds = [_second(0, lost), _second(1, {0: {"key": True, "corrupt": True}}, is_last=True)]
    state, events = None, []
    for second in seconds:
        found, state = block_corruption.detect(second, state)
        events += found
    # Then the event starts just after frame 4 and, with no clean keyframe, lasts to the end of the stream
    assert len(events) == 1
    assert (events[0]["start_s"], events[0]["end_s"]) == (0.2, 2.0)
    # (the learned model reads the gap in the timestamps: the lost picture is missing after still ones too)
    assert events[0]["evidence"] == ["decode_error", "learned", "decoder_flag"]


def test_seams_alone_never_open_an_event() -> None:
    # Given pictures full of grid-aligned edges (like colour bars, checkerboards) and no decoder flags
    bars = np.repeat(np.repeat(np.array([[30, 200] * 8] * 4, dtype=np.uint8), 16, axis=0), 16, axis=1)
    frames = [VideoFrame(k / FPS, bars if k % 2 else _gradient(64, 256), False, False) for k in range(FPS)]
    # When detected, Then nothing is reported
    found, state = block_corruption.detect(StreamSecond(0, frames, None, True), None)
    assert found == [] and state["event"] is None
    assert len(json.dumps(state)) < 1024  # the state stays small


# --- real decoding ----------------------------------------------------------------------------


def test_a_damaged_synthetic_stream_gives_one_event_at_the_right_time(damaged_once) -> None:
    # Given 3 damaged packets from 1.3 s in a stream with keyframes every 2 s
    path, truth = damaged_once
    # When decoded and detected
    events = _run(path)
    # Then one event is reported, from the first damaged picture to the next keyframe
    assert len(events) == 1 and _matches(events[0], truth[0])
    assert events[0]["frames"] > 3 and "decoder_flag" in events[0]["evidence"]


def test_several_damage_episodes_give_several_events(damaged_twice) -> None:
    # Given two damage episodes in different GOPs
    path, truth = damaged_twice
    # When detected, Then each episode is one event at its own time
    events = _run(path)
    assert len(events) == 2
    assert all(_matches(e, t) for e, t in zip(events, truth, strict=True))


def test_the_lambda_path_and_the_monolith_agree(damaged_twice) -> None:
    # Given a stream with two episodes, When detected by random access with JSON state, and sequentially
    path, _ = damaged_twice
    # Then both report exactly the same events
    assert _run_lambda_path(path) == _run(path)


@pytest.mark.slow
@pytest.mark.parametrize("clip", ["chaplin", "bigbuckbunny"])
def test_clean_real_clips_give_no_event(clip: str, request: pytest.FixtureRequest) -> None:
    # Given an undamaged real clip (film grain, encoder blocking, a 720p cartoon)
    path = request.getfixturevalue(clip)
    # When detected, Then nothing is reported
    assert _run(path) == []
