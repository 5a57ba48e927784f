"""A live stream through the deployed before: published as HLS into the source bucket in real time (or
faster), followed by the workflow that its first playlist started, and its lag to the live edge measured.

Nothing here starts an execution: the bucket's event for the first playlist reaches the live-starter
function through EventBridge, as on AWS. The run is found by its execution name (the stream id), followed
to its end, collected like a file's run (`demo.run.collect_run`), and its lag computed from the
publisher's landing times, the history's Record times and the notifications' publish times.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from demo.deploy import Stack
from demo.run import (
    Aws,
    Observer,
    ProgressFn,
    RunError,
    RunResult,
    collect_run,
    follow,
    stack_functions,
)
from lambdas.live_starter.service import NAME_STREAM_CHARS
from metering.lag import lag_report
from metering.stepfunctions import continued_as, history, live_edge_waits, seconds_completed
from sample_streams.publish import (
    PublishedSegment,
    PublishFaults,
    PublishReport,
    publish,
    second_landed_at,
)

START_TIMEOUT_S = 180  # S3 -> EventBridge -> starter -> StartExecution, and the after's tasks starting first


@dataclass
class LiveRun:
    run: RunResult
    published: PublishReport
    lag: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {**self.run.summary(), "live": {"published": self.published.to_dict(), "lag": self.lag}}


class Publisher(threading.Thread):
    """`sample_streams publish` in the background; its report (or error) once it is done."""

    def __init__(self, aws: Aws, bucket: str, path: Path, stream_id: str, *, segment_seconds: float,
                 speed: float, faults: PublishFaults | None,
                 before_segment: Callable[[int], None] | None = None) -> None:
        super().__init__(name=f"publish-{stream_id}", daemon=True)
        self.kwargs = {"s3": aws.s3, "bucket": bucket, "stream_id": stream_id,
                       "segment_seconds": segment_seconds, "speed": speed, "faults": faults,
                       "before_segment": before_segment}
        self.path = path
        self.report: PublishReport | None = None
        self.error: BaseException | None = None
        self.listed: list[PublishedSegment] = []  # segments listed so far: the live edge, for displays
        self.edge_s = 0.0

    def run(self) -> None:
        def seen(segment: PublishedSegment) -> None:
            self.listed.append(segment)
            self.edge_s = segment.start_s + segment.duration_s

        try:
            self.report = publish(self.path, on_segment=seen, **self.kwargs)
        except BaseException as error:  # reported by finish()
            self.error = error

    def landed_at(self, second: int) -> float | None:
        """When `second` became readable, while publishing goes on: None until the segments listed so far
        reach its end (or the stream is over)."""
        listed = list(self.listed)
        if self.report is None and (not listed or listed[-1].start_s + listed[-1].duration_s < second + 1):
            return None
        return second_landed_at(listed, second)

    def finish(self, timeout_s: float) -> PublishReport:
        """The report once publishing is over; waits for another thread to start it (the after starts
        the shared publisher once its tasks are ready)."""
        deadline = time.monotonic() + timeout_s
        while self.ident is None and time.monotonic() < deadline:  # not started yet
            time.sleep(0.2)
        if self.ident is None:
            raise RunError(f"publishing did not start within {timeout_s:.0f} s")
        self.join(max(0.0, deadline - time.monotonic()))
        if self.error is not None:
            raise RunError(f"publishing failed: {self.error}") from self.error
        if self.report is None:
            raise RunError(f"publishing did not finish within {timeout_s:.0f} s")
        return self.report


def await_live_edge_wait(aws: Aws, stack: Stack, stream_id: str, timeout_s: float = 300) -> None:
    """Block until the stream's workflow has waited at the live edge once (a stall that lasts until the
    workflow has caught up, whatever the machine's speed)."""
    arn = find_execution(aws, stack, stream_id, timeout_s)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        arns = [arn]
        while (following := continued_as(history(aws.sfn, arns[-1], data=False))) is not None:
            arns.append(following)
        if any(live_edge_waits(history(aws.sfn, a, data=False)) for a in arns):
            return
        time.sleep(0.5)
    raise RunError(f"live stream {stream_id}: the workflow did not reach the live edge in {timeout_s:.0f} s")


def live_stream_id(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "-", path.stem)[:30] + "-" + uuid.uuid4().hex[:6]


def find_execution(aws: Aws, stack: Stack, stream_id: str, timeout_s: float = START_TIMEOUT_S) -> str:
    """The execution the live starter started for the stream (named after it)."""
    prefix = f"{stream_id[:NAME_STREAM_CHARS]}-"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pages = aws.sfn.get_paginator("list_executions").paginate(stateMachineArn=stack.state_machine_arn)
        for page in pages:
            for execution in page["executions"]:
                if execution["name"].startswith(prefix):
                    return execution["executionArn"]
        time.sleep(0.3)
    raise RunError(f"no execution started for live stream {stream_id} within {timeout_s:.0f} s "
                   "(S3 -> EventBridge -> live-starter)")


def run_live_before(
    aws: Aws, stack: Stack, path: Path, *, stream_id: str | None = None, segment_seconds: float = 2.0,
    speed: float = 1.0, faults: PublishFaults | None = None, progress: ProgressFn | None = None,
    observer: Observer | None = None, timeout_s: float = 1800,
    publisher: Publisher | None = None,
) -> LiveRun:
    """Publish `path` live (unless `publisher` already does) and follow it through the before."""
    path = Path(path)
    stream_id = stream_id or (publisher.kwargs["stream_id"] if publisher else live_stream_id(path))
    own_observer = observer is None
    observer = observer or Observer(aws, stack.topic_arn)
    functions = stack_functions(aws, stack.name)
    since_ms = int(time.time() * 1000)
    started = time.monotonic()
    if publisher is None:
        publisher = Publisher(aws, stack.source_bucket, path, stream_id, segment_seconds=segment_seconds,
                              speed=speed, faults=faults)
        publisher.start()
    try:
        first = find_execution(aws, stack, stream_id)
        executions = follow(aws, first, total=None, progress=progress, timeout_s=timeout_s)
        published = publisher.finish(timeout_s)
        wall_s = round(time.monotonic() - started, 3)
        # The starter ran once per playlist write: its REPORT lines belong to this run too.
        source = f"s3://{stack.source_bucket}/{published.playlist_key}"
        run = collect_run(aws, stack, observer, stream_id, source, executions, functions, since_ms, wall_s,
                          other_invocations=len(published.segments))
        # Every object written is an S3 event on EventBridge (the starter's rule reads the playlists'), as
        # the other designs' live bills count them.
        run.objects_written = published.objects_written
    finally:
        if own_observer:
            observer.close()
    completed = {second: at.timestamp() for ex in executions
                 for second, at in seconds_completed(ex.events).items()}
    notified = [(int(n["message"]["second"]), n["published_at"]) for n in run.notifications
                if n["attributes"].get("kind") == "defect" and n.get("published_at") is not None]
    return LiveRun(run=run, published=published, lag=lag_report(completed, notified, published.landed_at))


# --- the live demo ------------------------------------------------------------------------------
def lag_table(lags: dict[str, dict[str, Any]]) -> Any:
    """p50/p95/max lag per architecture, for stream-seconds and defect notifications."""
    from text_tables import text_table

    columns = ["architecture", "what", "count", "p50 s", "p95 s", "max s", "slope s/s", "keeps up"]
    table = text_table(*columns, right=tuple(columns[2:7]))

    def cell(value: Any) -> str:
        return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)

    for name, lag in lags.items():
        for what in ("seconds", "defects"):
            row = lag[what]
            keeps = {True: "yes", False: "NO (lag grows)", None: "-"}[row["keeps_up"]]
            table.add_row(name, "stream-second" if what == "seconds" else "defect notice", str(row["count"]),
                          *(cell(row[k]) for k in ("p50_s", "p95_s", "max_s", "slope_s_per_s")), keeps)
    return table


def work_per_second(bill: dict[str, Any]) -> dict[str, float | None]:
    """The before's lag per stream-second taken apart: LocalStack's wall time; the functions' measured
    busy time on the loop's critical path (the converter, then the slowest detector, which run in
    parallel) — the work; the rest — the emulator (Step Functions' transitions, invocation overhead) and
    any wait at the live edge (a run that falls behind never waits);
    and the critical path's measured CPU time as it would last on AWS at each function's CPU share
    (`metering.bill.aws_duration_s`), without the requests' latency, which LocalStack does not time as
    AWS does."""
    from metering.bill import aws_duration_s

    functions = bill["lambda_functions"]
    per = max(1, bill["stream_seconds"])
    converter = functions.get("converter", {})
    detectors = [f for role, f in functions.items() if role.startswith("detector-")]
    busy = (converter.get("duration_s") or 0) + max((d["duration_s"] for d in detectors), default=0)
    parts = [converter, *detectors]
    measured = all(f.get("cpu_s") is not None and f.get("memory_mb") for f in parts) and bool(detectors)
    cpu = sum(f["cpu_s"] for f in parts) if measured else None
    aws = None
    if measured:
        aws = aws_duration_s(converter["cpu_s"], converter["memory_mb"]) + max(
            aws_duration_s(d["cpu_s"], d["memory_mb"]) for d in detectors)
    wall = bill["wall_s"] / per
    return {"wall_s": round(wall, 3), "critical_path_busy_s": round(busy / per, 3),
            "emulator_s": round(max(0.0, wall - busy / per), 3),
            "cpu_s": round(cpu / per, 3) if cpu is not None else None,
            "critical_path_aws_cpu_s": round(aws / per, 3) if aws is not None else None}


# --- where each design is, from what it writes --------------------------------------------------
def current_lag(next_second: int, landed_at: Callable[[int], float | None], now: float) -> float:
    """How long the oldest published second a design has not analysed yet has been waiting: `now` minus
    the landing of `next_second`; 0 while that second is not published (the design waits at the edge)."""
    landed = landed_at(next_second)
    return 0.0 if landed is None else max(0.0, now - landed)


def after_position(aws: Aws, stack: Stack, stream_id: str) -> int:
    """The after's next second on a live stream, from its checkpoint (`followers/<id>.json`, written per
    results batch, per defect and every lease_s/3 while waiting): 0 before it has one."""
    from monolith.live import FollowerStore

    if stack.after is None:
        return 0
    checkpoint, _ = FollowerStore(aws.s3, stack.after.results_bucket).read(stream_id)
    return checkpoint.next_second if checkpoint is not None else 0


class LiveBoard:
    """The live display: the publisher's edge and, per design, the second it is on (from what it wrote)
    and its current lag (`current_lag`)."""

    def __init__(self, bars: Any, publisher: Publisher, designs: tuple[str, ...]) -> None:
        self.bars, self.publisher = bars, publisher
        self.edge = bars.add_task("live edge (published)", total=None)
        self.tasks = {name: bars.add_task(name, total=None) for name in designs}

    def update(self, positions: dict[str, int], now: float | None = None,
               done: Collection[str] = ()) -> None:
        """`positions`: each design's next second; `done`: the designs that have finished the stream."""
        now = time.time() if now is None else now
        edge = int(self.publisher.edge_s)
        self.bars.update(self.edge, completed=edge)
        for name, task in self.tasks.items():
            second = positions.get(name, 0)
            if name in done:
                self.bars.update(task, completed=second, description=f"{name:<10} done      ")
                continue
            lag = current_lag(second, self.publisher.landed_at, now)
            self.bars.update(task, completed=second, description=f"{name:<10} lag {lag:5.1f} s")
