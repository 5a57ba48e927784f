"""Counts measured on a real run — a demo summary or an execution's history — and the check that the
definition-derived counts equal them."""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cost_model.inputs import InputError
from metering.requests import S3_CLASSES
from metering.stepfunctions import (
    continued_as,
    history,
    lambda_outputs,
    lambda_reported_s3,
    service_calls,
    transitions,
)
from statemachine.asl import LoopModel


@dataclass
class Measured:
    """What one stream's run did. `source` says where the numbers came from."""

    source: str
    stream_seconds: int
    state_transitions: int
    executions: int = 1
    defect_seconds: int | None = None  # seconds whose loop took the notification branch
    notifications: int = 0
    corrective_actions: int | None = None
    retries: int = 0
    s3_requests: dict[str, int] = field(default_factory=dict)
    lambda_invocations: int | None = None
    lambda_gb_seconds: float | None = None
    entered: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    after: dict[str, Any] | None = None  # the after's run of the same stream (demo summary "after")
    serverless: dict[str, Any] | None = None  # the built event-driven design's run (summary "serverless")
    stream_path: str | None = None  # the local file that run analysed, when the summary names it
    live_edge_waits: int = 0  # a live run's Convert retries at the live edge
    live_segments: int | None = None  # a live run's segments (playlist writes); None: a file
    live_work_s: float | None = None  # a live run's busy time per stream-second on the loop's critical path

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "stream_seconds": self.stream_seconds,
            "state_transitions": self.state_transitions,
            "executions": self.executions,
            "defect_seconds": self.defect_seconds,
            "notifications": self.notifications,
            "corrective_actions": self.corrective_actions,
            "retries": self.retries,
            "s3_requests": self.s3_requests,
            "lambda_invocations": self.lambda_invocations,
            "lambda_gb_seconds": self.lambda_gb_seconds,
            "notes": self.notes,
        }


def _count(value: Any, name: str, path: Path) -> int:
    """A count given as a number or as a list of items (defects, notifications)."""
    if isinstance(value, list):
        return len(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise InputError(f"{path}: {name} must be a non-negative number or a list, got {value!r}")
    return int(value)


def read_summary(path: Path) -> Measured:
    """demo-output/summary.json from the LocalStack demo (make demo)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise InputError(f"{path}: cannot read the run summary ({error})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: the run summary must be a JSON object")
    missing = [k for k in ("stream_seconds", "state_transitions") if k not in data]
    if missing:
        raise InputError(f"{path}: the run summary lacks {', '.join(missing)}")
    seconds = _count(data["stream_seconds"], "stream_seconds", path)
    if seconds < 1:
        raise InputError(f"{path}: stream_seconds must be at least 1")
    s3 = data.get("s3_requests") or {}
    if not isinstance(s3, dict):
        raise InputError(f"{path}: s3_requests must be an object {{put, get, list, ...}}")
    gb_s = data.get("lambda_gb_seconds")
    measured = Measured(
        source=str(path),
        stream_seconds=seconds,
        state_transitions=_count(data["state_transitions"], "state_transitions", path),
        # make demo lists the execution ARNs (the first and every continuation)
        executions=_count(data.get("executions", len(data.get("execution_arns") or [])), "executions", path),
        defect_seconds=_count(data["defect_seconds"], "defect_seconds", path)
        if "defect_seconds" in data
        else None,
        notifications=_count(data.get("notifications", 0), "notifications", path),
        corrective_actions=_count(data["corrective_actions"], "corrective_actions", path)
        if "corrective_actions" in data
        else None,
        retries=_count(data.get("retries", 0), "retries", path),
        # Totals by request kind; nested breakdowns (the demo's `by_source`) are detail, not counts.
        s3_requests={
            str(k): _count(v, f"s3_requests.{k}", path) for k, v in s3.items() if not isinstance(v, dict)
        },
        lambda_invocations=_count(data["lambda_invocations"], "lambda_invocations", path)
        if "lambda_invocations" in data
        else None,
        lambda_gb_seconds=float(gb_s) if isinstance(gb_s, int | float) and gb_s >= 0 else None,
    )
    live = data.get("live")
    # A live run (make demo-live) keeps the other designs' runs of the stream under `live`; one that did
    # not follow it ({status: FAILED, error}) has no bill to check.
    followed = {name: run for name, run in (live.items() if isinstance(live, dict) else ())
                if name in ("after", "serverless") and isinstance(run, dict) and "stream_seconds" in run}
    if isinstance(live, dict):
        measured.notes += [f"{name}: did not follow the live stream ({run.get('error')}): nothing to check"
                           for name, run in live.items() if name in ("after", "serverless")
                           and isinstance(run, dict) and name not in followed]
    after = data.get("after", followed.get("after"))
    if after is not None and not isinstance(after, dict):
        raise InputError(
            f"{path}: after must be an object {{stream_seconds, s3_requests, sqs_requests, ...}}"
        )
    measured.after = after
    serverless = data.get("serverless", followed.get("serverless"))
    if serverless is not None and not isinstance(serverless, dict):
        raise InputError(
            f"{path}: serverless must be an object {{stream_seconds, segments, s3_requests, ...}}"
        )
    measured.serverless = serverless
    if live is not None:
        segments = (live.get("published") or {}).get("segments") if isinstance(live, dict) else None
        if not isinstance(segments, list):
            raise InputError(f"{path}: live.published.segments must be the published segments")
        measured.live_segments = len(segments)
        measured.live_edge_waits = _count(data.get("live_edge_waits", 0), "live_edge_waits", path)
        functions = data.get("lambda_functions") or {}
        busy = [f.get("duration_s") for role, f in functions.items() if role.startswith("detector-")]
        converter = (functions.get("converter") or {}).get("duration_s")
        if isinstance(converter, int | float) and busy and all(isinstance(b, int | float) for b in busy):
            measured.live_work_s = (converter + max(busy)) / seconds
        # Every wait is a retry of Convert: the retries the run measured.
        measured.retries = max(measured.retries, measured.live_edge_waits)
    stream_path = data.get("stream_path")
    if stream_path is not None and not isinstance(stream_path, str):
        raise InputError(f"{path}: stream_path must be a file path")
    measured.stream_path = stream_path
    return measured


# --- execution history -------------------------------------------------------------------------------
def stepfunctions_client() -> Any:
    """A Step Functions client; AWS_ENDPOINT_URL (LocalStack) is honoured explicitly."""
    import boto3

    return boto3.client("stepfunctions", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None)


def count_execution(
    client: Any,
    arn: str,
    *,
    loop: LoopModel,
    follow: bool = True,
    memory_mb: dict[str, int] | None = None,
    max_executions: int = 10_000,
) -> Measured:
    """Transitions, S3 requests (as the Lambdas reported them), invocations and approximate GB-seconds of
    an execution and, with `follow`, of the executions it continued as (states:startExecution). The
    history is read with the demo's own functions, so both ways of counting a run agree by construction."""
    total = Measured(source=arn, stream_seconds=0, state_transitions=0, executions=0, defect_seconds=0)
    s3: Counter[str] = Counter()
    invocations = 0
    gb_s = 0.0
    next_arn: str | None = arn
    while next_arn and total.executions < max_executions:
        events = history(client, next_arn)
        total.executions += 1
        counted = transitions(events)
        total.state_transitions += counted["total"]
        total.retries += counted["retries"]
        total.entered.update(
            e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")
        )
        for reported in lambda_reported_s3(events).values():
            s3.update(reported)
        for call, n in service_calls(events).items():
            if call.startswith("aws-sdk:s3:"):  # the workflow's own requests: putObject -> PutObject
                operation = call.removeprefix("aws-sdk:s3:")
                s3[operation[:1].upper() + operation[1:]] += n
        by_id = {e["id"]: e for e in events}
        for task, _, succeeded in lambda_outputs(events):
            invocations += 1
            seconds = _task_seconds(succeeded, by_id)
            if memory_mb and seconds is not None:
                gb_s += seconds * _memory_for(_function_name(task), memory_mb) / 1024
        next_arn = continued_as(events) if follow else None
    # The loop's entry runs once per stream-second; the states a defect second or a notification adds
    # (the Map, its per-item Task) are named by the definition, not assumed.
    total.stream_seconds = total.entered.get(loop.loop.entry, 0)
    total.defect_seconds = max((total.entered.get(n, 0) for n in loop.defect_second.entered), default=0)
    total.notifications = max((total.entered.get(n, 0) for n in loop.per_defect.entered), default=0)
    by_class: Counter[str] = Counter()
    for operation, n in s3.items():
        by_class[S3_CLASSES.get(operation, "other")] += n
    total.s3_requests = {
        "put": by_class["put"],
        "get": by_class["get"] + by_class["head"],  # a HEAD is billed as a GET
        "list": by_class["list"],
        **{f"op:{k}": v for k, v in sorted(s3.items())},
    }
    total.lambda_invocations = invocations
    total.lambda_gb_seconds = gb_s if memory_mb else None
    if memory_mb:
        total.notes.append("GB-seconds approximate: TaskStarted→TaskSucceeded times, not billed durations")
    return total


def _function_name(task: dict[str, Any]) -> str:
    """The invoked function's name from a TaskScheduled's parameters (a JSON document), or "*"."""
    try:
        parameters = json.loads(task.get("parameters") or "{}")
    except ValueError:
        return "*"
    return str(parameters.get("FunctionName", "*")).rsplit(":", 1)[-1]


def _memory_for(function: str, memory_mb: dict[str, int]) -> int:
    """The memory of a function by a key contained in its name ("converter"), else the "*" default."""
    name = function.lower()
    return next((mb for key, mb in memory_mb.items() if key != "*" and key in name), memory_mb.get("*", 0))


def _task_seconds(event: dict[str, Any], by_id: dict[Any, dict[str, Any]]) -> float | None:
    started = by_id.get(event.get("previousEventId"), {})
    if started.get("type") != "TaskStarted":
        return None
    end, start = event.get("timestamp"), started.get("timestamp")
    if isinstance(end, datetime) and isinstance(start, datetime):
        return max(0.0, (end - start).total_seconds())
    return None


# --- the check -----------------------------------------------------------------------------------
def shipped_seconds(path: Path, frames_per_second: int = 0) -> list[tuple[int, bool]]:
    """(frames shipped, audio object written) for each second of a stream file, as the converter ships
    them: its own decoder and frame picking, so a short last second counts what it really holds."""
    from lambdas.converter.decode import UnreadableStreamError, iter_seconds
    from lambdas.shared.frame_store import pick_frames

    try:
        return [
            (len(pick_frames(len(s.frames), frames_per_second)), s.audio is not None)
            for s in iter_seconds(path)
        ]
    except (UnreadableStreamError, OSError) as error:
        raise InputError(f"{path}: cannot count its frames ({error})") from None


def check(
    loop: LoopModel,
    m: Measured,
    *,
    seconds_per_execution: int,
    frames_shipped: int,
    needs: dict[str, tuple[bool, bool]],
    detectors: tuple[str, ...],
    shipped: list[tuple[int, bool]] | None = None,
    poll_s: float = 1.0,
) -> list[dict[str, Any]]:
    """Rows of {quantity, analytic, measured, equal, note}: what the definition and the pipeline
    configuration predict for this run's stream (its length, its defect seconds and notifications).
    `shipped` gives each second's real frames and audio (`shipped_seconds`); without it every second is
    taken as full: `frames_shipped` frames and an audio object."""
    defect_seconds = m.defect_seconds if m.defect_seconds is not None else m.notifications
    items = _spread(m.notifications, defect_seconds)
    tally, executions = loop.run(
        m.stream_seconds, seconds_per_execution=seconds_per_execution, defect_items=items, retries=m.retries
    )
    rows = [
        row(
            "state transitions",
            tally.transitions,
            m.state_transitions,
            "retries as measured" if m.retries else "",
        )
    ]
    if m.executions:
        rows.append(row("executions", executions, m.executions, ""))
    workflow_lambdas = tally.calls_matching("lambda:invoke")
    actions = m.corrective_actions if m.corrective_actions is not None else m.notifications
    live = m.live_segments is not None
    starts = m.live_segments or 0  # the live starter: one invocation and one playlist GET per write
    if live:
        # The model's rate (cost_model.model.live_usage) with this run's own busy time per second.
        work = m.live_work_s
        modelled = None if work is None else m.stream_seconds * max(0.0, 1.0 - work) / poll_s
        rows.append({"quantity": "waits at the live edge", "analytic": modelled,
                     "measured": m.live_edge_waits,
                     "equal": None, "note": "timing, not checked: " + (
                         f"the loop was busy {work:.2f} s per stream-second, so the model waits the rest "
                         f"of each second, one poll per {poll_s:g} s; a run that falls behind never waits"
                         if work is not None else "the run's function durations are unknown")})
    if m.lambda_invocations is not None:
        rows.append(
            row(
                "Lambda invocations",
                workflow_lambdas + m.live_edge_waits + actions + starts,
                m.lambda_invocations,
                f"{workflow_lambdas} workflow + {actions} corrective-action (one per notification)"
                + (f" + {m.live_edge_waits} converter at waits + {starts} live starter (one per playlist "
                   "write)" if live else ""),
            )
        )
    records = tally.calls.get("aws-sdk:s3:putObject", 0)
    seconds = m.stream_seconds
    if shipped is not None and len(shipped) != seconds:
        raise InputError(f"the stream has {len(shipped)} seconds but the run analysed {seconds}")
    per_second = shipped or [(frames_shipped, True)] * seconds
    basis = "the stream's real frames" if shipped else f"{frames_shipped} frames + audio every second"
    if "put" in m.s3_requests:
        frames = sum(f + (1 if a else 0) for f, a in per_second)
        predicted = frames + records + actions
        rows.append(
            row(
                "S3 PUT",
                predicted,
                m.s3_requests["put"],
                f"{frames} frame/audio objects ({basis}) + {records} Record PUTs + {actions} "
                "corrective-action records",
            )
        )
    if "get" in m.s3_requests:
        reads = sum(
            sum(
                (f if needs.get(d, (True, False))[0] else 0)
                + (1 if a and needs.get(d, (True, False))[1] else 0)
                for d in detectors
            )
            for f, a in per_second
        )
        if live:
            # A playlist GET per converter invocation (each wait too), each segment read once (one
            # converter environment), the starter's playlist GET per write.
            predicted = reads + seconds + m.live_edge_waits + starts + starts
            note = (f"{reads} detector reads ({basis}) + {seconds} converter playlist GETs + "
                    f"{m.live_edge_waits} at waits + {starts} segments (one converter environment) + "
                    f"{starts} starter playlist GETs")
        else:
            # One stream download per converter environment: one for a stream run second after second.
            predicted = reads + seconds + 1
            note = (f"{reads} detector reads ({basis}) + {seconds} converter HEADs + 1 stream download "
                    "(one converter environment)")
        rows.append(row("S3 GET/HEAD", predicted, m.s3_requests["get"] + m.s3_requests.get("head", 0),
                        note))
    return rows


def _spread(items: int, seconds: int) -> list[int]:
    if items <= 0 or seconds <= 0:
        return []
    base, extra = divmod(items, seconds)
    return [base + (1 if i < extra else 0) for i in range(seconds)]


def row(name: str, analytic: float, measured: float, note: str) -> dict[str, Any]:
    return {
        "quantity": name,
        "analytic": analytic,
        "measured": measured,
        "equal": abs(analytic - measured) < 1e-9,
        "note": note,
    }
