"""The event-driven serverless design in the demo: the stream published as live segments into the source
bucket (at full speed by `run_serverless`, or live by a shared publisher), followed by the deployed route
(S3 -> EventBridge -> SQS -> the segment analyser) to its end or its stall, its results, notifications
and corrective actions collected, its bill measured (metering) and its lag to the live edge computed
from the analyser's own log lines (`seconds_analysed_at`)."""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

from demo.deploy import ServerlessStack, Stack
from demo.run import (
    POLL_S,
    Aws,
    DesignRun,
    Observer,
    ProgressFn,
    RunError,
    await_actions,
    await_reports,
    list_keys,
    stack_functions,
    stream_of,
)
from lambdas.segment_analyzer.service import RESULTS_PART, STATE_PREFIX
from lambdas.shared.notifications import SERVERLESS, design_of
from lambdas.shared.results import RESULTS_PREFIX
from metering.bill import CORRECTIVE_ACTION, SEGMENT_ANALYZER, serverless_bill
from metering.lag import lag_report
from metering.lambda_logs import Report, lambda_reports, log_messages, logged_at, logged_json
from sample_streams.publish import PublishReport, publish

SEGMENT_SECONDS = 2.0  # as the live demo publishes (a packager's common 2 s segments)


def stream_state(aws: Aws, stack: ServerlessStack, stream_id: str) -> dict[str, Any] | None:
    """The stream's state object (`state/<stream_id>.json`: the next segment and second it waits for),
    with its LastModified as `written_at` (epoch seconds); None before its first segment is analysed."""
    try:
        found = aws.s3.get_object(Bucket=stack.state_bucket, Key=f"{STATE_PREFIX}{stream_id}.json")
    except aws.s3.exceptions.NoSuchKey:
        return None
    return {**json.loads(found["Body"].read()), "written_at": found["LastModified"].timestamp()}


def run_serverless(aws: Aws, stack: Stack, path: Path, *, observer: Observer,
                   progress: ProgressFn | None = None, timeout_s: float = 900) -> DesignRun:
    """Publish `path` as a live stream at full speed, let the third stack analyse it, collect what it
    produced and cost."""
    design = serverless_of(stack)
    stream_id = re.sub(r"[^A-Za-z0-9._-]", "-", Path(path).stem)[:30] + "-sl-" + uuid.uuid4().hex[:6]
    since_ms = int(time.time() * 1000)
    started = time.monotonic()
    report = publish(path, s3=aws.s3, bucket=design.source_bucket, stream_id=stream_id,
                     segment_seconds=SEGMENT_SECONDS, speed=float("inf"))
    return follow_serverless(aws, stack, report, observer=observer, since_ms=since_ms, started=started,
                             progress=progress, timeout_s=timeout_s)


def serverless_of(stack: Stack) -> ServerlessStack:
    if stack.serverless is None:
        raise RunError("the serverless stack is not deployed")
    return stack.serverless


def follow_serverless(aws: Aws, stack: Stack, report: PublishReport, *, observer: Observer, since_ms: int,
                      started: float, progress: ProgressFn | None = None, timeout_s: float = 900
                      ) -> DesignRun:
    """Wait until the design has analysed the published stream `report` to its end (its state says
    `ended`) or reported it stalled, then collect its records, notifications, corrective actions, bill
    and lag. `since_ms` (epoch ms) and `started` (monotonic) are when publishing began."""
    design = serverless_of(stack)
    stream_id = report.stream_id
    functions = {name: role for name, role in stack_functions(aws, design.name).items()
                 if role == SEGMENT_ANALYZER}
    corrective = {name: role for name, role in stack_functions(aws, stack.name).items()
                  if role == CORRECTIVE_ACTION}
    deadline = time.monotonic() + timeout_s
    while True:
        state = stream_state(aws, design, stream_id)
        if progress:
            progress(int(state["next_second"]) if state else 0, None)
        if state and (state["ended"] or state.get("stalled")):
            break
        if time.monotonic() > deadline:
            raise RunError(f"stream {stream_id} not analysed to its end by the serverless design after "
                           f"{timeout_s:.0f} s (state: {state})")
        time.sleep(POLL_S)
    wall_s = round(time.monotonic() - started, 3)
    mine = lambda n: stream_of(n) == stream_id and design_of(n["attributes"]) == SERVERLESS  # noqa: E731
    if state.get("stalled"):  # its notice goes out once the tail is analysed and recorded
        observer.drain(until=lambda got: any(mine(n) and n["attributes"].get("kind") == "stream_stalled"
                                             for n in got), timeout_s=120)
    records = stream_records(aws, design, stream_id)
    expected = sum(len(r["defects"]) for r in records) + (1 if state.get("stalled") else 0)
    received = observer.drain(until=lambda got: sum(1 for n in got if mine(n)) >= expected)
    ours = [n for n in received if mine(n)]
    defect_messages = sum(1 for n in ours if n["attributes"].get("kind") == "defect")
    actions = await_actions(aws, design.results_bucket, stream_id, defect_messages)
    # Its stall watches are part of what it costs: wait until each one armed has fired (the last fires up
    # to stall_timeout_s after the stream's last segment) and count the invocations its log lines name.
    messages = await_watches(aws, functions, since_ms, stream_id, deadline=time.monotonic() + WATCH_WAIT_S)
    ids = {str(line["function_request_id"]) for line in _lines(messages)
           if line.get("stream_id") == stream_id and line.get("function_request_id")}
    # Apart: on a live stream the corrective action's lines include the other designs' invocations.
    reports = {**await_own_reports(aws, functions, since_ms, ids),
               **await_reports(aws, corrective, since_ms, defect_messages)}
    # The corrective action also acts on the other designs' notifications of the same live stream: this
    # design caused one invocation per defect message of its own.
    if CORRECTIVE_ACTION in reports:
        reports[CORRECTIVE_ACTION] = reports[CORRECTIVE_ACTION][:defect_messages]
    messages = [m for name in functions for m in log_messages(aws.logs, name, since_ms)]
    # Only the invocations that named this stream: other streams' segments may be analysed meanwhile.
    requests = [line["requests"] for line in logged_json(messages, "requests")
                if str(line.get("function_request_id")) in ids]
    watch_requests = [line["requests"] for line in logged_json(messages, "stall watch requests")
                      if str(line.get("function_request_id")) in ids]
    # Deliveries of a segment already analysed (at-least-once: the state turns them into duplicates).
    duplicates = sum(1 for line in _lines(messages)
                     if line.get("message") == "segment duplicate" and line.get("stream_id") == stream_id)
    # Every object the publisher wrote is an S3 event on EventBridge: each segment and each playlist.
    bill = serverless_bill(reports, requests, stream_seconds=len(records), wall_s=wall_s,
                           segments=len(report.segments), objects_written=report.objects_written,
                           duplicates=duplicates,
                           corrective_action_puts=len(actions), watch_requests=watch_requests)
    seconds = sorted(r["second"] for r in records)
    ok = seconds == list(range(len(seconds))) and bool(seconds) and not state.get("stalled")
    error = None if ok else "stalled" if state.get("stalled") else f"seconds recorded: {seconds}"
    notified = [(int(n["message"]["second"]), n["published_at"]) for n in ours
                if n["attributes"].get("kind") == "defect" and n.get("published_at") is not None]
    return DesignRun(stream_id=stream_id, source=f"s3://{design.source_bucket}/{report.playlist_key}",
                     status="SUCCEEDED" if ok else "FAILED", error=error, records=records,
                     notifications=ours, corrective_actions=actions, bill=bill, wall_s=wall_s,
                     # Where each segment starts and ends: `cost_model count --summary` counts the windows
                     # from it.
                     detail={"segments": len(report.segments), "published": report.to_dict()},
                     published=report,
                     lag=lag_report(seconds_analysed_at(messages, stream_id), notified, report.landed_at))


# A stall watch fires stall_timeout_s (lambdas/segment_analyzer/settings.py, 30 s) after it is armed; SQS
# and the event source add a few seconds.
WATCH_WAIT_S = 30 + 45
REPORT_WAIT_S = 60


def await_watches(aws: Aws, functions: dict[str, str], since_ms: int, stream_id: str, *,
                  deadline: float) -> list[str]:
    """The analyser's log messages since `since_ms`, once every stall watch armed for the stream has been
    checked ("stall watch armed" / "stall watch checked" lines), or at the deadline."""
    while True:
        messages = [m for name in functions for m in log_messages(aws.logs, name, since_ms)]
        said = [line["message"] for line in _lines(messages) if line.get("stream_id") == stream_id]
        checked, armed = said.count("stall watch checked"), said.count("stall watch armed")
        if checked >= armed or time.monotonic() > deadline:
            return messages
        time.sleep(1.0)


def await_own_reports(aws: Aws, functions: dict[str, str], since_ms: int, request_ids: set[str],
                      timeout_s: float = REPORT_WAIT_S) -> dict[str, list[Report]]:
    """The analyser's REPORT lines, once there is one for every invocation its log lines named (on a busy
    host LocalStack delivers a REPORT line well after the invocation's own lines)."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = [r for name in functions for r in lambda_reports(aws.logs, name, since_ms)]
        if request_ids <= {r.request_id for r in found} or time.monotonic() > deadline:
            return {SEGMENT_ANALYZER: found} if found else {}
        time.sleep(1.0)


def _lines(messages: list[str]) -> list[dict[str, Any]]:
    """The structured (Powertools) lines among log messages."""
    out = []
    for text in messages:
        try:
            line = json.loads(text)
        except ValueError:
            continue
        if isinstance(line, dict):
            out.append(line)
    return out


def seconds_analysed_at(messages: list[str], stream_id: str) -> dict[int, float]:
    """{stream-second: when its segment's analysis was recorded (epoch seconds)}, from the analyser's
    "segment analysed" log lines (Powertools' own timestamp, taken as the line is written, after the
    segment's results object)."""
    done: dict[int, float] = {}
    for line in _lines(messages):
        if not (line.get("message") == "segment analysed" and line.get("stream_id") == stream_id
                and line.get("recorded")):
            continue
        at = logged_at(str(line["timestamp"]))
        for second in line.get("seconds", []):
            done.setdefault(int(second), at)
    return done


def stream_records(aws: Aws, design: ServerlessStack, stream_id: str) -> list[dict[str, Any]]:
    """Every second record of the stream, by second (one object per analysed segment, a line a second)."""
    bucket = design.results_bucket
    keys = [k for k in list_keys(aws, bucket, RESULTS_PREFIX)
            if f"/stream={stream_id}/" in k and k.endswith(f".{RESULTS_PART}.json")]
    lines = [line for key in keys
             for line in aws.s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines()]
    return sorted((json.loads(line) for line in lines if line.strip()), key=lambda r: r["second"])


def add_to_summary(summary: dict[str, Any], run: DesignRun, monolith: list[dict[str, Any]] | None,
                   *, streams: int, hours: float) -> None:
    """The third design's run and its priced bill beside the before's and the after's."""
    from cost_model.bills import priced
    from cost_model.prices import PriceBook
    from demo.deploy import REGION

    summary["serverless"] = run.summary()
    if monolith is not None:
        summary["serverless"]["matches_monolith"] = monolith == run.defects
    if run.status == "SUCCEEDED" and "prices" in summary:
        prices = summary["prices"]
        prices["serverless"] = priced(summary["serverless"], PriceBook(REGION), streams=streams, hours=hours)
        after_usd = prices["after"]["per_stream_hour_usd"]
        prices["serverless_to_after"] = (prices["serverless"]["per_stream_hour_usd"] / after_usd
                                         if after_usd else None)
