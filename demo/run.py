"""Run one stream through the deployed workflow and account for everything it did.

`run_stream` uploads the stream, starts an execution, follows it (and the executions it continues as)
with a progress callback, then collects:

- the defects (from the results records the workflow wrote) and the notifications (an SQS queue that the
  demo/test side subscribes to the topic — not part of the stack — receives every SNS delivery);
- the corrective actions the corrective-action Lambda recorded under `actions/<stream>/`;
- the bill of materials: state transitions as Step Functions bills them (every state entered, plus every
  retry of a Task) from the execution histories; S3 requests the Lambdas reported in their outputs plus the
  workflow's own `s3:putObject` calls; Lambda invocations and GB-seconds from the runtime's REPORT lines
  in CloudWatch Logs (duration + init duration, × the function's memory: AWS bills the init phase of
  on-demand functions since August 2025); SNS publishes from the histories.

Requests the demo itself makes (LIST/GET of results, the queue) are not part of the bill. The counting
itself is `metering`'s: this module only collects what it reads.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from demo.deploy import REGION, AfterStack, Stack
from lambdas.shared.frame_store import FRAMES_PREFIX
from lambdas.shared.notifications import BEFORE, design_of
from lambdas.shared.results import ACTIONS_PREFIX, RESULTS_PREFIX
from metering import Bill, before_bill
from metering.bill import CORRECTIVE_ACTION
from metering.lambda_logs import Report, lambda_reports
from metering.stepfunctions import continued_as, history, seconds_recorded, service_calls
from sample_streams.publish import PublishReport

ProgressFn = Callable[[int, int | None], None]  # (stream-seconds done, total or None)
POLL_S = 0.4
BEFORE_RECORD = re.compile(r"/second=\d+\.json$")  # lambdas.shared.results.result_key without a part


class RunError(RuntimeError):
    pass


@dataclass
class Aws:
    """boto3 clients for one endpoint (LocalStack, or AWS when endpoint_url is None)."""

    endpoint_url: str | None
    region: str = REGION

    def __post_init__(self) -> None:
        config = Config(retries={"max_attempts": 3, "mode": "standard"}, read_timeout=120)
        keys = {"aws_access_key_id": "test", "aws_secret_access_key": "test"} if self.endpoint_url else {}
        self._clients: dict[str, Any] = {}
        self._make = lambda service: boto3.client(service, endpoint_url=self.endpoint_url,
                                                  region_name=self.region, config=config, **keys)

    def __getattr__(self, service: str) -> Any:
        if service.startswith("_"):
            raise AttributeError(service)
        name = {"lambda_": "lambda", "sfn": "stepfunctions"}.get(service, service)
        if name not in self._clients:
            self._clients[name] = self._make(name)
        return self._clients[name]


# --- notifications -------------------------------------------------------------------------------
class Observer:
    """An SQS queue subscribed to the topic: what an operator's subscription would receive."""

    def __init__(self, aws: Aws, topic_arn: str) -> None:
        self.aws = aws
        name = f"demo-observer-{uuid.uuid4().hex[:8]}"
        self.queue_url = aws.sqs.create_queue(QueueName=name)["QueueUrl"]
        queue_arn = aws.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"]
                                                 )["Attributes"]["QueueArn"]
        policy = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}, "Action": "sqs:SendMessage",
            "Resource": queue_arn, "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}}}]}
        aws.sqs.set_queue_attributes(QueueUrl=self.queue_url, Attributes={"Policy": json.dumps(policy)})
        self.subscription_arn = aws.sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn,
                                                  ReturnSubscriptionArn=True)["SubscriptionArn"]
        self.received: list[dict[str, Any]] = []
        # The designs following one live stream collect their notices from threads of their own.
        self._draining = threading.Lock()

    def drain(self, *, until: Callable[[list[dict[str, Any]]], bool], timeout_s: float = 20) -> list[dict]:
        """Receive until `until(received)` holds or the timeout passes; each item is the SNS envelope's
        message (JSON-decoded when it is JSON) with its subject and attributes. One thread at a time."""
        with self._draining:
            return self._drain(until, timeout_s)

    def _drain(self, until: Callable[[list[dict[str, Any]]], bool], timeout_s: float) -> list[dict]:
        deadline = time.monotonic() + timeout_s
        while not until(self.received) and time.monotonic() < deadline:
            batch = self.aws.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10,
                                                 WaitTimeSeconds=1).get("Messages", [])
            for message in batch:
                envelope = json.loads(message["Body"])
                try:
                    body: Any = json.loads(envelope["Message"])
                except ValueError:
                    body = envelope["Message"]
                self.received.append({
                    "subject": envelope.get("Subject"),
                    # When SNS accepted the publish: a defect's notification time, for the live lag.
                    "published_at": datetime.fromisoformat(envelope["Timestamp"].replace("Z", "+00:00"))
                    .timestamp() if envelope.get("Timestamp") else None,
                    "attributes": {k: v.get("Value")
                                   for k, v in envelope.get("MessageAttributes", {}).items()},
                    "message": body,
                })
                self.aws.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return self.received

    def close(self) -> None:
        self.aws.sns.unsubscribe(SubscriptionArn=self.subscription_arn)
        self.aws.sqs.delete_queue(QueueUrl=self.queue_url)


# --- executions ----------------------------------------------------------------------------------
@dataclass
class Execution:
    arn: str
    status: str
    error: str | None
    cause: str | None
    events: list[dict[str, Any]]
    wall_s: float


def follow(aws: Aws, first_arn: str, *, total: int | None, progress: ProgressFn | None = None,
           timeout_s: float = 1800) -> list[Execution]:
    """Wait for the execution and every execution it continues as; report progress in stream-seconds."""
    executions: list[Execution] = []
    done_before = 0
    arn: str | None = first_arn
    deadline = time.monotonic() + timeout_s
    while arn is not None:
        started = time.monotonic()
        while True:
            described = aws.sfn.describe_execution(executionArn=arn)
            if described["status"] != "RUNNING":
                break  # the full history below gives the final count
            if progress:
                progress(done_before + seconds_recorded(history(aws.sfn, arn, data=False)), total)
            if time.monotonic() > deadline:
                raise RunError(f"{arn} still running after {timeout_s:.0f} s")
            time.sleep(POLL_S)
        events = history(aws.sfn, arn)
        executions.append(Execution(arn, described["status"], described.get("error"), described.get("cause"),
                                    events, round(time.monotonic() - started, 3)))
        done_before += seconds_recorded(events)
        if progress:
            progress(done_before, total)
        arn = continued_as(events) if described["status"] == "SUCCEEDED" else None
    return executions


# --- what the functions reported ---------------------------------------------------------------
def stack_functions(aws: Aws, stack_name: str) -> dict[str, str]:
    """{function name: role} for the stack's functions; the role is POWERTOOLS_SERVICE_NAME."""
    out: dict[str, str] = {}
    for page in aws.lambda_.get_paginator("list_functions").paginate():
        for fn in page["Functions"]:
            if fn["FunctionName"].startswith(f"{stack_name}-"):
                variables = (fn.get("Environment") or {}).get("Variables") or {}
                out[fn["FunctionName"]] = variables.get("POWERTOOLS_SERVICE_NAME", fn["FunctionName"])
    return out


# --- results -------------------------------------------------------------------------------------
def list_keys(aws: Aws, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in aws.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


def read_json_objects(aws: Aws, bucket: str, keys: list[str]) -> list[dict[str, Any]]:
    return [json.loads(aws.s3.get_object(Bucket=bucket, Key=k)["Body"].read()) for k in keys]


def download_prefix(aws: Aws, bucket: str, prefix: str, target: Path) -> int:
    """Copy every object under `prefix` to `target/<key>` (a local copy DuckDB can query)."""
    keys = list_keys(aws, bucket, prefix)
    for key in keys:
        path = target / key
        path.parent.mkdir(parents=True, exist_ok=True)
        aws.s3.download_file(bucket, key, str(path))
    return len(keys)


def result_keys(aws: Aws, stack: Stack | AfterStack, stream_id: str) -> list[str]:
    """The results objects of one stream (either architecture's: they share the results bucket)."""
    keys = list_keys(aws, stack.results_bucket, RESULTS_PREFIX)
    return sorted(k for k in keys if f"/stream={stream_id}/" in k)


# --- one run -------------------------------------------------------------------------------------
@dataclass
class RunResult:
    stream_id: str
    source: str
    stream_seconds: int
    status: str
    error: str | None
    cause: str | None
    executions: list[Execution]
    records: list[dict[str, Any]]
    notifications: list[dict[str, Any]]
    corrective_actions: list[dict[str, Any]]
    frame_objects: int
    reports: dict[str, list[Report]]  # role -> REPORT lines
    wall_s: float
    objects_written: int = 0  # a live stream's segments and playlist writes: S3 events on EventBridge

    @property
    def defects(self) -> list[dict[str, Any]]:
        found = [d for r in self.records for d in r["defects"]]
        return sorted(found, key=lambda d: (d["start_s"], d["type"], d["end_s"]))

    @property
    def events(self) -> list[dict[str, Any]]:
        return [e for ex in self.executions for e in ex.events]

    def metered(self) -> Bill:
        return before_bill(self.events, self.reports, stream_seconds=self.stream_seconds, wall_s=self.wall_s,
                           executions=len(self.executions),
                           corrective_action_puts=len(self.corrective_actions),
                           objects_written=self.objects_written)

    def bill(self) -> dict[str, Any]:
        bill = self.metered().as_dict()
        bill["sns_deliveries_observed"] = len(self.notifications)
        return bill

    def summary(self) -> dict[str, Any]:
        bill = self.bill()
        return {
            "stream_id": self.stream_id,
            "source": self.source,
            "status": self.status,
            "error": self.error,
            "cause": self.cause,
            "stream_seconds": self.stream_seconds,
            "wall_s": self.wall_s,
            "defects": self.defects,
            "notifications": self.notifications,
            "corrective_actions": self.corrective_actions,
            **{k: v for k, v in bill.items() if k != "stream_seconds"},
            "frames_bucket_objects": self.frame_objects,
            "execution_arns": [e.arn for e in self.executions],
        }


def defects_in(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The defects of second records, in the order `monolith analyze` reports them."""
    found = [d for r in records for d in r["defects"]]
    return sorted(found, key=lambda d: (d["start_s"], d["type"], d["end_s"]))


@dataclass
class DesignRun:
    """One stream through the after or the event-driven serverless design: what it recorded, said and
    cost. (The before's run is `RunResult`: its bill is read from its executions' histories.)"""

    stream_id: str
    source: str
    status: str  # SUCCEEDED | FAILED
    error: str | None
    records: list[dict[str, Any]]
    notifications: list[dict[str, Any]]
    corrective_actions: list[dict[str, Any]]
    bill: Bill
    wall_s: float
    # What only this design has, shown beside its bill: the after's tasks and settings, the serverless
    # design's segments, a live run's outcome.
    detail: dict[str, Any] = field(default_factory=dict)
    lag: dict[str, Any] | None = None  # a live run's `metering.lag.lag_report`
    published: PublishReport | None = None  # a run on a stream published as segments

    @property
    def defects(self) -> list[dict[str, Any]]:
        return defects_in(self.records)

    def summary(self) -> dict[str, Any]:
        out = {"stream_id": self.stream_id, "source": self.source, "status": self.status, "error": self.error,
               "defects": self.defects, "notifications": self.notifications,
               "corrective_actions": self.corrective_actions, **self.detail, **self.bill.as_dict(),
               "sns_deliveries_observed": len(self.notifications)}
        if self.lag is not None:
            out["lag"] = self.lag
        return out


def stream_total(path: Path) -> int | None:
    """Stream-seconds the workflow will iterate over, from a local probe (None if unreadable here)."""
    from lambdas.converter.decode import UnreadableStreamError, probe

    try:
        return probe(path).seconds
    except (UnreadableStreamError, OSError, ValueError):
        return None


def run_stream(aws: Aws, stack: Stack, path: Path, *, stream_id: str | None = None,
               progress: ProgressFn | None = None, observer: Observer | None = None,
               timeout_s: float = 1800) -> RunResult:
    """Upload `path`, run it to the end, collect what it produced and what it cost."""
    path = Path(path)
    stream_id = stream_id or re.sub(r"[^A-Za-z0-9._-]", "-", path.stem)[:40] + "-" + uuid.uuid4().hex[:6]
    key = f"streams/{stream_id}{path.suffix}"
    total = stream_total(path)
    own_observer = observer is None
    observer = observer or Observer(aws, stack.topic_arn)
    functions = stack_functions(aws, stack.name)
    since_ms = int(time.time() * 1000)  # same host, same clock: REPORT lines of earlier runs are older
    started = time.monotonic()
    try:
        aws.s3.upload_file(str(path), stack.source_bucket, key)
        first = aws.sfn.start_execution(
            stateMachineArn=stack.state_machine_arn, name=f"{stream_id}-{uuid.uuid4().hex[:6]}",
            input=json.dumps({"bucket": stack.source_bucket, "key": key, "stream_id": stream_id}),
        )["executionArn"]
        executions = follow(aws, first, total=total, progress=progress, timeout_s=timeout_s)
        wall_s = round(time.monotonic() - started, 3)
        return collect_run(aws, stack, observer, stream_id, f"s3://{stack.source_bucket}/{key}", executions,
                           functions, since_ms, wall_s)
    finally:
        if own_observer:
            observer.close()


def collect_run(aws: Aws, stack: Stack, observer: Observer, stream_id: str, source: str,
                executions: list[Execution], functions: dict[str, str], since_ms: int, wall_s: float,
                other_invocations: int = 0) -> RunResult:
    """What a finished run left: its records, notifications, corrective actions, REPORT lines and frames.
    `other_invocations`: Lambda invocations the workflow did not make (a live stream's starter)."""
    last = executions[-1]
    calls = service_calls([e for ex in executions for e in ex.events])
    # Only the workflow's own records (second=<n>.json): on a live stream the other designs follow the
    # same stream into the same partition, under keys of their own.
    keys = [k for k in result_keys(aws, stack, stream_id) if BEFORE_RECORD.search(k)]
    records = read_json_objects(aws, stack.results_bucket, keys)
    published = calls.get("sns:publish", 0)
    mine = lambda got: [n for n in got if stream_of(n) == stream_id and from_the_before(n)]  # noqa: E731
    ours = mine(observer.drain(until=lambda got: len(mine(got)) >= published))
    defect_messages = sum(1 for n in ours if n["attributes"].get("kind") == "defect")
    actions = await_actions(aws, stack.results_bucket, stream_id, defect_messages)
    invocations = calls.get("lambda:invoke", 0)
    # The corrective action's REPORT lines apart: on a live stream it acts on every design's notices (the
    # first of them would stand in for the workflow's own lines not yet delivered); one per ours.
    workflow = {name: role for name, role in functions.items() if role != CORRECTIVE_ACTION}
    corrective = {name: role for name, role in functions.items() if role == CORRECTIVE_ACTION}
    reports = await_reports(aws, workflow, since_ms, invocations + other_invocations)
    acting = await_reports(aws, corrective, since_ms, defect_messages).get(CORRECTIVE_ACTION, [])
    if acting:
        reports[CORRECTIVE_ACTION] = acting[:defect_messages]
    frames = len(list_keys(aws, stack.frames_bucket, f"{FRAMES_PREFIX}{stream_id}/"))
    seconds = max((r["second"] + 1 for r in records), default=0)
    return RunResult(
        stream_id=stream_id, source=source, stream_seconds=seconds,
        status=last.status, error=last.error, cause=last.cause, executions=executions, records=records,
        notifications=ours, corrective_actions=actions, frame_objects=frames, reports=reports, wall_s=wall_s)


def stream_of(notification: dict[str, Any]) -> str | None:
    return notification["attributes"].get("stream_id")


def notifications_for(received: list[dict[str, Any]], stream_id: str) -> int:
    return sum(1 for n in received if stream_of(n) == stream_id)


def from_the_before(notification: dict[str, Any]) -> bool:
    """The workflow's own notices (every design marks its own: they share one topic)."""
    return design_of(notification["attributes"]) == BEFORE


def await_actions(aws: Aws, results_bucket: str, stream_id: str, expected: int, timeout_s: float = 20
                  ) -> list[dict[str, Any]]:
    """The corrective actions arrive asynchronously (SNS → Lambda): wait for one per defect message."""
    deadline = time.monotonic() + timeout_s
    while True:
        keys = list_keys(aws, results_bucket, f"{ACTIONS_PREFIX}{stream_id}/")
        if len(keys) >= expected or time.monotonic() > deadline:
            keys = sorted(keys)
            return [{"key": k, **a} for k, a in zip(keys, read_json_objects(aws, results_bucket, keys),
                                                    strict=True)]
        time.sleep(POLL_S)


def await_reports(aws: Aws, functions: dict[str, str], since_ms: int, expected: int, timeout_s: float = 20
                  ) -> dict[str, list[Report]]:
    """REPORT lines reach CloudWatch Logs shortly after each invocation: wait until all are there."""
    deadline = time.monotonic() + timeout_s
    while True:
        by_role: dict[str, list[Report]] = {}
        for name, role in functions.items():
            by_role.setdefault(role, []).extend(lambda_reports(aws.logs, name, since_ms))
        if sum(map(len, by_role.values())) >= expected or time.monotonic() > deadline:
            return {role: rs for role, rs in by_role.items() if rs}
        time.sleep(POLL_S)
