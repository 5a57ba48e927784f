"""`compare`: both architectures priced line by line for one scenario, with the quota ceiling; the chart,
the bars and the breakeven."""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import RenderableType

from cost_model import chart
from cost_model.after import DEFAULT_INSTANCE, INSTANCES, AfterOptions, after_summary
from cost_model.cli import options
from cost_model.cli.common import (
    after,
    by_service,
    quantity,
    render_text,
    text_table,
    unit_price,
    usd,
    workload,
)
from cost_model.inputs import Provenance
from cost_model.lines import total
from cost_model.model import (
    BUILT,
    VARIANTS,
    Workload,
    breakeven,
    compare,
    quota,
    serverless_lines,
    serverless_usage,
)
from cost_model.prices import PURCHASES, PriceBook, PurchaseUnavailable, instance_rate

# The serverless designs the chart and the bars put beside the after, with their names on the chart's
# legend and under the bars (short: the bars stand side by side).
SERVERLESS_SHOWN = {
    "baseline": ("before: baseline", "before"),
    "express-batched": ("before improved: express-batched (priced, not built)", "express-batched"),
    BUILT: ("well-architected, built: segment -> queue -> one Lambda", "well-architected (built)"),
}


def add_parser(commands: Any) -> None:
    p = commands.add_parser("compare", help="price both architectures line by line, with the quota ceiling")
    options.add_scenario(p)
    options.add_workload(p)
    options.add_prices(p, free_tier="subtract the always-free tiers as lines of their own")
    options.add_after(p)
    p.add_argument(
        "--chart", type=Path, metavar="OUT", help="cost vs concurrent streams: .html, .svg or .png"
    )
    p.add_argument(
        "--bars", type=Path, metavar="OUT", help="stacked bars per stream-hour by service: .png or .svg"
    )
    p.add_argument(
        "--breakeven",
        action="store_true",
        help="concurrent streams at which each serverless variant crosses the after under each purchase "
        "option that has a rate, with its quota ceiling",
    )
    options.add_json(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    prov = Provenance()
    definition, w, calibration = workload(args, prov, args.streams, args.hours)
    opts = after(args, calibration, prov)
    book = options.book(args.region, args.live_prices, INSTANCES)
    result = compare(definition, w, book, after=opts, free_tier=args.free_tier, notes=prov.notes)
    if args.breakeven:
        result["breakeven"] = breakevens(definition, w, book, opts)
    if args.chart is not None:
        chart.write_cost_chart(cost_curves(definition, w, book, opts), args.chart)
        prov.add(f"chart written to {args.chart}")
    if args.bars is not None:
        chart.write_bars(stream_hour_bars(definition, w, book, opts), args.bars)
        prov.add(f"stacked bars written to {args.bars}")
    print(json.dumps(result, indent=2) if args.json else format_compare(result))
    return 0


def after_shown(after_opts: AfterOptions, book: PriceBook) -> list[str]:
    """The purchase options the chart and the bars draw: on demand, and the one asked for (else the 3-year
    Standard Reserved Instance), when it has a rate."""
    second = after_opts.purchase if after_opts.purchase != "on-demand" else "ri-standard-3y"
    instance = after_opts.instance or DEFAULT_INSTANCE[after_opts.architecture]
    try:
        instance_rate(book, instance, second, after_opts.sp_discounts)
    except PurchaseUnavailable:
        return ["on-demand"]
    return ["on-demand", second]


def breakevens(definition: dict[str, Any], w: Workload, book: PriceBook, opts: AfterOptions) -> list[dict]:
    """For each serverless variant and each purchase option with a rate: where it crosses the after."""
    rows = []
    for variant in VARIANTS:
        wv = replace(w, variant=variant)
        ceiling = quota_of(definition, wv, book)
        for purchase in PURCHASES:
            try:
                n = breakeven(definition, wv, book, replace(opts, purchase=purchase))
            except PurchaseUnavailable:
                continue
            rows.append(
                {
                    "variant": variant,
                    "purchase": purchase,
                    "breakeven_streams": n,
                    "quota_ceiling_streams": ceiling["max_concurrent_streams"],
                    "limit": ceiling["limit"],
                }
            )
    return rows


def quota_of(definition: dict[str, Any], w: Workload, book: PriceBook) -> dict[str, Any]:
    u, _ = serverless_usage(definition, w)
    return quota(u, w, book)


def cost_curves(definition: dict[str, Any], w: Workload, book: PriceBook, opts: AfterOptions) -> chart.Curves:
    """Monthly cost against concurrent streams for the before, its improved express-batched variant, the
    built serverless design and the after (on demand and bought for longer), from 1 stream to past the
    scenario, on a log-spaced grid."""
    top = max(w.streams * 2, 10)
    ceilings = {v: quota_of(definition, replace(w, variant=v), book) for v in SERVERLESS_SHOWN}
    xs = sorted(
        {round(10 ** (i / 12)) for i in range(int(12 * math.log10(top)) + 1)}
        | {w.streams}
        | {q["max_concurrent_streams"] for q in ceilings.values()}  # each curve changes style there
    )
    series = []
    for variant, (name, _) in SERVERLESS_SHOWN.items():
        wv = replace(w, variant=variant)
        u, _ = serverless_usage(definition, wv)
        ys = [total(serverless_lines(u, replace(wv, streams=n), book)) for n in xs]
        q = ceilings[variant]
        series.append(chart.Series(name, xs, ys, q["max_concurrent_streams"], q["limit"]))
    for purchase in after_shown(opts, book):
        bought = replace(opts, purchase=purchase)
        ys = [
            after_summary(n, w.hours, w.defects_per_hour, w.resolution, bought, book)["monthly_usd"]
            for n in xs
        ]
        series.append(chart.Series(f"after (ECS on EC2), {purchase}", xs, ys, None, ""))
    title = (
        f"Monthly cost vs concurrent streams — {w.fps:g} fps {w.resolution}, {w.hours:g} h/month, "
        f"{book.region.name}"
    )
    return chart.Curves(title, series, w.streams)


def stream_hour_bars(
    definition: dict[str, Any], w: Workload, book: PriceBook, opts: AfterOptions
) -> chart.Bars:
    """What each architecture pays per stream-hour, by service, at the scenario's load."""
    stacks: dict[str, dict[str, float]] = {}
    stream_hours = w.streams * w.hours
    for variant, (_, name) in SERVERLESS_SHOWN.items():
        r = compare(definition, replace(w, variant=variant), book, after=opts)
        stacks[name] = _by_service_total(r["serverless"]["lines"], stream_hours)
    for purchase in after_shown(opts, book):
        bought = replace(opts, purchase=purchase)
        lines = after_summary(w.streams, w.hours, w.defects_per_hour, w.resolution, bought, book)["lines"]
        stacks[f"after, {purchase}"] = _by_service_total(lines, stream_hours)
    title = (
        f"What a stream-hour pays for — {w.streams:,} streams, {w.fps:g} fps {w.resolution}, "
        f"{book.region.name}"
    )
    return chart.Bars(title, stacks)


def _by_service_total(lines: list[dict[str, Any]], stream_hours: float) -> dict[str, float]:
    out: dict[str, float] = {}
    for x in lines:
        out[x["service"]] = out.get(x["service"], 0.0) + x["monthly_usd"] / stream_hours
    return out


def format_compare(r: dict[str, Any]) -> str:
    s = r["scenario"]
    u = s["per_stream_second"]
    f = s["monolith"]
    built = s.get("built")
    head = [
        f"{s['streams']:,} concurrent streams x {s['hours_per_month']:g} h/month, {s['fps']:g} fps "
        f"{s['resolution']}, {s['region']}, variant {s['variant']} (prices dated {s['prices_date']})",
        f"per stream-second: {u['state_transitions']:.2f} state transitions, "
        f"{u['lambda_invocations']:.0f} Lambda invocations, {u['s3_put']:.0f} S3 PUT, {u['s3_get']:.0f} "
        f"S3 GET, {u['lambda_gb_seconds']:.2f} Lambda GB-s, {u['bytes_shipped'] / 1e6:.1f} MB through S3"
        if built is None else
        f"per stream-second ({built['segment_seconds']:g} s segments): {u['lambda_invocations']:.3f} Lambda "
        f"invocations, {u['s3_put']:.3f} S3 PUT, {u['s3_get']:.3f} S3 GET, {u['eventbridge_events']:.3f} "
        f"EventBridge events, {u['sqs_requests']:.3f} SQS requests, {u['lambda_gb_seconds']:.4f} Lambda GB-s "
        f"({u['cpu_s']:.4f} CPU-s at {built['memory_mb']:,} MB, priced at its CPU share: one vCPU at "
        "1,769 MB)",
        "",
    ]
    cpu_factor = (
        f" (measured on x86 x {f['arm64_cpu_factor']}: an arm64 factor from an encoding benchmark)"
        if f["arm64_cpu_factor"]
        else ""
    )
    titles = {
        "serverless": f"BEFORE (serverless, {s['variant']})" if built is None else
        f"SERVERLESS, BUILT ({s['variant']}: segment -> EventBridge -> SQS -> one Lambda, in memory; "
        f"{built['memory_mb']:,} MB, batches of up to {built['batch_size']})",
        "monolith": (
            f"AFTER (monolith on ECS on EC2) — {f['instances']:,} x {f['instance']}: "
            f"{f['tasks_per_instance']} tasks each of {f['task_cpu_units']} CPU units / "
            f"{f['task_memory_mib']} MiB "
            f"({f['streams_per_task']} stream(s) per task, {f['bound']}-bound, "
            f"{f['cpu_s_per_stream_s']:.4f} CPU-s per stream-second{cpu_factor} + {f['headroom']:.0%} "
            f"headroom), {f['purchase']}"
        ),
    }
    parts: list[RenderableType] = ["\n".join(head)]
    for name in ("serverless", "monolith"):
        block = r[name]
        table = text_table(
            "service",
            "unit",
            "quantity",
            "unit price",
            "monthly",
            right=("quantity", "unit price", "monthly"),
        )
        for x in by_service(block["lines"]):
            table.add_row(
                x["service"],
                x["unit"],
                quantity(x["quantity"]),
                unit_price(x["unit_price_usd"]),
                usd(x["monthly_usd"]),
            )
        table.add_section()
        table.add_row("total", "", "", "", usd(block["monthly_usd"]))
        parts += [titles[name], table]
    m = r["monolith"]
    low, high = m["range"]["low"], m["range"]["high"]
    cpu = f["cpu_s_per_stream_s_measured"]
    q = r["quota"]
    lines = [
        f"after over the measured CPU spread ({cpu['runs']} runs): at {cpu['min']:.4f} CPU-s per "
        f"stream-second {low['instances']:,} instances, {usd(low['monthly_usd'])} a month; at "
        f"{cpu['max']:.4f} {high['instances']:,} instances, {usd(high['monthly_usd'])}",
        "after by purchase: "
        + ", ".join(f"{p} {usd(v)}" for p, v in m["by_purchase"].items() if v is not None)
        + f"  (network: {f['network']})",
        *(f"  {why}" for why in m["purchase_notes"].values()),
        f"reduction: {r['reduction_pct']:.1f}%  (after {usd(m['monthly_usd'])} vs "
        f"before {usd(r['serverless']['monthly_usd'])} per month)",
        f"quota ceiling: {q['max_concurrent_streams']:,} concurrent streams = "
        f"{q['ceiling_pct_of_load']:.1f}% of this load — {q['limit']}",
        *(
            f"  next limit: {other['max_concurrent_streams']:,} streams — {other['limit']}"
            for other in q.get("other_limits", [])
        ),
        *(
            [f"  {s['streams']:,} streams keep {q['environments_needed']:,} environments busy; they need "
             + ("; ".join(q["to_raise"]) or "nothing raised")]
            if "to_raise" in q else []
        ),
        *(f"  {note}" for note in q.get("notes", [])),
    ]
    parts.append("\n".join(lines))
    if "breakeven" in r:
        table = text_table(
            "breakeven",
            "after purchase",
            "crosses at (streams)",
            "quota ceiling",
            right=("crosses at (streams)", "quota ceiling"),
        )
        for b in r["breakeven"]:
            n = b["breakeven_streams"]
            table.add_row(
                b["variant"],
                b["purchase"],
                "never (≤1M)" if n is None else f"{n:,}",
                f"{b['quota_ceiling_streams']:,}",
            )
        parts += [
            table,
            "(crosses at: the fewest concurrent streams at which that serverless variant costs at least "
            "the after)",
        ]
    sources = [
        "",
        "sources: each line's source is in --json (the facts: cost_model/SOURCES.md); inputs:",
        *(f"  - {n}" for n in s["inputs"]),
    ]
    return render_text(*parts, "\n".join(sources))
