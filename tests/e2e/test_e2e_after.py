"""The after on LocalStack: `python -m monolith serve` as local processes, one per "task", on the job
queue, with the buckets, topic and corrective-action Lambda of the deployed stack.

Defects equal `monolith analyze`; notifications lead to corrective actions; the results are read by the
before's DuckDB query; a bad stream is notified once and lands in the dead-letter queue; a task killed
with SIGKILL mid-stream loses nothing; 20 streams on 3 worker processes are each analysed exactly once.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from demo.after import service_settings, stream_records, submit_job
from demo.deploy import AfterStack, Stack
from demo.run import Aws, Observer, defects_in, download_prefix, read_json_objects
from lambdas.corrective_action.service import action_for
from lambdas.shared.results import ACTIONS_PREFIX, RESULTS_PREFIX, action_key, query_defects
from monolith.local_tasks import LocalTasks
from monolith.pipeline import analyze
from settings import ServiceSettings

pytestmark = pytest.mark.slow
FPS = 25


@pytest.fixture(scope="module")
def after(stack: Stack) -> AfterStack:
    """The after stack's outputs (its queues, and the before's source bucket, results bucket and topic,
    which the after shares), deployed beside the before by demo.deploy."""
    assert stack.after is not None, "demo.deploy returned no after stack"
    return stack.after


@pytest.fixture(scope="module")
def observer(aws: Aws, after: AfterStack) -> Iterator[Observer]:
    """An SQS queue subscribed to the topic: every notification, as an operator would receive it."""
    watcher = Observer(aws, after.topic_arn)
    yield watcher
    watcher.close()


@pytest.fixture
def tasks(localstack: Any, tmp_path: Path) -> Iterator[Callable[..., LocalTasks]]:
    """Local tasks of the service with given settings; all stopped (SIGTERM) at the end of the test."""
    made: list[LocalTasks] = []

    def make(settings: ServiceSettings, count: int = 1) -> LocalTasks:
        group = LocalTasks(settings, localstack.client_env(), tmp_path / f"tasks-{len(made)}")
        group.start(count)
        made.append(group)
        return group

    yield make
    for group in made:
        group.stop()


def submit(aws: Aws, after: AfterStack, path: Path, stream_id: str) -> str:
    return submit_job(aws, after, path, stream_id)[1]


def wait_for(what: str, check: Callable[[], Any], timeout_s: float, tasks: LocalTasks | None = None,
             poll_s: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(poll_s)
    logs = "\n".join(f"--- task {t.index} (exit {t.process.poll()}):\n" + "\n".join(t.lines()[-15:])
                     for t in (tasks.tasks if tasks else []))
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}\n{logs}")


def finished(tasks: LocalTasks, stream_id: str, outcome: str = "analysed") -> list[dict[str, Any]]:
    return [u for u in tasks.usage() if u["stream_id"] == stream_id and u["outcome"] == outcome]


def defect_notifications(observer: Observer, stream_id: str) -> list[dict[str, Any]]:
    return [n for n in observer.received
            if n["attributes"].get("stream_id") == stream_id and n["attributes"].get("kind") == "defect"]


def duplicates(notifications: list[dict[str, Any]]) -> int:
    """Notifications beyond the first for the same defect event (notifications are at least once)."""
    events = Counter((n["message"]["stream_id"], n["message"]["defect"]["type"],
                      n["message"]["defect"]["start_s"]) for n in notifications)
    return sum(n - 1 for n in events.values())


# --- one stream ----------------------------------------------------------------------------------
DURATION_S = 6


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sample_streams import BlockCorruption, Freeze, generate_stream

    path = tmp_path_factory.mktemp("after") / "cam-after.mp4"
    generate_stream(path, duration_s=DURATION_S, width=320, height=180, fps=FPS, gop_s=DURATION_S,
                    defects=[Freeze(1.2, 2.5), BlockCorruption(4.3)], seed=5)
    return path


@dataclass
class Run:
    stream_id: str
    job_id: str
    usage: dict[str, Any]
    records: list[dict[str, Any]]
    notifications: list[dict[str, Any]]
    actions: list[dict[str, Any]]


@pytest.fixture(scope="module")
def run(aws: Aws, after: AfterStack, observer: Observer, stream: Path,
        tmp_path_factory: pytest.TempPathFactory, localstack: Any) -> Iterator[Run]:
    settings = service_settings(after, results_batch_seconds=2, heartbeat_seconds=2)
    with LocalTasks(settings, localstack.client_env(), tmp_path_factory.mktemp("run-tasks")) as tasks:
        tasks.start(1)
        stream_id = f"cam-after-{uuid.uuid4().hex[:6]}"
        job_id = submit(aws, after, stream, stream_id)
        usage = wait_for("the job", lambda: finished(tasks, stream_id), 120, tasks)[0]
    records = stream_records(aws, after, stream_id)
    defects = defects_in(records)
    observer.drain(until=lambda _: len(defect_notifications(observer, stream_id)) >= len(defects))
    prefix = f"{ACTIONS_PREFIX}{stream_id}/"

    def actions() -> list[str] | None:
        listed = aws.s3.list_objects_v2(Bucket=after.results_bucket, Prefix=prefix).get("Contents", [])
        return sorted(o["Key"] for o in listed) if len(listed) >= len(defects) else None

    keys = wait_for("the corrective actions", actions, 30)
    recorded = read_json_objects(aws, after.results_bucket, keys)
    yield Run(stream_id, job_id, usage, records, defect_notifications(observer, stream_id),
              [{"key": k, **a} for k, a in zip(keys, recorded, strict=True)])


def test_defects_equal_the_monolith_and_the_requests_are_those_the_settings_count(run: Run,
                                                                                  stream: Path) -> None:
    expected = analyze(stream)["defects"]
    assert {d["type"] for d in expected} >= {"freeze", "block_corruption"}
    # Then every second was recorded once, with exactly the monolith's defects
    assert [r["second"] for r in run.records] == list(range(DURATION_S))
    assert defects_in(run.records) == expected
    # And the job's usage line says what it did: 1 GET; 3 PUTs (seconds 0-1, 2-3, 4-5); 1 receive,
    # 2 extensions (before seconds 2 and 4), 1 delete; one publish per defect
    assert run.usage["job_id"] == run.job_id and run.usage["stream_seconds"] == DURATION_S
    assert run.usage["requests"] == {
        "s3": {"GetObject": 1, "PutObject": 3},
        "sqs": {"ReceiveMessage": 1, "ChangeMessageVisibility": 2, "DeleteMessage": 1},
        "sns": {"Publish": len(expected)},
    }
    assert run.usage["cpu_s"] > 0 and run.usage["defects"] == len(expected)


def test_notifications_lead_to_the_before_s_corrective_actions(run: Run) -> None:
    defects = defects_in(run.records)
    # Then one notification per defect, in the before's shape, with the job id for the execution id
    assert sorted((n["message"]["defect"] for n in run.notifications),
                  key=lambda d: (d["start_s"], d["type"], d["end_s"])) == defects
    assert {n["message"]["execution_id"] for n in run.notifications} == {run.job_id}
    # And the before's corrective-action Lambda recorded one action per defect
    assert sorted(a["key"] for a in run.actions) == sorted(action_key(run.stream_id, d) for d in defects)
    assert {(a["defect"]["type"], a["action"]) for a in run.actions} == {
        (d["type"], action_for(d["type"])) for d in defects}


def test_results_are_read_by_the_before_s_duckdb_query(run: Run, aws: Aws, after: AfterStack,
                                                       tmp_path: Path) -> None:
    download_prefix(aws, after.results_bucket, f"{RESULTS_PREFIX}", tmp_path)
    rows = [r for r in query_defects(tmp_path) if r["stream_id"] == run.stream_id]
    defects = defects_in(run.records)
    assert [json.loads(r["defect_json"]) for r in rows] == defects
    # The batch objects hold the seconds they start with; the row's second is the record's own
    assert [r["second"] for r in rows] == [next(rec["second"] for rec in run.records if d in rec["defects"])
                                           for d in defects]


# --- a bad stream --------------------------------------------------------------------------------
def test_a_bad_stream_is_notified_once_and_goes_to_the_dead_letter_queue(
        aws: Aws, after: AfterStack, observer: Observer, tasks: Callable[..., LocalTasks],
        tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"this is not a video stream\n" * 200)
    stream_id = f"bad-{uuid.uuid4().hex[:6]}"
    settings = service_settings(after, retry_delay_s=1)
    group = tasks(settings)
    submit(aws, after, garbage, stream_id)
    # When the task has failed it max_receives times (the deployed queue's redrive count: see the last test)
    failed = wait_for("three failed attempts",
                      lambda: len(finished(group, stream_id, "failed")) >= settings.max_receives and
                      finished(group, stream_id, "failed"), 90, group)
    assert len(failed) == settings.max_receives == 3
    # Then the message is in the dead-letter queue (moved by SQS on the next receive)
    moved = wait_for("the dead-letter queue", lambda: aws.sqs.receive_message(
        QueueUrl=after.dead_letter_queue_url, WaitTimeSeconds=1).get("Messages", []), 30, group)
    assert [json.loads(m["Body"])["stream_id"] for m in moved] == [stream_id]
    aws.sqs.delete_message(QueueUrl=after.dead_letter_queue_url, ReceiptHandle=moved[0]["ReceiptHandle"])
    # And one "cannot be analysed" notification went out, as the before sends it, naming the stream
    observer.drain(until=lambda _: False, timeout_s=3)  # all that arrives within 3 s
    notices = [n for n in observer.received if n["attributes"].get("stream_id") == stream_id]
    assert [(n["subject"], n["attributes"]["kind"], n["attributes"]["error"]) for n in notices] == [
        ("Stream cannot be analysed", "stream_unreadable", "StreamUnreadable")]
    assert notices[0]["message"].startswith(f"Stream {stream_id} (s3://{after.source_bucket}/streams/")
    assert stream_records(aws, after, stream_id) == []


# --- SIGKILL -------------------------------------------------------------------------------------
def test_a_task_killed_mid_stream_loses_nothing(aws: Aws, after: AfterStack, observer: Observer,
                                               tasks: Callable[..., LocalTasks], tmp_path: Path) -> None:
    from sample_streams import BlockCorruption, Freeze, generate_stream

    # Given a 30 s stream with a freeze that ends at second 3 and block damage from second 20, and two
    # tasks with a short visibility timeout
    path = tmp_path / "long.mp4"
    generate_stream(path, duration_s=30, width=640, height=360, fps=FPS, gop_s=30,
                    defects=[Freeze(1.2, 2.5), BlockCorruption(20.3)], seed=8)
    expected = analyze(path)["defects"]
    assert [(d["type"], int(d["end_s"])) for d in expected] == [("freeze", 3), ("block_corruption", 30)]
    group = tasks(service_settings(after, results_batch_seconds=2, heartbeat_seconds=2,
                                   visibility_timeout_s=6), count=2)
    stream_id = f"kill-{uuid.uuid4().hex[:6]}"
    submit(aws, after, path, stream_id)

    # When the task working on it has written seconds 2-3 (so it has extended the visibility once),
    # it is killed with SIGKILL
    def working() -> Any:
        for task in group.tasks:
            for line in task.lines():
                if f"stream={stream_id}/second=000002.json" in line:
                    return task
        return None

    victim = wait_for("the first task to reach second 3", working, 120, group, poll_s=0.02)
    group.kill(victim)
    killed_at = time.monotonic()
    assert not [u for u in group.usage() if u["stream_id"] == stream_id], "finished before the kill"
    # Then the other task receives it again once the visibility timeout has passed, and finishes it
    done = wait_for("the other task", lambda: finished(group, stream_id), 120, group)
    assert len(done) == 1 and done[0]["stream_seconds"] == 30
    assert time.monotonic() - killed_at >= 5  # not before the visibility timeout (6 s) ran out
    survivor = next(t for t in group.tasks if t is not victim)
    assert any(stream_id in line and '"receive_count":2' in line for line in survivor.lines())
    # And every second is in the results exactly once, with the monolith's defects
    records = stream_records(aws, after, stream_id)
    assert [r["second"] for r in records] == list(range(30))
    assert defects_in(records) == expected
    # And notifications are at least once: the killed task had published the freeze (it closed at
    # second 3, before the batch it wrote last), the second task published it again
    observer.drain(until=lambda _: len(defect_notifications(observer, stream_id)) >= len(expected) + 1)
    sent = defect_notifications(observer, stream_id)
    print(f"\nSIGKILL: {len(sent)} defect notifications for {len(expected)} defects, "
          f"{duplicates(sent)} duplicate(s)")
    assert sorted(n["message"]["defect"]["type"] for n in sent) == ["block_corruption", "freeze", "freeze"]
    assert duplicates(sent) == 1


# --- 20 streams on 3 worker processes ------------------------------------------------------------
STREAMS = 20


def test_twenty_streams_on_three_workers_each_analysed_once(
        aws: Aws, after: AfterStack, observer: Observer, tasks: Callable[..., LocalTasks],
        tmp_path: Path) -> None:
    from sample_streams import AvOffset, BlockCorruption, Freeze, generate_stream

    # Given four kinds of 3 s stream (a freeze, block damage, an A/V offset, nothing), five of each
    kinds = {"freeze": [Freeze(0.3, 2.4)], "blocks": [BlockCorruption(1.3)], "offset": [AvOffset(0.0, 300.0)],
             "clean": []}
    files, expected = {}, {}
    for i, (kind, defects) in enumerate(kinds.items()):
        files[kind] = tmp_path / f"{kind}.mp4"
        generate_stream(files[kind], duration_s=3, width=160, height=90, fps=FPS, gop_s=3, defects=defects,
                        seed=10 + i)
        expected[kind] = analyze(files[kind])["defects"]
    tag = uuid.uuid4().hex[:6]
    streams = {f"load-{kind}-{n}-{tag}": kind for n in range(STREAMS // len(kinds)) for kind in kinds}
    # When they are queued for one task of three worker processes (--concurrency 3)
    group = tasks(service_settings(after, concurrency=3))
    started = time.monotonic()
    for stream_id, kind in streams.items():
        submit(aws, after, files[kind], stream_id)
    wait_for("all twenty", lambda: all(finished(group, s) for s in streams), 180, group)
    wall_s = time.monotonic() - started
    codes = group.stop()
    # Then the task stopped cleanly on SIGTERM, its three workers each logging what they used while idle
    assert codes == {0: 0}
    usages = group.usage()
    assert sum(1 for u in usages if u["outcome"] == "idle") == 3
    jobs = [u for u in usages if u["outcome"] != "idle"]
    assert Counter(u["stream_id"] for u in jobs if u["outcome"] == "analysed") == dict.fromkeys(streams, 1)
    # And each stream is in the results exactly once, with the monolith's defects for its file
    for stream_id, kind in streams.items():
        records = stream_records(aws, after, stream_id)
        assert [r["second"] for r in records] == [0, 1, 2], stream_id
        assert defects_in(records) == expected[kind], stream_id
    # Notifications: at least once; count the duplicates
    defects_total = sum(len(expected[kind]) for kind in streams.values())
    observer.drain(until=lambda _: sum(len(defect_notifications(observer, s)) for s in streams)
                   >= defects_total, timeout_s=30)
    sent = [n for s in streams for n in defect_notifications(observer, s)]
    assert len(sent) >= defects_total
    cpu_s = sum(u["cpu_s"] for u in jobs)
    print(f"\n20 streams on 3 workers: {wall_s:.1f} s wall, {cpu_s:.2f} CPU-s in jobs, {len(sent)} defect "
          f"notifications for {defects_total} defects, {duplicates(sent)} duplicate(s)")


def test_a_task_whose_queue_is_missing_exits_2_instead_of_restarting_its_workers(
        after: AfterStack, tasks: Callable[..., LocalTasks]) -> None:
    group = tasks(service_settings(after, job_queue_url=after.job_queue_url + "-missing", concurrency=2))
    task = group.tasks[0]
    wait_for("the task to exit", lambda: task.process.poll() is not None, 60, group)
    assert task.process.returncode == 2
    messages = [json.loads(line).get("message") for line in task.lines() if line.startswith("{")]
    assert messages.count("cannot read the job queue") >= 1
    assert "a worker could not start; stopping" in messages


def test_the_after_stack_is_deployed_beside_the_before_with_the_services_queue_settings(
        aws: Aws, stack: Stack, after: AfterStack, aws_client: Callable[[str], Any]) -> None:
    # Given both stacks deployed by demo.deploy (cdklocal, -c localstack=true)
    deployed = stack.after
    assert deployed is not None
    cloudformation = aws_client("cloudformation")
    statuses = {s["StackName"]: s["StackStatus"] for s in cloudformation.describe_stacks()["Stacks"]}
    assert statuses[stack.name] in ("CREATE_COMPLETE", "UPDATE_COMPLETE")
    assert statuses[deployed.name] in ("CREATE_COMPLETE", "UPDATE_COMPLETE")
    # Then on LocalStack the after is its two queues: no cluster, service or Auto Scaling group
    kinds = {r["ResourceType"] for r in cloudformation.describe_stack_resources(
        StackName=deployed.name)["StackResources"]}
    assert kinds - {"AWS::CDK::Metadata"} == {"AWS::SQS::Queue", "AWS::SQS::QueuePolicy", "AWS::Events::Rule"}
    # And it shares the before's buckets and topic rather than having its own
    assert (deployed.source_bucket, deployed.results_bucket, deployed.topic_arn) == (
        stack.source_bucket, stack.results_bucket, stack.topic_arn)
    # And its job queue has the service's settings and redrives to its dead-letter queue
    settings = ServiceSettings()
    attributes = aws.sqs.get_queue_attributes(QueueUrl=after.job_queue_url,
                                              AttributeNames=["All"])["Attributes"]
    dlq_arn = aws.sqs.get_queue_attributes(QueueUrl=after.dead_letter_queue_url,
                                           AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    assert json.loads(attributes["RedrivePolicy"]) == {"deadLetterTargetArn": dlq_arn,
                                                       "maxReceiveCount": settings.max_receives}
    assert int(attributes["VisibilityTimeout"]) == settings.visibility_timeout_s
    assert int(attributes["ReceiveMessageWaitTimeSeconds"]) == settings.receive_wait_s
    print(f"both stacks deployed in {stack.deploy_s:.1f} s (synth {stack.synth_s:.1f} s)")
