"""The converter on a live stream (moto S3): second n from the segments that hold it, the same defects as
`monolith analyze` on the published file, waits at the live edge, and clear failures."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from lambdas.converter.live_source import MISSING_AFTER_S, LiveSegmentCache, SecondNotPublishedYet
from lambdas.converter.service import ConvertRequest, StreamCache, StreamUnreadable, convert
from monolith.lambda_path import FRAMES_BUCKET, lambda_path_defects
from monolith.pipeline import analyze
from sample_streams import AvOffset, BlockCorruption, Freeze, generate_stream
from sample_streams.publish import PublishFaults, publish, write_published

BUCKET = "streams"


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("live") / "sample.mp4"
    generate_stream(path, duration_s=12, width=320, height=180,
                    defects=(Freeze(2.0, 2.5), BlockCorruption(6.3), AvOffset(8.0, 240.0)), seed=7)
    return path


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        for bucket in (BUCKET, FRAMES_BUCKET):
            client.create_bucket(Bucket=bucket)
        yield client


def _request(key: str, second: int) -> ConvertRequest:
    return ConvertRequest.from_event({"bucket": BUCKET, "key": key, "stream_id": "cam", "second": second,
                                      "execution": "run", "started_at": "2026-12-07T12:00:00+00:00"})


def test_live_stream_gives_the_defects_of_the_published_file(sample: Path, s3, tmp_path: Path) -> None:
    """Given a stream published as 2 s segments, when the workflow's loop reads it second by second from
    the playlist, then it finds exactly what monolith analyze finds on the published file."""
    report = publish(sample, s3=s3, bucket=BUCKET, stream_id="cam", speed=float("inf"))
    published = write_published(report, s3, tmp_path / "published.ts")
    expected = analyze(published)["defects"]
    assert {d["type"] for d in expected} == {"freeze", "block_corruption", "av_sync"}
    assert lambda_path_defects(s3, BUCKET, report.playlist_key) == expected


def test_only_the_segments_a_second_needs_are_read_once(sample: Path, s3, tmp_path: Path) -> None:
    report = publish(sample, s3=s3, bucket=BUCKET, stream_id="cam", speed=float("inf"))
    live = LiveSegmentCache(tmp_path / "live")
    cache = StreamCache(tmp_path / "files")
    fetched = []
    # The last AAC frame decodes 10.7 ms past 12 s in a TS (no edit list to trim it): a 13th second, as
    # monolith analyze sees the published stream.
    assert report.segments[-1].duration_s == pytest.approx(2.0 + 512 / 48000)
    for second in range(13):
        out = convert(_request(report.playlist_key, second), s3=s3, temp_bucket=FRAMES_BUCKET, cache=cache,
                      live=live)
        fetched.append(out["live"]["segments_fetched"])
        assert out["is_last"] == (second == 12)
    # Keyframes every 2 s, segments [0,2), [2,4), ...: second 0 needs segment 0; an even second also needs
    # the segment before it (audio preroll), which the warm cache already holds; an odd one nothing new.
    assert fetched == [[0], [], [1], [], [2], [], [3], [], [4], [], [5], [], []]


def test_a_second_past_the_live_edge_waits(sample: Path, s3, tmp_path: Path) -> None:
    report = publish(sample, s3=s3, bucket=BUCKET, stream_id="cam", speed=float("inf"),
                     faults=PublishFaults(die_after=2))  # 4 s published, no ENDLIST
    live, cache = LiveSegmentCache(tmp_path / "live"), StreamCache(tmp_path / "files")
    out = convert(_request(report.playlist_key, 3), s3=s3, temp_bucket=FRAMES_BUCKET, cache=cache, live=live)
    assert out["is_last"] is False and out["seconds"] is None and out["live"]["edge_s"] == pytest.approx(4.0)
    with pytest.raises(SecondNotPublishedYet, match=r"second 4 is not published yet \(live edge 4\.00 s"):
        convert(_request(report.playlist_key, 4), s3=s3, temp_bucket=FRAMES_BUCKET, cache=cache, live=live)


def test_missing_segment_waits_then_fails_with_the_reason(sample: Path, s3, tmp_path: Path) -> None:
    report = publish(sample, s3=s3, bucket=BUCKET, stream_id="cam", speed=float("inf"),
                     faults=PublishFaults(missing=frozenset({1}), die_after=3))
    live, cache = LiveSegmentCache(tmp_path / "live"), StreamCache(tmp_path / "files")
    # 6 s listed, segment 1 (2-4 s) absent: only 2 s of stream after it, it may still be late.
    assert MISSING_AFTER_S > 6.0 - 4.0
    with pytest.raises(SecondNotPublishedYet, match="segment 1 is listed but not in S3 yet"):
        convert(_request(report.playlist_key, 2), s3=s3, temp_bucket=FRAMES_BUCKET, cache=cache, live=live)
    publish(sample, s3=s3, bucket=BUCKET, stream_id="cam", speed=float("inf"),
            faults=PublishFaults(missing=frozenset({1})))  # the rest: 8 s listed after it
    with pytest.raises(StreamUnreadable, match=r"segment 1 \(2\.00-4\.00 s\) is listed in the playlist but "):
        convert(_request(report.playlist_key, 2), s3=s3, temp_bucket=FRAMES_BUCKET, cache=cache, live=live)


def test_not_a_playlist_and_not_mpeg_ts_fail_clearly(s3, tmp_path: Path) -> None:
    live, cache = LiveSegmentCache(tmp_path / "live"), StreamCache(tmp_path / "files")
    s3.put_object(Bucket=BUCKET, Key="live/a/index.m3u8", Body=b"<html>not found</html>")
    with pytest.raises(StreamUnreadable, match="not an HLS playlist"):
        convert(_request("live/a/index.m3u8", 0), s3=s3, temp_bucket=FRAMES_BUCKET, cache=cache, live=live)
    s3.put_object(Bucket=BUCKET, Key="live/b/index.m3u8",
                  Body=b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\nsegment-00000.ts\n#EXT-X-ENDLIST\n")
    s3.put_object(Bucket=BUCKET, Key="live/b/segment-00000.ts", Body=b"RIFF....WAVEfmt ")
    with pytest.raises(StreamUnreadable, match=r"segment-00000\.ts: not an MPEG-TS segment"):
        convert(_request("live/b/index.m3u8", 0), s3=s3, temp_bucket=FRAMES_BUCKET, cache=cache, live=live)
