"""What an execution history says a Standard workflow did, as Step Functions bills it."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any


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


# The converter's error for a live stream's second not published yet: each one is a wait at the live edge
# (a Retry of Convert); its message ends with the invocation's S3 requests as JSON.
LIVE_EDGE_WAIT = "SecondNotPublishedYet"
_WAIT_REQUESTS = re.compile(r"\[s3 (\{.*?\})\]")


def live_edge_waits(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every wait at the live edge: when, and the S3 requests the converter made to find it out."""
    waits = []
    for event in events:
        details = event.get("taskFailedEventDetails") or {}
        if details.get("error") != LIVE_EDGE_WAIT:
            continue
        try:
            message = json.loads(details.get("cause") or "{}").get("errorMessage", "")
        except ValueError:
            message = details.get("cause") or ""
        found = _WAIT_REQUESTS.search(message)
        waits.append({"at": event["timestamp"], "s3_requests": json.loads(found.group(1)) if found else {}})
    return waits


def seconds_completed(events: list[dict[str, Any]]) -> dict[int, Any]:
    """{stream-second: when its Record state finished} (needs the history with its data)."""
    done = {}
    for event in events:
        details = event.get("stateExitedEventDetails") or {}
        if event["type"] == "TaskStateExited" and details.get("name") == "Record":
            done[int(json.loads(details["output"])["second"])] = event["timestamp"]
    return done


def continued_as(events: list[dict[str, Any]]) -> str | None:
    """The execution this one handed its cursor to (ContinueAsNew's states:startExecution), if any."""
    for event in events:
        details = event.get("taskSucceededEventDetails")
        if details and (details.get("resourceType"), details.get("resource")) == ("states", "startExecution"):
            return json.loads(details["output"])["ExecutionArn"]
    return None


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
    for wait in live_edge_waits(events):  # the converter's invocations that found second n unpublished
        out.setdefault("converter", Counter()).update(wait["s3_requests"])
    return out
