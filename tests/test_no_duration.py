"""Streams whose container gives no duration (WebM/Matroska written live, as browsers' MediaRecorder and
live encoders write it): analysed to their end, the last second found by reading, the same defects on
the Lambda path (random access, state through JSON) as in the monolith; a cut live file still refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import pytest
from detector_runs import run_detector

from lambdas.converter.decode import UnreadableStreamError, iter_seconds, probe, read_second
from lambdas.detectors import registry
from lambdas.shared.media import StreamInfo, StreamSecond
from monolith.pipeline import analyze, sort_defects
from sample_streams import AvOffset, BlockCorruption, Freeze, generate_stream
from sample_streams.live import CUES_ID, write_live


@pytest.fixture(scope="module")
def streams(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """{name: path}: each stream written normally (seekable: Duration and Cues) and as written live."""
    folder = tmp_path_factory.mktemp("live")
    made = {
        # VP9/Opus WebM, MediaRecorder's format: a freeze over seconds 2-4, audio 240 ms late from 5 s
        "vp9.webm": dict(video_codec="vp9", defects=[Freeze(2.0, 2.0), AvOffset(5.0, 240.0)]),
        # H.264/AAC Matroska from a live encoder: block damage at 3.3 s (until the keyframe at 4 s)
        "h264.mkv": dict(video_codec="h264", defects=[Freeze(0.6, 2.2), BlockCorruption(3.3)]),
    }
    out: dict[str, Path] = {}
    for name, spec in made.items():
        seekable = folder / name
        generate_stream(seekable, duration_s=7.0, width=320, height=180, seed=4, **spec)
        out[name] = seekable
        out[f"live-{name}"] = write_live(seekable, folder / f"live-{name}")
    return out


def lambda_seconds(path: Path, info: StreamInfo) -> Iterator[StreamSecond]:
    """Second after second by random access until the converter says it was the last: the workflow's loop
    (Convert, then the Last? choice on `is_last`)."""
    index = 0
    while True:
        second = read_second(path, index, info)
        yield second
        if second.is_last:
            return
        index += 1
        assert index < 100, "the end of the stream was never found"


def all_defects(seconds: list[StreamSecond], through_json: bool) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for detect in registry().values():
        found += run_detector(detect, seconds, through_json=through_json)[0]
    return sort_defects(found)


@pytest.mark.parametrize("name", ["vp9.webm", "h264.mkv"])
def test_a_stream_written_live_has_neither_duration_nor_cues(streams: dict[str, Path], name: str) -> None:
    # Given the same stream written to a seekable file and written live
    with av.open(str(streams[name])) as seekable, av.open(str(streams[f"live-{name}"])) as live:
        # Then only the seekable one says how long it is (what ffprobe shows as "duration")
        assert seekable.duration is not None and seekable.duration > 6 * av.time_base
        assert live.duration is None
        assert all(s.duration is None for s in live.streams)
    # And only the seekable one carries a seek index
    assert CUES_ID in streams[name].read_bytes()
    assert CUES_ID not in streams[f"live-{name}"].read_bytes()


@pytest.mark.parametrize("name", ["vp9.webm", "h264.mkv"])
def test_a_live_stream_is_analysed_to_its_end_with_the_defects_of_the_seekable_one(
    streams: dict[str, Path], name: str
) -> None:
    live = streams[f"live-{name}"]
    # Given a stream without a duration, When probed, Then its length is unknown, not refused
    info = probe(live)
    assert info.duration_s is None and info.seconds is None
    assert info.to_report()["duration_s"] is None
    # When the monolith analyses it
    report = analyze(live)
    expected = analyze(streams[name])
    # Then it is read to its end: 7 s of 25 fps pictures, the last shown from 6.96 s for 40 ms
    assert report["duration_s"] == pytest.approx(7.0, abs=0.03)
    # And the defects are those of the same stream written with a duration
    assert report["defects"] == expected["defects"]
    assert {d["type"] for d in report["defects"]} >= {"freeze"}


@pytest.mark.parametrize("name", ["live-vp9.webm", "live-h264.mkv"])
def test_the_lambda_path_finds_the_last_second_by_reading_and_the_same_defects(
    streams: dict[str, Path], name: str
) -> None:
    path = streams[name]
    info = probe(path)
    sequential = list(iter_seconds(path, info))
    # Given the seconds the monolith reads (0..6, the last one flagged)
    assert [s.index for s in sequential] == list(range(7))
    assert [s.is_last for s in sequential] == [False] * 6 + [True]
    # When the Lambda path reads one second at a time until the converter says it was the last
    by_random_access = list(lambda_seconds(path, info))
    # Then it stops at the same second, with the same pictures
    assert [s.is_last for s in by_random_access] == [s.is_last for s in sequential]
    for got, want in zip(by_random_access, sequential, strict=True):
        assert [f.pts_s for f in got.frames] == [f.pts_s for f in want.frames]
    # And the detectors, their state carried through JSON, report exactly the monolith's defects
    lambda_defects = all_defects(by_random_access, through_json=True)
    assert lambda_defects == all_defects(sequential, through_json=False) == analyze(path)["defects"]
    # And asking for a second past the end is refused, not answered with an empty second
    with pytest.raises(ValueError, match="past the end"):
        read_second(path, 7, info)


def test_the_expected_defects_are_found_in_the_live_streams(streams: dict[str, Path]) -> None:
    # The truth of the generator, checked on the live copies (hand-placed above)
    webm = analyze(streams["live-vp9.webm"])["defects"]
    mkv = analyze(streams["live-h264.mkv"])["defects"]
    freeze = [d for d in webm if d["type"] == "freeze"]
    assert [(d["start_s"], d["end_s"]) for d in freeze] == [(2.0, 4.0)]
    (offset,) = [d for d in webm if d["type"] == "av_sync"]
    assert offset["offset_ms"] == pytest.approx(240.0, abs=20) and 5.0 <= offset["start_s"] <= 6.5
    (damage,) = [d for d in mkv if d["type"] == "block_corruption"]
    assert damage["start_s"] == pytest.approx(3.32, abs=0.05) and damage["end_s"] == pytest.approx(4.0)


def test_stream_info_without_duration_survives_json(streams: dict[str, Path]) -> None:
    # The converter hands its probe to the workflow as JSON; an unknown duration stays unknown
    info = probe(streams["live-vp9.webm"])
    again = StreamInfo.from_dict(json.loads(json.dumps(info.to_dict())))
    assert again == info and again.seconds is None


@pytest.mark.parametrize("keep", [0.35, 0.6, 0.9, -1])
def test_a_cut_live_stream_is_refused_as_truncated(
    streams: dict[str, Path], tmp_path: Path, keep: float
) -> None:
    # Given a live stream cut short at some byte (an interrupted upload): it still opens and decodes
    data = streams["live-vp9.webm"].read_bytes()
    cut = tmp_path / "cut.webm"
    cut.write_bytes(data[: int(len(data) * keep)] if keep > 0 else data[:-1])
    with av.open(str(cut)) as container:
        assert container.duration is None and any(p.size for p in container.demux())
    # When probed (both paths probe first), Then it is refused: it ends inside an element
    with pytest.raises(UnreadableStreamError, match="truncated"):
        probe(cut)


def test_a_live_stream_cut_on_an_element_boundary_is_a_shorter_stream(
    streams: dict[str, Path], tmp_path: Path
) -> None:
    # Given a live stream that ends after a whole cluster (a recording stopped there): the same bytes as a
    # recording stopped at that moment, so it is analysed, not refused
    data = streams["live-vp9.webm"].read_bytes()
    cluster = bytes.fromhex("1F43B675")  # the EBML ID of a Cluster
    last_cluster = data.rfind(cluster)
    shorter = tmp_path / "shorter.webm"
    shorter.write_bytes(data[:last_cluster])
    report = analyze(shorter)
    assert 1.0 < report["duration_s"] < 7.0


def unknown_size_clusters(data: bytes) -> bytes:
    """The file with every Cluster's size marked unknown, as Chrome's MediaRecorder writes them (it cannot
    go back to fill them in): the size field keeps its length, all its value bits set."""
    out = bytearray(data)
    segment = data.find(bytes.fromhex("18538067"))
    at = segment + 4 + 8  # the live Segment's size is the 8-byte unknown size
    changed = 0
    while at < len(data):
        ident_len = 9 - data[at].bit_length()
        ident = data[at : at + ident_len]
        size_at = at + ident_len
        size_len = 9 - data[size_at].bit_length()
        size = int.from_bytes(data[size_at : size_at + size_len], "big") & ((1 << (7 * size_len)) - 1)
        if ident == bytes.fromhex("1F43B675"):
            out[size_at : size_at + size_len] = ((1 << (7 * size_len + 1)) - 1).to_bytes(size_len, "big")
            changed += 1
        at = size_at + size_len + size
    assert changed >= 3
    return bytes(out)


def test_clusters_of_unknown_size_as_mediarecorder_writes_them(
    streams: dict[str, Path], tmp_path: Path
) -> None:
    # Given the live stream with clusters of unknown size (the Segment's already is)
    recorded = tmp_path / "recorder.webm"
    recorded.write_bytes(unknown_size_clusters(streams["live-vp9.webm"].read_bytes()))
    # When analysed, Then it reads as the same stream: the same defects
    assert analyze(recorded)["defects"] == analyze(streams["live-vp9.webm"])["defects"]
    # And cut inside a block it is still refused: the block's own size runs past the end of the file
    data = recorded.read_bytes()
    cut = tmp_path / "recorder-cut.webm"
    cut.write_bytes(data[: len(data) * 3 // 5])
    with pytest.raises(UnreadableStreamError, match="truncated"):
        probe(cut)
