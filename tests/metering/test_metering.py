"""metering: REPORT lines, histories and the service's usage lines become one bill (numbers by hand)."""

from __future__ import annotations

import json

import pytest

from metering import after_bill, before_bill
from metering.lambda_logs import parse_reports
from metering.requests import s3_by_class
from metering.stepfunctions import transitions

AWS_REPORT = ("REPORT RequestId: 7f1c Duration: 102.50 ms Billed Duration: 103 ms Memory Size: 1024 MB "
              "Max Memory Used: 88 MB Init Duration: 250.30 ms")
WARM_REPORT = ("REPORT RequestId: 8a2d Duration: 40.00 ms Billed Duration: 40 ms Memory Size: 2048 MB "
               "Max Memory Used: 300 MB CPU Time: 31.5 ms")


def test_report_lines_give_billed_gb_seconds_with_init() -> None:
    # Given a cold REPORT line as AWS prints it, a warm one with our executor's CPU field, and a repeat
    reports = parse_reports([AWS_REPORT, "START RequestId: 7f1c", WARM_REPORT, AWS_REPORT])
    # Then each invocation counts once
    assert [r.request_id for r in reports] == ["7f1c", "8a2d"]
    cold, warm = reports
    # And the cold one bills duration + init rounded up to the ms: 102.5 + 250.3 = 352.8 -> 353 ms at 1 GB
    assert cold.billed_ms == 353 and cold.gb_seconds == pytest.approx(0.353)
    assert cold.max_memory_mb == 88 and cold.cpu_ms is None
    # And the warm one 40 ms at 2 GB = 0.08 GB-s, with its CPU time
    assert warm.gb_seconds == pytest.approx(0.08) and warm.cpu_ms == 31.5 and warm.init_ms == 0


def _event(event_id: int, kind: str, previous: int = 0, **details: object) -> dict:
    return {"id": event_id, "previousEventId": previous, "type": kind, **details}


def _task(first_id: int, name: str, resource_type: str, resource: str, output: dict, *, retries: int = 0
          ) -> list[dict]:
    """A Task state's events: entered, scheduled/started (once more per retry), succeeded, exited."""
    events = [_event(first_id, "TaskStateEntered", stateEnteredEventDetails={"name": name})]
    i = first_id
    for attempt in range(retries + 1):
        scheduled = _event(i + 1, "TaskScheduled", i,
                           taskScheduledEventDetails={"resourceType": resource_type, "resource": resource})
        started = _event(i + 2, "TaskStarted", i + 1)
        events += [scheduled, started]
        if attempt < retries:
            events.append(_event(i + 3, "TaskFailed", i + 2))
        i += 3
    events.append(_event(i, "TaskSucceeded", i - 1, taskSucceededEventDetails={
        "resourceType": resource_type, "resource": resource, "output": json.dumps(output)}))
    events.append(_event(i + 1, "TaskStateExited", i, stateExitedEventDetails={"name": name}))
    return events


def test_before_bill_counts_transitions_retries_and_reported_requests() -> None:
    # Given one stream-second: a converter that PUT 3 objects after one HEAD and was retried once, a
    # detector that GET 3, a Pass state, the workflow's own Record PUT and one SNS publish
    events = (
        _task(1, "Convert", "lambda", "invoke",
              {"Payload": {"s3_requests": {"HeadObject": 1, "PutObject": 3}}}, retries=1)
        + _task(20, "Detect", "lambda", "invoke",
                {"Payload": {"usage": [{"function": "freeze", "s3_requests": {"GetObject": 3}}]}})
        + [_event(40, "PassStateEntered", stateEnteredEventDetails={"name": "Evaluate"})]
        + _task(50, "Notify", "sns", "publish", {})
        + _task(60, "Record", "aws-sdk:s3", "putObject", {})
    )
    reports = {"converter": parse_reports([WARM_REPORT]), "detector-freeze": parse_reports([AWS_REPORT])}
    bill = before_bill(events, reports, stream_seconds=1, wall_s=2.0, executions=1, corrective_action_puts=1)
    # Then 5 states entered + 1 retry = 6 transitions
    assert transitions(events) == {"entered": 5, "retries": 1, "total": 6}
    assert bill.state_transitions == 6
    # And S3: PUT 3 (converter) + 1 (Record) + 1 (corrective action) = 5; GET 3; HEAD 1
    s3 = bill.s3_requests
    assert (s3["put"], s3["get"], s3["head"], s3["list"], s3["total"]) == (5, 3, 1, 0, 9)
    assert s3["by_source"]["workflow"] == {"PutObject": 1}
    # And SNS 1, Lambda 2 invocations (from the REPORT lines), 0.08 + 0.353 GB-s; CPU unknown for one
    assert bill.sns_publishes == 1 and bill.lambda_invocations == 2
    assert bill.lambda_gb_seconds == pytest.approx(0.433)
    assert bill.cpu_s is None
    assert bill.as_dict()["lambda_invocations_by_workflow"] == 3  # two attempts + the detector


def test_after_bill_adds_jobs_and_keeps_idle_polling_apart() -> None:
    # Given two jobs of 90 and 30 stream-seconds, one failed job, and one worker's idle polls
    usages = [
        {"job_id": "a", "stream_id": "s1", "stream_seconds": 90, "outcome": "analysed", "defects": 2,
         "requests": {"s3": {"GetObject": 1, "PutObject": 2}, "sns": {"Publish": 2},
                      "sqs": {"ReceiveMessage": 1, "DeleteMessage": 1, "ChangeMessageVisibility": 2}},
         "cpu_s": 3.5, "wall_s": 5.0},
        {"job_id": "b", "stream_id": "s2", "stream_seconds": 30, "outcome": "analysed", "defects": 0,
         "requests": {"s3": {"GetObject": 1, "PutObject": 1},
                      "sqs": {"ReceiveMessage": 1, "DeleteMessage": 1}}, "cpu_s": 1.25, "wall_s": 2.0},
        {"job_id": "c", "stream_id": "bad", "stream_seconds": 0, "outcome": "failed", "defects": 0,
         "requests": {"s3": {"GetObject": 1}, "sns": {"Publish": 1}, "sqs": {"ReceiveMessage": 1}},
         "cpu_s": 0.05, "wall_s": 0.1},
    ]
    idle = [{"requests": {"sqs": {"ReceiveMessage": 7}}}]
    reports = {"corrective-action": parse_reports([AWS_REPORT])}
    bill = after_bill(usages, wall_s=9.0, idle=idle, reports=reports, corrective_action_puts=2)
    out = bill.as_dict()
    # Then only analysed jobs count as stream-seconds: 90 + 30
    assert out["stream_seconds"] == 120
    # And S3: GET 3, PUT 2 + 1 + 2 corrective-action records = 5
    assert (out["s3_requests"]["get"], out["s3_requests"]["put"]) == (3, 5)
    # And SQS per job: 3 receives, 2 deletes, 2 extensions = 7; the 7 idle receives shown apart
    assert out["sqs_requests"]["ReceiveMessage"] == 3 and out["sqs_requests"]["idle_ReceiveMessage"] == 7
    assert out["sqs_requests"]["total"] == 7
    # And SNS 3 publishes; CPU 3.5 + 1.25 + 0.05 jobs, corrective action's CPU unknown -> None
    assert out["sns_publishes"] == 3 and out["service_cpu_s"] == pytest.approx(4.8)
    assert out["cpu_s"] is None and out["lambda_invocations"] == 1 and out["state_transitions"] == 0
    # And per stream-second: 7 SQS / 120
    assert out["per_stream_second"]["sqs_requests"] == pytest.approx(0.058, abs=1e-3)


def test_s3_classes_put_heads_apart_and_total_everything() -> None:
    s3 = s3_by_class({"a": {"PutObject": 2, "CopyObject": 1, "HeadObject": 4}, "b": {"ListObjectsV2": 1}})
    assert (s3["put"], s3["get"], s3["head"], s3["list"], s3["total"]) == (3, 0, 4, 1, 8)


def test_every_s3_list_operation_is_billed_as_a_list() -> None:
    # ListBuckets and the multipart listings are LIST requests too (billed at the PUT rate)
    s3 = s3_by_class({"a": {"ListBuckets": 1, "ListMultipartUploads": 2, "ListParts": 3}})
    assert (s3["list"], s3["total"]) == (6, 6)
