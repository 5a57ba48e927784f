"""Usage per stream-second for both architectures, priced line by line, with the account's ceiling.

Everything per stream-second comes from the workflow definition (transitions, function invocations,
Record PUTs, SNS publishes) and the pipeline configuration (objects shipped and read); monthly quantities
are per-stream-second × streams × hours × 3600.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from cost_model.after import AfterOptions, after_summary
from cost_model.inputs import InputError, Profile, StackConfig
from cost_model.lines import Line, line, priced_line, tiered, total
from cost_model.prices import (
    FREE_TIER,
    HOURS_PER_MONTH,
    PURCHASES,
    QUOTA_SOURCE,
    PriceBook,
    PurchaseUnavailable,
)
from cost_model.segments import SegmentUsage, segment_lines, segment_quota, segment_usage
from cost_model.tracing import xray_line
from lambdas.segment_analyzer.settings import SegmentSettings
from statemachine import CONVERTER_PLACEHOLDER, DETECTOR_PLACEHOLDERS
from statemachine.asl import LoopModel, combine_detector_branches, drop_detector_branches, live_edge_wait

GIB = 1024**3
# Lambda: "at 1,769 MB a function has the equivalent of one vCPU" (Lambda developer guide, memory).
MB_PER_VCPU = 1769
# Lambda bills duration in 1 ms steps, at least 1 ms per invocation (Lambda pricing): what a live-edge poll
# and a starter invocation are counted at. The time a function waits on S3 is not counted in any variant
# (it could not be measured on LocalStack and no public per-request figure fits): CPU time only, a floor.
MIN_BILLED_MS = 1.0
LOG_BYTES_PER_INVOCATION = 1000  # START/END/REPORT lines + one INFO line + the EMF metrics line (assumed)
EXPRESS_MEMORY_GB = 64 / 1024  # Express bills memory in 64 MB chunks; our definition and payloads fit in one
EXPRESS_MAX_S = 300  # Express executions last at most 5 minutes
LAMBDA_CONCURRENCY = 1000  # default per account-region (Lambda quotas; cost_model/SOURCES.md)

VARIANTS = {
    "baseline": "as built: Standard workflow, one object per frame + audio, all frames and detectors",
    "express": "Express workflow instead of Standard (billed per request and GB-second, no transition quota)",
    "batched": "frames and audio of a second batched into one S3 object",
    "fewer-detectors": "only the freeze detector (one Parallel branch, video only)",
    "sampled": "ship 5 frames per second instead of every frame",
    "express-batched": "the before improved, keeping Step Functions and frames in S3 (priced, not built): "
    "Express workflow, one object per stream-second, the three detectors in one function, sampled frames "
    "where the detector allows it (freeze), each object deleted once read",
    "well-architected": "the event-driven design as built (StreamQuality-serverless-<stage>): each live "
    "segment -> EventBridge -> SQS -> one Lambda that decodes and detects in memory, state in S3",
}
BUILT = "well-architected"  # the variant that is the third stack (cost_model/segments.py counts it)
# The express-batched variant's one detector function (a placeholder the stack does not define: it cannot
# deploy this variant, see the README).
COMBINED_PLACEHOLDER = "DetectorsFunctionArn"
# Frames per second each detector needs in the express-batched variant: the freeze detector judges >= 2 s
# freezes from 5 pictures a second; block corruption needs every frame's decoder flag and A/V sync every
# frame's onset (40 ms resolution at 25 fps), so the object still carries every frame.
EXPRESS_BATCHED_SAMPLE_FPS = {"freeze": 5}
# ... and the detectors function deletes the second's object once it has read it (S3 DELETE requests are
# free): an object lives the second it is written in and the next, not a day and a half.
EXPRESS_BATCHED_HOLD_S = 2.0


@dataclass(frozen=True)
class Workload:
    streams: int
    hours: float  # per month, per stream (730 = 24x7)
    fps: float = 25.0
    resolution: str = "1080p"
    variant: str = "baseline"
    stack: StackConfig = field(default_factory=StackConfig)
    needs: dict[str, tuple[bool, bool]] = field(default_factory=dict)
    defects_per_hour: float = 1.0  # defect events per stream-hour (each notified once)
    retry_rate: float = 0.0  # extra attempts per Task entered
    detectors: tuple[str, ...] | None = None  # overrides the variant / stack
    sample_fps: int = 5  # frames shipped per second in the "sampled" variant
    media: Profile | None = None  # measured per-frame costs and object sizes at `resolution`
    media_source: str = "calibration/calibration.json"
    # Live streams (HLS segments arriving in S3) by default: the workflow waits at the live edge, the
    # converter reads each segment once, a starter Lambda runs per playlist write. False: finished files.
    live: bool = True
    segment_seconds: float = 2.0
    # The built design (variant well-architected): its settings, and the CPU-seconds per stream-second of
    # the in-memory pipeline at `resolution` (the calibration's monolith row).
    segment_settings: SegmentSettings = field(default_factory=SegmentSettings)
    pipeline_cpu_s: float | None = None
    pipeline_cpu_source: str = ""  # which calibration row it is (cost_model.segments.pipeline_cpu)

    def __post_init__(self) -> None:
        if self.streams < 1:
            raise InputError(f"--streams must be at least 1, got {self.streams}")
        if not 0 < self.hours <= 744:
            raise InputError(f"--hours must be within (0, 744] hours per month, got {self.hours:g}")
        if not 0 < self.fps <= 120:
            raise InputError(f"--fps must be within (0, 120], got {self.fps:g}")
        if self.variant not in VARIANTS:
            raise InputError(f"unknown variant {self.variant!r}; known: {', '.join(VARIANTS)}")
        if self.defects_per_hour < 0 or self.retry_rate < 0:
            raise InputError("--defects-per-hour and --retry-rate must not be negative")
        if self.detectors is not None and (
            not self.detectors or set(self.detectors) - set(DETECTOR_PLACEHOLDERS)
        ):
            raise InputError(f"detectors must be a non-empty subset of {', '.join(DETECTOR_PLACEHOLDERS)}")

    @property
    def enabled(self) -> tuple[str, ...]:
        if self.variant == BUILT:  # its stack's detectors, in one function
            return self.segment_settings.detectors
        if self.detectors is not None:
            return self.detectors
        return ("freeze",) if self.variant == "fewer-detectors" else self.stack.detectors

    def frames_for(self, detector: str) -> float:
        """Frames per second detector `detector` looks at."""
        if self.combined and detector in EXPRESS_BATCHED_SAMPLE_FPS:
            return min(self.shipped_per_second, EXPRESS_BATCHED_SAMPLE_FPS[detector])
        return self.shipped_per_second

    @property
    def shipped_per_second(self) -> float:
        cap = self.sample_fps if self.variant == "sampled" else self.stack.frames_per_second
        return self.fps if cap <= 0 else min(self.fps, cap)

    @property
    def batched(self) -> bool:
        return self.variant in ("batched", "express-batched")

    @property
    def express(self) -> bool:
        return self.variant in ("express", "express-batched")

    @property
    def combined(self) -> bool:
        """The detectors run in one function that reads the second's one object once."""
        return self.variant == "express-batched"

    @property
    def stream_seconds(self) -> float:
        return self.streams * self.hours * 3600

    @property
    def profile(self) -> Profile:
        if self.media is None:
            raise InputError(f"no measured profile for {self.resolution}: pass the calibration's")
        return self.media


@dataclass
class Usage:
    """Per stream-second of one stream."""

    transitions: float
    retries: float
    converter_invocations: float
    detector_invocations: dict[str, float]
    s3_put_frames: float
    s3_put_results: float
    s3_get: float
    sns_publishes: float
    executions: float
    converter_ms: float
    detector_ms: dict[str, float]
    gb_s: float
    gb_s_source: str
    bytes_shipped: float
    storage_gb_held: float  # GiB held in the frames bucket per running stream (steady state)
    log_gb: float
    live_edge_waits: float = 0.0  # Convert retries at the live edge (each one a converter invocation)
    starter_invocations: float = 0.0  # the live starter, once per playlist write

    @property
    def lambda_invocations(self) -> float:
        return (self.converter_invocations + self.live_edge_waits + self.starter_invocations
                + sum(self.detector_invocations.values()))

    @property
    def lambda_concurrency(self) -> float:
        """Lambda environments one real-time stream keeps busy (one stream-second per second)."""
        return (
            self.converter_invocations * self.converter_ms
            + sum(self.detector_invocations[d] * self.detector_ms[d] for d in self.detector_ms)
        ) / 1000

    def as_dict(self) -> dict[str, Any]:
        return {
            "state_transitions": self.transitions,
            "retries": self.retries,
            "lambda_invocations": self.lambda_invocations,
            "converter_invocations": self.converter_invocations,
            "detector_invocations": self.detector_invocations,
            "s3_put": self.s3_put_frames + self.s3_put_results,
            "s3_put_frames": self.s3_put_frames,
            "s3_put_results": self.s3_put_results,
            "s3_get": self.s3_get,
            "s3_list": 0.0,
            "sns_publishes": self.sns_publishes,
            "executions": self.executions,
            "converter_ms": self.converter_ms,
            "detector_ms": self.detector_ms,
            "lambda_gb_seconds": self.gb_s,
            "lambda_gb_seconds_source": self.gb_s_source,
            "bytes_shipped": self.bytes_shipped,
            "temp_storage_gib_held": self.storage_gb_held,
            "log_gb": self.log_gb,
            "lambda_concurrency": self.lambda_concurrency,
            "live_edge_waits": self.live_edge_waits,
            "starter_invocations": self.starter_invocations,
        }


def serverless_usage(definition: dict[str, Any], w: Workload
                     ) -> tuple[Usage | SegmentUsage, LoopModel | None]:
    """Per stream-second of variant `w.variant`: the built design from its settings and the calibration
    (no workflow), every other from the workflow definition."""
    if w.variant == BUILT:
        return built_usage(w), None
    return workflow_usage(definition, w)


def built_usage(w: Workload) -> SegmentUsage:
    if w.pipeline_cpu_s is None:
        raise InputError(f"no measured CPU per stream-second at {w.resolution}: pass the calibration's")
    # A finished file reaches it as segments too (the demo publishes one at full speed): the same counts.
    return segment_usage(segment_seconds=w.segment_seconds, cpu_s=w.pipeline_cpu_s,
                         settings=w.segment_settings, defects_per_hour=w.defects_per_hour,
                         cpu_source=f"{w.pipeline_cpu_source}; {w.media_source}" if w.pipeline_cpu_source
                         else w.media_source,
                         log_bytes_per_invocation=LOG_BYTES_PER_INVOCATION)


def workflow_usage(definition: dict[str, Any], w: Workload) -> tuple[Usage, LoopModel]:
    shaped = drop_detector_branches(definition, DETECTOR_PLACEHOLDERS, w.enabled)
    if w.combined:
        shaped = combine_detector_branches(shaped, DETECTOR_PLACEHOLDERS, COMBINED_PLACEHOLDER)
    loop = LoopModel(shaped)
    rate = w.defects_per_hour / 3600
    # One defect per defect-second: events are seconds apart in practice, so each opens its own Map.
    per = loop.per_second(
        seconds_per_execution=min(w.stack.seconds_per_execution, EXPRESS_MAX_S)
        if w.express
        else w.stack.seconds_per_execution,
        defect_seconds_rate=rate,
        defects_rate=rate,
        retry_rate=w.retry_rate,
    )
    conv = per.get(f"lambda:invoke:{CONVERTER_PLACEHOLDER}", 0.0)
    # function (a detector's name, or "detectors" for the combined one) -> (placeholder, detectors in it)
    functions = (
        {"detectors": (COMBINED_PLACEHOLDER, w.enabled)}
        if w.combined
        else {name: (DETECTOR_PLACEHOLDERS[name], (name,)) for name in w.enabled}
    )
    dets = {fn: per.get(f"lambda:invoke:{arn}", 0.0) for fn, (arn, _) in functions.items()}
    p = w.profile
    shipped = w.shipped_per_second
    bytes_s = shipped * p.frame_bytes + p.audio_bytes
    puts = 1.0 if w.batched else shipped + 1  # + the audio object
    # Converter: decode every frame, pack the shipped ones, PUT them one by one; one HeadObject per
    # invocation (StreamCache.fetch in lambdas/converter/service.py) is a GET-class request.
    conv_ms = (
        (p.decode_ms_per_frame * w.fps + p.pack_ms_per_frame * shipped)
        / _cpu_share(w.stack.converter_memory_mb)
    )
    gets: dict[str, float] = {}
    det_ms: dict[str, float] = {}
    for fn, (_, names) in functions.items():
        needs = [w.needs.get(name, (True, False)) for name in names]
        video, audio = any(v for v, _ in needs), any(a for _, a in needs)
        frames = shipped if video else 0
        objects = 1.0 if w.batched else frames + (1 if audio else 0)
        cpu = p.unpack_ms_per_object * (shipped + 1 if w.batched else objects) + sum(
            p.detect_ms_per_frame.get(name, 1.0) * (w.frames_for(name) if video else 0) for name in names
        )
        det_ms[fn] = cpu / _cpu_share(w.stack.detector_memory_mb)
        gets[fn] = objects
    gb_s_model = conv * w.stack.converter_memory_mb / 1024 * conv_ms / 1000 + sum(
        dets[fn] * w.stack.detector_memory_mb / 1024 * det_ms[fn] / 1000 for fn in functions
    )
    gb_s, gb_src = (
        gb_s_model,
        f"estimated: per-frame CPU measured ({w.media_source}); CPU share = memory / {MB_PER_VCPU} MB; the "
        "time waiting on S3 is not counted (a floor)",
    )
    live = live_usage(definition, w, conv_ms, det_ms) if w.live else {}
    waits, starts = live.get("waits", 0.0), live.get("starts", 0.0)
    gb_s += live.get("gb_s", 0.0)
    # Lifecycle expiry rounds up to the next midnight UTC: held 1.5 days on average.
    hold_s = EXPRESS_BATCHED_HOLD_S if w.combined else (w.stack.temp_expiry_days + 0.5) * 86400
    executions = per.get("states:startExecution", 0.0) + 0.0
    usage = Usage(
        transitions=per["transitions"] + waits,
        retries=per.get("retries", 0.0) + waits,
        converter_invocations=conv,
        detector_invocations=dets,
        s3_put_frames=conv * puts,
        s3_put_results=per.get("aws-sdk:s3:putObject", 0.0),
        # One HeadObject (a file) or playlist GET (a live stream) per converter invocation, waits included;
        # live: one GET per segment by the converter and one playlist GET per starter invocation.
        s3_get=conv * 1 + waits + live.get("gets", 0.0) + sum(dets[fn] * gets[fn] for fn in functions),
        sns_publishes=per.get("sns:publish", 0.0),
        executions=executions,
        converter_ms=conv_ms,
        detector_ms=det_ms,
        gb_s=gb_s,
        gb_s_source=gb_src,
        bytes_shipped=bytes_s,
        storage_gb_held=bytes_s * hold_s / GIB,
        log_gb=(conv + waits + starts + sum(dets.values())) * LOG_BYTES_PER_INVOCATION / 1e9,
        live_edge_waits=waits,
        starter_invocations=starts,
    )
    return usage, loop


STARTER_MEMORY_MB = 256  # infra/live_input.py


def live_usage(definition: dict[str, Any], w: Workload, conv_ms: float, det_ms: dict[str, float]
               ) -> dict[str, float]:
    """Per stream-second of a live stream that keeps up, from the wait design (the ASL's Retry on
    SecondNotPublishedYet) and the segment length: the loop's critical path (the converter, then the
    slowest detector) takes `work` of each second; the rest of the second it waits at the edge, one poll
    (a retry transition, a converter invocation and its playlist GET) per poll interval. How many polls a
    run makes depends on its timing: `count --summary` shows them measured beside this figure."""
    poll_s, _ = live_edge_wait(definition)
    work_s = (conv_ms + max(det_ms.values(), default=0.0)) / 1000
    waits = max(0.0, 1.0 - work_s) / poll_s
    segments = 1.0 / w.segment_seconds
    # A poll (the playlist GET and a parse) and a start (the playlist GET and StartExecution) wait on S3
    # and do next to no work: billed at Lambda's least duration each.
    gb_s = (waits * w.stack.converter_memory_mb + segments * STARTER_MEMORY_MB) * MIN_BILLED_MS / 1024 / 1000
    return {"waits": waits, "starts": segments, "gets": 2 * segments, "gb_s": gb_s}


def _cpu_share(memory_mb: int) -> float:
    return min(1.0, memory_mb / MB_PER_VCPU)


# --- lines -----------------------------------------------------------------------------------------
def serverless_lines(u: Usage | SegmentUsage, w: Workload, book: PriceBook, *, free_tier: bool = False
                     ) -> list[Line]:
    if isinstance(u, SegmentUsage):
        lines = segment_lines(u, streams=w.streams, hours=w.hours, architecture=w.stack.architecture,
                              book=book)
        return lines + (_free_tier(lines, book, w) if free_tier else [])
    n = w.stream_seconds
    lines: list[Line] = []
    if w.express:
        # One Express execution per `seconds_per_execution` (at most 5 minutes); a live stream's execution
        # lasts as long as the stream-seconds it covers.
        lines.append(
            priced_line(book, "sfn.express.request", "Step Functions", "Express requests", u.executions * n)
        )
        lines += tiered(
            book, "sfn.express.gb_s", "Step Functions", "Express GB-seconds", n * EXPRESS_MEMORY_GB
        )
    else:
        lines.append(
            priced_line(book, "sfn.transition", "Step Functions", "state transitions", u.transitions * n)
        )
    lines.append(priced_line(book, "lambda.request", "Lambda", "requests", u.lambda_invocations * n))
    arch = w.stack.architecture
    lines += tiered(book, f"lambda.gb_s.{arch}", "Lambda", f"GB-seconds ({arch})", u.gb_s * n)
    lines.append(priced_line(book, "s3.put", "S3", "PUT requests", (u.s3_put_frames + u.s3_put_results) * n))
    lines.append(priced_line(book, "s3.get", "S3", "GET requests", u.s3_get * n))
    storage = u.storage_gb_held * w.streams * min(1.0, w.hours / HOURS_PER_MONTH)
    lines += tiered(book, "s3.gb_month", "S3", "GB-months (frames bucket)", storage)
    lines.append(priced_line(book, "sns.publish", "SNS", "publishes", u.sns_publishes * n))
    if w.live:  # every object written to the source bucket (each segment and each playlist) is an event
        events = 2 / w.segment_seconds * n
        lines.append(priced_line(book, "events.s3_event", "EventBridge", "S3 object events", events))
    lines.append(
        priced_line(
            book,
            "logs.ingest_gb",
            "CloudWatch Logs",
            "GB ingested (Lambda logs)",
            u.log_gb * n,
            note=f"{LOG_BYTES_PER_INVOCATION} B/invocation assumed",
        )
    )
    # Tracing is on in the state machine and every function: each execution is a trace root, and so is
    # each corrective action (one per defect).
    roots = {
        "executions": u.executions * w.streams,
        "corrective actions": w.defects_per_hour / 3600 * w.streams,
    }
    lines.append(xray_line(book, roots, w.hours * 3600))
    if free_tier:
        lines += _free_tier(lines, book, w)
    return lines


def _free_tier(lines: list[Line], book: PriceBook, w: Workload) -> list[Line]:
    def used(service: str, unit_prefix: str) -> float:
        return sum(
            x["quantity"] for x in lines if x["service"] == service and x["unit"].startswith(unit_prefix)
        )

    out = []
    specs = [
        ("Step Functions", "state transitions", "sfn.transition", "sfn.transition"),
        ("Lambda", "requests", "lambda.request", "lambda.request"),
        ("Lambda", "GB-seconds", "lambda.gb_s", f"lambda.gb_s.{w.stack.architecture}.1"),
        ("SNS", "publishes", "sns.publish", "sns.publish"),
        ("X-Ray", "traces recorded", "xray.trace", "xray.trace"),
    ]
    for service, unit, free_key, price_key in specs:
        amount = min(used(service, unit), FREE_TIER[free_key][0])
        if amount > 0:
            out.append(
                line(service, f"free tier: {unit}", -amount, book[price_key].usd, FREE_TIER[free_key][1])
            )
    return out


# --- the account ceiling ---------------------------------------------------------------------------
def quota(u: Usage | SegmentUsage, w: Workload, book: PriceBook) -> dict[str, Any]:
    """The largest number of concurrent real-time streams one account can run, and the limit that sets it."""
    if isinstance(u, SegmentUsage):
        return segment_quota(u, streams=w.streams, region=book.region.name)
    limits: list[tuple[int, str]] = []
    region = book.region
    if not w.express:
        per = u.transitions
        limits.append(
            (
                math.floor(region.state_transition_refill_per_s / per + 1e-9),
                f"Step Functions Standard StateTransition refill {region.state_transition_refill_per_s:,}/s "
                f"in {region.name} / {per:.2f} transitions per stream-second",
            )
        )
    limits.append(
        (
            math.floor(LAMBDA_CONCURRENCY / u.lambda_concurrency + 1e-9),
            f"Lambda concurrency {LAMBDA_CONCURRENCY:,} (default, raisable) / {u.lambda_concurrency:.2f} "
            "busy environments per stream",
        )
    )
    best, text = min(limits)
    return {
        "max_concurrent_streams": best,
        "limit": text,
        "ceiling_pct_of_load": 100.0 * best / w.streams,
        "other_limits": [{"max_concurrent_streams": m, "limit": t} for m, t in limits if t != text],
        "source": QUOTA_SOURCE if not w.express else "Lambda quotas; " + QUOTA_SOURCE,
    }


# --- compare ---------------------------------------------------------------------------------------
def compare(
    definition: dict[str, Any],
    w: Workload,
    book: PriceBook,
    *,
    after: AfterOptions,
    free_tier: bool = False,
    notes: list[str] | None = None,
) -> dict[str, Any]:
    """The `compare --json` document: the before's cost lines (the serverless variant `w.variant`), the
    after's (the monolith service on ECS on EC2), the reduction, the quota."""
    u, loop = serverless_usage(definition, w)
    s_lines = serverless_lines(u, w, book, free_tier=free_tier)
    s_total = total(s_lines)
    m = after_summary(w.streams, w.hours, w.defects_per_hour, w.resolution, after, book)
    purchases, unavailable = by_purchase(w, book, after)
    m_total = m["monthly_usd"]
    return {
        "scenario": {
            "streams": w.streams,
            "hours_per_month": w.hours,
            "fps": w.fps,
            "resolution": w.resolution,
            "region": book.region.name,
            "variant": w.variant,
            "variant_description": VARIANTS[w.variant],
            "detectors": list(w.enabled),
            "frames_shipped_per_second": w.shipped_per_second,
            "defects_per_stream_hour": w.defects_per_hour,
            "retry_rate": w.retry_rate,
            "converter_memory_mb": w.stack.converter_memory_mb,
            "detector_memory_mb": w.stack.detector_memory_mb,
            "seconds_per_execution": w.stack.seconds_per_execution,
            "loop": None if loop is None else {
                "entry": loop.loop.entry,
                "states": sorted(loop.loop.members),
                "transitions_quiet_second": loop.quiet.transitions,
            },
            **({"built": {"memory_mb": w.segment_settings.memory_mb,
                          "batch_size": w.segment_settings.batch_size,
                          "reserved_concurrency": w.segment_settings.reserved_concurrency,
                          "segment_seconds": w.segment_seconds}} if w.variant == BUILT else {}),
            "per_stream_second": u.as_dict(),
            "monolith": {**m["fleet"], "purchase": after.purchase, "network": m["network"]},
            "prices_date": book["sfn.transition"].date,
            "inputs": list(notes or []),
        },
        "serverless": {"monthly_usd": s_total, "lines": s_lines},
        "monolith": {
            "monthly_usd": m_total,
            "lines": m["lines"],
            "range": m["range"],
            "by_purchase": purchases,
            "purchase_notes": unavailable,
        },
        "reduction_pct": 100.0 * (1 - m_total / s_total) if s_total > 0 else 0.0,
        "quota": quota(u, w, book),
    }


def by_purchase(
    w: Workload, book: PriceBook, after: AfterOptions
) -> tuple[dict[str, float | None], dict[str, str]]:
    """The after's monthly cost under every purchase option (None where no rate is sourced or given), and
    for each of those the sentence that says why."""
    costs: dict[str, float | None] = {}
    why: dict[str, str] = {}
    for purchase in PURCHASES:
        try:
            costs[purchase] = after_summary(
                w.streams, w.hours, w.defects_per_hour, w.resolution, replace(after, purchase=purchase), book
            )["monthly_usd"]
        except PurchaseUnavailable as error:
            costs[purchase], why[purchase] = None, str(error)
    return costs, why


def with_streams(w: Workload, streams: int) -> Workload:
    return replace(w, streams=streams)


def breakeven(
    definition: dict[str, Any], w: Workload, book: PriceBook, after: AfterOptions, *, limit: int = 1_000_000
) -> int | None:
    """The fewest concurrent streams at which the serverless variant `w` costs at least the after, or None
    when it stays cheaper up to `limit`. The serverless side is linear in streams (volume tiers make it
    cheaper per stream, never dearer), the after a staircase of instances plus fixed lines, so the first
    crossing is found by doubling and then halving the interval."""
    u, _ = serverless_usage(definition, w)

    def gap(n: int) -> float:
        wn = with_streams(w, n)
        serverless = total(serverless_lines(u, wn, book))
        return (
            serverless
            - after_summary(n, w.hours, w.defects_per_hour, w.resolution, after, book)["monthly_usd"]
        )

    if gap(1) >= 0:
        return 1
    low, high = 1, 2
    while gap(high) < 0:
        if high >= limit:
            return None
        low, high = high, min(high * 2, limit)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if gap(mid) < 0 else (low, mid)
    return high
