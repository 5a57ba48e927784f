"""The before following live streams on LocalStack: `sample_streams publish` writes HLS into the source
bucket, the bucket's EventBridge event starts the execution through the live-starter Lambda, and the
workflow reads second n from the segments that hold it, waiting at the live edge.

Given/When/Then per test; one deployment per session (continue-as-new every 3 s, so every stream here
continues mid-stream)."""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path
from typing import Any

import pytest

from demo.deploy import Stack
from demo.live import LiveRun, Publisher, await_live_edge_wait, live_stream_id, run_live_before
from demo.run import Aws
from monolith.pipeline import analyze
from sample_streams.publish import PublishFaults, write_published

pytestmark = pytest.mark.slow
SPEED = 4.0


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sample_streams import AvOffset, BlockCorruption, Freeze, generate_stream

    path = tmp_path_factory.mktemp("live") / "cam-live.mp4"
    generate_stream(path, duration_s=8, width=320, height=180, gop_s=2.0,
                    defects=[Freeze(1.2, 2.5), BlockCorruption(4.3), AvOffset(5.0, 240.0)], seed=5)
    return path


def _published_defects(aws: Aws, live: LiveRun, tmp_path: Path) -> list[dict[str, Any]]:
    path = write_published(live.published, aws.s3, tmp_path / f"{live.run.stream_id}.ts")
    return analyze(path)["defects"]


@pytest.fixture(scope="module")
def two_at_once(aws: Aws, stack: Stack, stream: Path) -> dict[str, LiveRun]:
    """A clean live stream and one with a packager's recoverable faults, followed at the same time."""
    # The faulty one holds segment 2 back until its workflow has waited at the live edge (a stall that
    # outlasts the workflow's way to second 4 however slow the machine), lists segment 1 on time but
    # lands it 3 s later, and damages segment 3.
    faulty = PublishFaults(late_s={1: 3.0}, damaged=frozenset({3}), seed=2)
    runs: dict[str, LiveRun] = {}
    ids = {"clean": live_stream_id(stream), "faulty": live_stream_id(stream)}

    def stall_until_waited(index: int) -> None:
        if index == 2:
            await_live_edge_wait(aws, stack, ids["faulty"])

    publishers = {
        "clean": Publisher(aws, stack.source_bucket, stream, ids["clean"], segment_seconds=2.0, speed=SPEED,
                           faults=None),
        "faulty": Publisher(aws, stack.source_bucket, stream, ids["faulty"], segment_seconds=2.0, speed=SPEED,
                            faults=faulty, before_segment=stall_until_waited),
    }

    def follow(name: str) -> None:
        runs[name] = run_live_before(aws, stack, stream, publisher=publishers[name], timeout_s=400)

    threads = [threading.Thread(target=follow, args=(name,)) for name in publishers]
    for publisher in publishers.values():
        publisher.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(500)
    assert set(runs) == {"clean", "faulty"}
    return runs


def test_live_defects_equal_the_monolith_on_the_published_stream(
    aws: Aws, two_at_once: dict[str, LiveRun], tmp_path: Path, seconds_per_execution: int
) -> None:
    for name, live in two_at_once.items():
        # Then each run succeeded over several executions (continued as new mid-stream), one record per
        # second, and found what monolith analyze finds on the stream as it was published
        assert live.run.status == "SUCCEEDED", (name, live.run.cause)
        seconds = live.published.seconds  # 8, or 9 when the last sound frame ends past 8 s
        assert seconds in (8, 9)
        assert len(live.run.executions) == math.ceil(seconds / seconds_per_execution)
        assert sorted(r["second"] for r in live.run.records) == list(range(seconds))
        expected = _published_defects(aws, live, tmp_path)
        assert {d["type"] for d in expected} >= {"freeze", "block_corruption"}
        assert live.run.defects == expected, name


def test_the_faulty_stream_waited_and_every_wait_is_billed(two_at_once: dict[str, LiveRun]) -> None:
    faulty = two_at_once["faulty"]
    bill = faulty.run.bill()
    # Then the workflow waited at the live edge (the held segment) and each wait is a Convert retry: a billed
    # transition, one converter invocation and at least its playlist GET
    waits = bill["live_edge_waits"]
    assert waits >= 1
    assert bill["state_transitions_detail"]["retries"] >= waits
    assert bill["lambda_invocations_by_workflow"] >= waits + 8 * 4  # converter + 3 detectors per second
    assert bill["s3_requests"]["by_source"]["converter"]["GetObject"] >= waits
    # And its damaged segment was analysed, not refused
    assert any(s["damaged"] for s in faulty.published.to_dict()["segments"])


def test_lag_is_measured_for_every_second_and_defect(two_at_once: dict[str, LiveRun]) -> None:
    for live in two_at_once.values():
        seconds = live.lag["seconds"]
        assert seconds["count"] == live.published.seconds
        assert 0 < seconds["p50_s"] <= seconds["p95_s"] <= seconds["max_s"]
        defects = live.lag["defects"]
        notices = [n for n in live.run.notifications if n["attributes"]["kind"] == "defect"]
        assert defects["count"] == len(notices) > 0
        assert all(lag > 0 for lag in defects["lags_s"])


def test_one_execution_per_stream_however_often_the_playlist_is_rewritten(
    aws: Aws, stack: Stack, two_at_once: dict[str, LiveRun]
) -> None:
    for live in two_at_once.values():
        # Then the playlist was written once per segment, and exactly one chain of executions ran
        assert len(live.published.segments) == 4
        prefix = live.run.stream_id
        pages = aws.sfn.get_paginator("list_executions").paginate(stateMachineArn=stack.state_machine_arn)
        names = [e["name"] for page in pages for e in page["executions"] if e["name"].startswith(prefix)]
        assert len(names) == 1, names


def test_a_publisher_that_dies_ends_as_stalled(aws: Aws, stack: Stack, stream: Path) -> None:
    # Given a publisher that stops after two segments without EXT-X-ENDLIST
    live = run_live_before(aws, stack, stream, speed=SPEED, faults=PublishFaults(die_after=2), timeout_s=300)
    # Then the execution waits 30 times for second 4, notifies, and fails as StreamStalled
    assert (live.run.status, live.run.error) == ("FAILED", "StreamStalled")
    assert "second 4 is not published yet (live edge 4.00 s" in live.run.cause
    assert sorted(r["second"] for r in live.run.records) == [0, 1, 2, 3]
    (notice,) = [n for n in live.run.notifications if n["attributes"]["kind"] == "stream_unreadable"]
    assert notice["attributes"]["error"] == "StreamStalled"
    assert live.run.bill()["live_edge_waits"] == 31  # the first try and 30 retries


def test_a_segment_missing_from_s3_fails_with_the_reason(aws: Aws, stack: Stack, tmp_path: Path) -> None:
    from sample_streams import generate_stream

    path = tmp_path / "long.mp4"
    generate_stream(path, duration_s=14, width=160, height=90, gop_s=2.0, defects=(), seed=1)
    live = run_live_before(aws, stack, path, speed=8.0, faults=PublishFaults(missing=frozenset({1})),
                           timeout_s=300)
    assert (live.run.status, live.run.error) == ("FAILED", "StreamUnreadable")
    assert "segment 1 (2.00-4.00 s) is listed in the playlist but missing from S3" in live.run.cause
    assert sorted(r["second"] for r in live.run.records) == [0, 1]


@pytest.mark.parametrize(("files", "reason"), [
    ({"index.m3u8": b"<html>503 Service Unavailable</html>"}, "not an HLS playlist"),
    ({"index.m3u8": b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\nsegment-00000.ts\n#EXT-X-ENDLIST\n",
      "segment-00000.ts": b"\x1aE\xdf\xa3 this is Matroska, not MPEG-TS"},
     "segment-00000.ts: not an MPEG-TS segment"),
])
def test_not_a_playlist_or_not_mpeg_ts_fails_clearly(aws: Aws, stack: Stack, files: dict[str, bytes],
                                                     reason: str) -> None:
    from demo.live import find_execution
    from demo.run import follow

    stream_id = live_stream_id(Path("bad"))
    # Given the segment first, then the playlist (whose event starts the execution)
    for name in sorted(files, key=lambda n: n.endswith(".m3u8")):
        aws.s3.put_object(Bucket=stack.source_bucket, Key=f"live/{stream_id}/{name}", Body=files[name])
    (execution,) = follow(aws, find_execution(aws, stack, stream_id), total=None, timeout_s=120)
    assert (execution.status, execution.error) == ("FAILED", "StreamUnreadable")
    assert reason in execution.cause
    assert json.loads(json.dumps(execution.cause))  # a plain message, no traceback
    assert "Traceback" not in execution.cause
