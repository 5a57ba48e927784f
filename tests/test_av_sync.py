"""A/V sync detector: flash+beep streams with injected offsets, and handmade numpy seconds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from detector_runs import run_detector

from lambdas.converter.decode import iter_seconds, probe, read_second
from lambdas.detectors.av_sync import detect
from lambdas.shared.media import AudioSecond, StreamSecond, VideoFrame
from sample_streams import AvOffset, BlockCorruption, Freeze, generate_stream

SHIFT_S = 3.0  # where the injected offsets begin
SMALL = {"duration_s": 6.0, "width": 192, "height": 108, "seed": 5}


def _run(seconds, through_json: bool = False) -> tuple[list[dict], dict]:
    return run_detector(detect, seconds, through_json)


def _analyse(path: Path) -> tuple[list[dict], dict]:
    return _run(iter_seconds(path))


@pytest.fixture(scope="module")
def streams(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("av_sync")
    specs = {
        "clean.mp4": {},
        "clean.ts": {},
        "plus200.mp4": {"defects": [AvOffset(SHIFT_S, 200)]},
        "minus150.ts": {"defects": [AvOffset(SHIFT_S, -150)]},
        "pts200.mp4": {"defects": [AvOffset(SHIFT_S, 200, mode="pts")]},
        "noaudio.mp4": {"audio": False},
        "freeze_corrupt.mp4": {"defects": [Freeze(1.1, 2.6, noise=1.0), BlockCorruption(4.2, 4, 40)]},
    }
    paths = {}
    for name, kwargs in specs.items():
        paths[name] = out / name
        generate_stream(paths[name], **SMALL, **kwargs)
    return paths


# --- streams ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "offset_ms"), [("plus200.mp4", 200.0), ("minus150.ts", -150.0)])
def test_an_offset_from_mid_stream_is_one_episode_with_the_measured_offset(streams, name, offset_ms) -> None:
    # Given flash+beep content whose audio is shifted from 3 s on (content mode: timestamps continuous)
    # When analysed second by second
    found, state = _analyse(streams[name])
    # Then one episode starts near the shift, runs to the end, and measures the offset within ±20 ms
    assert len(found) == 1, found
    episode = found[0]
    assert episode["type"] == "av_sync" and episode["method"] == "events"
    assert abs(episode["start_s"] - SHIFT_S) <= 1.0
    assert episode["end_s"] >= SMALL["duration_s"] - 0.1
    assert abs(episode["offset_ms"] - offset_ms) <= 20.0
    assert episode["confidence"] >= 0.5
    assert state["status"] == "out_of_sync" and abs(state["offset_ms"] - offset_ms) <= 20.0


@pytest.mark.parametrize("name", ["clean.mp4", "clean.ts"])
def test_a_clean_stream_has_no_episode_and_is_in_sync(streams, name) -> None:
    found, state = _analyse(streams[name])
    assert found == []
    assert state["status"] == "in_sync" and abs(state["offset_ms"]) <= 20.0


def test_a_timestamp_shift_is_reported_as_a_timestamp_desync(streams) -> None:
    # Given audio packets whose timestamps jump by +200 ms at 3 s (a packaging fault)
    found, _ = _analyse(streams["pts200.mp4"])
    # Then the episode is attributed to the timestamps and starts at the jump itself
    assert len(found) == 1, found
    assert found[0]["method"] == "timestamps"
    assert abs(found[0]["start_s"] - SHIFT_S) <= 0.1
    assert abs(found[0]["offset_ms"] - 200.0) <= 20.0 and abs(found[0]["jump_ms"] - 200.0) <= 1.0


def test_a_stream_without_audio_reports_nothing_and_unknown(streams) -> None:
    found, state = _analyse(streams["noaudio.mp4"])
    assert found == [] and state["status"] == "unknown" and state["offset_ms"] is None


def test_a_freeze_hiding_the_flashes_or_damaged_video_raises_no_av_alarm(streams) -> None:
    # Given flashes hidden by a 2.6 s freeze while the beeps go on, then block corruption
    found, _ = _analyse(streams["freeze_corrupt.mp4"])
    assert found == []


def test_random_access_with_json_state_gives_the_same_findings_as_sequential_decoding(streams) -> None:
    # Given the same stream read two ways: sequentially with in-memory state (the monolith) and one
    # second at a time by random access with state through JSON (the Lambda path)
    for name in ("plus200.mp4", "pts200.mp4"):
        path = streams[name]
        info = probe(path)
        sequential = _run(iter_seconds(path, info))
        lambda_path = _run((read_second(path, n, info) for n in range(info.seconds)), through_json=True)
        # Then the findings and the final status are identical
        assert lambda_path[0] == sequential[0] and sequential[0]
        assert lambda_path[1]["status"] == sequential[1]["status"]
        assert len(json.dumps(lambda_path[1])) < 8000  # small enough for a Step Functions payload


# --- handmade seconds ------------------------------------------------------------------------

FPS = 25
RATE = 8000
CHUNK = 1024
TEXTURE = np.random.default_rng(1).integers(40, 160, (36, 64), dtype=np.uint8)


def _handmade(
    seconds: int,
    flashes: list[float],
    beeps: list[float],
    gap: tuple[float, float] | None = None,
    report_errors: bool = True,
    jump: tuple[float, float] | None = None,
) -> list[StreamSecond]:
    """Seconds of a moving texture with 2-frame white flashes at `flashes` and 60 ms beeps at `beeps`.

    Audio is cut into 1024-sample chunks placed by their timestamps, as the converter does.
    `gap` = (start, end) drops the chunks starting inside it (lost packets, counted as decode errors
    when `report_errors`); `jump` = (at, size) moves the timestamps of the chunks from `at` on by `size`.
    """
    n = seconds * RATE
    rng = np.random.default_rng(2)
    signal = (0.01 * rng.standard_normal(n + RATE)).astype(np.float32)
    for b in beeps:
        s = round(b * RATE)
        t = np.arange(round(0.06 * RATE)) / RATE
        signal[s : s + len(t)] += 0.5 * np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    chunks = []  # (pts, first source sample, lost)
    for k in range(n // CHUNK + 1):
        pts = k * CHUNK / RATE
        lost = gap is not None and gap[0] <= pts < gap[1]
        if jump is not None and pts >= jump[0] - 1e-9:
            pts += jump[1]
        chunks.append((round(pts, 6), k * CHUNK, lost))
    out = []
    for index in range(seconds):
        frames = []
        for i in range(FPS):
            t = index + i / FPS
            flash = any(f - 1e-6 <= t < f + 2 / FPS - 1e-6 for f in flashes)
            luma = np.full_like(TEXTURE, 235) if flash else np.roll(TEXTURE, i + FPS * index, axis=1)
            frames.append(VideoFrame(pts_s=round(t, 6), luma=luma, key_frame=i == 0, corrupt=False))
        samples = np.zeros(RATE, np.float32)
        covered = np.zeros(RATE, bool)
        used, errors = [], 0
        for pts, src, lost in chunks:
            lo = round((pts - index) * RATE)
            if lo + CHUNK <= 0 or lo >= RATE:
                continue
            if lost:
                errors += int(report_errors and index <= pts < index + 1)
                continue
            used.append((pts, CHUNK))
            a, b = max(lo, 0), min(lo + CHUNK, RATE)
            samples[a:b] = signal[src + a - lo : src + b - lo]
            covered[a:b] = True
        audio = AudioSecond(samples, RATE, int((~covered).sum()), errors, sorted(used))
        out.append(StreamSecond(index, frames, audio, is_last=index == seconds - 1))
    return out


def test_onsets_either_side_of_a_second_boundary_still_pair() -> None:
    # Given flashes on the last frame of each second and beeps 140 ms later, in the next second
    flashes = [k + 0.96 for k in range(5)]
    found, state = _run(_handmade(6, flashes, [f + 0.14 for f in flashes]))
    # Then the pairing crosses the boundary: one episode of +140 ms from the first flash
    assert len(found) == 1, found
    assert abs(found[0]["offset_ms"] - 140.0) <= 2.0 and abs(found[0]["start_s"] - 0.96) < 0.01
    assert state["status"] == "out_of_sync"


def test_a_beep_starting_just_before_a_boundary_is_timed_to_the_millisecond() -> None:
    # Given beeps 3 ms before each second boundary (most of their rise lies in the next second)
    # and flashes on the frame about 120 ms earlier
    beeps = [k + 0.997 for k in range(1, 5)]
    flashes = [round(b - 0.12, 2) for b in beeps]
    found, _ = _run(_handmade(6, flashes, beeps))
    assert len(found) == 1, found
    assert abs(found[0]["offset_ms"] - (beeps[0] - flashes[0]) * 1000) <= 2.0


def test_audio_leading_video_gives_a_negative_offset() -> None:
    flashes = [k + 0.52 for k in range(5)]  # flashes start on a frame (0.52 s is frame 13 at 25 fps)
    found, _ = _run(_handmade(6, flashes, [f - 0.3 for f in flashes]))
    assert len(found) == 1 and abs(found[0]["offset_ms"] + 300.0) <= 2.0


def test_a_single_mismatched_pair_changes_nothing() -> None:
    # Given an in-sync stream where one beep is 250 ms late (a one-off mismatch)
    flashes = [k + 0.52 for k in range(6)]
    beeps = [f + (0.25 if k == 3 else 0.0) for k, f in enumerate(flashes)]
    found, state = _run(_handmade(6, flashes, beeps))
    # Then no episode: a new offset needs two consistent measurements
    assert found == [] and state["status"] == "in_sync"


@pytest.mark.parametrize("report_errors", [True, False])
def test_lost_audio_packets_are_neither_onsets_nor_a_clock_jump(report_errors: bool) -> None:
    # Given an in-sync stream whose audio loses 5 packets (640 ms of silence, hiding a beep)
    flashes = [k + 0.52 for k in range(6)]
    found, state = _run(_handmade(6, flashes, flashes, gap=(2.0, 2.6), report_errors=report_errors))
    # Then the gap fakes no desync, neither from the resuming audio nor from the timestamps: the decoder's
    # errors explain the gap, or else the flashes after it show that nothing moved
    assert found == [] and state["status"] == "in_sync"
    if report_errors:
        assert all(abs(step["size"]) < 0.005 for step in state["ts"]["steps"])


def test_an_audio_clock_jump_at_a_second_boundary_without_events_is_a_timestamp_desync() -> None:
    # Given plain noise (no events) whose audio timestamps jump by +200 ms at the chunk after 2.9 s,
    # so that the jump straddles the boundary between seconds 2 and 3
    found, state = _run(_handmade(7, [], [], jump=(2.9, 0.2)))
    # Then the timestamps alone report it, from the end of the last chunk before the jump
    assert len(found) == 1, found
    assert state["status"] == "out_of_sync" and state["offset_ms"] == 200.0
    assert found[0]["method"] == "timestamps" and abs(found[0]["offset_ms"] - 200.0) < 1.0
    assert abs(found[0]["start_s"] - 2.944) < 0.01 and found[0]["end_s"] == 7.0


def test_an_audio_clock_jump_mirrored_by_the_video_is_no_desync() -> None:
    # Given audio and video timestamps that both jump by +200 ms at 2.9 s (a splice)
    seconds = _handmade(7, [], [], jump=(2.9, 0.2))
    moved = []
    for second in seconds:
        frames = [
            VideoFrame(round(f.pts_s + 0.2, 6), f.luma, f.key_frame, f.corrupt) if f.pts_s >= 2.9 else f
            for f in second.frames
        ]
        moved.append(StreamSecond(second.index, frames, second.audio, second.is_last))
    found, _ = _run(moved)
    assert found == []


def test_beeps_without_flashes_are_unknown_not_a_false_alarm() -> None:
    found, state = _run(_handmade(5, [], [k + 0.5 for k in range(5)]))
    assert found == [] and state["status"] == "unknown"


def test_the_offset_going_away_closes_the_episode() -> None:
    # Given +200 ms from 1.5 s, back in sync from 4.5 s
    flashes = [k + 0.52 for k in range(8)]
    beeps = [f + (0.2 if 1.5 <= f < 4.5 else 0.0) for f in flashes]
    found, state = _run(_handmade(8, flashes, beeps))
    # Then one episode from the first late beep's flash to the first flash back in sync
    assert [(d["start_s"], d["end_s"], d["offset_ms"]) for d in found] == [(1.52, 4.52, 200.0)]
    assert state["status"] == "in_sync"
