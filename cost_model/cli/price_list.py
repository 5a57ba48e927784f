"""`prices`: the price table of a region, each price with its source and date."""

from __future__ import annotations

import argparse
import json
from typing import Any

from cost_model.after import INSTANCES
from cost_model.cli import options
from cost_model.cli.common import render_text, text_table
from cost_model.prices import FREE_TIER


def add_parser(commands: Any) -> None:
    p = commands.add_parser("prices", help="the price table of a region, with dates and sources")
    options.add_prices(p, free_tier="also list the always-free tiers (what compare --free-tier subtracts)")
    options.add_json(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    book = options.book(args.region, args.live_prices, INSTANCES)
    table = book.table()
    region = book.region
    free = [{"key": key, "quantity": amount, "source": source} for key, (amount, source) in FREE_TIER.items()]
    if args.json:
        document = {
            "region": region.name,
            "state_transition_refill_per_s": region.state_transition_refill_per_s,
            "prices": table,
            **({"free_tier": free} if args.free_tier else {}),
        }
        print(json.dumps(document, indent=2))
        return 0
    print(
        f"{region.name}: StateTransition refill {region.state_transition_refill_per_s:,}/s, "
        f"bucket {region.state_transition_bucket:,}"
    )
    prices = text_table("key", "USD", "per", "date", "source", right=("USD",))
    for row in table:
        prices.add_row(row["key"], f"{row['usd']:.10g}", row["unit"], row["date"], row["source"])
    parts: list[Any] = [prices]
    if args.free_tier:
        allowances = text_table("free tier", "per month", "source", right=("per month",))
        for row in free:
            allowances.add_row(row["key"], f"{row['quantity']:,.0f}", row["source"])
        parts.append(allowances)
    print(render_text(*parts))
    return 0
