"""The one segment-window decoder (lambdas/converter/segments.py) in each design's I/O pattern gives the
seconds `monolith analyze` decodes from the published stream: the before's one second per window, the
after's stream of segments through one container (from the start, and taken up mid-stream), the
serverless design's window ending at each new segment (tests/lambdas/test_segment_analyzer.py runs that
one through the function itself)."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

import av
import pytest

from lambdas.converter.decode import UnreadableStreamError, iter_seconds, probe
from lambdas.converter.segments import (
    SegmentReader,
    SegmentWindow,
    StreamStart,
    check_segment_decodes,
    stream_start,
    video_from,
    window_start,
)
from lambdas.shared.live import LivePlaylist, LiveSegment
from lambdas.shared.media import StreamSecond
from sample_streams import AvOffset, BlockCorruption, Freeze, generate_stream
from sample_streams.publish import Segment, cut_segments

SOURCE = "s3://live/cam/index.m3u8"


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Segment], Path]:
    # Keyframes every 1.6 s, segments of >= 2 s (starting at 0, 3.2, 6.4, 9.6 s): seconds 3, 6 and 9 straddle
    # two segments; a freeze, block damage and an audio lag, so that pictures and sound both differ.
    folder = tmp_path_factory.mktemp("segments")
    source = folder / "source.mp4"
    generate_stream(source, duration_s=12, width=320, height=180, gop_s=1.6, seed=3,
                    defects=(Freeze(1.3, 2.5), BlockCorruption(5.2), AvOffset(7.0, 200.0)))
    segments = cut_segments(source, 2.0)
    path = folder / "published.ts"
    path.write_bytes(b"".join(s.data for s in segments))
    return segments, path


def _playlist(segments: list[Segment]) -> LivePlaylist:
    return LivePlaylist(key="live/cam/index.m3u8", ended=True, segments=tuple(
        LiveSegment(index=s.index, key=f"live/cam/segment-{s.index:05d}.ts", start_s=s.start_s,
                    duration_s=s.duration_s) for s in segments))


def _seen(second: StreamSecond) -> tuple[object, ...]:
    """What the detectors see of a second: every picture (time, pixels, flags) and the sound."""
    pictures = [(f.pts_s, hashlib.sha256(f.luma.tobytes()).hexdigest(), f.key_frame, f.corrupt,
                 f.decode_errors, f.dropped_after) for f in second.frames]
    audio = second.audio
    sound = None if audio is None else (hashlib.sha256(audio.samples.tobytes()).hexdigest(),
                                        audio.filled_samples, audio.decode_errors)
    return second.index, pictures, sound


def _reader(parts: list[bytes]) -> SegmentReader:
    pending: Iterator[bytes] = iter(parts)
    return SegmentReader(lambda: next(pending, b""))


def test_the_first_segment_tells_the_stream_s_clock_and_decoder(
        published: tuple[list[Segment], Path]) -> None:
    segments, path = published
    start = stream_start(segments[0].data, SOURCE)
    # x264 announces its build in the first keyframe; the stream's clock starts where the published file's
    assert start.decoder_options.keys() == {"x264_build"} and int(start.decoder_options["x264_build"]) > 0
    assert start.decoder_options == probe(path).decoder_options
    with av.open(str(path)) as container:
        assert start.origin_s == container.start_time / av.time_base
    with pytest.raises(UnreadableStreamError, match=r"index\.m3u8: not an MPEG-TS segment"):
        stream_start(b"#EXTM3U\n" * 47, SOURCE)


def test_the_after_s_stream_of_segments_gives_the_published_stream_s_seconds(
        published: tuple[list[Segment], Path]) -> None:
    segments, path = published
    expected = [_seen(s) for s in iter_seconds(path)]
    assert len(expected) == 13  # 12 s, and the last AAC frame's few ms past them
    start = stream_start(segments[0].data, SOURCE)
    with SegmentWindow(_reader([s.data for s in segments]), SOURCE, start) as window:
        followed = [_seen(s) for s in window.seconds(0, to_end=True)]
    # Without a duration the stream ends with the last second a picture or sound starts in: the 13th,
    # holding only the end of the last AAC frame, is not given out (as before this decoder was shared)
    assert followed == expected[:12]
    # Taken up at second 7 (a worker taking over from a checkpoint): from the segment window_start names
    playlist = _playlist(segments)
    first = window_start(playlist, 7)
    assert (first, segments[first].start_s) == (2, pytest.approx(6.4, abs=0.05))  # 6.4 <= 7 - 0.5 < 9.6
    with SegmentWindow(_reader([s.data for s in segments[first:]]), SOURCE, start) as window:
        assert [_seen(s) for s in window.seconds(7, to_end=True)] == expected[7:12]


def test_the_before_s_one_second_windows_give_the_published_stream_s_seconds(
        published: tuple[list[Segment], Path]) -> None:
    segments, path = published
    expected = [_seen(s) for s in iter_seconds(path)]
    playlist = _playlist(segments)
    start = stream_start(segments[0].data, SOURCE)
    windows = []
    for n in range(len(expected)):
        first, last = window_start(playlist, n), playlist.covering(n, n + 1)[-1].index
        windows.append((first, last))
        data = b"".join(s.data for s in segments[first:last + 1])
        with SegmentWindow(io.BytesIO(data), SOURCE, start, duration_s=playlist.edge_s) as window:
            (second,) = window.seconds(n, video_from_s=video_from(data, start.origin_s, n), stop_second=n + 1,
                                       last_second=(window.info.seconds or 0) - 1)
        assert _seen(second) == expected[n], n
    # Only the segments a second needs: its own, and the one before where its sound starts in it
    assert windows[:5] == [(0, 0), (0, 0), (0, 0), (0, 1), (1, 1)]


def test_a_poison_segment_is_refused_before_it_is_decoded(published: tuple[list[Segment], Path]) -> None:
    segments, _ = published
    check_segment_decodes(segments[1].data, "s3://live/cam/segment-00001.ts")
    packets = b"\x47" + bytes(187)  # MPEG-TS framing around nothing decodable
    with pytest.raises(UnreadableStreamError, match=r"segment-00001\.ts: the video|no video stream"):
        check_segment_decodes(packets * 40, "s3://live/cam/segment-00001.ts")
    # And a stream start that names no build leaves the decoder as it is
    assert StreamStart(origin_s=0.0).decoder_options == {}


def test_the_after_s_live_input_reads_each_segment_once_into_the_shared_decoder(
        published: tuple[list[Segment], Path]) -> None:
    # Given the stream published live in (moto) S3, ended
    import boto3
    from moto import mock_aws

    from lambdas.shared.request_counting import RequestCounter, counting_client
    from monolith.live import LiveInput, LiveJob
    from sample_streams.publish import publish

    _, path = published
    expected = [_seen(s) for s in iter_seconds(path)][:12]  # without the 13th: see the after's test above
    with mock_aws():
        counter = RequestCounter()
        s3 = counting_client(counter, "s3", region_name="us-east-1")
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="live")
        source = path.with_name("source.mp4")
        report = publish(source, s3=s3, bucket="live", stream_id="cam", speed=float("inf"))
        counter.reset()
        # When the after's reader follows it from segment 0 into the shared decoder
        reader = LiveInput(s3, LiveJob("live", report.playlist_key, "cam"), start_segment=0, poll_s=0.01,
                           stall_timeout_s=1.0, missing_timeout_s=1.0, on_wait=lambda: None)
        reader.buffer = reader.next_bytes()
        start = stream_start(reader.buffer, SOURCE)
        with SegmentWindow(reader, SOURCE, start) as window:
            seen = [_seen(s) for s in window.seconds(0, to_end=True)]
        # Then it gives the published stream's seconds, reading the playlist once and each segment once
        assert seen == expected
        assert reader.ended_by == "ended"
        assert counter.counts("s3") == {"GetObject": 1 + len(report.segments)}


def test_the_after_s_live_input_judges_a_stall_on_a_playlist_read_after_it_fell_behind(
        published: tuple[list[Segment], Path]) -> None:
    # Given a live stream in (moto) S3 listing one segment, and a reader that took it
    import boto3
    from moto import mock_aws

    from lambdas.shared.request_counting import RequestCounter, counting_client
    from monolith.live import LiveInput, LiveJob
    from sample_streams.publish import PublishFaults, publish

    _, path = published
    source = path.with_name("source.mp4")
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with mock_aws():
        counter = RequestCounter()
        s3 = counting_client(counter, "s3", region_name="us-east-1")
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="live")
        report = publish(source, s3=s3, bucket="live", stream_id="cam", speed=float("inf"),
                         faults=PublishFaults(die_after=1))
        reader = LiveInput(s3, LiveJob("live", report.playlist_key, "cam"), start_segment=0, poll_s=0.5,
                           stall_timeout_s=3.0, missing_timeout_s=3.0, on_wait=lambda: None,
                           clock=lambda: now[0], sleep=sleep)
        first = reader.next_bytes()
        # When the pipeline spends 10 s on it while the publisher lists two more segments
        publish(source, s3=s3, bucket="live", stream_id="cam", speed=float("inf"),
                faults=PublishFaults(die_after=3))
        now[0] += 10.0
        counter.reset()
        # Then the reader reads the playlist at once and goes on, not "stalled" on the playlist it had
        assert first and reader.next_bytes() and reader.next_bytes()
        assert reader.ended_by is None and now[0] == 10.0
        assert counter.counts("s3") == {"GetObject": 1 + 2}
        # And once the playlist stops growing, it ends stalled 3 s after the read that saw it grow, having
        # polled it every 0.5 s meanwhile
        assert reader.next_bytes() == b""
        assert reader.ended_by == "stalled" and now[0] == 13.0
        assert counter.counts("s3") == {"GetObject": 1 + 2 + 6}
