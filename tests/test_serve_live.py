"""The after's live pieces that need no AWS: which S3 events are live jobs, the follower record's lease,
the MPEG-TS check, the lag figures from the service's log lines, the live settings."""

from __future__ import annotations

import json

import pytest

from demo.after import live_lag
from lambdas.converter.decode import UnreadableStreamError
from lambdas.converter.segments import check_ts
from monolith.live import FOLLOWING, STALLED, Checkpoint, is_s3_event, live_jobs
from monolith.serve import read_live
from sample_streams.publish import PublishedSegment, PublishReport
from settings import ServiceSettings


def eventbridge(bucket: str, key: str) -> dict:
    return {"version": "0", "detail-type": "Object Created", "source": "aws.s3",
            "detail": {"bucket": {"name": bucket}, "object": {"key": key, "size": 10}}}


def test_playlist_events_under_the_live_prefix_are_jobs_for_the_stream_of_their_folder() -> None:
    (job,) = live_jobs(eventbridge("src", "live/cam-1/index.m3u8"))
    assert (job.bucket, job.playlist_key, job.stream_id) == ("src", "live/cam-1/index.m3u8", "cam-1")
    # S3's own notification shape too (keys URL-encoded)
    record = {"Records": [{"eventName": "ObjectCreated:Put", "s3": {
        "bucket": {"name": "src"}, "object": {"key": "live/cam%2D2/index.m3u8"}}}]}
    assert is_s3_event(record)
    assert [j.stream_id for j in live_jobs(record)] == ["cam-2"]
    # Segments, other prefixes and S3's test event name nothing to follow
    assert live_jobs(eventbridge("src", "live/cam-1/segment-00001.ts")) == []
    assert live_jobs(eventbridge("src", "streams/cam-1.m3u8")) == []
    assert is_s3_event({"Event": "s3:TestEvent"}) and live_jobs({"Event": "s3:TestEvent"}) == []
    # The before's input is not an S3 event
    assert not is_s3_event({"bucket": "src", "key": "streams/a.mp4", "stream_id": "a"})


def test_a_stream_id_unsafe_as_a_key_segment_is_refused() -> None:
    from lambdas.shared.keys import InvalidRequest

    with pytest.raises(InvalidRequest):
        live_jobs(eventbridge("src", "live/../index.m3u8"))


def test_the_lease_is_held_for_lease_s_after_the_last_write_by_a_named_owner() -> None:
    checkpoint = Checkpoint("cam", "src", "live/cam/index.m3u8", owner="w1", written_at=100.0)
    assert checkpoint.held(103.9, lease_s=4) and not checkpoint.held(104.0, lease_s=4)
    checkpoint.owner = ""  # released (SIGTERM): anyone may take over at once
    assert not checkpoint.held(100.5, lease_s=4)
    checkpoint.owner, checkpoint.status = "w1", STALLED  # a stalled stream has no follower
    assert not checkpoint.held(100.5, lease_s=4)
    checkpoint.status = FOLLOWING
    assert Checkpoint.from_json(checkpoint.to_json()) == checkpoint


def test_a_segment_that_is_not_mpeg_ts_is_refused_with_its_name() -> None:
    # (the check every design makes of a segment it reads: lambdas/converter/segments.py)
    check_ts(bytes([0x47] + [0] * 187) * 3, "s3://b/seg.ts")  # three packets: fine
    for bad in (b"", b"#EXTM3U\n" * 47, bytes([0x47] + [0] * 186), bytes([0x47] + [0] * 187) + b"x" * 188):
        with pytest.raises(UnreadableStreamError, match=r"s3://b/seg\.ts: not an MPEG-TS segment"):
            check_ts(bad, "s3://b/seg.ts")


def test_lag_is_measured_from_the_landing_of_the_last_segment_a_second_needs() -> None:
    # Segments of 2 s landing at 1000.0 and 1002.5; second 1 needs segment 0, second 2 segment 1
    segments = [PublishedSegment(0, "live/c/segment-00000.ts", 0.0, 2.0, landed_at=1000.0),
                PublishedSegment(1, "live/c/segment-00001.ts", 2.0, 2.0, landed_at=1002.5)]
    report = PublishReport("b", "live/c/index.m3u8", "c", segments, True, 998.0, 1003.0)
    lines = [json.dumps(line) for line in (
        {"message": "live progress", "stream_id": "c",
         "live": {"playlist_reads": 3, "seconds_done_at": {"0": 1000.4, "1": 1002.9},
                  "segments_read_at": {"0": 1000.1, "1": 1002.6}}},
        {"message": "defect found", "stream_id": "c", "second": 2, "published_at": 1003.0,
         "defect": {"type": "freeze", "start_s": 1.2}},
        {"message": "live progress", "stream_id": "c",
         "live": {"playlist_reads": 1, "seconds_done_at": {"2": 1003.1, "3": 1003.2}}},
        {"message": "defect found", "stream_id": "other", "second": 0, "defect": {"type": "freeze"}},
    )] + ["not json", "{broken"]
    live = read_live(lines)
    assert list(live) == ["c"]  # a file job's defect line (no published_at) is not a live figure
    assert live["c"]["playlist_reads"] == 4
    lag = live_lag(report, live["c"])
    # seconds 0-1 need segment 0 (landed 1000.0), seconds 2-3 segment 1 (landed 1002.5)
    assert lag["per_second_s"] == {0: 0.4, 1: 2.9, 2: 0.6, 3: 0.7}
    assert lag["defects"]["lags_s"] == [0.5]  # closed at second 2, published at 1003.0


def test_live_settings_come_from_the_environment_as_numbers_and_are_checked() -> None:
    settings = ServiceSettings.from_env({"MONITOR_LIVE_POLL_S": "0.25", "MONITOR_STALL_TIMEOUT_S": "12",
                                         "MONITOR_LEASE_S": "30"})
    assert (settings.live_poll_s, settings.stall_timeout_s, settings.lease_s) == (0.25, 12.0, 30.0)
    assert ServiceSettings.from_env(settings.environment()) == settings
    with pytest.raises(ValueError, match="MONITOR_LIVE_POLL_S must be a number"):
        ServiceSettings.from_env({"MONITOR_LIVE_POLL_S": "soon"})
    with pytest.raises(ValueError, match="live_poll_s"):
        ServiceSettings(live_poll_s=5, stall_timeout_s=3)
    with pytest.raises(ValueError, match="lease_s"):
        ServiceSettings(lease_s=0.5)
