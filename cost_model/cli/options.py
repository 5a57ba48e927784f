"""The options the subcommands share, defined once: the same option means the same thing on every
subcommand that has it (`add_*` below), and every one has help and, where its values are closed, choices."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from calibration import CALIBRATION_PATH
from cost_model import prices as price_table
from cost_model.after import INSTANCES
from cost_model.model import VARIANTS
from cost_model.prices import PURCHASE_HELP, PURCHASES, REGIONS, PriceBook
from infra.after_config import NETWORKS
from statemachine import ASL_PATH, DETECTOR_PLACEHOLDERS

EXIT_BAD_INPUT = 2
# The resolutions `make calibrate` measures (monolith/bench.py SIZES): the rows a calibration file has.
RESOLUTIONS = ("360p", "720p", "1080p")


class Parser(argparse.ArgumentParser):
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


positive_int = _number(int, lambda v: v >= 1, "must be at least 1")
positive_float = _number(float, lambda v: v > 0, "must be greater than 0")
non_negative = _number(float, lambda v: v >= 0, "must not be negative")
discount = _number(float, lambda v: 0 <= v < 1, "must be a fraction within [0, 1), e.g. 0.3 for 30% off")


def detectors(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in DETECTOR_PLACEHOLDERS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"expected a comma list of {', '.join(DETECTOR_PLACEHOLDERS)}")
    return names


def add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")


def add_asl(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--asl", type=Path, default=ASL_PATH, help="the workflow definition (default: the stack's)"
    )


def add_scenario(p: argparse.ArgumentParser) -> None:
    p.add_argument("--streams", type=positive_int, required=True, help="concurrent live streams")
    p.add_argument(
        "--hours", type=positive_float, required=True, help="hours per month each stream runs (730 = 24x7)"
    )


def add_workload(p: argparse.ArgumentParser, *, variant: bool = True) -> None:
    """What the streams are and how the before handles them. `variant=False` for what-if, which prices
    every variant."""
    p.add_argument("--fps", type=positive_float, default=25.0, help="the streams' frame rate (default 25)")
    p.add_argument(
        "--resolution",
        choices=RESOLUTIONS,
        default="1080p",
        help="the streams' resolution: picks the calibration's row (default 1080p)",
    )
    p.add_argument(
        "--calibration",
        type=Path,
        default=CALIBRATION_PATH,
        metavar="FILE",
        help="the measured figures (`make calibrate`, default calibration/calibration.json): per-frame CPU "
        "and object sizes set the before's Lambda GB-seconds and S3 bytes, the monolith's CPU and memory "
        "per stream set the after's task size and fleet",
    )
    if variant:
        p.add_argument(
            "--variant",
            choices=tuple(VARIANTS),
            default="baseline",
            help="the serverless design priced: "
            + "; ".join(f"{name}: {text}" for name, text in VARIANTS.items()),
        )
    p.add_argument(
        "--detectors",
        type=detectors,
        help=f"comma list of the detectors enabled, of {', '.join(DETECTOR_PLACEHOLDERS)} "
        "(default: the stack's, or the variant's)",
    )
    p.add_argument(
        "--defects-per-hour",
        type=non_negative,
        default=1.0,
        help="defect events per stream-hour, each notified once (default 1)",
    )
    p.add_argument(
        "--files",
        action="store_true",
        help="price finished files read once each instead of live streams (default: live HLS, the before "
        "waiting at the live edge and reading each segment once)",
    )
    p.add_argument(
        "--segment-seconds",
        type=positive_float,
        default=2.0,
        help="live streams' HLS segment length: one starter invocation and one segment GET each (default 2)",
    )
    p.add_argument(
        "--retry-rate",
        type=non_negative,
        default=0.0,
        help="extra attempts per Task state (throttling retries), billed as transitions (default 0)",
    )
    add_asl(p)


def add_prices(p: argparse.ArgumentParser, *, free_tier: str) -> None:
    """Where prices are: the region, live prices, and the always-free tiers (`free_tier` says what the
    option does on this subcommand)."""
    p.add_argument(
        "--region",
        choices=tuple(REGIONS),
        default="us-east-1",
        help="the AWS region priced (default us-east-1)",
    )
    p.add_argument(
        "--live-prices",
        action="store_true",
        help="read on-demand prices from the AWS Price List API (needs AWS credentials; falls back to the "
        "stored table and says so)",
    )
    p.add_argument("--free-tier", action="store_true", help=free_tier)


def add_after(p: argparse.ArgumentParser) -> None:
    """How the after (the monolith on ECS on EC2) is deployed and bought."""
    p.add_argument(
        "--architecture",
        choices=("x86_64", "arm64"),
        default="x86_64",
        help="the after's instances: c6i (x86_64) or c7g (arm64; CPU scaled by a factor from an encoding "
        "benchmark, see cost_model/SOURCES.md)",
    )
    p.add_argument(
        "--instance",
        choices=INSTANCES,
        help="instance type (default: the after stack's when it has the architecture, else c6i/c7g.2xlarge)",
    )
    p.add_argument(
        "--purchase",
        choices=PURCHASES,
        default="on-demand",
        help="how the after's instances are bought: "
        + "; ".join(f"{name}: {text}" for name, text in PURCHASE_HELP.items()),
    )
    for term, years in (("1y", "1-year"), ("3y", "3-year")):
        p.add_argument(
            f"--sp-discount-{term}",
            type=discount,
            metavar="FRACTION",
            help=f"your {years} Compute Savings Plan's discount off on demand (e.g. 0.3); without it "
            f"savings-{term} says no rate is given (none is assumed)",
        )
    p.add_argument(
        "--network",
        choices=tuple(NETWORKS),
        help="how the tasks reach AWS APIs: "
        + "; ".join(f"{name}: {text}" for name, text in NETWORKS.items())
        + " (default: the after stack's, cdk.json after_network)",
    )
    p.add_argument(
        "--concurrency",
        type=positive_int,
        help="streams per task (default: the after stack's, cdk.json after_concurrency)",
    )


def book(region: str, live: bool, instances: tuple[str, ...] = ()) -> PriceBook:
    """The price book of `region`, with the Price List API's prices over the stored ones when `live`."""
    stored = PriceBook(region)
    if not live:
        return stored
    try:
        found = price_table.live_prices(region, instance_types=instances)
    except price_table.LivePricesUnavailable as error:
        print(str(error), file=sys.stderr)
        return stored
    print(f"live prices: {len(found)} read from the AWS Price List API", file=sys.stderr)
    return PriceBook(region, found)
