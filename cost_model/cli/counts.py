"""`counts`: what one stream-second of the before does, derived from the definitions (no prices)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from cost_model.cli import options
from cost_model.cli.common import print_notes, render_text, text_table, workload
from cost_model.inputs import Provenance
from cost_model.model import BUILT, Usage, Workload, built_usage, serverless_usage
from cost_model.segments import chosen_memory, memory_curve


def add_parser(commands: Any) -> None:
    p = commands.add_parser(
        "counts",
        help="per-stream-second counts derived from the definitions (the built design's: with its memory "
        "curve)",
    )
    options.add_workload(p)
    options.add_json(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    prov = Provenance()
    definition, w, _ = workload(args, prov)
    if w.variant == BUILT:
        return run_built(args, w, prov)
    usage, loop = serverless_usage(definition, w)
    assert isinstance(usage, Usage) and loop is not None  # every variant but the built one has a workflow
    out = {
        "loop": {"entry": loop.loop.entry, "states": sorted(loop.loop.members)},
        "transitions": {
            "quiet_second": loop.quiet.transitions,
            "quiet_states": dict(loop.quiet.entered),
            "defect_second_extra": loop.defect_second.transitions,
            "per_notification": loop.per_defect.transitions,
            "per_execution_boundary": (loop.continued_prefix + loop.continue_tail).transitions,
            "seconds_per_execution": w.stack.seconds_per_execution,
        },
        "per_stream_second": usage.as_dict(),
        "inputs": prov.notes,
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    t = out["transitions"]
    print(
        f"loop: {loop.loop.entry} → … → {loop.loop.entry} ({len(loop.loop.members)} states: "
        f"{', '.join(sorted(loop.loop.members))})"
    )
    print(
        f"transitions per quiet second: {t['quiet_second']} = "
        + " + ".join(f"{n} {s}" if n > 1 else s for s, n in loop.quiet.entered.items())
    )
    print(
        f"  + {t['defect_second_extra']} per second with defects, "
        f"+ {t['per_notification']} per notification, "
        f"+ {t['per_execution_boundary']} per execution (every {t['seconds_per_execution']} s)"
    )
    u = usage
    rows = [
        ("state transitions", u.transitions),
        ("Lambda invocations", u.lambda_invocations),
        ("S3 PUT (frames + audio)", u.s3_put_frames),
        ("S3 PUT (results)", u.s3_put_results),
        ("S3 GET/HEAD", u.s3_get),
        ("S3 LIST", 0.0),
        ("SNS publishes", u.sns_publishes),
        ("Lambda GB-seconds", u.gb_s),
        ("MB shipped through S3", u.bytes_shipped / 1e6),
        ("GiB held in the frames bucket (per stream)", u.storage_gb_held),
        ("busy Lambda environments (per stream)", u.lambda_concurrency),
    ]
    table = text_table("quantity", "per stream-second", right=("per stream-second",))
    for name, value in rows:
        table.add_row(name, f"{value:,.4f}")
    print()
    print(render_text(f"per stream-second ({w.fps:g} fps {w.resolution}, variant {w.variant}):", table))
    print(f"  (GB-seconds: {u.gb_s_source})")
    print_notes(prov.notes)
    return 0


def run_built(args: argparse.Namespace, w: Workload, prov: Provenance) -> int:
    """The built design's counts from its settings, and the memory curve: GB-seconds per stream-second
    against memory size, with the size the rule picks beside the one the stack configures."""
    u = built_usage(w)
    curve = memory_curve(u.cpu_s, u.segment_seconds, u.memory_mb)
    chosen = chosen_memory(curve)
    out = {
        "variant": w.variant,
        "per_stream_second": u.as_dict(),
        "memory_curve": curve,
        "memory": {"configured_mb": u.memory_mb, "rule_picks_mb": chosen, "agree": chosen == u.memory_mb,
                   "rule": "the least GB-seconds per stream-second, and among those the shortest duration"},
        "inputs": prov.notes,
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    rows = [
        ("segments", u.segments),
        ("Lambda invocations (analyser, one per segment at most)", u.invocations),
        ("Lambda invocations (corrective action, one per defect)", u.corrective_actions),
        ("S3 GET (playlist + state, per segment)", 2 * u.segments),
        ("S3 GET (the windows' segments)", u.window_gets),
        ("S3 PUT (state, one per segment)", u.segments),
        ("S3 PUT (results, one per segment's seconds)", u.results_puts),
        ("S3 PUT (corrective-action records)", u.corrective_actions),
        ("EventBridge events (segment + playlist rewrite)", u.events),
        ("SQS requests (send, receive, batch delete)", u.sqs_requests),
        ("SNS publishes", u.sns_publishes),
        ("CPU-seconds (in-memory pipeline)", u.cpu_s),
        ("Lambda GB-seconds", u.gb_s),
        ("busy Lambda environments (per stream)", u.lambda_concurrency),
    ]
    table = text_table("quantity", "per stream-second", right=("per stream-second",))
    for name, value in rows:
        table.add_row(name, f"{value:,.4f}")
    curve_table = text_table("memory (MB)", "CPU share", "GB-s per stream-s", "s per segment", "keeps up",
                             right=("memory (MB)", "CPU share", "GB-s per stream-s", "s per segment"))
    for row in curve:
        mark = " <- the stack's" if row["memory_mb"] == u.memory_mb else ""
        curve_table.add_row(f"{row['memory_mb']:,}{mark}", f"{row['cpu_share']:.3f}",
                            f"{row['gb_s_per_stream_s']:.4f}", f"{row['duration_per_segment_s']:.2f}",
                            "yes" if row["keeps_up"] else "NO")
    verdict = ("the stack configures it" if chosen == u.memory_mb
               else f"the stack configures {u.memory_mb:,} MB instead (lambdas/segment_analyzer/settings.py)")
    print(render_text(
        f"per stream-second ({w.fps:g} fps {w.resolution}, variant {w.variant}, {u.segment_seconds:g} s "
        "segments):",
        table,
        f"  (GB-seconds: {u.gb_s_source})",
        "",
        f"GB-seconds against memory size ({u.cpu_s:.4f} CPU-s per stream-second; Lambda gives a function a "
        "CPU share proportional to its memory, a full vCPU at 1,769 MB: below it the work lasts longer in "
        "proportion and the GB-seconds stay flat, above it they grow with the memory):",
        curve_table,
        f"the rule (least GB-seconds, then the shortest duration) picks {chosen:,} MB: {verdict}",
    ))
    print_notes(prov.notes)
    return 0 if chosen == u.memory_mb else 1
