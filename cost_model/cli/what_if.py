"""`what-if`: every serverless variant priced the same way against the after, one line each. It prices
every variant, so it takes no --variant; the after is priced as --purchase says (every purchase option
with a rate is in --json)."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from typing import Any

from cost_model.after import INSTANCES
from cost_model.cli import options
from cost_model.cli.common import after, print_notes, render_text, text_table, usd, workload
from cost_model.inputs import Provenance
from cost_model.model import VARIANTS, compare


def add_parser(commands: Any) -> None:
    p = commands.add_parser("what-if", help="every serverless variant against the after, one line each")
    options.add_scenario(p)
    options.add_workload(p, variant=False)
    options.add_prices(p, free_tier="subtract the always-free tiers from each variant's serverless bill")
    options.add_after(p)
    options.add_json(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    prov = Provenance()
    definition, baseline, calibration = workload(args, prov, args.streams, args.hours)
    opts = after(args, calibration, prov)
    book = options.book(args.region, args.live_prices, INSTANCES)
    rows = []
    for variant in VARIANTS:
        r = compare(
            definition, replace(baseline, variant=variant), book, after=opts, free_tier=args.free_tier
        )
        serverless, monolith = r["serverless"]["monthly_usd"], r["monolith"]["monthly_usd"]
        rows.append(
            {
                "variant": variant,
                "description": VARIANTS[variant],
                "serverless_monthly_usd": serverless,
                "after_monthly_usd": monolith,
                "after_purchase": opts.purchase,
                "after_by_purchase_usd": r["monolith"]["by_purchase"],
                "after_range_usd": [
                    r["monolith"]["range"]["low"]["monthly_usd"],
                    r["monolith"]["range"]["high"]["monthly_usd"],
                ],
                "reduction_pct": 100.0 * (1 - monolith / serverless),
                "quota": r["quota"],
            }
        )
    if args.json:
        document = {
            "streams": args.streams,
            "hours": args.hours,
            "resolution": args.resolution,
            "region": args.region,
            "variants": rows,
            "purchase_notes": r["monolith"]["purchase_notes"],
            "inputs": prov.notes,
        }
        print(json.dumps(document, indent=2))
        return 0
    base = rows[0]["serverless_monthly_usd"]
    after_column = f"after ({opts.purchase})"
    numbers = ("serverless/month", "vs baseline", "ceiling (streams)", after_column, "after saves")
    table = text_table("variant", *numbers, right=numbers)
    for row in rows:
        table.add_row(
            row["variant"],
            usd(row["serverless_monthly_usd"]),
            f"{row['serverless_monthly_usd'] / base - 1:+.1%}",
            f"{row['quota']['max_concurrent_streams']:,}",
            usd(row["after_monthly_usd"]),
            f"{row['reduction_pct'] / 100:.1%}",
        )
    title = (
        f"{args.streams:,} streams x {args.hours:g} h/month, {args.fps:g} fps {args.resolution}, "
        f"{args.region}" + (", free tiers subtracted" if args.free_tier else "")
    )
    print(render_text(title, table))
    low, high = rows[0]["after_range_usd"]
    print(f"after ({opts.purchase}), from the measured CPU spread: {usd(low)} – {usd(high)} per month")
    by_purchase = rows[0]["after_by_purchase_usd"]
    print("after by purchase: " + ", ".join(f"{p} {usd(v)}" for p, v in by_purchase.items() if v is not None))
    for why in r["monolith"]["purchase_notes"].values():
        print(f"  {why}")
    print_notes(prov.notes)
    return 0
