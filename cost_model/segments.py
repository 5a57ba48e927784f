"""The event-driven serverless design as built (`StreamQuality-serverless-<stage>`: a live segment lands ->
EventBridge -> SQS -> one Lambda that decodes and detects in memory), counted from its definition, priced
line by line, with its ceiling. This is the `well-architected` variant.

Where each count comes from (nothing here is a constant of its own):
- the function's code (lambdas/segment_analyzer/service.py): per segment one state GET and one conditional
  state PUT, one playlist GET, one GET per segment of its window (`window_first`), one results PUT when
  the window gives out a second (`stop_second`; the stream's first segment gives none), one SNS publish per
  defect; per stream, one stall watch in flight (`StallWatch`): a delayed message that, every
  `stall_timeout_s` of the stream's life, is one invocation (counted alone: the most), one ReceiveMessage
  and one DeleteMessageBatch, one state GET and one SendMessage that arms the next; the corrective action
  one invocation and one record PUT per defect (as in the before);
- the route (infra/serverless.py): every object written to the source bucket (the segment and the
  playlist rewrite) is an S3 event on EventBridge; the rule sends each segment's as one SQS SendMessage;
  each invocation is one ReceiveMessage that returned its batch and one DeleteMessageBatch;
- the settings (`lambdas.segment_analyzer.settings.SegmentSettings`): memory, batch size, reserved
  concurrency;
- the calibration (`calibration/calibration.json`): CPU-seconds per stream-second of the in-memory pipeline
  (`monolith analyze`, the same decoder and detectors) at the scenario's resolution. GB-seconds are priced
  from CPU-seconds and the CPU share AWS gives at the configured memory: one full vCPU at 1,769 MB,
  proportionally less below (Lambda developer guide, "Configuring Lambda function memory";
  `metering.bill.cpu_priced_gb_seconds`, which prices a measured run the same way).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from calibration import Calibration, CalibrationError
from cost_model.inputs import InputError
from cost_model.lines import Line, priced_line, tiered
from cost_model.measured import row  # the same row shape and equality as the before's and the after's
from cost_model.prices import PriceBook
from cost_model.tracing import xray_line
from lambdas.segment_analyzer.service import stop_second, window_first
from lambdas.segment_analyzer.settings import FULL_VCPU_MB, SegmentSettings
from lambdas.shared.live import LivePlaylist, LiveSegment
from metering.bill import cpu_priced_gb_seconds

DESIGN = "the built event-driven design: segment -> EventBridge -> SQS -> one Lambda, in memory"
# Memory sizes the curve shows (Lambda allows 128 MB to 10,240 MB); the configured size and the full-vCPU
# size are added to it.
CURVE_MB = (128, 256, 512, 1024, 1536, 2048, 3008, 4096, 10240)
# Limits the ceiling is counted from, each with its public source (cost_model/SOURCES.md, "Quotas").
LAMBDA_CONCURRENCY = 1000  # per account and region by default, raisable
UNRESERVED_MINIMUM = 100  # reserved concurrency must leave this much of the account's limit unreserved
ESM_MAX_BATCHES = 1000  # concurrent batches one SQS event source mapping processes (standard mode)
S3_PUTS_PER_PREFIX = 3500  # per second per partitioned prefix: every state PUT goes under state/
EVENTBRIDGE_INVOCATIONS = {"us-east-1": 18750, "us-west-2": 18750, "eu-west-1": 18750}  # per second
EVENTBRIDGE_INVOCATIONS_ELSEWHERE = 1100  # "each other supported Region" (a few list 2,250 or 4,500)
FIFO_CALLS_PER_S = 300  # per API action of a FIFO queue without high-throughput mode
QUOTA_SOURCES = (
    "Lambda quotas and 'Configuring reserved concurrency' (100 kept unreserved); Lambda 'Configuring "
    "scaling behavior for SQS event source mappings' (1,000 concurrent batches); S3 performance guidelines "
    "(3,500 PUT/s per prefix); EventBridge quotas (invocations throttle limit); SQS quotas (standard queues: "
    "nearly unlimited calls; FIFO: 300 per action without high throughput); cost_model/SOURCES.md"
)


@dataclass(frozen=True)
class StreamCounts:
    """What the built design does for one stream of `segments` segments and `stream_seconds` seconds."""

    segments: int
    stream_seconds: int
    window_gets: int  # segment GETs of all the windows
    results_puts: int  # one object per window that gave out a second
    defects: int

    @property
    def s3_get(self) -> int:
        """The analyser's GETs: its windows, a playlist GET and a state GET per segment."""
        return self.window_gets + 2 * self.segments

    @property
    def s3_put(self) -> int:
        """The analyser's PUTs: its results objects and a conditional state PUT per segment."""
        return self.results_puts + self.segments

    @property
    def events(self) -> int:
        """S3 events on EventBridge: each segment and each playlist rewrite (one per segment)."""
        return 2 * self.segments


def stream_counts(spans: list[tuple[float, float]], stream_seconds: int, defects: int = 0) -> StreamCounts:
    """The counts of one stream analysed to its end, its segments given as (start_s, duration_s), each
    delivered once and in order: the function's own window rule (`window_first`, `stop_second`)."""
    each = per_segment(spans, stream_seconds)
    return StreamCounts(len(spans), stream_seconds, sum(g for g, _ in each), sum(1 for _, p in each if p),
                        defects)


def per_segment(spans: list[tuple[float, float]], stream_seconds: int) -> list[tuple[int, bool]]:
    """For each segment: the GETs of its window and whether it writes a results object."""
    if not spans:
        raise InputError("a stream has at least one segment")
    playlist = LivePlaylist(
        key="index.m3u8",
        segments=tuple(LiveSegment(i, f"segment-{i:05d}.ts", start, length)
                       for i, (start, length) in enumerate(spans)),
        ended=True,
    )
    out = []
    next_second = 0
    last = len(spans) - 1
    for index, segment in enumerate(playlist.segments):
        # The first segment only learns the stream's origin: its window is itself.
        first = index if index == 0 else window_first(playlist, index, next_second)
        stop = stream_seconds if index == last else stop_second(segment)
        out.append((index - first + 1, stop > next_second))
        next_second = max(next_second, stop)
    return out


def uniform_spans(stream_seconds: float, segment_seconds: float) -> list[tuple[float, float]]:
    """A stream cut into segments of `segment_seconds` (the last one shorter)."""
    count = max(1, math.ceil(stream_seconds / segment_seconds - 1e-9))
    return [(i * segment_seconds, min(segment_seconds, stream_seconds - i * segment_seconds))
            for i in range(count)]


# --- per stream-second, for a scenario --------------------------------------------------------------
@dataclass
class SegmentUsage:
    """Per stream-second of one live stream on the built design (a long stream: the first segment's
    missing results object is left out), plus what its GB-seconds and ceiling are computed from."""

    segment_seconds: float
    segments: float
    invocations: float  # the analyser's, for segments
    watch_checks: float  # stall-watch checks (each an invocation of the analyser of its own, at most)
    window_gets: float
    results_puts: float
    events: float
    sqs_requests: float
    sns_publishes: float
    corrective_actions: float
    cpu_s: float  # CPU-seconds per stream-second (the calibration's in-memory pipeline)
    memory_mb: int
    gb_s: float
    gb_s_source: str
    log_gb: float
    settings: SegmentSettings = field(default_factory=SegmentSettings)

    @property
    def s3_get(self) -> float:
        # + the playlist and the state per segment, + the state per stall-watch check
        return self.window_gets + 2 * self.segments + self.watch_checks

    @property
    def s3_put(self) -> float:
        return self.results_puts + self.segments + self.corrective_actions  # + state, + action records

    @property
    def lambda_invocations(self) -> float:
        return self.invocations + self.watch_checks + self.corrective_actions

    @property
    def duration_per_segment_s(self) -> float:
        """How long the function works on one segment at its memory (its CPU share)."""
        return self.segment_seconds * self.cpu_s / cpu_share(self.memory_mb)

    @property
    def lambda_concurrency(self) -> float:
        """Lambda environments one real-time stream keeps busy: the duration per segment / the segment."""
        return self.duration_per_segment_s / self.segment_seconds

    def as_dict(self) -> dict[str, Any]:
        return {
            "state_transitions": 0.0,
            "segments": self.segments,
            "segment_seconds": self.segment_seconds,
            "lambda_invocations": self.lambda_invocations,
            "analyzer_invocations": self.invocations,
            "stall_watch_checks": self.watch_checks,
            "corrective_actions": self.corrective_actions,
            "s3_put": self.s3_put,
            "s3_put_results": self.results_puts,
            "s3_put_state": self.segments,
            "s3_get": self.s3_get,
            "s3_get_windows": self.window_gets,
            "eventbridge_events": self.events,
            "sqs_requests": self.sqs_requests,
            "sns_publishes": self.sns_publishes,
            "cpu_s": self.cpu_s,
            "memory_mb": self.memory_mb,
            "duration_per_segment_s": self.duration_per_segment_s,
            "lambda_gb_seconds": self.gb_s,
            "lambda_gb_seconds_source": self.gb_s_source,
            "lambda_concurrency": self.lambda_concurrency,
            "bytes_shipped": 0.0,
            "log_gb": self.log_gb,
        }


def cpu_share(memory_mb: int) -> float:
    """The share of a vCPU Lambda gives a function of `memory_mb`: one full vCPU at 1,769 MB."""
    return min(1.0, memory_mb / FULL_VCPU_MB)


def pipeline_cpu(calibration: Calibration, resolution: str) -> tuple[float, str]:
    """CPU-seconds per stream-second of the function's in-memory work at `resolution` and where it comes
    from: the calibration's segment-analyser row (its windows re-read and re-decode what the next second's
    decode needs), or, in a calibration measured before that row existed, the monolith's (an
    underestimate: one continuous decode)."""
    try:
        return calibration.segment_analyzer_cpu(resolution).median, f"calibration's {resolution} " \
            "segment-analyser row"
    except CalibrationError:
        pass
    try:
        return calibration.monolith_cpu(resolution).median, f"calibration's {resolution} monolith row: no " \
            "segment-analyser row in it, so one continuous decode (run `make calibrate`)"
    except (CalibrationError, ValueError) as error:
        raise InputError(str(error)) from None


def segment_usage(*, segment_seconds: float, cpu_s: float, settings: SegmentSettings,
                  defects_per_hour: float, cpu_source: str, log_bytes_per_invocation: int) -> SegmentUsage:
    """Per stream-second of a long live stream cut into `segment_seconds` segments. Each segment lands
    alone (a stream's segments are a segment apart and the event source has no batching window), so it
    is one invocation, one receive and one batch delete: the most; a queue shared by many streams may
    hand over batches of up to `settings.batch_size` (`count --summary` shows a run's)."""
    # Steady state: the segments past the first two and before the stream's end, in a stream long enough
    # to repeat.
    count = max(60, math.ceil(60 / segment_seconds))
    spans = uniform_spans(count * segment_seconds, segment_seconds)
    steady = per_segment(spans, math.ceil(count * segment_seconds - 1e-9))[2:-1]
    steady_gets = sum(g for g, _ in steady) / len(steady)
    steady_puts = sum(1 for _, p in steady if p) / len(steady)
    segments = 1 / segment_seconds
    watches = 1 / settings.stall_timeout_s  # one check per stall timeout of a stream that keeps going
    defects = defects_per_hour / 3600
    gb_s = cpu_priced_gb_seconds(cpu_s, settings.memory_mb)
    return SegmentUsage(
        segment_seconds=segment_seconds,
        segments=segments,
        invocations=segments,
        watch_checks=watches,
        window_gets=steady_gets * segments,
        results_puts=steady_puts * segments,
        events=2 * segments,
        # SendMessage (the rule, or the watch arming the next), ReceiveMessage, DeleteMessageBatch
        sqs_requests=3 * (segments + watches),
        sns_publishes=defects,
        corrective_actions=defects,
        cpu_s=cpu_s,
        memory_mb=settings.memory_mb,
        gb_s=gb_s,
        gb_s_source=(
            f"CPU-priced: {cpu_s:.4f} CPU-s per stream-second ({cpu_source}) / the CPU share at "
            f"{settings.memory_mb} MB (one vCPU at {FULL_VCPU_MB} MB) x {settings.memory_mb} MB"
        ),
        log_gb=(segments + watches + defects) * log_bytes_per_invocation / 1e9,
        settings=settings,
    )


def segment_lines(u: SegmentUsage, *, streams: int, hours: float, architecture: str, book: PriceBook,
                  ) -> list[Line]:
    """The built design's monthly lines for `streams` streams running `hours` a month each."""
    n = streams * hours * 3600
    lines = [priced_line(book, "lambda.request", "Lambda", "requests", u.lambda_invocations * n)]
    lines += tiered(book, f"lambda.gb_s.{architecture}", "Lambda", f"GB-seconds ({architecture})", u.gb_s * n)
    lines.append(priced_line(book, "s3.put", "S3", "PUT requests (results, state, actions)", u.s3_put * n))
    lines.append(priced_line(book, "s3.get", "S3", "GET requests (playlist, windows, state)", u.s3_get * n))
    lines.append(priced_line(book, "events.s3_event", "EventBridge", "S3 object events", u.events * n))
    lines.append(priced_line(book, "sqs.request", "SQS", "requests (send, receive, delete)",
                             u.sqs_requests * n))
    lines.append(priced_line(book, "sns.publish", "SNS", "publishes", u.sns_publishes * n))
    lines.append(priced_line(book, "logs.ingest_gb", "CloudWatch Logs", "GB ingested (Lambda logs)",
                             u.log_gb * n, note="1000 B/invocation assumed, as for the before"))
    # Tracing is on in the function: each invocation (from SQS, no decision upstream) and each corrective
    # action is a trace root.
    roots = {"invocations": (u.invocations + u.watch_checks) * streams,
             "corrective actions": u.corrective_actions * streams}
    lines.append(xray_line(book, roots, hours * 3600))
    return lines


# --- the memory size ----------------------------------------------------------------------------------
def memory_curve(cpu_s: float, segment_seconds: float, configured_mb: int) -> list[dict[str, float]]:
    """GB-seconds per stream-second and the duration per segment at each memory size: flat up to one
    full vCPU (a smaller share makes the work last longer in proportion), growing linearly above it
    (more memory, no more CPU for single-threaded work)."""
    sizes = sorted({*CURVE_MB, FULL_VCPU_MB, configured_mb})
    return [{"memory_mb": mb, "cpu_share": cpu_share(mb),
             "gb_s_per_stream_s": cpu_priced_gb_seconds(cpu_s, mb),
             "duration_per_segment_s": segment_seconds * cpu_s / cpu_share(mb),
             "keeps_up": segment_seconds * cpu_s / cpu_share(mb) < segment_seconds}
            for mb in sizes]


def chosen_memory(curve: list[dict[str, float]]) -> int:
    """The rule: the least GB-seconds per stream-second, and among those the shortest duration (the
    least lag), i.e. the largest size whose GB-seconds are still the least."""
    least = min(row["gb_s_per_stream_s"] for row in curve)
    cheapest = [row for row in curve if row["gb_s_per_stream_s"] <= least * (1 + 1e-9)]
    return int(min(cheapest, key=lambda row: (row["duration_per_segment_s"], row["memory_mb"]))["memory_mb"])


# --- the ceiling ---------------------------------------------------------------------------------------
def segment_quota(u: SegmentUsage, *, streams: int, region: str) -> dict[str, Any]:
    """The most concurrent streams the built design runs, each limit counted, the first that binds, and
    what raising it takes."""
    envs = u.lambda_concurrency
    s = u.segment_seconds
    reserved = u.settings.reserved_concurrency
    invocations = EVENTBRIDGE_INVOCATIONS.get(region, EVENTBRIDGE_INVOCATIONS_ELSEWHERE)
    limits = [
        (math.floor(reserved / envs + 1e-9),
         f"the stack's reserved concurrency {reserved} (SegmentSettings.reserved_concurrency) / {envs:.3f} "
         f"busy environments per stream ({u.duration_per_segment_s:.2f} s per {s:g} s segment); raise: the "
         f"setting, a deploy, up to the account's limit less {UNRESERVED_MINIMUM} kept unreserved"),
        (math.floor((LAMBDA_CONCURRENCY - UNRESERVED_MINIMUM) / envs + 1e-9),
         f"Lambda concurrency {LAMBDA_CONCURRENCY:,} per account (default) less {UNRESERVED_MINIMUM} kept "
         f"unreserved / {envs:.3f} per stream; raise: a Service Quotas increase request"),
        (math.floor(ESM_MAX_BATCHES / envs + 1e-9),
         f"SQS event source: {ESM_MAX_BATCHES:,} concurrent batches (standard mode) / {envs:.3f} per stream; "
         "raise: provisioned mode (dedicated pollers)"),
        (math.floor(S3_PUTS_PER_PREFIX * s + 1e-9),
         f"S3 {S3_PUTS_PER_PREFIX:,} PUT/s per prefix: one state PUT per {s:g} s segment under state/; "
         "raise: spread the states over prefixes"),
        (math.floor(invocations * s + 1e-9),
         f"EventBridge {invocations:,} target invocations/s in {region}: one per {s:g} s segment; raise: a "
         "Service Quotas increase request"),
    ]
    best, text = min(limits)
    notes = [
        "SQS standard queue: nearly unlimited API calls per second (order is kept by the function against "
        "each stream's state, not by the queue)",
        f"a FIFO queue would have bound at {FIFO_CALLS_PER_S} SendMessage calls/s without high-throughput "
        f"mode (EventBridge sends one message per call): {math.floor(FIFO_CALLS_PER_S * s):,} streams at "
        f"{s:g} s segments",
        "DynamoDB: not used (each stream's state is one S3 object written conditionally)",
        f"each stream keeps up while a segment's work ({u.duration_per_segment_s:.2f} s) is shorter than "
        f"the segment ({s:g} s): "
        + ("it is" if u.duration_per_segment_s < s else "it is NOT: the stream falls behind"),
    ]
    need = math.ceil(streams * envs - 1e-9)
    to_raise = [item for ceiling, item in (
        (reserved, f"the stack's reserved concurrency from {reserved} to at least {need} (a setting and a "
                   "deploy)"),
        (LAMBDA_CONCURRENCY - UNRESERVED_MINIMUM,
         f"the account's Lambda concurrency from {LAMBDA_CONCURRENCY:,} to at least "
         f"{need + UNRESERVED_MINIMUM:,} (a Service Quotas request)"),
        (ESM_MAX_BATCHES, "the event source to provisioned mode (more than 1,000 concurrent batches)"),
    ) if need > ceiling]
    to_raise += [item for ceiling, item in (
        (math.floor(S3_PUTS_PER_PREFIX * s + 1e-9), "the states spread over several prefixes"),
        (math.floor(invocations * s + 1e-9), "EventBridge's invocations quota (a Service Quotas request)"),
    ) if streams > ceiling]
    return {
        "max_concurrent_streams": best,
        "limit": text,
        "ceiling_pct_of_load": 100.0 * best / streams,
        "other_limits": [{"max_concurrent_streams": m, "limit": t} for m, t in sorted(limits) if t != text],
        "environments_needed": need,
        "to_raise": to_raise,
        "notes": notes,
        "source": QUOTA_SOURCES,
    }


# --- a run's counts, checked -------------------------------------------------------------------------
ANALYZER = "segment-analyzer"  # metering.bill.SEGMENT_ANALYZER: the function's role in a bill
STALL_WATCH = "stall-watch"  # metering.bill.STALL_WATCH: the stall watches' own requests
CORRECTIVE = "corrective-action"


def run_spans(run: dict[str, Any]) -> tuple[list[tuple[float, float]], str]:
    """The run's segments as (start_s, duration_s): as published (`published.segments`), else `segments`
    equal ones over its stream-seconds; and how they were found."""
    published = (run.get("published") or {}).get("segments")
    if isinstance(published, list) and published:
        try:
            return [(float(s["start_s"]), float(s["duration_s"])) for s in published], "as published"
        except (KeyError, TypeError, ValueError):
            raise InputError("serverless: published.segments must hold start_s and duration_s") from None
    segments = run.get("segments")
    seconds = run.get("stream_seconds")
    if not isinstance(segments, int) or isinstance(segments, bool) or segments < 1:
        raise InputError(f"serverless: segments must be the number of segments published, got {segments!r}")
    if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 1:
        raise InputError(f"serverless: stream_seconds must be a whole number >= 1, got {seconds!r}")
    return (uniform_spans(seconds, seconds / segments),
            f"{segments} equal segments (no boundaries in the summary)")


def check_run(run: dict[str, Any], *, settings: SegmentSettings, cpu_s: float | None, cpu_source: str,
              ) -> list[dict[str, Any]]:
    """Rows {quantity, analytic, measured, equal, note} for the `serverless` object of a demo summary:
    what the design's code and settings imply for this stream's segments and defects against what the
    run's bill counted. Equality where timing does not enter (requests, events, objects, publishes);
    invocations (how messages were batched), retries and GB-seconds are shown beside their model."""
    seconds = run.get("stream_seconds")
    if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 1:
        raise InputError(f"serverless: stream_seconds must be a whole number >= 1, got {seconds!r}")
    spans, how = run_spans(run)
    defects = _items(run.get("defects"), "defects")
    counts = stream_counts(spans, seconds, defects)
    n = counts.segments
    s3 = (run.get("s3_requests") or {}).get("by_source") or {}
    analyzer_s3, corrective_s3 = s3.get(ANALYZER) or {}, s3.get(CORRECTIVE) or {}
    sqs = run.get("sqs_requests") or {}
    functions = run.get("lambda_functions") or {}
    analyzer = functions.get(ANALYZER) or {}
    gets = analyzer_s3.get("GetObject", 0) + analyzer_s3.get("HeadObject", 0)
    gets_note = f"{n} playlist + {n} state + {counts.window_gets} window segment GETs ({n} segments {how})"
    retries = sqs.get("ChangeMessageVisibility", 0)
    if retries:
        # A segment handed back to the queue (it came before its predecessor, or before the playlist listed
        # it) read the state, and perhaps the playlist, once more: timing decides which.
        within = counts.s3_get + retries <= gets <= counts.s3_get + 2 * retries
        get_row = {"quantity": "serverless S3 GET", "analytic": counts.s3_get, "measured": gets,
                   "equal": None if within else False,
                   "note": f"{gets_note}; + {retries} retries, a state GET each and perhaps a playlist GET "
                           f"({counts.s3_get + retries}..{counts.s3_get + 2 * retries})"}
    else:
        get_row = row("serverless S3 GET", counts.s3_get, gets, gets_note)
    rows = [
        get_row,
        row("serverless S3 PUT", counts.s3_put, analyzer_s3.get("PutObject", 0),
            f"{n} conditional state PUTs + {counts.results_puts} results objects (one per window that gave "
            "out a second)"),
        row("serverless EventBridge events", counts.events, run.get("eventbridge_events", 0),
            f"{n} segments + {n} playlist rewrites"),
        row("serverless SQS SendMessage", n, sqs.get("SendMessage", 0),
            "one per segment (the rule's target)"),
        row("serverless SNS publishes", defects, run.get("sns_publishes", 0), "one per defect"),
    ]
    if CORRECTIVE in functions or corrective_s3:
        rows.append(row("serverless corrective actions", 2 * defects,
                        (functions.get(CORRECTIVE) or {}).get("invocations", 0)
                        + corrective_s3.get("PutObject", 0),
                        f"{defects} invocations + {defects} records (one each per defect)"))
    watch_sends = sqs.get("stall_watch_SendMessage", 0)
    if watch_sends or s3.get(STALL_WATCH):
        # One watch armed at the first segment, then one more per stall timeout while the stream goes on:
        # at real time about seconds / timeout + 1; a stream published faster arms fewer. Timing decides.
        paced = math.ceil(seconds / settings.stall_timeout_s) + 1
        rows.append({
            "quantity": "serverless stall watches armed", "analytic": paced, "measured": watch_sends,
            "equal": None,
            "note": f"timing, not checked: one per {settings.stall_timeout_s} s of the stream's life + the "
                    "first, at real time; a stream published faster arms fewer (each check: a state GET, "
                    "an invocation share, a receive and a delete)",
        })
    invocations = analyzer.get("invocations")
    if isinstance(invocations, int):
        fewest = math.ceil(n / settings.batch_size)
        # A segment handed back is received again; a stall watch's check may be an invocation of its own;
        # a segment delivered again (at least once) is a duplicate; an invocation that failed or timed
        # out (it logged no requests) has its batch received again.
        watches = int(run.get("stall_watch_invocations") or 0)
        duplicates = int(run.get("duplicate_deliveries") or 0)
        completed = run.get("analyser_invocations_completed")
        unfinished = max(0, invocations - int(completed)) if isinstance(completed, int) else 0
        causes = ((retries, "retries"), (watches, "with stall watches"), (duplicates, "duplicate deliveries"),
                  (unfinished, "that failed or timed out"))
        most = n + sum(k for k, _ in causes)
        within = fewest <= invocations <= most
        extra = "".join(f", + {k} {what}" for k, what in causes if k)
        rows.append({
            "quantity": "serverless analyser invocations", "analytic": n, "measured": invocations,
            "equal": None if within else False,
            "note": (f"timing, not checked: between {fewest} (full batches of {settings.batch_size}) and "
                     f"{most} (one segment each, the model's, as live segments land{extra})" if within else
                     f"outside {fewest}..{most}: a segment was delivered more than once"),
        })
        rows.append({
            "quantity": "serverless SQS receive + batch delete", "analytic": 2 * n,
            "measured": sqs.get("ReceiveMessage", 0) + sqs.get("DeleteMessageBatch", 0), "equal": None,
            "note": "timing, not checked: one each per invocation"
                    + (f"; {retries} retries (segments that arrived before their predecessor)"
                       if retries else ""),
        })
    gb_s = analyzer.get("gb_seconds")
    memory = analyzer.get("memory_mb") or settings.memory_mb
    if cpu_s is not None and isinstance(gb_s, int | float):
        modelled = cpu_priced_gb_seconds(cpu_s * seconds, int(memory))
        measured_cpu = analyzer.get("cpu_s")
        ratio = (f"; the run's {measured_cpu / seconds:.4f} CPU-s per stream-second is "
                 f"{measured_cpu / seconds / cpu_s:.1f}x the pipeline's" if measured_cpu else "")
        rows.append({
            "quantity": "serverless analyser GB-seconds", "analytic": modelled, "measured": gb_s,
            "equal": None,
            "note": f"timing, not checked: both priced from CPU-seconds at {memory} MB; modelled from "
                    f"{cpu_s:.4f} CPU-s per stream-second ({cpu_source}){ratio} (each window re-opens "
                    "and demuxes its segments and decodes the audio preroll and the video from the last "
                    "keyframe again; a busy machine's CPU time varies)",
        })
    return rows


def _items(value: Any, name: str) -> int:
    if isinstance(value, list):
        return len(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise InputError(f"serverless: {name} must be a list or a count, got {value!r}")


def resolution_of(stream: Path, calibration: Calibration) -> str:
    """The calibration row for a stream file: the measured resolution nearest its picture height."""
    from lambdas.converter.decode import UnreadableStreamError, probe

    try:
        height = probe(stream).height
    except (UnreadableStreamError, OSError) as error:
        raise InputError(f"{stream}: cannot read its picture size ({error})") from None
    rows = calibration.resolutions
    if not rows:
        raise InputError(f"{calibration.path}: no resolution measured; run `make calibrate`")
    return min(rows, key=lambda name: abs(int(name.rstrip("p")) - height))
