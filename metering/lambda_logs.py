"""The Lambda runtime's REPORT lines: one per invocation, with what AWS bills (duration, init, memory)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

REPORT = re.compile(r"REPORT RequestId: (?P<id>\S+)\s+Duration: (?P<ms>[\d.]+) ms"
                    r".*?Memory Size: (?P<mb>\d+) MB(?:.*?Max Memory Used: (?P<max_mb>\d+) MB)?"
                    r"(?:.*?Init Duration: (?P<init>[\d.]+) ms)?"
                    # not in AWS's REPORT lines: our process executor adds the invocation's CPU time
                    r"(?:.*?CPU Time: (?P<cpu>[\d.]+) ms)?")


@dataclass
class Report:
    request_id: str
    duration_ms: float
    init_ms: float
    memory_mb: int
    cpu_ms: float | None = None  # only where the runtime reports it (the LocalStack process executor)
    max_memory_mb: int | None = None

    @property
    def billed_ms(self) -> int:
        return math.ceil(self.duration_ms + self.init_ms)

    @property
    def gb_seconds(self) -> float:
        return self.billed_ms / 1000 * self.memory_mb / 1024


def parse_reports(messages: Iterable[str]) -> list[Report]:
    """The REPORT lines among log messages, one per request id (a repeated line counts once)."""
    reports: dict[str, Report] = {}
    for message in messages:
        match = REPORT.search(message)
        if match:
            reports[match["id"]] = Report(
                match["id"], float(match["ms"]), float(match["init"] or 0), int(match["mb"]),
                float(match["cpu"]) if match["cpu"] else None,
                int(match["max_mb"]) if match["max_mb"] else None)
    return list(reports.values())


def log_messages(logs: Any, function_name: str, since_ms: int) -> list[str]:
    """A function's log messages since a time, from CloudWatch Logs (`logs`: a client)."""
    messages: list[str] = []
    kwargs: dict[str, Any] = {"logGroupName": f"/aws/lambda/{function_name}", "startTime": since_ms}
    try:
        while True:
            page = logs.filter_log_events(**kwargs)
            messages += [event["message"] for event in page["events"]]
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
    except logs.exceptions.ResourceNotFoundException:
        return []
    return messages


def lambda_reports(logs: Any, function_name: str, since_ms: int) -> list[Report]:
    """A function's REPORT lines since a time, from CloudWatch Logs (`logs`: a client)."""
    return parse_reports(log_messages(logs, function_name, since_ms))


def logged_json(messages: list[str], message: str) -> list[dict[str, Any]]:
    """The structured (Powertools) log lines whose message is `message`, one per request id."""
    found: dict[str, dict[str, Any]] = {}
    for text in messages:
        try:
            line = json.loads(text)
        except ValueError:
            continue
        if isinstance(line, dict) and line.get("message") == message:
            found[str(line.get("function_request_id") or len(found))] = line
    return list(found.values())


def logged_at(timestamp: str) -> float:
    """Epoch seconds of a Powertools log line's `timestamp` ("2026-12-07 14:50:01,123+0000", the
    logger's default format: taken when the line is written, to the millisecond)."""
    return datetime.strptime(timestamp.replace(",", "."), "%Y-%m-%d %H:%M:%S.%f%z").timestamp()


def cpu_s(reports: list[Report]) -> float | None:
    """Total CPU time of the invocations, or None unless every REPORT line gave it."""
    if not reports or any(r.cpu_ms is None for r in reports):
        return None
    return round(sum(r.cpu_ms or 0.0 for r in reports) / 1000, 3)


def function_usage(reports: list[Report]) -> dict[str, Any]:
    return {"invocations": len(reports),
            "duration_s": round(sum(r.duration_ms for r in reports) / 1000, 3),
            "init_s": round(sum(r.init_ms for r in reports) / 1000, 3),
            "cpu_s": cpu_s(reports),
            "memory_mb": reports[0].memory_mb if reports else None,
            "max_memory_used_mb": max((r.max_memory_mb for r in reports if r.max_memory_mb is not None),
                                      default=None),
            "gb_seconds": round(sum(r.gb_seconds for r in reports), 4)}
