"""`counts`: what one stream-second of the before does, derived from the definitions (no prices)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from cost_model.cli import options
from cost_model.cli.common import print_notes, render_text, text_table, workload
from cost_model.inputs import Provenance
from cost_model.model import serverless_usage


def add_parser(commands: Any) -> None:
    p = commands.add_parser("counts", help="per-stream-second counts derived from the definitions")
    options.add_workload(p)
    options.add_json(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    prov = Provenance()
    definition, w, _ = workload(args, prov)
    usage, loop = serverless_usage(definition, w)
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
