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

Requests the demo itself makes (LIST/GET of results, the queue) are not part of the bill.
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from demo.deploy import REGION, Stack
from lambdas.shared.frame_store import FRAMES_PREFIX
from lambdas.shared.results import ACTIONS_PREFIX, RESULTS_PREFIX

ProgressFn = Callable[[int, int | None], None]  # (stream-seconds done, total or None)
POLL_S = 0.4
# S3 operations by billing class (a HEAD is billed as a GET-class request, but shown apart).
S3_CLASSES = {"PutObject": "put", "CopyObject": "put", "GetObject": "get", "HeadObject": "head",
              "ListObjectsV2": "list", "ListObjects": "list", "DeleteObject": "delete"}
REPORT = re.compile(r"REPORT RequestId: (?P<id>\S+)\s+Duration: (?P<ms>[\d.]+) ms"
                    r".*?Memory Size: (?P<mb>\d+) MB(?:.*?Init Duration: (?P<init>[\d.]+) ms)?"
                    # not in AWS's REPORT lines: our process executor adds the invocation's CPU time
                    r"(?:.*?CPU Time: (?P<cpu>[\d.]+) ms)?")


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

    def drain(self, *, until: Callable[[list[dict[str, Any]]], bool], timeout_s: float = 20) -> list[dict]:
        """Receive until `until(received)` holds or the timeout passes; each item is the SNS envelope's
        message (JSON-decoded when it is JSON) with its subject and attributes."""
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
def history(sfn: Any, execution_arn: str, *, data: bool = True) -> list[dict[str, Any]]:
    """Every event of one execution (`sfn`: a Step Functions client), following nextToken."""
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000, "includeExecutionData": data}
    while True:
        page = sfn.get_execution_history(**kwargs)
        events += page["events"]
        if not page.get("nextToken"):
            return events
        kwargs["nextToken"] = page["nextToken"]


def seconds_recorded(events: list[dict[str, Any]]) -> int:
    """Stream-seconds whose Record state finished: the loop's progress."""
    return sum(1 for e in events
               if e["type"] == "TaskStateExited" and e["stateExitedEventDetails"]["name"] == "Record")


def continued_as(events: list[dict[str, Any]]) -> str | None:
    """The execution this one handed its cursor to (ContinueAsNew's states:startExecution), if any."""
    for event in events:
        details = event.get("taskSucceededEventDetails")
        if details and (details.get("resourceType"), details.get("resource")) == ("states", "startExecution"):
            return json.loads(details["output"])["ExecutionArn"]
    return None


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


# --- the bill ------------------------------------------------------------------------------------
def lambda_outputs(
    events: list[dict[str, Any]],
) -> Iterator[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]:
    """(TaskScheduled details, decoded output, TaskSucceeded event) of every successful lambda:invoke."""
    scheduled = {e["id"]: e["taskScheduledEventDetails"] for e in events if e["type"] == "TaskScheduled"}
    started_by = {e["id"]: e["previousEventId"] for e in events if e["type"] == "TaskStarted"}
    for event in events:
        details = event.get("taskSucceededEventDetails")
        if details and details.get("resourceType") == "lambda":
            task = scheduled.get(started_by.get(event["previousEventId"], -1), {})
            yield task, json.loads(details["output"]), event


def transitions(events: list[dict[str, Any]]) -> dict[str, int]:
    """Billed state transitions: every state entered, plus every retry (a Task scheduled again)."""
    entered = sum(1 for e in events if e["type"].endswith("StateEntered"))
    tasks_entered = sum(1 for e in events if e["type"] == "TaskStateEntered")
    scheduled = sum(1 for e in events if e["type"] == "TaskScheduled")
    return {"entered": entered, "retries": max(0, scheduled - tasks_entered),
            "total": entered + max(0, scheduled - tasks_entered)}


def service_calls(events: list[dict[str, Any]]) -> Counter[str]:
    """Service calls the workflow made, retries included: "lambda:invoke", "sns:publish", ..."""
    details = [e["taskScheduledEventDetails"] for e in events if e["type"] == "TaskScheduled"]
    return Counter(f"{d['resourceType']}:{d['resource']}" for d in details)


def lambda_reported_s3(events: list[dict[str, Any]]) -> dict[str, Counter[str]]:
    """S3 requests by function role, as the converter and the detectors reported them."""
    out: dict[str, Counter[str]] = {}
    for _, output, _ in lambda_outputs(events):
        payload = output.get("Payload") or {}
        if "s3_requests" in payload:  # the converter
            out.setdefault("converter", Counter()).update(payload["s3_requests"])
        for usage in payload.get("usage") or []:  # a detector
            out.setdefault(f"detector-{usage['function']}", Counter()).update(usage["s3_requests"])
    return out


@dataclass
class Report:
    request_id: str
    duration_ms: float
    init_ms: float
    memory_mb: int
    cpu_ms: float | None = None  # only where the runtime reports it (the LocalStack process executor)

    @property
    def billed_ms(self) -> int:
        return math.ceil(self.duration_ms + self.init_ms)

    @property
    def gb_seconds(self) -> float:
        return self.billed_ms / 1000 * self.memory_mb / 1024


def stack_functions(aws: Aws, stack_name: str) -> dict[str, str]:
    """{function name: role} for the stack's functions; the role is POWERTOOLS_SERVICE_NAME."""
    out: dict[str, str] = {}
    for page in aws.lambda_.get_paginator("list_functions").paginate():
        for fn in page["Functions"]:
            if fn["FunctionName"].startswith(f"{stack_name}-"):
                variables = (fn.get("Environment") or {}).get("Variables") or {}
                out[fn["FunctionName"]] = variables.get("POWERTOOLS_SERVICE_NAME", fn["FunctionName"])
    return out


def lambda_reports(aws: Aws, function_name: str, since_ms: int) -> list[Report]:
    """The runtime's REPORT lines for a function since a time (one per invocation)."""
    group = f"/aws/lambda/{function_name}"
    reports: dict[str, Report] = {}
    kwargs: dict[str, Any] = {"logGroupName": group, "startTime": since_ms}
    try:
        while True:
            page = aws.logs.filter_log_events(**kwargs)
            for event in page["events"]:
                match = REPORT.search(event["message"])
                if match:
                    cpu = float(match["cpu"]) if match["cpu"] else None
                    reports[match["id"]] = Report(match["id"], float(match["ms"]), float(match["init"] or 0),
                                                  int(match["mb"]), cpu)
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
    except aws.logs.exceptions.ResourceNotFoundException:
        return []
    return list(reports.values())


# --- results -------------------------------------------------------------------------------------
def _objects(aws: Aws, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in aws.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


def read_json_objects(aws: Aws, bucket: str, keys: list[str]) -> list[dict[str, Any]]:
    return [json.loads(aws.s3.get_object(Bucket=bucket, Key=k)["Body"].read()) for k in keys]


def download_prefix(aws: Aws, bucket: str, prefix: str, target: Path) -> int:
    """Copy every object under `prefix` to `target/<key>` (a local copy DuckDB can query)."""
    keys = _objects(aws, bucket, prefix)
    for key in keys:
        path = target / key
        path.parent.mkdir(parents=True, exist_ok=True)
        aws.s3.download_file(bucket, key, str(path))
    return len(keys)


def result_keys(aws: Aws, stack: Stack, stream_id: str) -> list[str]:
    keys = _objects(aws, stack.results_bucket, RESULTS_PREFIX)
    return sorted(k for k in keys if f"/stream={stream_id}/" in k)


def _cpu_s(reports: list[Report]) -> float | None:
    """Total CPU time of the invocations, or None unless every REPORT line gave it."""
    if not reports or any(r.cpu_ms is None for r in reports):
        return None
    return round(sum(r.cpu_ms or 0.0 for r in reports) / 1000, 3)


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

    @property
    def defects(self) -> list[dict[str, Any]]:
        found = [d for r in self.records for d in r["defects"]]
        return sorted(found, key=lambda d: (d["start_s"], d["type"], d["end_s"]))

    @property
    def events(self) -> list[dict[str, Any]]:
        return [e for ex in self.executions for e in ex.events]

    def bill(self) -> dict[str, Any]:
        events = self.events
        calls = service_calls(events)
        reported = lambda_reported_s3(events)
        # The corrective action PUTs one record per defect message; its output goes back to SNS, not
        # to us, so its requests are counted from the records it left.
        if self.corrective_actions:
            reported["corrective-action"] = Counter({"PutObject": len(self.corrective_actions)})
        reported["workflow"] = Counter({"PutObject": calls.get("aws-sdk:s3:putObject", 0)})
        by_class: Counter[str] = Counter()
        for counts in reported.values():
            for operation, n in counts.items():
                by_class[S3_CLASSES.get(operation, operation.lower())] += n
        s3 = {"put": by_class.pop("put", 0), "get": by_class.pop("get", 0), "list": by_class.pop("list", 0),
              "head": by_class.pop("head", 0), **dict(by_class)}
        s3["total"] = sum(v for k, v in s3.items())
        s3["by_source"] = {role: dict(sorted(c.items())) for role, c in sorted(reported.items()) if c}
        functions = {role: {"invocations": len(rs),
                            "duration_s": round(sum(r.duration_ms for r in rs) / 1000, 3),
                            "init_s": round(sum(r.init_ms for r in rs) / 1000, 3),
                            "cpu_s": _cpu_s(rs),
                            "memory_mb": rs[0].memory_mb if rs else None,
                            "gb_seconds": round(sum(r.gb_seconds for r in rs), 4)}
                     for role, rs in sorted(self.reports.items())}
        counted = transitions(events)
        bill = {
            "stream_seconds": self.stream_seconds,
            "state_transitions": counted["total"],
            "state_transitions_detail": {**counted, "executions": len(self.executions)},
            "s3_requests": s3,
            "lambda_invocations": sum(f["invocations"] for f in functions.values()),
            "lambda_invocations_by_workflow": calls.get("lambda:invoke", 0),
            "lambda_gb_seconds": round(sum(f["gb_seconds"] for f in functions.values()), 4),
            "lambda_duration_s": round(sum(f["duration_s"] for f in functions.values()), 3),
            "lambda_functions": functions,
            "sns_publishes": calls.get("sns:publish", 0),
            "sns_deliveries_observed": len(self.notifications),
        }
        per = max(1, self.stream_seconds)
        bill["per_stream_second"] = {
            "state_transitions": round(bill["state_transitions"] / per, 3),
            "s3_requests": {k: round(v / per, 3) for k, v in s3.items() if isinstance(v, int)},
            "lambda_invocations": round(bill["lambda_invocations"] / per, 3),
            "lambda_gb_seconds": round(bill["lambda_gb_seconds"] / per, 4),
            "sns_publishes": round(bill["sns_publishes"] / per, 3),
        }
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
        last = executions[-1]
        calls = service_calls([e for ex in executions for e in ex.events])
        records = read_json_objects(aws, stack.results_bucket, result_keys(aws, stack, stream_id))
        published = calls.get("sns:publish", 0)
        ours = [n for n in observer.drain(until=lambda got: _mine(got, stream_id) >= published)
                if _stream_of(n) == stream_id]
        defect_messages = sum(1 for n in ours if n["attributes"].get("kind") == "defect")
        actions = _await_actions(aws, stack, stream_id, defect_messages)
        invocations = calls.get("lambda:invoke", 0)
        reports = _await_reports(aws, functions, since_ms, invocations + defect_messages)
        frames = len(_objects(aws, stack.frames_bucket, f"{FRAMES_PREFIX}{stream_id}/"))
    finally:
        if own_observer:
            observer.close()
    seconds = max((r["second"] + 1 for r in records), default=0)
    return RunResult(
        stream_id=stream_id, source=f"s3://{stack.source_bucket}/{key}", stream_seconds=seconds,
        status=last.status, error=last.error, cause=last.cause, executions=executions, records=records,
        notifications=ours, corrective_actions=actions, frame_objects=frames, reports=reports, wall_s=wall_s)


def _stream_of(notification: dict[str, Any]) -> str | None:
    return notification["attributes"].get("stream_id")


def _mine(received: list[dict[str, Any]], stream_id: str) -> int:
    return sum(1 for n in received if _stream_of(n) == stream_id)


def _await_actions(aws: Aws, stack: Stack, stream_id: str, expected: int, timeout_s: float = 20
                   ) -> list[dict[str, Any]]:
    """The corrective actions arrive asynchronously (SNS → Lambda): wait for one per defect message."""
    deadline = time.monotonic() + timeout_s
    while True:
        keys = _objects(aws, stack.results_bucket, f"{ACTIONS_PREFIX}{stream_id}/")
        if len(keys) >= expected or time.monotonic() > deadline:
            keys = sorted(keys)
            return [{"key": k, **a} for k, a in zip(keys, read_json_objects(aws, stack.results_bucket, keys),
                                                    strict=True)]
        time.sleep(POLL_S)


def _await_reports(aws: Aws, functions: dict[str, str], since_ms: int, expected: int, timeout_s: float = 20
                   ) -> dict[str, list[Report]]:
    """REPORT lines reach CloudWatch Logs shortly after each invocation: wait until all are there."""
    deadline = time.monotonic() + timeout_s
    while True:
        by_role: dict[str, list[Report]] = {}
        for name, role in functions.items():
            by_role.setdefault(role, []).extend(lambda_reports(aws, name, since_ms))
        if sum(map(len, by_role.values())) >= expected or time.monotonic() > deadline:
            return {role: rs for role, rs in by_role.items() if rs}
        time.sleep(POLL_S)
