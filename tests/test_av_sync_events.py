"""A/V sync on event content unlike `sample_streams.synth`: a flash or a sudden appearance of part of the
picture at irregular times over a background that keeps moving, with tone bursts of any pitch and claps."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from detector_runs import run_detector

from lambdas.converter.decode import iter_seconds, probe, read_second
from lambdas.detectors.av_sync import detect, local_strength, thumbnail
from lambdas.shared.media import AudioSecond, StreamSecond, VideoFrame
from sample_streams import AvOffset, generate_event_stream
from sample_streams.events import MovingBackground, plan_events

SHIFT_S = 3.0
STREAM = {"duration_s": 8.0, "width": 640, "height": 360, "seed": 7}
OFFSET_STREAMS = {  # name: (video codec, offset ms, audio background)
    "h264.mp4": ("h264", 250.0, "noise"),
    "vp9.webm": ("vp9", -300.0, "chord"),
    "hevc.mp4": ("hevc", 180.0, "noise"),
}


@pytest.fixture(scope="module")
def streams(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("av_sync_events")
    paths = {}
    for name, (codec, offset_ms, background) in OFFSET_STREAMS.items():
        paths[name] = out / name
        generate_event_stream(
            paths[name],
            **STREAM,
            video_codec=codec,
            audio_background=background,
            defects=[AvOffset(SHIFT_S, offset_ms)],
        )
    paths["clean.mp4"] = out / "clean.mp4"
    generate_event_stream(paths["clean.mp4"], **STREAM, audio_background="chord")
    paths["background.mp4"] = out / "background.mp4"
    generate_event_stream(paths["background.mp4"], **STREAM, events=False)
    return paths


def _analyse(path: Path) -> tuple[list[dict], dict]:
    return run_detector(detect, iter_seconds(path))


@pytest.mark.parametrize("name", list(OFFSET_STREAMS))
def test_an_offset_from_mid_stream_on_partial_flashes_is_found_and_measured(streams, name) -> None:
    # Given partial flashes and appearances at irregular times over a moving background, with tone bursts
    # and claps, whose audio content is shifted from 3 s on (timestamps continuous)
    offset_ms = OFFSET_STREAMS[name][1]
    # When analysed second by second
    found, state = _analyse(streams[name])
    # Then one episode, from near the shift to the end, measures the offset within ±20 ms
    assert len(found) == 1, found
    episode = found[0]
    assert episode["type"] == "av_sync" and episode["method"] == "events"
    assert abs(episode["offset_ms"] - offset_ms) <= 20.0
    assert abs(episode["start_s"] - SHIFT_S) <= 1.5 and episode["end_s"] >= STREAM["duration_s"] - 0.1
    assert episode["measurements"] >= 2 and episode["confidence"] >= 0.5
    assert state["status"] == "out_of_sync" and abs(state["offset_ms"] - offset_ms) <= 20.0


def test_clean_event_content_has_no_episode_and_is_in_sync(streams) -> None:
    found, state = _analyse(streams["clean.mp4"])
    assert found == []
    assert state["status"] == "in_sync" and abs(state["offset_ms"]) <= 20.0


def test_a_moving_background_alone_raises_no_visual_onset(streams) -> None:
    # Given the moving background (panning texture, fast shapes, brightness drift, grain) with no event
    found, state = _analyse(streams["background.mp4"])
    # Then not one frame was taken for a visual onset, nothing is reported and the status is unknown
    assert state["v"]["onset_s"] is None and state["v"]["last_s"] > 7.9
    assert found == [] and state["status"] == "unknown"


def test_only_the_partial_flash_crosses_the_local_onset_threshold() -> None:
    # Given the raw pictures of a moving background with events (no encoder in between)
    fps = Fraction(25)
    events = plan_events(100, fps, 320, 180, seed=3)
    background = MovingBackground(320, 180, seed=3, events=events)
    firsts = {e.frame for e in events}
    # When the local signal is computed frame by frame, with the activity it carries from frame to frame
    thumbs = [thumbnail(background.luma(i)).astype(np.float32) for i in range(100)]
    strengths, activity = [0.0, 0.0], np.abs(thumbs[1] - thumbs[0])
    for i in range(2, 100):
        diff = thumbs[i] - thumbs[i - 1]
        strengths.append(local_strength(diff, activity))
        activity = np.maximum(np.abs(diff), 0.8 * activity)
    # Then every event's first frame is an onset, and no frame of the background between events is
    onsets = {i for i, s in enumerate(strengths) if s >= 1.0}
    assert firsts and firsts <= onsets
    ends = {e.frame + e.frames_shown for e in events}  # a flash going off or an object vanishing
    assert onsets - firsts <= ends, sorted(onsets - firsts - ends)


def test_the_lambda_path_with_json_state_finds_the_same(streams) -> None:
    # Given one stream read sequentially (the monolith) and by random access with the state through JSON
    # between seconds (the Lambda path)
    path = streams["vp9.webm"]
    info = probe(path)
    sequential = run_detector(detect, iter_seconds(path, info))
    lambda_path = run_detector(
        detect, (read_second(path, n, info) for n in range(info.seconds)), through_json=True
    )
    # Then the findings and the final state are identical, and the state stays small
    assert lambda_path[0] == sequential[0] and sequential[0]
    assert lambda_path[1] == json.loads(json.dumps(sequential[1]))
    assert len(json.dumps(lambda_path[1])) < 8000


# --- handmade seconds: no period to lean on ----------------------------------------------------

FPS, RATE = 25, 8000


def _seconds(n: int, flashes: list[float], sounds: list[float]) -> list[StreamSecond]:
    """A smooth gradient panning 3 px a frame with a bright disc crossing it, partial flashes (a quarter of
    the picture, 2 frames) at `flashes`, 50 ms tone bursts of rising pitch at `sounds` over quiet noise."""
    y, x = np.mgrid[0:72, 0:128].astype(np.float32)
    signal = (0.005 * np.random.default_rng(4).standard_normal(n * RATE)).astype(np.float32)
    for k, s in enumerate(sounds):
        t = np.arange(round(0.05 * RATE)) / RATE
        start = round(s * RATE)
        signal[start : start + len(t)] += 0.4 * np.sin(2 * np.pi * (300 + 500 * k) * t).astype(np.float32)
    out = []
    for index in range(n):
        frames = []
        for i in range(FPS):
            frame = index * FPS + i
            luma = 90 + 40 * np.sin((x + 3 * frame) / 20.0) + 20 * np.cos(y / 15.0)
            luma[(x - (frame * 5) % 128) ** 2 + (y - 36) ** 2 < 100] = 220
            if any(round(f * FPS) <= frame < round(f * FPS) + 2 for f in flashes):
                luma[36:72, 64:128] = 235
            frames.append(VideoFrame(round(frame / FPS, 6), luma.astype(np.uint8), i == 0, False))
        samples = signal[index * RATE : (index + 1) * RATE]
        audio = AudioSecond(samples, RATE, 0, 0, [(float(index), RATE)])
        out.append(StreamSecond(index, frames, audio, is_last=index == n - 1))
    return out


def test_a_lag_longer_than_half_the_gap_between_events_is_measured_without_a_period() -> None:
    # Given partial flashes 0.6-1.6 s apart and their sounds 400 ms late: the sound of one flash lies
    # nearer the next flash than its own (0.6 - 0.4 < 0.4), so pairing with the nearest sound would fail
    flashes = [0.52, 1.12, 2.4, 3.0, 4.6, 5.2]
    found, state = run_detector(detect, _seconds(7, flashes, [f + 0.4 for f in flashes]))
    # Then the lag that recurs is found: one episode of +400 ms from the first flash
    assert [(d["start_s"], d["offset_ms"]) for d in found] == [(0.52, 400.0)]
    assert state["status"] == "out_of_sync"


def test_an_unrelated_sound_between_events_changes_nothing() -> None:
    # Given in-sync partial flashes at irregular times and one extra burst 250 ms after the third flash
    flashes = [0.52, 1.4, 2.04, 3.6, 4.2, 5.48]
    found, state = run_detector(detect, _seconds(7, flashes, sorted([*flashes, 2.29])))
    # Then no episode and the stream is in sync
    assert found == [] and state["status"] == "in_sync" and state["offset_ms"] == 0.0


def test_an_early_chance_agreement_does_not_hold_back_a_new_offset() -> None:
    # Given onsets that measured offset 0 from 5.52 to 8.52 s, then three flashes heard 270 ms late; the
    # picture jumping as a freeze ended at 5.24 s happened to be 280 ms before a beep (as in seed 3's
    # MPEG-4 case): (time, candidate lags ms, weight), an onset that measured the old offset has none
    from lambdas.detectors.av_sync import DEFAULT, _consensus

    old = [[t, [], 0.0] for t in (5.52, 6.52, 7.52, 8.52)]
    new = [[t, [270.0], 1.0] for t in (9.52, 10.52, 11.52)]
    pool = [[5.24, [280.0], 1.0], *old, *new]
    # When the newest onset looks for a changed offset, Then the three late flashes set it: 3 of the 3
    # onsets since 9.52, while counted from 5.24 the 4 supporters were 4 of 8 (< 65%) and set nothing
    assert _consensus(pool, True, DEFAULT) == [(9.52, 270.0, 1.0), (10.52, 270.0, 1.0), (11.52, 270.0, 1.0)]
    # And where the early agreement stands among supporters only, it is kept: 3 of 3 from 5.24
    assert _consensus([pool[0], *new[:2]], True, DEFAULT) == [(5.24, 280.0, 1.0), (9.52, 270.0, 1.0),
                                                             (10.52, 270.0, 1.0)]
