"""Authored start offsets are not A/V desyncs; a timestamp jump inside the stream still is.

Built from the real clips in media/ by remuxing their packets with PyAV (no re-encoding): the audio track
made to start 155 ms after the video (a later stream start, or a lone first packet at the start and the
track proper 155 ms later, the silence between not coded), and an MP4 whose AAC track carries encoder
priming and an empty edit in its edit list. Before the audio clock was anchored at the audio's start,
the lone-first-packet clips were reported as a 155 ms `av_sync` by the timestamps method, from one
measurement at the start, and a later 300 ms jump was reported as 455 ms from the start.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest
from detector_runs import run_detector

from lambdas.converter.decode import iter_seconds, probe, read_second
from lambdas.detectors.av_sync import detect

MEDIA = Path(__file__).resolve().parents[1] / "media"
LATE_S = 0.155


def remux(
    source: Path, target: Path, *, late_s: float, lone_first: bool, jump: tuple[float, float] | None = None
) -> Path:
    """Copy the packets, moving the audio's by `late_s` (all of them, or all but the first) and, from
    `jump` = (at s, by s) on, by that much more: a packaging fault inside the stream."""
    with av.open(str(source)) as src, av.open(str(target), "w") as out:
        kept = [s for s in src.streams if s.type in ("video", "audio")]
        streams = {s.index: out.add_stream_from_template(s) for s in kept}
        audio_packets = 0
        for packet in src.demux(kept):
            if packet.dts is None:
                continue
            if packet.stream.type == "audio":
                audio_packets += 1
                at_s = float(packet.pts * packet.time_base)
                move_s = late_s if audio_packets > 1 or not lone_first else 0.0
                if jump is not None and at_s >= jump[0]:
                    move_s += jump[1]
                ticks = round(move_s / packet.time_base)
                packet.pts += ticks
                packet.dts += ticks
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
    return target


def av_sync_defects(path: Path) -> list[dict]:
    return run_detector(detect, iter_seconds(path))[0]


def first_audio_starts(path: Path, count: int = 3) -> list[float]:
    second = next(iter(iter_seconds(path)))
    assert second.audio is not None
    return [start for start, _ in second.audio.chunks[:count]]


@pytest.mark.parametrize("clip", ["chaplin.mp4", "bigbuckbunny.mp4"])
@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_a_lone_first_audio_packet_then_the_track_155_ms_later_is_not_a_desync(
    tmp_path: Path, clip: str, suffix: str
) -> None:
    # Given a clean real clip whose first audio packet is at the start and the rest 155 ms later
    path = remux(MEDIA / clip, tmp_path / f"lone{suffix}", late_s=LATE_S, lone_first=True)
    starts = first_audio_starts(path)
    assert starts[0] < 0.01 and starts[1] - starts[0] > LATE_S
    # When A/V sync runs on it, Then nothing is reported: how the audio starts is authored
    assert av_sync_defects(path) == []


@pytest.mark.parametrize("clip", ["chaplin.mp4", "bigbuckbunny.mp4"])
@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".ts"])
def test_an_audio_track_that_starts_later_in_the_container_is_not_a_desync(
    tmp_path: Path, clip: str, suffix: str
) -> None:
    # Given the audio track starting 155 ms after the video (a later stream start_time)
    path = remux(MEDIA / clip, tmp_path / f"late{suffix}", late_s=LATE_S, lone_first=False)
    with av.open(str(path)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        gap_s = float(audio.start_time * audio.time_base - video.start_time * video.time_base)
    assert gap_s > 0.1  # (MP4 keeps the MP3/AAC priming before it: 129-134 ms)
    # Then nothing is reported
    assert av_sync_defects(path) == []


def test_encoder_priming_and_an_empty_edit_in_an_mp4_edit_list_are_not_a_desync(tmp_path: Path) -> None:
    # Given an MP4 whose AAC track is encoded to start at 155 ms: the muxer writes an edit list (elst) for
    # it, and the encoder's priming frame comes before the first audible sample
    path = tmp_path / "edit-list.mp4"
    rate, fps = 48000, 25
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = 160, 96, "yuv420p"
        audio = out.add_stream("aac", rate=rate)
        audio.layout, audio.format = "mono", "fltp"
        t_a = round(LATE_S * rate)
        for i in range(4 * fps):
            picture = av.VideoFrame.from_ndarray(np.full((96, 160, 3), 60 + i % 50, np.uint8), format="rgb24")
            picture.pts = i
            for packet in video.encode(picture):
                out.mux(packet)
            while t_a < (i + 1) * rate // fps:
                t = (np.arange(1024) + t_a) / rate
                sound = av.AudioFrame.from_ndarray(
                    (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None], format="fltp", layout="mono"
                )
                sound.sample_rate, sound.pts = rate, t_a
                for packet in audio.encode(sound):
                    out.mux(packet)
                t_a += 1024
        for stream in (video, audio):
            for packet in stream.encode(None):
                out.mux(packet)
    assert path.read_bytes().count(b"elst") >= 1
    assert 0.1 < first_audio_starts(path)[0] < LATE_S
    assert av_sync_defects(path) == []


def test_a_jump_inside_the_stream_is_still_a_desync_measured_from_where_it_happens(tmp_path: Path) -> None:
    # Given the lone-first-packet clip whose audio timestamps also jump by 300 ms at 3 s (a packaging fault)
    path = remux(
        MEDIA / "chaplin.mp4", tmp_path / "jump.mkv", late_s=LATE_S, lone_first=True, jump=(3.0, 0.3)
    )
    # When analysed, Then one desync is reported: from the jump (3 s on the clip's clock, 3.155 s after the
    # start offset), 300 ms, not 455 ms from the start
    (found,) = av_sync_defects(path)
    assert found["method"] == "timestamps"
    assert found["offset_ms"] == pytest.approx(300.0, abs=2.0)
    assert 3.1 <= found["start_s"] <= 3.3


def test_the_lambda_path_judges_the_start_and_the_jump_as_the_monolith_does(tmp_path: Path) -> None:
    path = remux(
        MEDIA / "bigbuckbunny.mp4", tmp_path / "jump.mp4", late_s=LATE_S, lone_first=True, jump=(2.0, 0.25)
    )
    info = probe(path)

    def by_random_access() -> Iterator:
        for index in range(info.seconds or 0):
            yield read_second(path, index, info)

    lambda_path = run_detector(detect, by_random_access(), through_json=True)[0]
    monolith = av_sync_defects(path)
    assert lambda_path == monolith
    (found,) = monolith
    assert found["offset_ms"] == pytest.approx(250.0, abs=2.0) and 2.1 <= found["start_s"] <= 2.3
