"""`count`: the counts of a real run (a demo summary, or an execution's history), checked against what the
definitions say."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cost_model import measured as measured_counts
from cost_model.after import check_live_run, check_run
from cost_model.cli import options
from cost_model.cli.common import (
    LoopModel,
    drop_detector_branches,
    load,
    print_notes,
    render_text,
    text_table,
)
from cost_model.inputs import NEEDS, SUMMARY_JSON, InputError, Provenance, read_calibration, read_stack_config
from cost_model.measured import check, read_summary, shipped_seconds
from cost_model.segments import check_run as check_serverless_run
from cost_model.segments import cpu_share, pipeline_cpu, resolution_of
from lambdas.segment_analyzer.settings import SegmentSettings
from statemachine import DETECTOR_PLACEHOLDERS


def add_parser(commands: Any) -> None:
    p = commands.add_parser("count", help="counts of a real run, checked against the definition")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--summary",
        type=Path,
        nargs="?",
        const=SUMMARY_JSON,
        metavar="FILE",
        help=f"a run summary (`make demo` writes {SUMMARY_JSON.relative_to(SUMMARY_JSON.parents[1])})",
    )
    source.add_argument(
        "--execution-arn",
        help="count this execution (and those it continued as) via GetExecutionHistory; AWS_ENDPOINT_URL "
        "selects LocalStack",
    )
    p.add_argument("--no-follow", action="store_true", help="do not follow continue-as-new executions")
    p.add_argument(
        "--stream",
        type=Path,
        metavar="FILE",
        help="the stream file that run analysed: count from its real frames (a short last second)",
    )
    p.add_argument(
        "--frames-per-second",
        type=options.positive_int,
        default=25,
        help="frames shipped per stream-second in that run (default 25; with --stream the stack's "
        "frames_per_second decides)",
    )
    options.add_asl(p)
    options.add_json(p)
    p.add_argument("--strict", action="store_true", help="exit 1 when any count differs")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    prov = Provenance()
    stack = read_stack_config(prov)
    needs = dict(NEEDS)
    definition = drop_detector_branches(load(args.asl), DETECTOR_PLACEHOLDERS, stack.detectors)
    loop = LoopModel(definition)
    if args.no_follow and not args.execution_arn:
        raise InputError("--no-follow applies to --execution-arn only (a summary is one run already)")
    if args.execution_arn:
        # CDK names the functions after their construct ids (…Converter…); the detectors share a size.
        memory = {"converter": stack.converter_memory_mb, "*": stack.detector_memory_mb}
        try:
            measured = measured_counts.count_execution(
                measured_counts.stepfunctions_client(),
                args.execution_arn,
                loop=loop,
                follow=not args.no_follow,
                memory_mb=memory,
            )
        except Exception as error:  # botocore errors: no credentials, unknown ARN, no endpoint
            if isinstance(error, InputError):
                raise
            raise InputError(
                f"cannot read the execution history of {args.execution_arn}: {type(error).__name__}: {error}"
            ) from None
    else:
        measured = read_summary(args.summary)
    shipped = None
    stream = args.stream
    if stream is None and measured.stream_path:
        # The demo's summary names the local file it uploaded: count from its real frames too.
        stream = Path(measured.stream_path)
        prov.add(f"frames per second counted from {stream} (the summary's stream_path)")
    if stream is not None:
        shipped = shipped_seconds(stream, stack.frames_per_second)
        if stack.frames_per_second and args.frames_per_second != 25:
            raise InputError(
                "--frames-per-second and --stream: the stack's frames_per_second picks the frames"
            )
    if measured.stream_seconds < 1:
        raise InputError(
            f"{measured.source}: no stream-second was analysed (loop entry {loop.loop.entry!r} never entered)"
        )
    rows = check(
        loop,
        measured,
        seconds_per_execution=stack.seconds_per_execution,
        frames_shipped=args.frames_per_second,
        needs=needs,
        detectors=stack.detectors,
        shipped=shipped,
    )
    if measured.after is not None:
        after, segments = measured.after, measured.live_segments
        after_rows = check_run(after) if segments is None else check_live_run(after, segments)
        if not after_rows:
            measured.notes.append(
                "after: a job was not analysed to its end (failed, released, taken over or stalled): its "
                "requests depend on where it stopped and are not checked"
            )
        rows += after_rows
        idle = (measured.after.get("sqs_requests") or {}).get("idle_ReceiveMessage")
        if idle:
            measured.notes.append(
                f"after: {idle} idle long polls (receives no job caused; per poller, not per stream)"
            )
    if measured.serverless is not None:
        rows += serverless_rows(measured.serverless, SegmentSettings(detectors=stack.detectors), stream,
                                measured.notes, prov)
    out = {
        "measured": measured.as_dict(),
        "check": rows,
        "per_stream_second": {
            "state_transitions": measured.state_transitions / measured.stream_seconds,
            **(
                {"lambda_gb_seconds": measured.lambda_gb_seconds / measured.stream_seconds}
                if measured.lambda_gb_seconds is not None
                else {}
            ),
        },
    }
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        m = measured
        print(
            f"run: {m.source}: {m.stream_seconds} stream-seconds, {m.executions or '?'} executions, "
            f"{m.notifications} notifications"
        )
        table = text_table("quantity", "analytic", "measured", "", "note", right=("analytic", "measured"))
        for row in rows:
            table.add_row(
                row["quantity"],
                "-" if row["analytic"] is None else _count_text(row["analytic"]),
                _count_text(row["measured"]),
                {True: "=", False: "≠", None: "~"}[row["equal"]],
                row["note"],
            )
        print(render_text(table))
        if m.lambda_gb_seconds is not None:
            print(
                f"Lambda GB-seconds: {m.lambda_gb_seconds:.3f} ({m.lambda_gb_seconds / m.stream_seconds:.4f} "
                "per stream-second)"
            )
        print_notes(m.notes + prov.notes)
    # Rows that depend on timing (equal None) are shown, not checked.
    return 1 if args.strict and any(r["equal"] is False for r in rows) else 0


def serverless_rows(run: dict[str, Any], settings: SegmentSettings, stream: Path | None, notes: list[str],
                    prov: Provenance) -> list[dict[str, Any]]:
    """The built design's run (the summary's `serverless`) against its settings and the calibration's
    in-memory CPU at the stream's resolution (the calibration row nearest its picture height)."""
    prov.add("serverless: lambdas.segment_analyzer.settings.SegmentSettings (memory, batch size)")
    cpu_s, source = None, ""
    if stream is not None:
        calibration = read_calibration(prov)
        resolution = resolution_of(stream, calibration)
        cpu_s, source = pipeline_cpu(calibration, resolution)
    else:
        notes.append("serverless: no stream file named, so no resolution: its GB-seconds are not modelled")
    rows = check_serverless_run(run, settings=settings, cpu_s=cpu_s, cpu_source=source)
    analyzer = (run.get("lambda_functions") or {}).get("segment-analyzer") or {}
    seconds = run["stream_seconds"]
    if isinstance(analyzer.get("cpu_s"), int | float) and analyzer.get("memory_mb"):
        busy = analyzer["cpu_s"] / cpu_share(int(analyzer["memory_mb"])) / seconds
        notes.append(f"serverless: the run kept {busy:.3f} Lambda environments busy per stream (its CPU "
                     f"time at the CPU share of {analyzer['memory_mb']} MB per stream-second)"
                     + (f"; the model {cpu_s / cpu_share(settings.memory_mb):.3f}" if cpu_s else ""))
    return rows


def _count_text(value: float) -> str:
    """A count as a whole number; a measure (GB-seconds) with its decimals."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.3f}"
