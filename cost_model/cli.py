"""`python -m cost_model …`: per-stream-second counts, measured counts, prices, and the comparison."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

from rich.console import RenderableType

from calibration import CALIBRATION_PATH, Calibration
from cost_model import chart
from cost_model.after import (
    INSTANCES,
    NETWORKS,
    AfterOptions,
    after_summary,
    check_run,
)
from cost_model.asl import AslError, LoopModel, drop_detector_branches, load
from cost_model.inputs import (
    NEEDS,
    REPO,
    SUMMARY_JSON,
    InputError,
    Provenance,
    profile,
    read_after_config,
    read_calibration,
    read_stack_config,
)
from cost_model.measured import (
    check,
    count_execution,
    read_summary,
    shipped_seconds,
    stepfunctions_client,
)
from cost_model.model import (
    VARIANTS,
    Workload,
    breakeven,
    compare,
    quota,
    serverless_lines,
    serverless_usage,
    with_streams,
)
from cost_model.prices import (
    PURCHASES,
    REGIONS,
    LivePricesUnavailable,
    PriceBook,
    UnknownRegion,
    live_prices,
)
from infra.config import ASL_PATH, DETECTOR_PLACEHOLDERS
from monolith.settings import ServiceSettings
from monolith.tables import render_text, text_table

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
    p.add_argument(
        "--resolution",
        default="1080p",
        help="the streams' resolution: a row of the calibration (default 1080p)",
    )
    p.add_argument(
        "--calibration", type=Path, default=CALIBRATION_PATH, help="measured figures (make calibrate)"
    )
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


def _add_after_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--architecture",
        choices=["x86_64", "arm64"],
        default="x86_64",
        help="the after's instances: c6i (x86_64) or c7g (arm64)",
    )
    p.add_argument("--instance", choices=sorted(INSTANCES), help="instance type (default c6i/c7g.2xlarge)")
    p.add_argument(
        "--purchase",
        choices=PURCHASES,
        default="on-demand",
        help="EC2 on demand, or a 1- or 3-year Compute Savings Plan, no upfront",
    )
    p.add_argument(
        "--sp-discount",
        type=_non_negative,
        help="your Savings Plan's discount off on-demand (default: the assumed one, see prices.py)",
    )
    p.add_argument(
        "--network",
        choices=sorted(NETWORKS),
        help="public: public subnets + S3 gateway endpoint; nat; endpoints (interface endpoints); "
        "default: the after stack's (cdk.json after_network)",
    )
    p.add_argument(
        "--concurrency",
        type=_positive_int,
        help="streams per task (default: the after stack's, cdk.json after_concurrency)",
    )


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
    _add_after_args(cmp)
    cmp.add_argument(
        "--bars", type=Path, metavar="OUT", help="stacked bars per stream-hour by service: .png or .svg"
    )
    cmp.add_argument(
        "--breakeven",
        action="store_true",
        help="concurrent streams at which each serverless variant crosses the after, with its quota ceiling",
    )
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
    _add_workload_args(wi)
    _add_after_args(wi)

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
        "--stream",
        type=Path,
        metavar="FILE",
        help="the stream file that run analysed: count from its real frames (a short last second)",
    )
    meas.add_argument(
        "--frames-per-second",
        type=_positive_int,
        default=25,
        help="frames shipped per stream-second in that run (default 25)",
    )
    meas.add_argument("--asl", type=Path, default=ASL_PATH)
    meas.add_argument("--json", action="store_true")
    meas.add_argument("--strict", action="store_true", help="exit 1 when any count differs")

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
) -> tuple[dict[str, Any], Workload, Calibration]:
    definition = load(args.asl)
    asl = Path(args.asl).resolve()
    prov.add(f"workflow: {asl.relative_to(REPO) if asl.is_relative_to(REPO) else asl}")
    stack = read_stack_config(prov)
    calibration = read_calibration(prov, args.calibration)
    w = Workload(
        streams=streams,
        hours=hours,
        fps=args.fps,
        resolution=args.resolution,
        variant=args.variant,
        stack=stack,
        needs=dict(NEEDS),
        defects_per_hour=args.defects_per_hour,
        retry_rate=args.retry_rate,
        detectors=args.detectors,
        media=profile(calibration, args.resolution),
        media_source=calibration.describe(),
    )
    prov.add("detector reads: lambdas.detectors.NEEDS")
    return definition, w, calibration


def _after(args: argparse.Namespace, calibration: Calibration, prov: Provenance) -> AfterOptions:
    """The after as given, else as the after stack deploys it (cdk.json context): streams per task,
    network, and the instance type when it has the architecture asked for."""
    deployed = read_after_config(prov)
    settings = ServiceSettings(concurrency=args.concurrency or deployed.concurrency)
    stack_instance = deployed.instance_type
    if deployed.instance.architecture != args.architecture or stack_instance not in INSTANCES:
        stack_instance = None  # the default instance of that architecture (cost_model/after.py)
    instance = args.instance or stack_instance
    prov.add(
        f"after: monolith.settings (results every {settings.results_batch_seconds} s, heartbeat every "
        f"{settings.heartbeat_seconds} s, {settings.concurrency} stream(s) per task), monolith.sizing "
        "task size"
    )
    return AfterOptions(
        calibration=calibration,
        settings=settings,
        architecture=args.architecture,
        instance=instance,
        purchase=args.purchase,
        discount=args.sp_discount,
        network=args.network or deployed.network,
    )


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
    definition, w, calibration = _workload(args, prov, args.streams, args.hours)
    if args.calibrate is not None:
        m = read_summary(args.calibrate)
        if m.lambda_gb_seconds is None:
            raise InputError(f"{args.calibrate}: no lambda_gb_seconds to calibrate with")
        w = replace(w, gb_s_per_stream_s=m.lambda_gb_seconds / m.stream_seconds)
        prov.add(f"Lambda GB-s: {w.gb_s_per_stream_s:.4g} per stream-second measured in {args.calibrate}")
    after = _after(args, calibration, prov)
    book = _book(args.region, args.live_prices, tuple(INSTANCES))
    result = compare(definition, w, book, after=after, free_tier=args.free_tier, notes=prov.notes)
    if args.breakeven:
        result["breakeven"] = breakevens(definition, w, book, after)
    if args.chart is not None:
        chart.write_cost_chart(cost_curves(definition, w, book, after), args.chart)
        prov.add(f"chart written to {args.chart}")
    if args.bars is not None:
        chart.write_bars(stream_hour_bars(definition, w, book, after), args.bars)
        prov.add(f"stacked bars written to {args.bars}")
    print(json.dumps(result, indent=2) if args.json else format_compare(result))
    return 0


# Architectures the chart, the bars and the breakeven put side by side.
SERVERLESS_SHOWN = ("baseline", "well-architected")
AFTER_SHOWN = ("on-demand", "savings-3y")


def breakevens(definition: dict[str, Any], w: Workload, book: PriceBook, after: AfterOptions) -> list[dict]:
    """For each serverless variant and each purchase option: where it crosses the after, and its ceiling."""
    rows = []
    for variant in VARIANTS:
        wv = replace(w, variant=variant)
        ceiling = quota_of(definition, wv, book)
        for purchase in PURCHASES:
            n = breakeven(definition, wv, book, replace(after, purchase=purchase))
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


def cost_curves(
    definition: dict[str, Any], w: Workload, book: PriceBook, after: AfterOptions
) -> chart.Curves:
    """Monthly cost against concurrent streams for the before, the well-architected serverless and the after
    (on demand and with a 3-year plan), from 1 stream to past the scenario, on a log-spaced grid."""
    top = max(w.streams * 2, 10)
    ceilings = {v: quota_of(definition, replace(w, variant=v), book) for v in SERVERLESS_SHOWN}
    xs = sorted(
        {round(10 ** (i / 12)) for i in range(int(12 * math.log10(top)) + 1)}
        | {w.streams}
        | {q["max_concurrent_streams"] for q in ceilings.values()}  # each curve changes style there
    )
    series = []
    for variant in SERVERLESS_SHOWN:
        wv = replace(w, variant=variant)
        u, _ = serverless_usage(definition, wv)
        ys = [sum(x["monthly_usd"] for x in serverless_lines(u, with_streams(wv, n), book)) for n in xs]
        q = ceilings[variant]
        series.append(
            chart.Series(
                f"before: {variant}" if variant == "baseline" else "serverless, well-architected",
                xs,
                ys,
                q["max_concurrent_streams"],
                q["limit"],
            )
        )
    for purchase in AFTER_SHOWN:
        opts = replace(after, purchase=purchase)
        ys = [
            after_summary(n, w.hours, w.defects_per_hour, w.resolution, opts, book)["monthly_usd"] for n in xs
        ]
        series.append(chart.Series(f"after (ECS on EC2), {purchase}", xs, ys, None, ""))
    title = (
        f"Monthly cost vs concurrent streams — {w.fps:g} fps {w.resolution}, {w.hours:g} h/month, "
        f"{book.region.name}"
    )
    return chart.Curves(title, series, w.streams)


def stream_hour_bars(
    definition: dict[str, Any], w: Workload, book: PriceBook, after: AfterOptions
) -> chart.Bars:
    """What each architecture pays per stream-hour, by service, at the scenario's load."""
    stacks: dict[str, dict[str, float]] = {}
    stream_hours = w.streams * w.hours
    for variant in SERVERLESS_SHOWN:
        r = compare(definition, replace(w, variant=variant), book, after=after)
        stacks[f"before: {variant}" if variant == "baseline" else "well-architected"] = _by_service_total(
            r["serverless"]["lines"], stream_hours
        )
    for purchase in AFTER_SHOWN:
        r = compare(definition, w, book, after=replace(after, purchase=purchase))
        stacks[f"after, {purchase}"] = _by_service_total(r["monolith"]["lines"], stream_hours)
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


def cmd_what_if(args: argparse.Namespace) -> int:
    prov = Provenance()
    definition, baseline, calibration = _workload(args, prov, args.streams, args.hours)
    after = _after(args, calibration, prov)
    book = PriceBook(args.region)
    rows = []
    for variant in VARIANTS:
        r = compare(definition, replace(baseline, variant=variant), book, after=after)
        rows.append(
            {
                "variant": variant,
                "description": VARIANTS[variant],
                "serverless_monthly_usd": r["serverless"]["monthly_usd"],
                "after_monthly_usd": r["monolith"]["by_purchase"],
                "after_range_usd": [
                    r["monolith"]["range"]["low"]["monthly_usd"],
                    r["monolith"]["range"]["high"]["monthly_usd"],
                ],
                "reduction_pct": {
                    p: 100.0 * (1 - v / r["serverless"]["monthly_usd"])
                    for p, v in r["monolith"]["by_purchase"].items()
                },
                "quota": r["quota"],
            }
        )
    if args.json:
        print(
            json.dumps(
                {
                    "streams": args.streams,
                    "hours": args.hours,
                    "resolution": args.resolution,
                    "variants": rows,
                    "inputs": prov.notes,
                },
                indent=2,
            )
        )
        return 0
    base = rows[0]["serverless_monthly_usd"]
    after_columns = tuple(f"after {p}" for p in PURCHASES)
    numbers = ("serverless/month", "vs baseline", "ceiling (streams)", *after_columns, "saves (best)")
    table = text_table("variant", *numbers, right=numbers)
    for r in rows:
        cheapest = min(r["after_monthly_usd"].values())
        table.add_row(
            r["variant"],
            _usd(r["serverless_monthly_usd"]),
            f"{r['serverless_monthly_usd'] / base - 1:+.1%}",
            f"{r['quota']['max_concurrent_streams']:,}",
            *(_usd(r["after_monthly_usd"][p]) for p in PURCHASES),
            f"{1 - cheapest / r['serverless_monthly_usd']:.1%}",
        )
    title = (
        f"{args.streams:,} streams x {args.hours:g} h/month, {args.fps:g} fps {args.resolution}, "
        f"{args.region}"
    )
    print(render_text(title, table))
    low, high = rows[0]["after_range_usd"]
    print(f"after on demand, from the measured CPU spread: {_usd(low)} – {_usd(high)} per month")
    _print_notes(prov.notes)
    return 0


def cmd_counts(args: argparse.Namespace) -> int:
    prov = Provenance()
    definition, w, _ = _workload(args, prov)
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
    _print_notes(prov.notes)
    return 0


def cmd_count(args: argparse.Namespace) -> int:
    prov = Provenance()
    stack = read_stack_config(prov)
    needs = dict(NEEDS)
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
        after_rows = check_run(measured.after)
        if not after_rows:
            measured.notes.append(
                "after: a job was not analysed to its end (failed or released): its "
                "requests depend on where it stopped and are not checked"
            )
        rows += after_rows
        idle = (measured.after.get("sqs_requests") or {}).get("idle_ReceiveMessage")
        if idle:
            measured.notes.append(
                f"after: {idle} idle long polls (receives no job caused; per poller, not per stream)"
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
        table = text_table("quantity", "analytic", "measured", "", "note", right=("analytic", "measured"))
        for row in rows:
            table.add_row(row["quantity"], f"{row['analytic']:,.0f}", f"{row['measured']:,.0f}",
                          "=" if row["equal"] else "≠", row["note"])
        print(render_text(table))
        if m.lambda_gb_seconds is not None:
            print(
                f"Lambda GB-seconds: {m.lambda_gb_seconds:.3f} ({m.lambda_gb_seconds / m.stream_seconds:.4f} "
                "per stream-second)"
            )
        _print_notes(m.notes + prov.notes)
    return 1 if args.strict and not all(r["equal"] for r in rows) else 0


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
    prices = text_table("key", "USD", "per", "date", "source", right=("USD",))
    for row in table:
        prices.add_row(row["key"], f"{row['usd']:.10g}", row["unit"], row["date"], row["source"])
    print(render_text(prices))
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


def _qty(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"


def format_compare(r: dict[str, Any]) -> str:
    s = r["scenario"]
    u = s["per_stream_second"]
    f = s["monolith"]
    lines = [
        f"{s['streams']:,} concurrent streams x {s['hours_per_month']:g} h/month, {s['fps']:g} fps "
        f"{s['resolution']}, {s['region']}, variant {s['variant']} (prices dated {s['prices_date']})",
        f"per stream-second: {u['state_transitions']:.2f} state transitions, "
        f"{u['lambda_invocations']:.0f} Lambda invocations, {u['s3_put']:.0f} S3 PUT, {u['s3_get']:.0f} "
        f"S3 GET, {u['lambda_gb_seconds']:.2f} Lambda GB-s, {u['bytes_shipped'] / 1e6:.1f} MB through S3",
        "",
    ]
    titles = {
        "serverless": f"BEFORE (serverless, {s['variant']})",
        "monolith": (
            f"AFTER (monolith on ECS on EC2) — {f['instances']:,} x {f['instance']}: "
            f"{f['tasks_per_instance']} tasks each of {f['task_cpu_units']} CPU units / "
            f"{f['task_memory_mib']} MiB "
            f"({f['streams_per_task']} stream(s) per task, {f['bound']}-bound, "
            f"{f['cpu_s_per_stream_s']:.4f} CPU-s per stream-second + {f['headroom']:.0%} headroom), "
            f"{f['purchase']}"
        ),
    }
    parts: list[RenderableType] = ["\n".join(lines)]
    for name in ("serverless", "monolith"):
        block = r[name]
        table = text_table("service", "unit", "quantity", "unit price", "monthly",
                           right=("quantity", "unit price", "monthly"))
        for x in _by_service(block["lines"]):
            table.add_row(x["service"], x["unit"], _qty(x["quantity"]), _price(x["unit_price_usd"]),
                          _usd(x["monthly_usd"]))
        table.add_section()
        table.add_row("total", "", "", "", _usd(block["monthly_usd"]))
        parts += [titles[name], table]
    lines = []
    m = r["monolith"]
    low, high = m["range"]["low"], m["range"]["high"]
    cpu = f["cpu_s_per_stream_s_measured"]
    lines.append(
        f"after, measured CPU spread {cpu['min']:.4f}–{cpu['max']:.4f} CPU-s per stream-second "
        f"({cpu['runs']} runs): {low['instances']:,}–{high['instances']:,} instances, "
        f"{_usd(low['monthly_usd'])}–{_usd(high['monthly_usd'])} per month"
    )
    lines.append(
        "after by purchase: "
        + ", ".join(f"{p} {_usd(v)}" for p, v in m["by_purchase"].items())
        + f"  (network: {f['network']})"
    )
    q = r["quota"]
    lines.append(
        f"reduction: {r['reduction_pct']:.1f}%  (after {_usd(m['monthly_usd'])} vs "
        f"before {_usd(r['serverless']['monthly_usd'])} per month)"
    )
    lines.append(
        f"quota ceiling: {q['max_concurrent_streams']:,} concurrent streams = "
        f"{q['ceiling_pct_of_load']:.1f}% of this load — {q['limit']}"
    )
    for other in q.get("other_limits", []):
        lines.append(f"  next limit: {other['max_concurrent_streams']:,} streams — {other['limit']}")
    parts.append("\n".join(lines))
    if "breakeven" in r:
        table = text_table("breakeven", "after purchase", "crosses at (streams)", "quota ceiling",
                           right=("crosses at (streams)", "quota ceiling"))
        for b in r["breakeven"]:
            n = b["breakeven_streams"]
            table.add_row(b["variant"], b["purchase"], "never (≤1M)" if n is None else f"{n:,}",
                          f"{b['quota_ceiling_streams']:,}")
        parts += [
            table,
            "(crosses at: the fewest concurrent streams at which that serverless variant costs at least "
            "the after)",
        ]
    sources = ["", "sources: each line's source is in --json; inputs:", *(f"  - {n}" for n in s["inputs"])]
    return render_text(*parts, "\n".join(sources))


def _print_notes(notes: list[str]) -> None:
    if notes:
        print("inputs:")
        for note in notes:
            print(f"  - {note}")


if __name__ == "__main__":
    raise SystemExit(main())
