"""Run one stream through the after on LocalStack and account for everything it did.

The after stack's queue and dead-letter queue are deployed; ECS is not in LocalStack's free edition, so
the service's tasks run as local processes of the container's command (`monolith.local_tasks`), with
the environment the stack gives the container. `run_after` uploads the stream, sends the job (the before's
StartExecution input), waits for the job's "job finished" line, stops the tasks with SIGTERM as ECS does
on scale-in, then collects the results records, the notifications and corrective actions (the same topic
and corrective-action function as the before) and the bill (`metering.after_bill`).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from demo.deploy import AfterStack, Stack, load_launcher
from demo.live import Publisher
from demo.run import (
    Aws,
    DesignRun,
    Observer,
    ProgressFn,
    RunError,
    await_actions,
    await_reports,
    notifications_for,
    result_keys,
    stack_functions,
    stream_of,
    stream_total,
)
from lambdas.shared.notifications import AFTER, design_of
from metering import Bill, after_bill
from metering.lag import lag_report
from metering.lambda_logs import Report
from monolith.local_tasks import LocalTasks
from monolith.serve import read_live
from sample_streams.publish import PublishFaults, PublishReport
from settings import ServiceSettings

POLL_S = 0.5
CORRECTIVE_ACTION = "corrective-action"


def service_settings(after: AfterStack, **overrides: Any) -> ServiceSettings:
    """What the stack puts in the container's environment, for these queues, bucket and topic. Long polls
    of 2 s here (20 on AWS): a stopping task finishes its poll first (monolith/serve.py), so the demo's
    tasks stop within 2 s."""
    return ServiceSettings(**{"job_queue_url": after.job_queue_url, "results_bucket": after.results_bucket,
                              "topic_arn": after.topic_arn, "source_buckets": (after.source_bucket,),
                              "receive_wait_s": 2, **overrides})


def stream_records(aws: Aws, after: AfterStack, stream_id: str, *,
                   live: bool = False) -> list[dict[str, Any]]:
    """Every second record of a stream, by second, from its results objects (the after writes batches:
    one JSON line per second). A live stream's: only the after's objects (`monolith.service.
    live_results_part`), not the before's, which follows the same stream."""
    bucket = after.results_bucket
    keys = result_keys(aws, after, stream_id)
    if live:
        keys = [k for k in keys if re.search(rf"\.{AFTER}(-[a-z_-]+)?\.json$", k)]
    lines = [line for key in keys
             for line in aws.s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines()]
    return sorted((json.loads(line) for line in lines if line.strip()), key=lambda r: r["second"])


def submit_job(aws: Aws, after: AfterStack, path: Path, stream_id: str) -> tuple[str, str]:
    """Upload `path` under streams/ and queue its job (the before's StartExecution input); (key, job id)."""
    key = f"streams/{stream_id}{path.suffix}"
    aws.s3.upload_file(str(path), after.source_bucket, key)
    body = json.dumps({"bucket": after.source_bucket, "key": key, "stream_id": stream_id})
    return key, aws.sqs.send_message(QueueUrl=after.job_queue_url, MessageBody=body)["MessageId"]


def run_after(aws: Aws, stack: Stack, path: Path, *, log_dir: Path, tasks: int = 1,
              stream_id: str | None = None, progress: ProgressFn | None = None,
              observer: Observer | None = None, timeout_s: float = 900) -> DesignRun:
    """Upload `path`, have the after analyse it with `tasks` local tasks, collect what it produced and
    what it cost."""
    if stack.after is None:
        raise RunError("the after stack is not deployed")
    after = stack.after
    path = Path(path)
    stream_id = stream_id or re.sub(r"[^A-Za-z0-9._-]", "-", path.stem)[:40] + "-" + uuid.uuid4().hex[:6]
    total = stream_total(path)
    own_observer = observer is None
    observer = observer or Observer(aws, after.topic_arn)
    functions = {name: role for name, role in stack_functions(aws, stack.name).items()
                 if role == CORRECTIVE_ACTION}
    since_ms = int(time.time() * 1000)
    env = load_launcher().client_env(aws.endpoint_url, aws.region) if aws.endpoint_url else {}
    started = time.monotonic()
    try:
        settings = service_settings(after)
        with LocalTasks(settings, env, log_dir) as local:
            local.start(tasks)
            key, _ = submit_job(aws, after, path, stream_id)
            finished = _await_job(local, stream_id, total, progress, timeout_s)
            wall_s = round(time.monotonic() - started, 3)
            local.stop()
            usage = local.usage()
            failure = _failure(local, stream_id)
        published = sum((u.get("requests") or {}).get("sns", {}).get("Publish", 0) for u in usage)
        ours = [n for n in observer.drain(until=lambda got: notifications_for(got, stream_id) >= published)
                if stream_of(n) == stream_id]
        defect_messages = sum(1 for n in ours if n["attributes"].get("kind") == "defect")
        actions = await_actions(aws, after.results_bucket, stream_id, defect_messages)
        reports = await_reports(aws, functions, since_ms, defect_messages)
        records = stream_records(aws, after, stream_id)
    finally:
        if own_observer:
            observer.close()
    ok = finished.get("outcome") == "analysed"
    return DesignRun(stream_id=stream_id, source=f"s3://{after.source_bucket}/{key}",
                     status="SUCCEEDED" if ok else "FAILED",
                     error=None if ok else failure or str(finished.get("outcome")),
                     records=records, notifications=ours, corrective_actions=actions,
                     bill=metered(usage, wall_s=wall_s, reports=reports, corrective_action_puts=len(actions)),
                     wall_s=wall_s, detail=after_detail(settings, tasks))


def metered(usage: list[dict[str, Any]], *, wall_s: float, reports: dict[str, list[Report]] | None = None,
            corrective_action_puts: int = 0, live: PublishReport | None = None) -> Bill:
    """The after's bill from its tasks' usage lines: the jobs', and the idle long polls apart."""
    jobs = [u for u in usage if u.get("outcome") != "idle"]
    idle = [u for u in usage if u.get("outcome") == "idle"]
    return after_bill(jobs, wall_s=wall_s, idle=idle, reports=reports or {},
                      corrective_action_puts=corrective_action_puts, live=live)


def after_detail(settings: ServiceSettings, tasks: int) -> dict[str, Any]:
    """What the after's summary shows beside its bill: its tasks and the service settings that count."""
    return {"tasks": tasks, "settings": {
        k: v for k, v in asdict(settings).items()
        if k not in ("job_queue_url", "results_bucket", "topic_arn", "source_buckets")}}


def _failure(local: LocalTasks, stream_id: str) -> str | None:
    """Why the service gave up on the stream: its last "job failed" log line (error name: reason)."""
    found = None
    for line in (line for task in local.tasks for line in task.lines()):
        if '"job failed"' in line and stream_id in line:
            entry = json.loads(line)
            found = f"{entry.get('error')}: {entry.get('reason')}"
    return found


def _await_job(local: LocalTasks, stream_id: str, total: int | None, progress: ProgressFn | None,
               timeout_s: float) -> dict[str, Any]:
    """The usage of the job that finished this stream (analysed, or failed for good)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for usage in local.usage():
            if usage.get("stream_id") == stream_id and usage.get("outcome") in ("analysed", "failed"):
                if progress:
                    progress(int(usage.get("stream_seconds") or 0), total)
                return usage
        exited = [t for t in local.tasks if t.process.poll() is not None]
        if exited and len(exited) == len(local.tasks):
            tail = "\n".join(exited[0].lines()[-20:])
            raise RunError(f"every local task exited (code {exited[0].process.returncode}):\n{tail}")
        if progress:
            progress(0, total)
        time.sleep(POLL_S)
    raise RunError(f"stream {stream_id} not finished by the after after {timeout_s:.0f} s")


# --- live streams --------------------------------------------------------------------------------
LIVE_OUTCOMES = ("analysed", "stalled", "failed")  # a live job that ends the stream's following


def live_lag(report: PublishReport, live: dict[str, Any]) -> dict[str, Any]:
    """The lag figures (`metering.lag.lag_report`) of one stream followed by the after: `live` is its
    entry of `monolith.serve.read_live` (when each second was done, each defect notification published)."""
    notified = [(found["second"], found["published_at"]) for found in live["defects"]]
    return lag_report(live["seconds_done_at"], notified, report.landed_at)


@contextmanager
def before_live_paused(aws: Aws, stack: Stack) -> Iterator[None]:
    """The before's rule that starts an execution per live playlist disabled meanwhile: to measure the
    after alone on a live stream (the before follows every stream written under live/ too)."""
    rules = [r["Name"] for r in aws.events.list_rules()["Rules"]
             if r["Name"].startswith(stack.name + "-") and "PlaylistWritten" in r["Name"]]
    if len(rules) != 1:
        raise RunError(f"the before's live rule (…PlaylistWritten…) not found: {rules}")
    aws.events.disable_rule(Name=rules[0])
    try:
        yield
    finally:
        aws.events.enable_rule(Name=rules[0])


def await_workers(local: LocalTasks, count: int, timeout_s: float) -> None:
    """Until `count` worker processes have started (each logs "worker started" once its imports are done)."""
    deadline = time.monotonic() + timeout_s
    while sum('"worker started"' in line for t in local.tasks for line in t.lines()) < count:
        if time.monotonic() > deadline:
            raise RunError(f"the after's workers did not start within {timeout_s:.0f} s")
        time.sleep(POLL_S)


def await_live(local: LocalTasks, stream_id: str, timeout_s: float,
               outcomes: tuple[str, ...] = LIVE_OUTCOMES) -> dict[str, Any]:
    """The usage of the first job that ended following `stream_id` with one of `outcomes`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for usage in local.usage():
            if usage.get("stream_id") == stream_id and usage.get("outcome") in outcomes:
                return usage
        time.sleep(POLL_S)
    tails = "\n".join(f"--- task {t.index}:\n" + "\n".join(t.lines()[-10:]) for t in local.tasks)
    raise RunError(f"live stream {stream_id} not finished by the after after {timeout_s:.0f} s\n{tails}")


# Every playlist rewrite's event is a job message; those that arrive while the stream is followed are
# dropped as duplicates by a free worker slot, or by the follower's own once it is done: a few seconds.
JOBS_WAIT_S = 30.0


def await_jobs(local: LocalTasks, stream_id: str, jobs: int, timeout_s: float) -> int:
    """Wait until `jobs` jobs naming `stream_id` have finished (at most `timeout_s`); how many did."""
    deadline = time.monotonic() + timeout_s
    while True:
        done = sum(1 for u in local.usage() if u.get("stream_id") == stream_id and u.get("outcome") != "idle")
        if done >= jobs or time.monotonic() >= deadline:
            return done
        time.sleep(POLL_S)


def follow_live(aws: Aws, stack: Stack, path: Path, *, log_dir: Path, stream_id: str | None = None,
                tasks: int = 1, speed: float = 1.0, segment_seconds: float = 2.0,
                faults: PublishFaults | None = None, timeout_s: float = 900,
                publisher: Publisher | None = None, observer: Observer | None = None,
                **settings: Any) -> DesignRun:
    """Publish `path` as a live stream into the source bucket while `tasks` local tasks follow it (their
    job: the playlist's S3 events through EventBridge); collect the results, usage, lag and (with an
    `observer` subscribed before publishing) the notifications and corrective actions the after caused. A
    `publisher` (`demo.live.Publisher`) shared with the other designs is used instead of a new one:
    started here once the tasks are ready, unless it already runs. `detail` holds the job's outcome
    (analysed | stalled | failed) and the playlist GETs."""
    if stack.after is None:
        raise RunError("the after stack is not deployed")
    after = stack.after
    if publisher is not None:
        stream_id = str(publisher.kwargs["stream_id"])
    stream_id = stream_id or f"{re.sub(r'[^A-Za-z0-9._-]', '-', Path(path).stem)[:40]}-{uuid.uuid4().hex[:6]}"
    env = load_launcher().client_env(aws.endpoint_url, aws.region) if aws.endpoint_url else {}
    service = service_settings(after, **settings)
    corrective = {name: role for name, role in stack_functions(aws, stack.name).items()
                  if role == CORRECTIVE_ACTION}
    since_ms = int(time.time() * 1000)
    started = time.monotonic()
    with LocalTasks(service, env, log_dir) as local:
        local.start(tasks)
        await_workers(local, tasks * service.concurrency, timeout_s=60)  # follow live, not catch up
        publisher = publisher or Publisher(aws, after.source_bucket, Path(path), stream_id, speed=speed,
                                           segment_seconds=segment_seconds, faults=faults)
        if not publisher.is_alive() and publisher.report is None and publisher.error is None:
            publisher.start()
        report = publisher.finish(timeout_s)
        finished = await_live(local, stream_id, timeout_s)
        wall_s = round(time.monotonic() - started, 3)
        if finished["outcome"] == "analysed":  # its bill holds every playlist event's job (cost model)
            await_jobs(local, stream_id, report.playlist_writes, timeout_s=JOBS_WAIT_S)
        local.stop()
        usage = [u for u in local.usage() if u.get("stream_id") == stream_id]
        live = read_live(line for t in local.tasks for line in t.lines()).get(stream_id) or {
            "seconds_done_at": {}, "segments_read_at": {}, "defects": [], "playlist_reads": 0}
        failure = _failure(local, stream_id)
    records = stream_records(aws, after, stream_id, live=True)
    notes: list[dict[str, Any]] = []
    actions: list[dict[str, Any]] = []
    reports: dict[str, list[Report]] = {}
    if observer is not None:
        published = sum((u.get("requests") or {}).get("sns", {}).get("Publish", 0) for u in usage)
        mine = lambda got: [n for n in got if stream_of(n) == stream_id  # noqa: E731
                            and design_of(n["attributes"]) == AFTER]
        notes = mine(observer.drain(until=lambda got: len(mine(got)) >= published))
        defect_messages = sum(1 for n in notes if n["attributes"].get("kind") == "defect")
        actions = await_actions(aws, after.results_bucket, stream_id, defect_messages)
        # The corrective action acts on every design's notices of the same live stream: the after caused
        # one invocation per defect message of its own.
        reports = {role: found[:defect_messages]
                   for role, found in await_reports(aws, corrective, since_ms, defect_messages).items()}
    outcome = str(finished["outcome"])
    return DesignRun(stream_id=stream_id, source=f"s3://{after.source_bucket}/{report.playlist_key}",
                     status="SUCCEEDED" if outcome == "analysed" else "FAILED",
                     error=failure or (None if outcome == "analysed" else outcome), records=records,
                     notifications=notes, corrective_actions=actions,
                     bill=metered(usage, wall_s=wall_s, reports=reports, corrective_action_puts=len(actions),
                                  live=report),
                     wall_s=wall_s, lag=live_lag(report, live), published=report,
                     detail={**after_detail(service, tasks), "outcome": outcome,
                             "playlist_reads": live["playlist_reads"]})
