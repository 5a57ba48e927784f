"""What the subcommands build from their shared options (the workload, the after) and how they print."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from calibration import Calibration
from cost_model.after import INSTANCES, AfterOptions
from cost_model.inputs import (
    NEEDS,
    REPO,
    Provenance,
    profile,
    read_after_config,
    read_calibration,
    read_stack_config,
)
from cost_model.model import Workload
from cost_model.prices import HOURS_PER_MONTH
from cost_model.segments import pipeline_cpu
from lambdas.segment_analyzer.settings import SegmentSettings
from settings import ServiceSettings
from statemachine.asl import AslError, LoopModel, drop_detector_branches, load
from text_tables import render_text, text_table

# The workflow walker and the table drawer are imported here only, for every subcommand of the CLI.
__all__ = ["AslError", "LoopModel", "drop_detector_branches", "load", "render_text", "text_table"]


def workload(
    args: argparse.Namespace,
    prov: Provenance,
    streams: int = 1,
    hours: float = HOURS_PER_MONTH,
    variant: str = "baseline",
) -> tuple[dict[str, Any], Workload, Calibration]:
    """The workflow definition, the workload the options describe, and the calibration read."""
    definition = load(args.asl)
    asl = Path(args.asl).resolve()
    prov.add(f"workflow: {asl.relative_to(REPO) if asl.is_relative_to(REPO) else asl}")
    stack = read_stack_config(prov)
    calibration = read_calibration(prov, args.calibration)
    cpu_s, cpu_source = pipeline_cpu(calibration, args.resolution)
    w = Workload(
        streams=streams,
        hours=hours,
        fps=args.fps,
        resolution=args.resolution,
        variant=getattr(args, "variant", variant),
        stack=stack,
        needs=dict(NEEDS),
        defects_per_hour=args.defects_per_hour,
        retry_rate=args.retry_rate,
        live=not args.files,
        segment_seconds=args.segment_seconds,
        detectors=args.detectors,
        media=profile(calibration, args.resolution),
        media_source=calibration.describe(),
        pipeline_cpu_s=cpu_s,
        pipeline_cpu_source=cpu_source,
        # The built design's settings, as app.py deploys them (the stack's detectors).
        segment_settings=SegmentSettings(detectors=stack.detectors),
    )
    prov.add("detector reads: lambdas.detectors.NEEDS")
    return definition, w, calibration


def after(args: argparse.Namespace, calibration: Calibration, prov: Provenance) -> AfterOptions:
    """The after as given, else as the after stack deploys it (cdk.json context): streams per task,
    network, and the instance type when it has the architecture asked for."""
    deployed = read_after_config(prov)
    settings = ServiceSettings(concurrency=args.concurrency or deployed.concurrency)
    stack_instance = deployed.instance_type
    if deployed.instance.architecture != args.architecture or stack_instance not in INSTANCES:
        stack_instance = None  # the default instance of that architecture (cost_model/after.py)
    prov.add(
        f"after: settings.ServiceSettings (results every {settings.results_batch_seconds} s, heartbeat every "
        f"{settings.heartbeat_seconds} s, {settings.concurrency} stream(s) per task), monolith.sizing "
        "task size"
    )
    return AfterOptions(
        calibration=calibration,
        settings=settings,
        architecture=args.architecture,
        instance=args.instance or stack_instance,
        purchase=args.purchase,
        sp_discount_1y=args.sp_discount_1y,
        sp_discount_3y=args.sp_discount_3y,
        network=args.network or deployed.network,
        live_segment_seconds=None if args.files else args.segment_seconds,
    )


# --- printing -----------------------------------------------------------------------------------------
def usd(value: float | None) -> str:
    if value is None:
        return "no rate"
    return f"${value:,.0f}" if abs(value) >= 100 else f"${value:,.2f}"


def unit_price(value: float) -> str:
    return f"${value:.10f}".rstrip("0").rstrip(".") if value < 0.01 else f"${value:.4g}"


def quantity(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"


def by_service(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Services by their total, largest first; a service's lines (tiers) keep their order."""
    totals: dict[str, float] = {}
    for x in lines:
        totals[x["service"]] = totals.get(x["service"], 0.0) + x["monthly_usd"]
    order = {name: i for i, name in enumerate(sorted(totals, key=lambda n: -totals[n]))}
    return sorted(lines, key=lambda x: order[x["service"]])


def print_notes(notes: list[str]) -> None:
    if notes:
        print("inputs:")
        for note in notes:
            print(f"  - {note}")
