"""The event-driven serverless design in the demo: the stream published as live segments into the source
bucket (at full speed), followed by the deployed route (S3 -> EventBridge -> SQS -> the segment analyser),
its results, notifications and corrective actions collected, and its bill measured (metering)."""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from demo.after import defects_in
from demo.deploy import ServerlessStack, Stack
from demo.run import (
    POLL_S,
    Aws,
    Observer,
    ProgressFn,
    RunError,
    await_actions,
    await_reports,
    list_keys,
    stack_functions,
    stream_of,
)
from lambdas.segment_analyzer.service import DESIGN, RESULTS_PART
from lambdas.shared.results import RESULTS_PREFIX
from metering import Bill
from metering.bill import CORRECTIVE_ACTION, SEGMENT_ANALYZER, serverless_bill
from metering.lambda_logs import log_messages, logged_json
from sample_streams.publish import PublishReport, publish

SEGMENT_SECONDS = 2.0  # as the live demo publishes (a packager's common 2 s segments)


@dataclass
class ServerlessRun:
    stream_id: str
    source: str
    status: str  # SUCCEEDED | FAILED
    error: str | None
    records: list[dict[str, Any]]
    notifications: list[dict[str, Any]]
    corrective_actions: list[dict[str, Any]]
    published: PublishReport
    bill: Bill
    wall_s: float

    @property
    def defects(self) -> list[dict[str, Any]]:
        return defects_in(self.records)

    def summary(self) -> dict[str, Any]:
        return {"stream_id": self.stream_id, "source": self.source, "status": self.status,
                "error": self.error, "defects": self.defects, "notifications": self.notifications,
                "corrective_actions": self.corrective_actions, "segments": len(self.published.segments),
                # Where each segment starts and ends: `cost_model count --summary` counts the windows from it.
                "published": self.published.to_dict(),
                **self.bill.as_dict(), "sns_deliveries_observed": len(self.notifications)}


def stream_state(aws: Aws, stack: ServerlessStack, stream_id: str) -> dict[str, Any] | None:
    try:
        body = aws.s3.get_object(Bucket=stack.state_bucket, Key=f"state/{stream_id}.json")["Body"].read()
    except aws.s3.exceptions.NoSuchKey:
        return None
    return json.loads(body)


def run_serverless(aws: Aws, stack: Stack, path: Path, *, observer: Observer,
                   progress: ProgressFn | None = None, timeout_s: float = 900) -> ServerlessRun:
    """Publish `path` as a live stream, let the third stack analyse it, collect what it produced and cost."""
    if stack.serverless is None:
        raise RunError("the serverless stack is not deployed")
    design = stack.serverless
    stream_id = re.sub(r"[^A-Za-z0-9._-]", "-", Path(path).stem)[:30] + "-sl-" + uuid.uuid4().hex[:6]
    functions = {name: role for name, role in stack_functions(aws, design.name).items()
                 if role == SEGMENT_ANALYZER}
    corrective = {name: role for name, role in stack_functions(aws, stack.name).items()
                  if role == CORRECTIVE_ACTION}
    since_ms = int(time.time() * 1000)
    started = time.monotonic()
    report = publish(path, s3=aws.s3, bucket=design.source_bucket, stream_id=stream_id,
                     segment_seconds=SEGMENT_SECONDS, speed=float("inf"))
    deadline = time.monotonic() + timeout_s
    while True:
        state = stream_state(aws, design, stream_id)
        if progress:
            progress(int(state["next_second"]) if state else 0, None)
        if state and state["ended"]:
            break
        if time.monotonic() > deadline:
            raise RunError(f"stream {stream_id} not analysed to its end by the serverless design after "
                           f"{timeout_s:.0f} s (state: {state})")
        time.sleep(POLL_S)
    wall_s = round(time.monotonic() - started, 3)
    records = stream_records(aws, design, stream_id)
    published = sum(len(r["defects"]) for r in records)
    # The before follows every live stream too (its live input): this design's messages say so.
    mine = lambda n: stream_of(n) == stream_id and n["attributes"].get("design") == DESIGN  # noqa: E731
    received = observer.drain(until=lambda got: sum(1 for n in got if mine(n)) >= published)
    ours = [n for n in received if mine(n)]
    defect_messages = sum(1 for n in ours if n["attributes"].get("kind") == "defect")
    actions = await_actions(aws, design.results_bucket, stream_id, defect_messages)
    invocations = len(report.segments)  # at least one per segment (more with retries)
    reports = await_reports(aws, {**functions, **corrective}, since_ms, invocations + defect_messages)
    # The corrective action also acts on the before's notifications of the same live stream: this design
    # caused one invocation per defect message of its own.
    if CORRECTIVE_ACTION in reports:
        reports[CORRECTIVE_ACTION] = reports[CORRECTIVE_ACTION][:defect_messages]
    requests = [line["requests"] for name in functions
                for line in logged_json(log_messages(aws.logs, name, since_ms), "requests")]
    # Every object the publisher wrote is an S3 event on EventBridge: each segment and each playlist.
    objects = sum(1 for s in report.segments if s.landed_at is not None) + len(report.segments)
    bill = serverless_bill(reports, requests, stream_seconds=len(records), wall_s=wall_s,
                           segments=len(report.segments), objects_written=objects,
                           corrective_action_puts=len(actions))
    seconds = sorted(r["second"] for r in records)
    ok = seconds == list(range(len(seconds))) and bool(seconds)
    return ServerlessRun(stream_id=stream_id, source=f"s3://{design.source_bucket}/{report.playlist_key}",
                         status="SUCCEEDED" if ok else "FAILED",
                         error=None if ok else f"seconds recorded: {seconds}", records=records,
                         notifications=ours, corrective_actions=actions, published=report, bill=bill,
                         wall_s=wall_s)


def stream_records(aws: Aws, design: ServerlessStack, stream_id: str) -> list[dict[str, Any]]:
    """Every second record of the stream, by second (one object per analysed segment, a line a second)."""
    bucket = design.results_bucket
    keys = [k for k in list_keys(aws, bucket, RESULTS_PREFIX)
            if f"/stream={stream_id}/" in k and k.endswith(f".{RESULTS_PART}.json")]
    lines = [line for key in keys
             for line in aws.s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines()]
    return sorted((json.loads(line) for line in lines if line.strip()), key=lambda r: r["second"])


def add_to_summary(summary: dict[str, Any], run: ServerlessRun, monolith: list[dict[str, Any]] | None,
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
