"""`python -m cost_model …`: per-stream-second counts, measured counts, prices, and the comparison."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

from cost_model import chart
from cost_model.asl import AslError, LoopModel, drop_detector_branches, load
from cost_model.inputs import (
    BENCH_JSON,
    PROFILES,
    SUMMARY_JSON,
    InputError,
    Provenance,
    read_bench,
    read_needs,
    read_stack_config,
)
from cost_model.measured import check, count_execution, read_summary, stepfunctions_client
from cost_model.model import (
    INSTANCES,
    SAVINGS_PLAN_DISCOUNT,
    VARIANTS,
    Workload,
    compare,
    serverless_usage,
    with_streams,
)
from cost_model.prices import REGIONS, LivePricesUnavailable, PriceBook, UnknownRegion, live_prices
from infra.config import ASL_PATH, DETECTOR_PLACEHOLDERS

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One clear line, exit 2 (argparse would print the whole usage first).
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def _number(parse: type[int] | type[float], ok: Callable[[float], bool], rule: str) -> Callable[[str], float]:
    """An argparse type: `parse` the text, refusing values that break `rule`."""

    def convert(text: str) -> float:
        try:
            value = parse(text)
        except ValueError:
            kind = "a whole number" if parse is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"{rule}, got {text}")
        return value

    return convert


_positive_int = _number(int, lambda v: v >= 1, "must be at least 1")
_positive_float = _number(float, lambda v: v > 0, "must be greater than 0")
_non_negative = _number(float, lambda v: v >= 0, "must not be negative")


def _detectors(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in DETECTOR_PLACEHOLDERS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"expected a comma list of {', '.join(DETECTOR_PLACEHOLDERS)}")
    return names


def _add_workload_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fps", type=_positive_float, default=25.0, help="stream frame rate (default 25)")
    p.add_argument("--resolution", choices=sorted(PROFILES), default="720p")
    p.add_argument("--variant", default="baseline", help=f"what-if: {', '.join(VARIANTS)}")
    p.add_argument(
        "--detectors", type=_detectors, help="comma list of enabled detectors (default: the stack's)"
    )
    p.add_argument(
        "--defects-per-hour",
        type=_non_negative,
        default=1.0,
        help="defect events per stream-hour, each notified once (default 1)",
    )
    p.add_argument(
        "--retry-rate",
        type=_non_negative,
        default=0.0,
        help="extra attempts per Task state (throttling retries), billed as transitions",
    )
    p.add_argument("--asl", type=Path, default=ASL_PATH, help="the workflow definition")
    p.add_argument("--json", action="store_true", help="print JSON")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m cost_model", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    cmp = commands.add_parser("compare", help="price both architectures line by line, with the quota ceiling")
    cmp.add_argument("--streams", type=_positive_int, required=True, help="concurrent streams")
    cmp.add_argument(
        "--hours", type=_positive_float, required=True, help="hours per month each runs (730 = 24x7)"
    )
    cmp.add_argument("--region", default="us-east-1", help=f"one of {', '.join(REGIONS)}")
    _add_workload_args(cmp)
    cmp.add_argument(
        "--chart", type=Path, metavar="OUT", help="cost vs concurrent streams: .html, .svg or .png"
    )
    cmp.add_argument(
        "--free-tier", action="store_true", help="subtract the always-free tiers as their own lines"
    )
    cmp.add_argument("--live-prices", action="store_true", help="read prices from the AWS Price List API")
    cmp.add_argument("--instance", default="c6i.2xlarge", help=f"monolith instance: {', '.join(INSTANCES)}")
    cmp.add_argument("--utilisation", type=_positive_float, default=0.7, help="target CPU utilisation (0.7)")
    cmp.add_argument("--purchase", choices=["on-demand", "savings-plan"], default="on-demand")
    cmp.add_argument(
        "--sp-discount",
        type=_non_negative,
        default=SAVINGS_PLAN_DISCOUNT,
        help=f"Compute Savings Plan discount (assumed {SAVINGS_PLAN_DISCOUNT})",
    )
    cmp.add_argument("--bench", type=Path, default=BENCH_JSON, help="make bench output (monolith CPU)")
    cmp.add_argument(
        "--calibrate",
        type=Path,
        metavar="SUMMARY",
        help="use this run summary's measured Lambda GB-seconds per stream-second",
    )

    wi = commands.add_parser("what-if", help="every variant priced the same way, one line each")
    wi.add_argument("--streams", type=_positive_int, required=True)
    wi.add_argument("--hours", type=_positive_float, required=True)
    wi.add_argument("--region", default="us-east-1")
    wi.add_argument("--bench", type=Path, default=BENCH_JSON)
    _add_workload_args(wi)

    cnt = commands.add_parser("counts", help="per-stream-second counts derived from the definitions")
    _add_workload_args(cnt)

    meas = commands.add_parser("count", help="counts of a real run, checked against the definition")
    src = meas.add_mutually_exclusive_group(required=True)
    src.add_argument("--summary", type=Path, nargs="?", const=SUMMARY_JSON, help=f"default {SUMMARY_JSON}")
    src.add_argument(
        "--execution-arn",
        help="count this execution (and those it continued as) via "
        "GetExecutionHistory; AWS_ENDPOINT_URL selects LocalStack",
    )
    meas.add_argument("--no-follow", action="store_true", help="do not follow continue-as-new executions")
    meas.add_argument(
        "--frames-per-second",
        type=_positive_int,
        default=25,
        help="frames shipped per stream-second in that run (default 25)",
    )
    meas.add_argument("--asl", type=Path, default=ASL_PATH)
    meas.add_argument("--json", action="store_true")
    meas.add_argument("--strict", action="store_true", help="exit 1 when the transitions differ")

    pr = commands.add_parser("prices", help="the price table of a region, with dates and sources")
    pr.add_argument("--region", default="us-east-1")
    pr.add_argument("--live-prices", action="store_true")
    pr.add_argument("--json", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (InputError, AslError, UnknownRegion) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT


# --- commands --------------------------------------------------------------------------------------
def _workload(
    args: argparse.Namespace, prov: Provenance, streams: int = 1, hours: float = 730.0
) -> tuple[dict[str, Any], Workload]:
    definition = load(args.asl)
    prov.add(f"workflow: {args.asl}")
    stack = read_stack_config(prov)
    w = Workload(
        streams=streams,
        hours=hours,
        fps=args.fps,
        resolution=args.resolution,
        variant=args.variant,
        stack=stack,
        needs=read_needs(prov),
        defects_per_hour=args.defects_per_hour,
        retry_rate=args.retry_rate,
        detectors=args.detectors,
    )
    return definition, w


def _book(region: str, live: bool, instances: tuple[str, ...] = ()) -> PriceBook:
    book = PriceBook(region)
    if live:
        try:
            book = PriceBook(region, live_prices(region, instance_types=instances))
            print(f"live prices: {len(book.live)} read from the AWS Price List API", file=sys.stderr)
        except LivePricesUnavailable as error:
            print(str(error), file=sys.stderr)
    return book


def cmd_compare(args: argparse.Namespace) -> int:
    prov = Provenance()
    definition, w = _workload(args, prov, args.streams, args.hours)
    if args.calibrate is not None:
        m = read_summary(args.calibrate)
        if m.lambda_gb_seconds is None:
            raise InputError(f"{args.calibrate}: no lambda_gb_seconds to calibrate with")
        w = replace(w, gb_s_per_stream_s=m.lambda_gb_seconds / m.stream_seconds)
        prov.add(f"Lambda GB-s: {w.gb_s_per_stream_s:.4g} per stream-second measured in {args.calibrate}")
    elif SUMMARY_JSON.is_file():
        prov.add(f"{SUMMARY_JSON} exists: add --calibrate to use its measured GB-seconds")
    book = _book(args.region, args.live_prices, (args.instance,))
    cpu, rss = read_bench(args.resolution, prov, args.bench)
    options = dict(
        cpu_s_per_stream_s=cpu,
        rss_mb=rss,
        instance=args.instance,
        utilisation=args.utilisation,
        purchase=args.purchase,
        discount=args.sp_discount,
        free_tier=args.free_tier,
    )
    result = compare(definition, w, book, notes=prov.notes, **options)
    if args.chart is not None:

        def cost(n: int) -> tuple[float, float]:
            r = compare(definition, with_streams(w, n), book, **options)
            return r["serverless"]["monthly_usd"], r["monolith"]["monthly_usd"]

        title = (
            f"Monthly cost vs concurrent streams — {w.fps:g} fps {w.resolution}, {args.region}, "
            f"variant {w.variant}"
        )
        chart.write(
            chart.sample(w.streams, result["quota"]["max_concurrent_streams"], cost, title), args.chart
        )
        prov.add(f"chart written to {args.chart}")
    print(json.dumps(result, indent=2) if args.json else format_compare(result))
    return 0


def cmd_what_if(args: argparse.Namespace) -> int:
    prov = Provenance()
    rows = []
    cpu, rss = read_bench(args.resolution, prov, args.bench)
    book = PriceBook(args.region)
    definition, baseline = _workload(args, Provenance(), args.streams, args.hours)
    for variant in VARIANTS:
        r = compare(definition, replace(baseline, variant=variant), book, cpu_s_per_stream_s=cpu, rss_mb=rss)
        rows.append(
            {
                "variant": variant,
                "description": VARIANTS[variant],
                "serverless_monthly_usd": r["serverless"]["monthly_usd"],
                "monolith_monthly_usd": r["monolith"]["monthly_usd"],
                "reduction_pct": r["reduction_pct"],
                "quota": r["quota"],
            }
        )
    if args.json:
        print(json.dumps({"streams": args.streams, "hours": args.hours, "variants": rows}, indent=2))
        return 0
    base = rows[0]["serverless_monthly_usd"]
    print(
        f"{'variant':<16}{'serverless/month':>18}{'vs baseline':>13}{'monolith/month':>16}"
        f"{'monolith saves':>16}{'ceiling (streams)':>19}"
    )
    for r in rows:
        print(
            f"{r['variant']:<16}{_usd(r['serverless_monthly_usd']):>18}"
            f"{r['serverless_monthly_usd'] / base - 1:>+13.1%}{_usd(r['monolith_monthly_usd']):>16}"
            f"{r['reduction_pct'] / 100:>16.1%}{r['quota']['max_concurrent_streams']:>19,}"
        )
    return 0


def cmd_counts(args: argparse.Namespace) -> int:
    prov = Provenance()
    definition, w = _workload(args, prov)
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
    print(f"\nper stream-second ({w.fps:g} fps {w.resolution}, variant {w.variant}):")
    for name, value in rows:
        print(f"  {name:<44}{value:>14,.4f}")
    print(f"  (GB-seconds: {u.gb_s_source})")
    _print_notes(prov.notes)
    return 0


def cmd_count(args: argparse.Namespace) -> int:
    prov = Provenance()
    stack = read_stack_config(prov)
    needs = read_needs(prov)
    definition = drop_detector_branches(load(args.asl), DETECTOR_PLACEHOLDERS, stack.detectors)
    loop = LoopModel(definition)
    if args.execution_arn:
        # CDK names the functions after their construct ids (…Converter…); the detectors share a size.
        memory = {"converter": stack.converter_memory_mb, "*": stack.detector_memory_mb}
        try:
            measured = count_execution(
                stepfunctions_client(),
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
    )
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
        print(f"{'quantity':<22}{'analytic':>12}{'measured':>12}  ")
        for row in rows:
            mark = "=" if row["equal"] else "≠"
            print(
                f"{row['quantity']:<22}{row['analytic']:>12,.0f}{row['measured']:>12,.0f}  "
                f"{mark} {row['note']}"
            )
        if m.lambda_gb_seconds is not None:
            print(
                f"Lambda GB-seconds: {m.lambda_gb_seconds:.3f} ({m.lambda_gb_seconds / m.stream_seconds:.4f} "
                "per stream-second)"
            )
        _print_notes(m.notes)
    transitions_equal = rows[0]["equal"]
    return 1 if args.strict and not transitions_equal else 0


def cmd_prices(args: argparse.Namespace) -> int:
    book = _book(args.region, args.live_prices)
    table = book.table()
    region = book.region
    if args.json:
        print(
            json.dumps(
                {
                    "region": region.name,
                    "state_transition_refill_per_s": region.state_transition_refill_per_s,
                    "prices": table,
                },
                indent=2,
            )
        )
        return 0
    print(
        f"{region.name}: StateTransition refill {region.state_transition_refill_per_s:,}/s, "
        f"bucket {region.state_transition_bucket:,}"
    )
    for row in table:
        print(f"  {row['key']:<24}{row['usd']:>14.10g} per {row['unit']:<18}{row['date']}  {row['source']}")
    return 0


COMMANDS = {
    "compare": cmd_compare,
    "what-if": cmd_what_if,
    "counts": cmd_counts,
    "count": cmd_count,
    "prices": cmd_prices,
}


# --- formatting --------------------------------------------------------------------------------------
def _usd(value: float) -> str:
    return f"${value:,.0f}" if abs(value) >= 100 else f"${value:,.2f}"


def _price(value: float) -> str:
    return f"${value:.10f}".rstrip("0").rstrip(".") if value < 0.01 else f"${value:.4g}"


def _by_service(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Services by their total, largest first; a service's lines (tiers) keep their order."""
    totals: dict[str, float] = {}
    for x in lines:
        totals[x["service"]] = totals.get(x["service"], 0.0) + x["monthly_usd"]
    order = {name: i for i, name in enumerate(sorted(totals, key=lambda n: -totals[n]))}
    return sorted(lines, key=lambda x: order[x["service"]])


def format_compare(r: dict[str, Any]) -> str:
    s = r["scenario"]
    u = s["per_stream_second"]
    lines = [
        f"{s['streams']:,} concurrent streams x {s['hours_per_month']:g} h/month, {s['fps']:g} fps "
        f"{s['resolution']}, {s['region']}, variant {s['variant']} (prices dated {s['prices_date']})",
        f"per stream-second: {u['state_transitions']:.2f} state transitions, "
        f"{u['lambda_invocations']:.0f} Lambda invocations, {u['s3_put']:.0f} S3 PUT, {u['s3_get']:.0f} "
        f"S3 GET, {u['lambda_gb_seconds']:.2f} Lambda GB-s, {u['bytes_shipped'] / 1e6:.1f} MB through S3",
        "",
    ]
    head = f"{'service':<16}{'unit':<46}{'quantity':>20}{'unit price':>15}{'monthly':>15}"
    for name in ("serverless", "monolith"):
        block = r[name]
        title = name.upper() + (
            f" — {s['monolith']['instances']:,} x {s['monolith']['instance']} "
            f"({s['monolith']['streams_per_instance']} streams each, "
            f"{s['monolith']['bound']}-bound)"
            if name == "monolith"
            else ""
        )
        lines += [title, head, "-" * len(head)]
        for x in _by_service(block["lines"]):
            lines.append(
                f"{x['service']:<16}{x['unit'][:45]:<46}{x['quantity']:>20,.0f}"
                f"{_price(x['unit_price_usd']):>15}{_usd(x['monthly_usd']):>15}"
            )
        lines += [f"{'total':<82}{_usd(block['monthly_usd']):>35}", ""]
    q = r["quota"]
    lines.append(
        f"reduction: {r['reduction_pct']:.1f}%  (monolith {_usd(r['monolith']['monthly_usd'])} vs "
        f"serverless {_usd(r['serverless']['monthly_usd'])} per month)"
    )
    lines.append(
        f"quota ceiling: {q['max_concurrent_streams']:,} concurrent streams = "
        f"{q['ceiling_pct_of_load']:.1f}% of this load — {q['limit']}"
    )
    for other in q.get("other_limits", []):
        lines.append(f"  next limit: {other['max_concurrent_streams']:,} streams — {other['limit']}")
    lines.append("")
    lines.append("sources: each line's source is in --json; inputs:")
    lines += [f"  - {n}" for n in s["inputs"]]
    return "\n".join(lines)


def _print_notes(notes: list[str]) -> None:
    if notes:
        print("inputs:")
        for note in notes:
            print(f"  - {note}")


if __name__ == "__main__":
    raise SystemExit(main())
