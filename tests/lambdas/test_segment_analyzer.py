"""The segment analyser (the event-driven serverless design's function) on moto S3 and SQS: a
stream published as live segments is analysed segment by segment to the defects `monolith analyze` finds
on the published stream; order, redelivery and poison segments are handled against the stream's state."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambdas.segment_analyzer.service import (
    Analyser,
    Queues,
    SegmentRef,
    StallWatch,
    StateStore,
    process_batch,
    reserve_ms,
)
from lambdas.shared.faults import ENV as FAULTS_ENV
from lambdas.shared.faults import FaultPlan, TransientError, mid_work_faults
from lambdas.shared.notifications import STALL_SUBJECT
from lambdas.shared.results import RESULTS_PREFIX
from monolith.pipeline import analyze, sort_defects
from sample_streams import AvOffset, BlockCorruption, Freeze, generate_stream
from sample_streams.publish import PublishFaults, PublishReport, publish, write_published

BUCKET = "live-bucket"
RESULTS = "results-bucket"
STATE = "state-bucket"


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A keyframe every 1.6 s and segments of >= 2 s: segments start at 0, 3.2, 6.4, 9.6 s, so seconds 3, 6
    # and 9 straddle two segments; a freeze, block damage and an audio lag of 200 ms from 7 s.
    path = tmp_path_factory.mktemp("segments") / "source.mp4"
    generate_stream(path, duration_s=12, width=320, height=180, gop_s=1.6, seed=3,
                    defects=(Freeze(1.3, 2.5), BlockCorruption(5.2), AvOffset(7.0, 200.0)))
    return path


class World:
    """moto's S3 and SQS with the stack's resources, and what the function published."""

    def __init__(self) -> None:
        self.s3 = boto3.client("s3")
        for bucket in (BUCKET, RESULTS, STATE):
            self.s3.create_bucket(Bucket=bucket)
        self.sqs = boto3.client("sqs")
        self.queue_url = self.sqs.create_queue(QueueName="segments")["QueueUrl"]
        self.dlq_url = self.sqs.create_queue(QueueName="segments-dlq")["QueueUrl"]
        self.published: list[dict[str, Any]] = []
        self.log: list[tuple[str, dict[str, Any]]] = []
        self.analyser = Analyser(s3=self.s3, state=StateStore(self.s3, STATE),
                                 publish=self.published.append, results_bucket=RESULTS)
        self.queues = Queues(sqs=self.sqs, queue_url=self.queue_url, dead_letter_url=self.dlq_url,
                             max_receives=3)

    def deliver(self, keys: list[str], receive_count: int = 1, remaining_ms: Any = None) -> list[str]:
        """One batch of S3 notifications, one message per key; the message ids to retry."""
        records = [{"messageId": f"m-{key}-{receive_count}", "receiptHandle": "",
                    "attributes": {"ApproximateReceiveCount": str(receive_count)},
                    "body": json.dumps({"Records": [{"s3": {"bucket": {"name": BUCKET},
                                                            "object": {"key": key}}}]})} for key in keys]
        response = process_batch(records, self.analyser, self.queues, lambda m, e: self.log.append((m, e)),
                                 remaining_ms)
        return [f["itemIdentifier"] for f in response["batchItemFailures"]]

    def log_entry(self, message: str, extra: dict[str, Any]) -> None:
        self.log.append((message, extra))

    def defects(self) -> list[dict[str, Any]]:
        return sort_defects([json.loads(m["Message"])["defect"] for m in self.published
                             if m["MessageAttributes"]["kind"]["StringValue"] == "defect"])

    def records(self) -> list[dict[str, Any]]:
        keys = [o["Key"] for o in self.s3.list_objects_v2(Bucket=RESULTS, Prefix=RESULTS_PREFIX)["Contents"]]
        lines = [line for key in keys
                 for line in self.s3.get_object(Bucket=RESULTS, Key=key)["Body"].read().decode().splitlines()]
        return [json.loads(line) for line in lines]

    def state_body(self, stream_id: str) -> str:
        return self.s3.get_object(Bucket=STATE, Key=f"state/{stream_id}.json")["Body"].read().decode()


@pytest.fixture
def world() -> Iterator[World]:
    with mock_aws():
        yield World()


def published(world: World, stream: Path, stream_id: str, **kwargs: Any) -> PublishReport:
    return publish(stream, s3=world.s3, bucket=BUCKET, stream_id=stream_id, segment_seconds=2.0,
                   speed=float("inf"), **kwargs)


def test_segments_in_order_give_the_monoliths_defects(world: World, stream: Path, tmp_path: Path) -> None:
    # Given a stream published as four segments, three of whose boundaries fall inside a second
    report = published(world, stream, "cam1")
    assert [s.start_s for s in report.segments] == pytest.approx([0.0, 3.2, 6.4, 9.6])
    reference = analyze(write_published(report, world.s3, tmp_path / "published.ts"))
    # When each segment's notification arrives in order
    for segment in report.segments:
        assert world.deliver([segment.key]) == []
    # Then the defects notified are those of `monolith analyze` on the published stream, each once
    assert world.defects() == reference["defects"]
    assert {d["type"] for d in reference["defects"]} == {"freeze", "block_corruption", "av_sync"}
    # and every second has exactly one results record, in the before's shape
    seconds = sorted(r["second"] for r in world.records())
    assert seconds == list(range(len(seconds))) and len(seconds) >= 12
    assert set(world.records()[0]) == {"stream_id", "source", "second", "defects", "s3_requests"}
    # Segment 0 only learns the stream's origin; segment k analyses the seconds that start before it.
    analysed = [e["seconds"] for m, e in world.log if m == "segment analysed"]
    assert analysed[:3] == [[], [0, 1, 2, 3], [4, 5, 6]]


def test_out_of_order_and_redelivered_segments_are_analysed_once(world: World, stream: Path) -> None:
    report = published(world, stream, "cam2")
    keys = [s.key for s in report.segments]
    assert world.deliver([keys[0]]) == []
    # Segment 2 arrives before segment 1: it is retried (the message stays on the queue)
    assert world.deliver([keys[2]]) == [f"m-{keys[2]}-1"]
    # Then 1, 1 again (S3 delivers at least once), then 2 again, and 2 and 3 in one batch in reverse order
    assert world.deliver([keys[1]]) == []
    assert world.deliver([keys[1]]) == []
    assert world.deliver([keys[3], keys[2]], receive_count=2) == []
    statuses = [(e["segment"], m) for m, e in world.log if m.startswith("segment ")]
    assert statuses == [(0, "segment analysed"), (2, "segment retried later"), (1, "segment analysed"),
                        (1, "segment duplicate"), (2, "segment analysed"), (3, "segment analysed")]
    seconds = [r["second"] for r in world.records()]
    assert sorted(seconds) == list(range(len(seconds)))  # each second recorded once
    assert len(world.defects()) == len({(d["type"], d["start_s"]) for d in world.defects()})


def test_segments_are_not_started_when_the_invocation_runs_out_of_time(world: World, stream: Path) -> None:
    report = published(world, stream, "cam6")
    keys = [s.key for s in report.segments]
    # Given an invocation of the design's 60 s (a 15 s reserve) with 20 s left at its first segment, then
    # 10 s after it
    left = iter([60_000, 20_000, 10_000, 10_000, 10_000])
    failed = world.deliver(keys, remaining_ms=lambda: next(left))
    # Then segment 0 is analysed and the others are handed back for a retry, not lost or timed out
    assert failed == [f"m-{key}-1" for key in keys[1:]]
    assert [e["segment"] for m, e in world.log if m == "segment analysed"] == [0]
    assert world.deliver(keys[1:]) == []


def test_the_reserve_is_15_s_or_a_quarter_of_a_short_invocation() -> None:
    # The design's 60 s and longer keep 15 s; a test deployment's 20 s keeps 5 s, a 12 s one 3 s
    assert [reserve_ms(ms) for ms in (900_000, 60_000, 59_000, 20_000, 12_000)] == [
        15_000, 15_000, 14_750, 5_000, 3_000]


def test_a_short_invocation_still_starts_its_segments(world: World, stream: Path) -> None:
    report = published(world, stream, "cam8")
    keys = [s.key for s in report.segments]
    # Given an invocation of 20 s (a 5 s reserve): 12 s left after segment 0 (under a fixed 15 s), 6 s
    # after segment 1, then 4 s
    left = iter([20_000, 19_000, 12_000, 6_000, 4_000])
    failed = world.deliver(keys, remaining_ms=lambda: next(left))
    # Then segments 0 to 2 are analysed and only the last is handed back
    assert [e["segment"] for m, e in world.log if m == "segment analysed"] == [0, 1, 2]
    assert failed == [f"m-{keys[3]}-1"]


def test_a_concurrent_delivery_records_the_segment_once(world: World, stream: Path) -> None:
    report = published(world, stream, "cam3")
    ref = SegmentRef.parse(BUCKET, report.segments[0].key)
    store = world.analyser.state
    first, etag = store.get("cam3")
    second, same_etag = store.get("cam3")
    assert etag is None and same_etag is None and first.next_segment == ref.index == 0
    # Two deliveries of segment 0 read the same (absent) state; the first write wins, the second is refused.
    assert store.advance(type(first)("cam3", next_segment=1), etag)
    assert not store.advance(type(second)("cam3", next_segment=1), same_etag)
    # And so on later: a write against the ETag read succeeds once.
    now, tag = store.get("cam3")
    assert now.next_segment == 1
    assert store.advance(type(now)("cam3", next_segment=2), tag)
    assert not store.advance(type(now)("cam3", next_segment=2), tag)


def test_a_poison_segment_is_dead_lettered_notified_and_skipped(world: World, stream: Path) -> None:
    report = published(world, stream, "cam4")
    keys = [s.key for s in report.segments]
    world.s3.put_object(Bucket=BUCKET, Key=keys[1], Body=b"\x47" + b"not a transport stream" * 40)
    assert world.deliver(keys[:2]) == []
    dead = world.sqs.receive_message(QueueUrl=world.dlq_url, MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(m["Body"])["Records"][0]["s3"]["object"]["key"] for m in dead] == [keys[1]]
    failures = [m for m in world.published if m["MessageAttributes"]["kind"]["StringValue"] != "defect"]
    assert len(failures) == 1 and failures[0]["Subject"] == "Stream cannot be analysed"
    assert "cam4" in failures[0]["Message"] and "segment 1" in failures[0]["Message"]
    # Segment 0's seconds wait for segment 1's first pictures: they are lost with it, up to its end (6.4 s)
    assert "seconds 0 to 6 are not analysed" in failures[0]["Message"]
    # The stream goes on after the gap (segment 1 ends at 6.4 s): from second 7, when segment 3 lands.
    assert world.deliver(keys[2:]) == []
    assert [e["seconds"] for m, e in world.log if m == "segment analysed"][-2:] == [[], [7, 8, 9, 10, 11, 12]]


def test_a_segment_waiting_too_long_is_given_up_on_its_last_receive(world: World, stream: Path) -> None:
    report = published(world, stream, "cam5")
    key = report.segments[1].key  # segment 0 never arrives
    assert world.deliver([key], receive_count=3) == [f"m-{key}-3"]  # max_receives: SQS dead-letters it next
    failures = [m for m in world.published if m["MessageAttributes"]["kind"]["StringValue"] != "defect"]
    assert len(failures) == 1 and "not analysed after 3 attempts" in failures[0]["Message"]


def test_the_state_item_stays_small_on_a_long_stream(world: World, tmp_path: Path) -> None:
    # 40 s of segments of 1 s: the state after each segment is measured.
    long_stream = tmp_path / "long.mp4"
    generate_stream(long_stream, duration_s=40, width=160, height=90, gop_s=1.0, seed=5,
                    defects=(Freeze(3.0, 2.0), Freeze(20.0, 2.0), BlockCorruption(30.0)))
    report = publish(long_stream, s3=world.s3, bucket=BUCKET, stream_id="long", segment_seconds=1.0,
                     speed=float("inf"))
    sizes = []
    for segment in report.segments:
        assert world.deliver([segment.key]) == []
        sizes.append(len(world.state_body("long").encode()))
    # Bounded: the detectors keep fixed-size thumbnails and capped lists (A/V sync's is most of it), so
    # the item stops growing once those lists are full; far under DynamoDB's 400 KB item limit.
    print("state sizes", sizes)
    assert max(sizes) < 16 * 1024
    assert max(sizes[-10:]) - min(sizes[-10:]) < 1024


# --- stalls: one delayed watch message per stream -------------------------------------------------
T0 = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC)


def watch_record(stream_id: str, segment: int) -> dict[str, Any]:
    watch = StallWatch(BUCKET, f"live/{stream_id}/index.m3u8", stream_id, segment)
    return {"messageId": f"w-{segment}", "receiptHandle": "", "attributes": {"ApproximateReceiveCount": "1"},
            "body": watch.body()}


def armed(world: World) -> list[dict[str, Any]]:
    return [e for m, e in world.log if m == "stall watch armed"]


def test_a_dead_publisher_is_reported_stalled_once_its_tail_is_analysed(
        world: World, stream: Path, tmp_path: Path) -> None:
    # Given a publisher that dies after 3 of its 4 segments (no EXT-X-ENDLIST), segments analysed at 12:00
    clock = [T0]
    world.analyser.now = lambda: clock[0]
    report = published(world, stream, "dead", faults=PublishFaults(die_after=3))
    expected = analyze(write_published(report, world.s3, tmp_path / "published.ts"))["defects"]
    for segment in report.segments:
        assert world.deliver([segment.key]) == []
    # Then segment 0 armed one watch, for segment 1, 30 s on; the later segments armed none
    assert armed(world) == [{"stream_id": "dead", "segment": 1, "delay_s": 30.0}]
    # When it fires 10 s later, the stream has moved on to segment 3: the next watch waits the 20 s left
    clock[0] = T0 + timedelta(seconds=10)
    assert process_batch([watch_record("dead", 1)], world.analyser, world.queues, world.log_entry) == {
        "batchItemFailures": []}
    assert armed(world)[-1] == {"stream_id": "dead", "segment": 3, "delay_s": 20.0}
    assert not [m for m in world.published if m.get("Subject") == STALL_SUBJECT]
    # When that one fires, 30 s after the last segment and with nothing more listed
    clock[0] = T0 + timedelta(seconds=30)
    process_batch([watch_record("dead", 3)], world.analyser, world.queues, world.log_entry)
    # Then people are told, once, as the after tells them
    (stall,) = [m for m in world.published if m.get("Subject") == STALL_SUBJECT]
    assert stall["MessageAttributes"]["kind"]["StringValue"] == "stream_stalled"
    assert "has not grown for 30 s" in stall["Message"]
    # And what was published is analysed to its end: the monolith's defects, every second once
    assert world.defects() == expected
    seconds = sorted(r["second"] for r in world.records())
    assert seconds == list(range(len(seconds))) and seconds[-1] >= 8
    # And no watch follows a stalled stream
    assert len(armed(world)) == 2
    process_batch([watch_record("dead", 3)], world.analyser, world.queues, world.log_entry)
    assert len(armed(world)) == 2
    assert len([m for m in world.published if m.get("Subject") == STALL_SUBJECT]) == 1


def test_a_stalled_stream_that_resumes_is_analysed_to_its_end_each_second_once(
        world: World, stream: Path) -> None:
    clock = [T0]
    world.analyser.now = lambda: clock[0]
    first = published(world, stream, "resumed", faults=PublishFaults(die_after=3))
    for segment in first.segments:
        world.deliver([segment.key])
    clock[0] = T0 + timedelta(seconds=31)
    process_batch([watch_record("resumed", 3)], world.analyser, world.queues, world.log_entry)
    assert json.loads(world.state_body("resumed"))["stalled"]
    # When the publisher comes back and the rest of the stream lands (EXT-X-ENDLIST at the end)
    rest = published(world, stream, "resumed")
    assert world.deliver([rest.segments[3].key]) == []
    # Then the stream ends, no longer stalled, every second recorded once (the tail's object rewritten)
    state = json.loads(world.state_body("resumed"))
    assert state["ended"] and not state["stalled"]
    seconds = sorted(r["second"] for r in world.records())
    assert seconds == list(range(len(seconds))) and len(seconds) >= 12


# --- a fault mid-segment (test-only fault injection, lambdas/shared/faults.py) ---------------------------


def test_a_segment_interrupted_before_its_state_write_is_analysed_again_to_the_same_records(
        world: World, stream: Path, tmp_path: Path) -> None:
    report = published(world, stream, "cam9")
    keys = [s.key for s in report.segments]
    reference = analyze(write_published(report, world.s3, tmp_path / "published.ts"))["defects"]
    # Given a hook that stops segment 1's first attempt after its results and defects went out, before the
    # state's write (where an injected timeout kills the invocation)
    calls: list[tuple[str, int, int]] = []

    def interrupt(stream_id: str, index: int, attempt: int) -> None:
        calls.append((stream_id, index, attempt))
        if (index, attempt) == (1, 1):
            raise TransientError("killed mid-segment")

    world.analyser.before_state_write = interrupt
    # When the four segments arrive in one batch, then the three not done again (receive count 2)
    assert world.deliver(keys) == [f"m-{key}-1" for key in keys[1:]]
    interrupted = [r["second"] for r in world.records()]
    assert interrupted == [0, 1, 2, 3]  # segment 1's seconds were written before it was stopped
    assert json.loads(world.state_body("cam9"))["next_segment"] == 1
    assert world.deliver(keys[1:], receive_count=2) == []
    # Then the hook saw each segment's attempt as its receive count
    assert calls == [("cam9", 0, 1), ("cam9", 1, 1), ("cam9", 1, 2), ("cam9", 2, 2), ("cam9", 3, 2)]
    # And every second is recorded once (segment 1's results object was written again, not added to)
    seconds = sorted(r["second"] for r in world.records())
    assert seconds == list(range(len(seconds))) and len(seconds) >= 12
    # And the defects are the monolith's; the one notified twice is segment 1's freeze (1.3-2.5 s) alone
    assert world.defects() == sort_defects(reference + [d for d in reference if d["type"] == "freeze"])
    assert [d["type"] for d in reference].count("freeze") == 1


def test_an_injected_timeout_sleeps_past_the_plans_timeout_and_an_error_raises() -> None:
    plan = FaultPlan(error_rate=0.3, timeout_rate=0.3, seed=4, streams="faulty-", function_timeout_s=12)
    slept: list[float] = []
    told: list[dict[str, Any]] = []
    strike = mid_work_faults("segment_analyzer", plan, tell=lambda m, e: told.append(e), sleep=slept.append)
    outcomes = {}
    for index in range(40):
        sleeps = len(slept)
        try:
            strike("faulty-cam", index, 1)
            outcomes[index] = None
        except TransientError:  # after its sleep, where nothing kills the invocation
            outcomes[index] = "timeout" if len(slept) > sleeps else "error"
    # Then each unit got the plan's draw: a timeout sleeps 12 + 5 s (longer than any invocation on a
    # deployment with this plan has), an error raises at once, no fault returns
    assert outcomes == {i: plan.decide("segment_analyzer", "faulty-cam", i, 1) for i in range(40)}
    assert slept == [17] * list(outcomes.values()).count("timeout")
    assert {"timeout", "error", None} == set(outcomes.values())
    assert [(e["unit"], e["fault"]) for e in told] == [(i, f) for i, f in outcomes.items() if f]
    # And a stream outside the plan's prefix never strikes
    for index in range(40):
        strike("cam", index, 1)
    assert len(told) == sum(1 for f in outcomes.values() if f)


def test_the_handler_sets_the_hook_only_with_a_fault_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    import lambdas.segment_analyzer.handler as handler

    try:
        monkeypatch.delenv(FAULTS_ENV, raising=False)
        assert importlib.reload(handler).ANALYSER.before_state_write is None
        # Given a plan that fails every segment of the streams named faulty-*
        monkeypatch.setenv(FAULTS_ENV, "error_rate=1,streams=faulty-,function_timeout_s=20")
        hook = importlib.reload(handler).ANALYSER.before_state_write
        assert hook is not None
        hook("cam", 1, 1)  # outside the plan's streams: returns at once
        with pytest.raises(TransientError, match="injected error: segment_analyzer faulty-x unit 1 attempt"):
            hook("faulty-x", 1, 2)
    finally:
        monkeypatch.delenv(FAULTS_ENV, raising=False)
        importlib.reload(handler)
