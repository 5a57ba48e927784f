"""The after follows live streams on LocalStack: `sample_streams publish` writes HLS segments and a playlist
into the source bucket (faster than real time), S3 sends each playlist write to EventBridge, the after
stack's rule puts it on the job queue, and local tasks of `monolith serve` follow the stream.

Checked against `monolith analyze` on the stream as published (`write_published`): the same defects,
every second recorded once. Faults of a packager (stall, dead publisher, late, missing and damaged
segments), two streams at once, a task killed mid-stream and taken over from its checkpoint, and inputs
that are not HLS/MPEG-TS: each ends with an outcome that says what happened, never a hang.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from cost_model.after import check_live_run
from demo.after import (
    after_detail,
    await_live,
    before_live_paused,
    live_lag,
    metered,
    service_settings,
    stream_records,
)
from demo.deploy import AfterStack, Stack
from demo.live import Publisher
from demo.run import Aws, Observer, defects_in
from infra.config import stack_name
from infra.serverless_stack import serverless_stack_name
from lambdas.shared.notifications import AFTER, design_of
from monolith.live import follower_key
from monolith.local_tasks import LocalTasks
from monolith.pipeline import analyze
from monolith.serve import read_live
from sample_streams.publish import PublishFaults, PublishReport, write_published

pytestmark = pytest.mark.slow
FPS = 25
SPEED = 2.0  # twice real time: 2 s segments land every second
SEGMENT_S = 2.0


@pytest.fixture(scope="module")
def after(stack: Stack, aws: Aws, no_other_executions: int) -> Iterator[AfterStack]:
    """The after stack; the before's rule that starts an execution per live stream is off meanwhile: these
    tests are the after's, and the before following every stream too would load this machine (`make
    demo-live` runs both on one stream); executions other modules' live streams left running are stopped
    (no_other_executions). Stale playlist events of other modules' streams are purged."""
    assert stack.after is not None, "demo.deploy returned no after stack"
    with before_live_paused(aws, stack), serverless_route_paused(aws, stack):
        aws.sqs.purge_queue(QueueUrl=stack.after.job_queue_url)
        yield stack.after


@contextmanager
def serverless_route_paused(aws: Aws, stack: Stack) -> Iterator[None]:
    """The serverless design's segment rule off meanwhile, when a module on this LocalStack deployed it: it
    follows every live segment too, and its analyser decoding each of these streams' segments loaded the
    2-core machine enough to delay the after's tasks past these tests' short stall timeout."""
    stage = stack.name.removeprefix(stack_name(""))
    prefix = serverless_stack_name(stage) + "-"
    rules = [r["Name"] for r in aws.events.list_rules()["Rules"]
             if r["Name"].startswith(prefix) and r.get("State") == "ENABLED"]
    for name in rules:
        aws.events.disable_rule(Name=name)
    try:
        yield
    finally:
        for name in rules:
            aws.events.enable_rule(Name=name)


@pytest.fixture(scope="module")
def observer(aws: Aws, after: AfterStack) -> Iterator[Observer]:
    watcher = Observer(aws, after.topic_arn)
    yield watcher
    watcher.close()


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 s with a freeze (1.2-3.7 s) and block damage (7.3 s), a keyframe every second: 2 s segments."""
    from sample_streams import BlockCorruption, Freeze, generate_stream

    path = tmp_path_factory.mktemp("live") / "cam-live.mp4"
    generate_stream(path, duration_s=10, width=320, height=180, fps=FPS, gop_s=1.0,
                    defects=[Freeze(1.2, 2.5), BlockCorruption(7.3)], seed=5)
    return path


@pytest.fixture
def tasks(localstack: Any, after: AfterStack, tmp_path: Path) -> Iterator[Callable[..., LocalTasks]]:
    """Local tasks following live streams with short timeouts; all stopped at the end of the test."""
    made: list[LocalTasks] = []

    def make(count: int = 1, **overrides: Any) -> LocalTasks:
        settings = service_settings(after, **{**LIVE_SETTINGS, **overrides})
        group = LocalTasks(settings, localstack.client_env(), tmp_path / f"tasks-{len(made)}")
        group.start(count)
        made.append(group)
        # Ready before the stream starts, so that it is followed live, not caught up with
        workers = count * settings.concurrency
        wait_for("the workers to start", lambda: sum(
            '"worker started"' in line for t in group.tasks for line in t.lines()) >= workers, 60, group)
        return group

    yield make
    for group in made:
        group.stop()


# Batches (and so checkpoints) every 2 stream-seconds; a lease of 4 s. A stall after 10 s without growth
# and a missing segment after 10 s: with 3 s, a fault-free stream was once judged stalled in CI (the
# publisher runs in the test process and LocalStack on the same 2 cores: a loaded machine's PUTs are slow).
# The tests of those faults set short timeouts of their own.
STALL_S = 3.0  # the stall and missing-segment timeouts of the tests that provoke them
LIVE_SETTINGS: dict[str, Any] = {
    "results_batch_seconds": 2, "heartbeat_seconds": 2, "visibility_timeout_s": 8, "live_poll_s": 0.2,
    "stall_timeout_s": 10.0, "missing_timeout_s": 10.0, "lease_s": 4.0, "receive_wait_s": 1}


def new_id(kind: str) -> str:
    return f"live-{kind}-{uuid.uuid4().hex[:6]}"


def publish(aws: Aws, after: AfterStack, sample: Path, stream_id: str, speed: float = SPEED,
            **faults: Any) -> Publisher:
    publisher = Publisher(aws, after.source_bucket, sample, stream_id, speed=speed, segment_seconds=SEGMENT_S,
                          faults=PublishFaults(**faults) if faults else None)
    publisher.start()
    return publisher


def expected(aws: Aws, report: PublishReport, tmp_path: Path) -> list[dict[str, Any]]:
    """`monolith analyze` on the stream as published (its segments concatenated)."""
    return analyze(write_published(report, aws.s3, tmp_path / f"{report.stream_id}.ts"))["defects"]


def jobs_of(group: LocalTasks, stream_id: str) -> Counter[str]:
    return Counter(u["outcome"] for u in group.usage() if u.get("stream_id") == stream_id)


def live_of(group: LocalTasks, stream_id: str) -> dict[str, Any]:
    return read_live(line for t in group.tasks for line in t.lines())[stream_id]


def follower(aws: Aws, after: AfterStack, stream_id: str) -> dict[str, Any]:
    body = aws.s3.get_object(Bucket=after.results_bucket, Key=follower_key(stream_id))["Body"].read()
    return dict(json.loads(body))


def notices(observer: Observer, stream_id: str, kind: str) -> list[dict[str, Any]]:
    """The after's notifications of one kind for the stream (the before, following it too, sends its own)."""
    return [n for n in observer.received if n["attributes"].get("stream_id") == stream_id
            and n["attributes"].get("kind") == kind and design_of(n["attributes"]) == AFTER]


def wait_for(what: str, check: Callable[[], Any], timeout_s: float, group: LocalTasks | None = None) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    logs = "\n".join(f"--- task {t.index}:\n" + "\n".join(t.lines()[-15:])
                     for t in (group.tasks if group else []))
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}\n{logs}")


def seconds_of(records: list[dict[str, Any]]) -> list[int]:
    return [r["second"] for r in records]


# --- a live stream, end to end --------------------------------------------------------------------
def test_a_live_stream_gives_the_monolith_s_defects_reading_each_segment_once(
        aws: Aws, after: AfterStack, observer: Observer, sample: Path, tasks: Callable[..., LocalTasks],
        tmp_path: Path) -> None:
    # Given one task, and a 10 s stream published live as five 2 s segments
    group = tasks(1)
    stream_id = new_id("cam")
    report = publish(aws, after, sample, stream_id).finish(60)
    assert [s.index for s in report.segments] == [0, 1, 2, 3, 4] and report.ended
    # When the task has followed it to EXT-X-ENDLIST
    usage = await_live(group, stream_id, 60)
    assert usage["outcome"] == "analysed"
    # Then every second is recorded once, with the defects `monolith analyze` finds in what was published
    want = expected(aws, report, tmp_path)
    assert {d["type"] for d in want} >= {"freeze", "block_corruption"}
    records = stream_records(aws, after, stream_id, live=True)
    assert seconds_of(records) == list(range(10))
    assert defects_in(records) == want
    # And each segment was read with one GET: the others are the follower record and the playlist polls
    live = live_of(group, stream_id)
    assert sorted(live["segments_read_at"]) == [0, 1, 2, 3, 4]
    assert usage["requests"]["s3"]["GetObject"] == 1 + live["playlist_reads"] + 5
    # Results in 5 batches of 2 s; the follower record written when taken, after each batch (and each
    # defect, and every lease_s/3 while waiting: those depend on timing) and at the end
    assert usage["requests"]["s3"]["PutObject"] >= 5 + 1 + 5 + 1
    # And each defect was notified once, when the second that closed it was analysed
    observer.drain(until=lambda _: len(notices(observer, stream_id, "defect")) >= len(want))
    sent = notices(observer, stream_id, "defect")
    assert sorted((n["message"]["defect"] for n in sent), key=lambda d: (d["start_s"], d["type"])) == want
    assert sorted(d["defect"]["start_s"] for d in live["defects"]) == sorted(d["start_s"] for d in want)
    # And the playlist's other writes were jobs too: each dropped as a duplicate once the stream had ended
    wait_for("the duplicate jobs", lambda: sum(jobs_of(group, stream_id).values()) >= 5, 30, group)
    assert jobs_of(group, stream_id) == Counter({"analysed": 1, "duplicate": 4})
    assert follower(aws, after, stream_id)["status"] == "ended"
    # And the cost model's live counts for 5 segments, 10 s and its defects equal the run's bill where
    # timing does not enter (`count --summary` on a live run); the timing rows stay within their range
    bill = metered([u for u in group.usage() if u.get("stream_id") == stream_id], wall_s=1.0, live=report)
    rows = {r["quantity"]: r for r in check_live_run(
        {**bill.as_dict(), **after_detail(group.settings, 1), "defects": want}, len(report.segments))}
    exact = ("after live jobs (playlist events)", "after S3 GET", "after S3 PUT (results)",
             "after SQS ReceiveMessage", "after SQS DeleteMessage", "after SNS publishes")
    assert [q for q in exact if rows[q]["equal"] is not True] == [], rows
    assert [r for r in rows.values() if r["equal"] is False] == [], rows
    assert bill.sqs_requests["SendMessage"] == 5 and bill.extra["eventbridge_events"] == 10
    # Lag to the live edge: from each segment landing to each second done, to each defect notified
    lag = live_lag(report, live)
    assert sorted(lag["per_second_s"]) == list(range(10)) and min(lag["per_second_s"].values()) >= 0
    assert len(lag["defects"]["lags_s"]) == len(want) and min(lag["defects"]["lags_s"]) >= 0
    print(f"\nlive lag (x{SPEED:g}): seconds {lag['seconds']}, defects {lag['defects']}")


def test_two_live_streams_at_once_are_each_followed_once(
        aws: Aws, after: AfterStack, sample: Path, tasks: Callable[..., LocalTasks], tmp_path: Path) -> None:
    from sample_streams import AvOffset, generate_stream

    other = tmp_path / "offset.mp4"
    generate_stream(other, duration_s=6, width=320, height=180, fps=FPS, gop_s=1.0,
                    defects=[AvOffset(0.0, 300.0)], seed=7)
    # Given one task of two worker processes, and two streams published at the same time
    group = tasks(1, concurrency=2)
    first, second = new_id("two-a"), new_id("two-b")
    publishers = {first: publish(aws, after, sample, first), second: publish(aws, after, other, second)}
    reports = {stream_id: p.finish(60) for stream_id, p in publishers.items()}
    # Then each is followed to its end by one worker, with the monolith's defects
    for stream_id, report in reports.items():
        assert await_live(group, stream_id, 60)["outcome"] == "analysed"
        records = stream_records(aws, after, stream_id, live=True)
        assert seconds_of(records) == list(range(round(report.duration_s)))
        assert defects_in(records) == expected(aws, report, tmp_path)
        assert jobs_of(group, stream_id)["analysed"] == 1
    assert any(d["type"] == "av_sync" for d in defects_in(stream_records(aws, after, second, live=True)))
    # And both were followed at the same time, not one after the other
    lives = {s: live_of(group, s)["seconds_done_at"] for s in reports}
    assert min(lives[first].values()) < max(lives[second].values())
    assert min(lives[second].values()) < max(lives[first].values())


# --- faults of the packager -----------------------------------------------------------------------
def test_a_dead_publisher_is_reported_stalled_after_what_it_published_is_analysed(
        aws: Aws, after: AfterStack, observer: Observer, sample: Path, tasks: Callable[..., LocalTasks],
        tmp_path: Path) -> None:
    # Given a publisher that dies after 3 segments (6 s), without EXT-X-ENDLIST
    group = tasks(1, stall_timeout_s=STALL_S)
    stream_id = new_id("dead")
    report = publish(aws, after, sample, stream_id, die_after=3).finish(60)
    assert not report.ended
    # Then the job ends stalled once the playlist has not grown for 3 s, and people are told
    usage = await_live(group, stream_id, 60)
    assert usage["outcome"] == "stalled"
    observer.drain(until=lambda _: bool(notices(observer, stream_id, "stream_stalled")))
    (stall,) = notices(observer, stream_id, "stream_stalled")
    assert stall["subject"] == "Stream stalled" and "has not grown for 3 s" in stall["message"]
    # And the 6 s it published are analysed, with the defects the monolith finds in them
    records = stream_records(aws, after, stream_id, live=True)
    assert seconds_of(records) == list(range(6))
    assert defects_in(records) == expected(aws, report, tmp_path)
    # And the follower record says so, ready to go on should the playlist grow again
    record = follower(aws, after, stream_id)
    assert (record["status"], record["segments_listed"], record["owner"]) == ("stalled", 3, "")


def test_a_stall_is_notified_and_the_stream_is_followed_again_when_it_resumes(
        aws: Aws, after: AfterStack, observer: Observer, sample: Path, tasks: Callable[..., LocalTasks],
        tmp_path: Path) -> None:
    # Given a publisher that writes nothing for 10 s before its fourth segment (stall timeout: 4 s, so that
    # a slow PUT elsewhere is not a second stall)
    group = tasks(1, stall_timeout_s=STALL_S + 1)
    stream_id = new_id("stall")
    report = publish(aws, after, sample, stream_id, stall_s={3: 10.0}).finish(60)
    # Then the first job ends stalled, a later playlist write starts another that goes on to the end
    wait_for("the stream's end", lambda: jobs_of(group, stream_id)["analysed"], 60, group)
    outcomes = jobs_of(group, stream_id)
    assert outcomes["stalled"] == 1 and outcomes["analysed"] == 1
    observer.drain(until=lambda _: bool(notices(observer, stream_id, "stream_stalled")))
    assert len(notices(observer, stream_id, "stream_stalled")) == 1
    # And every second is recorded once with the monolith's defects: the seconds analysed as the end at
    # the stall were analysed again from the checkpoint before them
    records = stream_records(aws, after, stream_id, live=True)
    assert seconds_of(records) == list(range(10))
    assert defects_in(records) == expected(aws, report, tmp_path)
    assert follower(aws, after, stream_id)["takeovers"] == 1


def test_a_late_segment_is_waited_for(aws: Aws, after: AfterStack, sample: Path,
                                      tasks: Callable[..., LocalTasks], tmp_path: Path) -> None:
    # Given segment 2 listed 2 s before its object lands (a missing segment fails after 10 s)
    group = tasks(1)
    stream_id = new_id("late")
    report = publish(aws, after, sample, stream_id, late_s={2: 2.0}).finish(60)
    # Then the stream is analysed to its end, as published
    assert await_live(group, stream_id, 60)["outcome"] == "analysed"
    records = stream_records(aws, after, stream_id, live=True)
    assert seconds_of(records) == list(range(10))
    assert defects_in(records) == expected(aws, report, tmp_path)


def test_a_missing_segment_fails_the_stream_with_its_name(
        aws: Aws, after: AfterStack, observer: Observer, sample: Path,
        tasks: Callable[..., LocalTasks]) -> None:
    # Given segment 2 listed in the playlist and never written
    group = tasks(1, missing_timeout_s=STALL_S)
    stream_id = new_id("missing")
    publish(aws, after, sample, stream_id, missing=frozenset({2})).finish(60)
    # Then the job fails after 3 s of 404s, saying which segment is missing, and people are told once
    usage = await_live(group, stream_id, 60)
    assert usage["outcome"] == "failed"
    observer.drain(until=lambda _: bool(notices(observer, stream_id, "stream_unreadable")))
    (notice,) = notices(observer, stream_id, "stream_unreadable")
    assert ("segment-00002.ts: segment 2 is listed in the playlist but not in S3 after 3 s"
            in notice["message"])
    # And the seconds before it are in the results (second 3 needs the first picture of segment 2 to be
    # known complete); later playlist writes are dropped, not retried
    assert seconds_of(stream_records(aws, after, stream_id, live=True)) == [0, 1, 2]
    assert follower(aws, after, stream_id)["status"] == "failed"
    wait_for("the other playlist writes", lambda: sum(jobs_of(group, stream_id).values()) >= 5, 30, group)
    assert jobs_of(group, stream_id) == Counter({"failed": 1, "duplicate": 4})


def test_a_damaged_segment_is_decoded_and_its_damage_is_a_defect(
        aws: Aws, after: AfterStack, sample: Path, tasks: Callable[..., LocalTasks], tmp_path: Path) -> None:
    # Given segment 2 (4-6 s) with bytes flipped in its TS payloads
    group = tasks(1)
    stream_id = new_id("damaged")
    # (published at full speed: this is about decoding damage, not pacing)
    report = publish(aws, after, sample, stream_id, speed=float("inf"), damaged=frozenset({2})).finish(60)
    assert await_live(group, stream_id, 60)["outcome"] == "analysed"
    # Then the monolith's defects on what was published, block damage inside segment 2 among them
    records = stream_records(aws, after, stream_id, live=True)
    want = expected(aws, report, tmp_path)
    assert defects_in(records) == want
    assert any(d["type"] == "block_corruption" and 4.0 <= d["start_s"] < 6.0 for d in want)


# --- a task killed mid-stream ---------------------------------------------------------------------
def test_a_task_killed_mid_stream_is_taken_over_from_its_checkpoint(
        aws: Aws, after: AfterStack, observer: Observer, sample: Path, tasks: Callable[..., LocalTasks],
        tmp_path: Path) -> None:
    # Given two tasks, and a stream published live whose segment 3 (6-8 s) is held back until the kill:
    # the task dies mid-stream whatever this machine's load (second 3 is complete with segment 2)
    group = tasks(2)
    stream_id = new_id("kill")
    killed = threading.Event()
    publisher = Publisher(aws, after.source_bucket, sample, stream_id, speed=SPEED, segment_seconds=SEGMENT_S,
                          faults=None, before_segment=lambda k: killed.wait(120) if k == 3 else None)
    publisher.start()

    # When the task following it has checkpointed second 3 (its second batch), it is killed (SIGKILL)
    def following() -> Any:
        for task in group.tasks:
            if read_live(task.lines()).get(stream_id, {}).get("seconds_done_at", {}).get(3):
                return task
        return None

    victim = wait_for("a checkpoint past second 3", following, 60, group)
    group.kill(victim)
    killed.set()
    report = publisher.finish(60)
    # Then the other task takes the stream over from the checkpoint once the lease (4 s) has run out
    survivor = next(t for t in group.tasks if t is not victim)
    wait_for("the takeover", lambda: any(u["stream_id"] == stream_id and u["outcome"] == "analysed"
                                         for u in group.usage()), 60, group)
    record = follower(aws, after, stream_id)
    assert record["takeovers"] == 1 and record["status"] == "ended"
    resumed = [json.loads(line) for line in survivor.lines()
               if '"following"' in line and stream_id in line]
    assert [(r["takeovers"], r["from_second"] >= 4) for r in resumed] == [(1, True)]
    # And nothing is lost: every second recorded once, with the monolith's defects
    records = stream_records(aws, after, stream_id, live=True)
    assert seconds_of(records) == list(range(10))
    want = expected(aws, report, tmp_path)
    assert defects_in(records) == want
    # And what was repeated: the seconds after the last checkpoint (at most one 2 s batch), and at most one
    # notification (a defect published but its checkpoint not yet written when the task died)
    killed_done = read_live(victim.lines())[stream_id]["seconds_done_at"]
    taken_from = resumed[0]["from_second"]
    assert taken_from == max(killed_done) + 1  # every checkpointed second is kept, none analysed twice
    observer.drain(until=lambda _: len(notices(observer, stream_id, "defect")) >= len(want), timeout_s=30)
    sent = notices(observer, stream_id, "defect")
    repeats = len(sent) - len(want)
    print(f"\nkilled after second {max(killed_done)}, taken over from second {taken_from}; "
          f"{len(sent)} defect notifications for {len(want)} defects ({repeats} repeated)")
    assert {n["message"]["defect"]["start_s"] for n in sent} == {d["start_s"] for d in want}
    assert 0 <= repeats <= 1


# --- inputs that are not live HLS -----------------------------------------------------------------
def test_a_playlist_that_is_not_a_playlist_fails_clearly(
        aws: Aws, after: AfterStack, observer: Observer, tasks: Callable[..., LocalTasks]) -> None:
    group = tasks(1)
    stream_id = new_id("notplaylist")
    aws.s3.put_object(Bucket=after.source_bucket, Key=f"live/{stream_id}/index.m3u8",
                      Body=b"<html>this is not a playlist</html>")
    usage = await_live(group, stream_id, 30)
    assert usage["outcome"] == "failed"
    observer.drain(until=lambda _: bool(notices(observer, stream_id, "stream_unreadable")))
    (notice,) = notices(observer, stream_id, "stream_unreadable")
    assert "not an HLS playlist (it does not start with #EXTM3U)" in notice["message"]


def test_a_segment_that_is_not_mpeg_ts_fails_clearly(
        aws: Aws, after: AfterStack, observer: Observer, tasks: Callable[..., LocalTasks]) -> None:
    group = tasks(1)
    stream_id = new_id("notts")
    folder = f"live/{stream_id}"
    aws.s3.put_object(Bucket=after.source_bucket, Key=f"{folder}/segment-00000.ts",
                      Body=b"this is not MPEG-TS\n" * 100)
    aws.s3.put_object(Bucket=after.source_bucket, Key=f"{folder}/index.m3u8", Body=(
        b"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n"
        b"#EXTINF:2.0,\nsegment-00000.ts\n#EXT-X-ENDLIST\n"))
    usage = await_live(group, stream_id, 30)
    assert usage["outcome"] == "failed"
    observer.drain(until=lambda _: bool(notices(observer, stream_id, "stream_unreadable")))
    (notice,) = notices(observer, stream_id, "stream_unreadable")
    assert "segment-00000.ts: not an MPEG-TS segment" in notice["message"]
