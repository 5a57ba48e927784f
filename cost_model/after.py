"""The after (`python -m monolith serve` on ECS on EC2), counted from its settings and priced line by line.

Requests follow from `settings` (its docstring states the rules) and the stream itself:
- S3: one GET per stream; `results_objects(n, results_batch_seconds)` PUTs;
- SQS: one ReceiveMessage and one DeleteMessage per job, `visibility_extensions(n, heartbeat_seconds)`
  ChangeMessageVisibility calls; a poller with nothing to do long-polls, one receive per `receive_wait_s`;
- SNS: one publish per defect, one failure notification per stream that cannot be analysed.

A live stream (the default scenario; monolith/live.py) adds, per stream: one GET per segment, one
playlist GET per `live_poll_s` of the time the follower waits at the live edge, and for every playlist
rewrite (one per segment) an S3 event on EventBridge and a job message (SQS SendMessage by the rule,
ReceiveMessage, a GET of the follower record, DeleteMessage: a duplicate while the stream is followed);
every segment's own object is an S3 event too. Its follower record is written (a conditional PUT) when
the stream is taken, after each results batch and each defect notification, every `lease_s`/3 while
nothing else writes it, and at the end (`live_stream_counts`, `LiveRates`).

Compute: each task reserves what `monolith.sizing.task_size` gives for the measured CPU and memory at the
scenario's resolution (its headroom included); tasks are bin-packed onto the instance type by CPU and by
memory; the fleet is priced on demand, as Reserved Instances at AWS's published rates, or under a Compute
Savings Plan at the user's rate (`prices.instance_rate`). The corrective action it shares with the before
is traced (`tracing.py`). The stack's fixed lines are the network path (default: public subnets with an
S3 gateway endpoint, so each instance has a public IPv4 address and nothing goes through a NAT gateway),
the instances' EBS volumes, the container logs and the image in ECR.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

from calibration import Calibration, CalibrationError
from cost_model.inputs import InputError
from cost_model.lines import Line, line, priced_line, total
from cost_model.measured import row
from cost_model.prices import (
    ARM64_CPU_FACTOR,
    ARM64_CPU_SOURCE,
    HOURS_PER_MONTH,
    PURCHASES,
    PriceBook,
    instance_rate,
)
from cost_model.tracing import xray_line
from infra.after_config import (
    AZS,
    EBS_GIB,
    INTERFACE_ENDPOINTS,
    NETWORKS,
    AfterConfig,
    InstanceCapacity,
    instance_capacity,
)
from monolith.sizing import HEADROOM, TaskSize, task_size
from settings import ServiceSettings, results_objects, visibility_extensions

# The instance types priced (cost_model/prices.py); their vCPUs, memory and architecture, and how many tasks
# each holds, are the after stack's (infra/after_config.py instance_capacity).
INSTANCES = (
    "c6i.large",
    "c6i.xlarge",
    "c6i.2xlarge",
    "c6i.4xlarge",
    "c7g.large",
    "c7g.xlarge",
    "c7g.2xlarge",
    "c7g.4xlarge",
)
DEFAULT_INSTANCE = {"x86_64": "c6i.2xlarge", "arm64": "c7g.2xlarge"}
# Streams one task analyses at once as the after stack deploys it (the service's own default,
# ServiceSettings.concurrency, is 1).
STACK_CONCURRENCY = AfterConfig.concurrency
IMAGE_GIB = 0.5  # the service's container image (Python 3.13, PyAV, numpy, boto3), compressed (assumed)
LOG_BYTES_PER_LINE = 300  # one JSON log line (assumed)
API_BYTES_PER_REQUEST = 2000  # an SQS/SNS/logs request and its answer through NAT or an endpoint (assumed)


# --- one stream: what the service does -------------------------------------------------------------
@dataclass(frozen=True)
class StreamCounts:
    """The requests the after makes for one job (a stream of `stream_seconds` seconds)."""

    s3_get: int
    s3_put: int
    sqs_receive: int
    sqs_delete: int
    sqs_change_visibility: int
    sns_publish: int

    @property
    def sqs(self) -> int:
        return self.sqs_receive + self.sqs_delete + self.sqs_change_visibility

    def __add__(self, other: StreamCounts) -> StreamCounts:
        return StreamCounts(*(a + b for a, b in zip(self.astuple(), other.astuple(), strict=True)))

    def astuple(self) -> tuple[int, ...]:
        return (
            self.s3_get,
            self.s3_put,
            self.sqs_receive,
            self.sqs_delete,
            self.sqs_change_visibility,
            self.sns_publish,
        )


def count_stream(
    settings: ServiceSettings, stream_seconds: int, defects: int, *, analysable: bool = True
) -> StreamCounts:
    """The requests for one job, from the settings and the stream's real length and defects."""
    if stream_seconds < 0 or defects < 0:
        raise InputError("stream_seconds and defects must not be negative")
    if not analysable:
        # monolith.service: each of the `max_receives` receives reads the stream, fails, and sets the
        # message's visibility (retry delay, then 0 so SQS moves it to the dead-letter queue); the last one
        # sends the one "cannot be analysed" notification. Nothing is written, nothing deleted.
        n = settings.max_receives
        return StreamCounts(n, 0, n, 0, n, 1)
    return StreamCounts(
        s3_get=1,
        s3_put=results_objects(stream_seconds, settings.results_batch_seconds),
        sqs_receive=1,
        sqs_delete=1,
        sqs_change_visibility=visibility_extensions(stream_seconds, settings.heartbeat_seconds),
        sns_publish=defects,
    )


def request_lines(counts: StreamCounts, book: PriceBook, *, idle_receives: int = 0) -> list[Line]:
    """The after's request lines for `counts` (a run's or a month's)."""
    # A live stream is no one object read once: its reads are live_lines'.
    lines: list[Line] = []
    if counts.s3_get:
        lines.append(priced_line(book, "s3.get", "S3", "GET requests (streams)", counts.s3_get))
    lines += [
        priced_line(book, "s3.put", "S3", "PUT requests (results)", counts.s3_put),
        priced_line(book, "sqs.request", "SQS", "requests (receive, delete, visibility)"
                    if counts.sqs_receive else "requests (visibility heartbeats)", counts.sqs),
        priced_line(book, "sns.publish", "SNS", "publishes", counts.sns_publish),
    ]
    if idle_receives:
        lines.append(priced_line(book, "sqs.request", "SQS", "requests (idle long polls)", idle_receives))
    return lines


def settings_of(run: dict[str, Any]) -> ServiceSettings:
    """The ServiceSettings a run used (its `settings` object), defaults for what it leaves out."""
    given = run.get("settings") or {}
    if not isinstance(given, dict):
        raise InputError("after.settings must be an object of settings.ServiceSettings fields")
    known = {f.name: f for f in fields(ServiceSettings)}
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise InputError(f"after.settings: unknown field(s) {', '.join(unknown)}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in given.items()}
    try:
        return ServiceSettings(**values)
    except (TypeError, ValueError) as error:
        raise InputError(f"after.settings: {error}") from None


def _count(value: Any) -> int:
    """A count given as a number or as the list of what was counted (defects)."""
    return len(value) if isinstance(value, list) else int(value or 0)


def check_run(after: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows {quantity, analytic, measured, equal, note} for the `after` object of a demo summary (the after
    run's `metering` bill): what its settings imply for each job's real stream-seconds and defects against
    what the service counted. Jobs come from `jobs` ({stream_seconds, outcome, defects}) or, for one stream,
    from `stream_seconds` and `defects`. Idle long polls (`idle_ReceiveMessage`) are no job's: not checked."""
    settings = settings_of(after)
    jobs = after.get("jobs")
    if not jobs:
        jobs = [
            {
                "stream_seconds": after.get("stream_seconds"),
                "defects": after.get("defects", []),
                "outcome": "analysed",
            }
        ]
    if any(job.get("outcome", "analysed") != "analysed" for job in jobs):
        # A failed or released attempt's requests depend on where it stopped: not predicted (the service
        # does not price failures either, see settings).
        return []
    c = StreamCounts(0, 0, 0, 0, 0, 0)
    seconds_all = []
    for job in jobs:
        seconds = job.get("stream_seconds") or 0
        if not isinstance(seconds, int) or seconds < 0:
            raise InputError(f"after: stream_seconds must be a whole number of seconds, got {seconds!r}")
        c = c + count_stream(settings, seconds, _count(job.get("defects")))
        seconds_all.append(seconds)
    s3 = after.get("s3_requests") or {}
    # The service's own requests; the corrective-action function's PUTs are counted with the before's rule.
    service = (s3.get("by_source") or {}).get("service")
    if service:
        s3 = {
            "put": service.get("PutObject", 0),
            "get": service.get("GetObject", 0),
            "head": service.get("HeadObject", 0),
            "list": service.get("ListObjectsV2", 0),
        }
    sqs = after.get("sqs_requests") or {}
    batches = " + ".join(f"ceil({n} / {settings.results_batch_seconds})" for n in seconds_all)
    beats = " + ".join(f"({n} - 1) // {settings.heartbeat_seconds}" for n in seconds_all if n)
    rows = []
    if "get" in s3:
        rows.append(row("after S3 GET", c.s3_get, s3["get"] + s3.get("head", 0), "1 per stream"))
    if "put" in s3:
        rows.append(row("after S3 PUT", c.s3_put, s3["put"], f"{batches} results objects"))
    if "list" in s3:
        rows.append(row("after S3 LIST", 0, s3["list"], "none"))
    if "ReceiveMessage" in sqs:
        rows.append(
            row(
                "after SQS ReceiveMessage",
                c.sqs_receive,
                sqs["ReceiveMessage"],
                "1 per job (idle polls apart)",
            )
        )
    if "DeleteMessage" in sqs:
        rows.append(row("after SQS DeleteMessage", c.sqs_delete, sqs["DeleteMessage"], "1 per job"))
    if "ChangeMessageVisibility" in sqs:
        rows.append(
            row(
                "after SQS ChangeMessageVisibility",
                c.sqs_change_visibility,
                sqs["ChangeMessageVisibility"],
                f"{beats or 0} heartbeats",
            )
        )
    if "sns_publishes" in after:
        rows.append(
            row(
                "after SNS publishes",
                c.sns_publish,
                after["sns_publishes"],
                "1 per defect, 1 per stream that cannot be analysed",
            )
        )
    return rows


# --- a live stream: what following it adds --------------------------------------------------------
@dataclass(frozen=True)
class LiveRates:
    """Per stream-second of a live stream followed at the live edge, `segment_seconds` long segments,
    the follower busy `busy` of each second (its CPU-seconds per stream-second at a whole core)."""

    segment_gets: float
    playlist_gets: float  # polls at the live edge: timing, a run shows them measured beside
    playlist_events: float  # each a job message: SendMessage, ReceiveMessage, follower GET, DeleteMessage
    object_events: float  # S3 events on EventBridge: every segment and every playlist rewrite
    checkpoint_puts: float  # besides one per defect notification (`month_counts` adds those)

    @property
    def sqs(self) -> float:
        return 3 * self.playlist_events


def live_rates(settings: ServiceSettings, segment_seconds: float, busy: float) -> LiveRates:
    if segment_seconds <= 0:
        raise InputError(f"segment_seconds must be > 0, got {segment_seconds:g}")
    # Checkpoints: one per results batch, and one more per lease_s/3 only if batches come less often.
    every_s = min(settings.results_batch_seconds, settings.lease_s / 3)
    return LiveRates(
        segment_gets=1 / segment_seconds,
        playlist_gets=max(0.0, 1.0 - busy) / settings.live_poll_s,
        playlist_events=1 / segment_seconds,
        object_events=2 / segment_seconds,
        checkpoint_puts=1 / every_s,
    )


def live_lines(rates: LiveRates, stream_seconds: float, defects: float, book: PriceBook) -> list[Line]:
    """The lines following live streams adds, for `stream_seconds` stream-seconds in all."""
    n = stream_seconds
    return [
        priced_line(book, "s3.get", "S3", "GET requests (live: segments)", rates.segment_gets * n),
        priced_line(book, "s3.get", "S3", "GET requests (live: playlist polls at the edge)",
                    rates.playlist_gets * n),
        priced_line(book, "s3.get", "S3", "GET requests (live: follower record, one per playlist event)",
                    rates.playlist_events * n),
        priced_line(book, "s3.put", "S3", "PUT requests (live: checkpoints)",
                    rates.checkpoint_puts * n + defects),
        priced_line(book, "sqs.request", "SQS", "requests (live: send, receive, delete per playlist event)",
                    rates.sqs * n),
        priced_line(book, "events.s3_event", "EventBridge", "S3 object events (segments, playlists)",
                    rates.object_events * n),
    ]


@dataclass(frozen=True)
class LiveRun:
    """What one live stream followed from its start to its end, in one take, makes the after do."""

    jobs: int  # one per playlist rewrite: the first is followed, the others are duplicates
    s3_get: int  # segments and follower records; the playlist reads apart (timing)
    results_puts: int
    checkpoint_puts: int  # at most: a defect found in the second a batch is written shares its checkpoint
    sns_publish: int


def live_stream_counts(settings: ServiceSettings, stream_seconds: int, segments: int, defects: int
                       ) -> LiveRun:
    """The requests of a live stream of `stream_seconds` seconds in `segments` segments with `defects`
    defect notifications, followed by one worker from start to end (monolith/service.py _Follow): each
    playlist rewrite's job reads the follower record once; the follower reads each segment once, writes
    its record when it takes the stream, after each full results batch, after each second with defects
    and at the end, plus one per lease_s/3 of waiting with nothing written (timing, not counted here)."""
    if min(stream_seconds, segments, defects) < 0:
        raise InputError("stream_seconds, segments and defects must not be negative")
    return LiveRun(
        jobs=segments,
        s3_get=2 * segments,
        results_puts=results_objects(stream_seconds, settings.results_batch_seconds),
        checkpoint_puts=2 + stream_seconds // settings.results_batch_seconds + defects,
        sns_publish=defects,
    )


LIVE_OUTCOMES = ("analysed", "duplicate")


def check_live_run(after: dict[str, Any], segments: int) -> list[dict[str, Any]]:
    """Rows {quantity, analytic, measured, equal, note} for a live run's `after` (the summary's
    `live.after`): `live_stream_counts` for its published `segments`, stream-seconds and defects against
    what the service counted. Equality where timing does not enter; the playlist polls, the visibility
    heartbeats and lease renewals are timing, shown beside with the range they may take."""
    settings = settings_of(after)
    jobs = after.get("jobs") or []
    if not jobs or any(job.get("outcome") not in LIVE_OUTCOMES for job in jobs):
        return []  # a take-over, a stall or a failure: its requests depend on where things stopped
    seconds = after.get("stream_seconds")
    if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 0:
        raise InputError(f"after: stream_seconds must be a whole number of seconds, got {seconds!r}")
    defects = _count(after.get("defects"))
    model = live_stream_counts(settings, seconds, segments, defects)
    live = [job.get("live") or {} for job in jobs]
    reads = sum(int(x.get("playlist_reads", 0)) for x in live)
    checkpoints = sum(int(x.get("checkpoints", 0)) for x in live)
    s3 = ((after.get("s3_requests") or {}).get("by_source") or {}).get("service") or {}
    sqs = after.get("sqs_requests") or {}
    wall_s = sum(float(job.get("wall_s") or 0.0) for job in jobs if job.get("outcome") == "analysed")
    rows = [
        row("after live jobs (playlist events)", model.jobs, len(jobs),
            f"one per playlist rewrite ({segments} segments): 1 followed, the others duplicates"),
        row("after S3 GET", model.s3_get + reads, s3.get("GetObject", 0) + s3.get("HeadObject", 0),
            f"{segments} segments + {segments} follower-record reads (one per job) + {reads} playlist reads "
            "(as measured: timing)"),
        row("after S3 PUT (results)", model.results_puts, s3.get("PutObject", 0) - checkpoints,
            f"ceil({seconds} / {settings.results_batch_seconds}) results objects (PUTs less checkpoints)"),
    ]
    # Checkpoints: fewer when a defect is found in a batch's last second or with another defect; more by
    # one per lease_s/3 of waiting with nothing written.
    renewals = math.floor(wall_s / (settings.lease_s / 3))
    low, high = model.checkpoint_puts - defects + min(defects, 1), model.checkpoint_puts + renewals
    rows.append({
        "quantity": "after checkpoint PUTs", "analytic": model.checkpoint_puts, "measured": checkpoints,
        "equal": checkpoints == model.checkpoint_puts or (None if low <= checkpoints <= high else False),
        "note": f"2 (taken, ended) + {seconds} // {settings.results_batch_seconds} batches + {defects} "
                f"defects; timing may make it {low}..{high}",
    })
    busy = min(1.0, float(after.get("service_cpu_s") or 0.0) / max(1, seconds))
    paced = round(seconds * max(0.0, 1 - busy) / settings.live_poll_s)
    rows.append({
        "quantity": "after playlist reads", "analytic": paced, "measured": reads, "equal": None,
        "note": f"timing, not checked: one per {settings.live_poll_s:g} s waiting at the edge, the "
                f"follower busy {busy:.0%} of each second, at real time; a stream published faster polls "
                "fewer",
    })
    beats_high = 1 + math.ceil(wall_s / settings.heartbeat_seconds)
    measured_beats = sqs.get("ChangeMessageVisibility", 0)
    rows += [
        row("after SQS ReceiveMessage", model.jobs, sqs.get("ReceiveMessage", 0),
            "1 per job (idle polls apart)"),
        row("after SQS DeleteMessage", model.jobs, sqs.get("DeleteMessage", 0), "1 per job"),
        {"quantity": "after SQS ChangeMessageVisibility", "analytic": 1 + math.floor(
            wall_s / settings.heartbeat_seconds), "measured": measured_beats,
         "equal": None if 1 <= measured_beats <= beats_high else False,
         "note": f"timing: 1 when following starts + 1 per {settings.heartbeat_seconds} s of wall time "
                 f"({wall_s:.0f} s followed: 1..{beats_high})"},
        row("after SNS publishes", model.sns_publish, after.get("sns_publishes", 0), "1 per defect"),
    ]
    return rows


# --- a fleet: bin-packing tasks onto instances -------------------------------------------------------
@dataclass(frozen=True)
class Fleet:
    instance: str
    architecture: str
    task: TaskSize
    tasks: int
    tasks_per_instance: int
    instances: int
    bound: str  # "CPU" or "memory": what fills an instance first
    cpu_s_per_stream_s: float  # on this architecture


def _priced_instance(instance: str) -> InstanceCapacity:
    if instance not in INSTANCES:
        raise InputError(f"unknown instance type {instance!r}; known: {', '.join(INSTANCES)}")
    return instance_capacity(instance)


def pack(streams: int, task: TaskSize, concurrency: int, instance: str) -> tuple[int, int, int, str]:
    """(tasks, tasks per instance, instances, bound) for `streams` at `concurrency` streams per task,
    packed as the after stack places them (infra/after_config.py InstanceCapacity)."""
    capacity = _priced_instance(instance)
    per = capacity.tasks_per_instance(task)
    if per < 1:
        raise InputError(
            f"one task reserves {task.cpu_units} CPU units and {task.memory_mib} MiB: "
            f"{instance} ({capacity.cpu_units} units, {capacity.usable_memory_mib} MiB for tasks) "
            "cannot hold it"
        )
    tasks = math.ceil(streams / concurrency)
    return tasks, per, math.ceil(tasks / per), "memory" if capacity.memory_bound(task) else "CPU"


def size_fleet(
    streams: int,
    calibration: Calibration,
    resolution: str,
    *,
    settings: ServiceSettings,
    architecture: str = "x86_64",
    instance: str | None = None,
    statistic: str = "median",
) -> Fleet:
    """The instances `streams` concurrent live streams need, from the measured CPU `statistic`."""
    instance = instance or DEFAULT_INSTANCE.get(architecture, "")
    if _priced_instance(instance).architecture != architecture:
        raise InputError(f"{instance} is {instance_capacity(instance).architecture}, not {architecture}")
    factor = ARM64_CPU_FACTOR if architecture == "arm64" else 1.0
    try:
        cal = calibration.at(statistic, cpu_factor=factor)
        task = task_size(cal, resolution, settings.concurrency)
    except CalibrationError as error:
        raise InputError(str(error)) from None
    tasks, per, instances, bound = pack(streams, task, settings.concurrency, instance)
    return Fleet(
        instance, architecture, task, tasks, per, instances, bound, cal.monolith_cpu(resolution).median
    )


# --- a month: the after's lines ----------------------------------------------------------------------
@dataclass(frozen=True)
class AfterOptions:
    calibration: Calibration
    settings: ServiceSettings = field(default_factory=lambda: ServiceSettings(concurrency=STACK_CONCURRENCY))
    architecture: str = "x86_64"
    instance: str | None = None
    purchase: str = "on-demand"
    # The user's Compute Savings Plan discounts off on demand, per term (None: not given, none assumed).
    sp_discount_1y: float | None = None
    sp_discount_3y: float | None = None
    network: str = "public"
    # Live streams in segments of this many seconds (the scenario's default); None: finished files.
    live_segment_seconds: float | None = 2.0

    def __post_init__(self) -> None:
        if self.purchase not in PURCHASES:
            raise InputError(f"unknown purchase option {self.purchase!r}; use {', '.join(PURCHASES)}")
        if self.network not in NETWORKS:
            raise InputError(f"unknown network {self.network!r}; use {', '.join(NETWORKS)}")
        if self.architecture not in ("x86_64", "arm64"):
            raise InputError(f"architecture must be x86_64 or arm64, got {self.architecture!r}")
        for term, discount in self.sp_discounts.items():
            if discount is not None and not 0 <= discount < 1:
                raise InputError(f"--sp-discount-{term} must be within [0, 1), got {discount:g}")

    @property
    def sp_discounts(self) -> dict[str, float | None]:
        return {"1y": self.sp_discount_1y, "3y": self.sp_discount_3y}


def month_counts(
    streams: int,
    hours: float,
    defects_per_hour: float,
    settings: ServiceSettings,
    *,
    live: bool = False,
) -> tuple[StreamCounts, int]:
    """(requests in a month, idle receives) for `streams` streams running `hours` each, one job per
    stream (a long job, its message kept invisible by the heartbeats). A live stream is not one object:
    its reads and its job messages (one per playlist rewrite) are `live_lines`'."""
    month_s = round(hours * 3600)
    one = count_stream(settings, month_s, 0)
    if live:
        one = StreamCounts(0, one.s3_put, 0, 0, one.sqs_change_visibility, 0)
    counts = StreamCounts(
        *(v * streams for v in one.astuple()[:5]), round(streams * hours * defects_per_hour)
    )
    # A task with a free slot long-polls while it waits: at most one per task, only in the last one.
    idle_pollers = 1 if streams % settings.concurrency else 0
    idle = round(idle_pollers * month_s / max(settings.receive_wait_s, 1))
    return counts, idle


def after_lines(
    streams: int,
    hours: float,
    defects_per_hour: float,
    resolution: str,
    opts: AfterOptions,
    book: PriceBook,
    *,
    statistic: str = "median",
) -> tuple[list[dict[str, Any]], Fleet]:
    settings = opts.settings
    fleet = size_fleet(
        streams,
        opts.calibration,
        resolution,
        settings=settings,
        architecture=opts.architecture,
        instance=opts.instance,
        statistic=statistic,
    )
    # PurchaseUnavailable when no rate is sourced or given: the caller says so or leaves the option out.
    rate, rate_source = instance_rate(book, fleet.instance, opts.purchase, opts.sp_discounts)
    instance_hours = fleet.instances * hours
    ec2 = line(
        "EC2", f"instance-hours ({fleet.instance}, {opts.purchase})", instance_hours, rate, rate_source
    )
    live = opts.live_segment_seconds is not None
    counts, idle = month_counts(streams, hours, defects_per_hour, settings, live=live)
    lines = [ec2, *request_lines(counts, book, idle_receives=idle)]
    live_sqs = live_log_lines = 0.0  # what following live streams adds to the network path and the logs
    if opts.live_segment_seconds is not None:
        rates = live_rates(settings, opts.live_segment_seconds, busy=min(1.0, fleet.cpu_s_per_stream_s))
        stream_seconds = streams * hours * 3600
        lines += live_lines(rates, stream_seconds, counts.sns_publish, book)
        live_sqs = rates.sqs * stream_seconds
        # A "job finished" line per playlist event's job, a "live progress" line per checkpoint.
        live_log_lines = (rates.playlist_events + rates.checkpoint_puts) * stream_seconds
    months = hours / HOURS_PER_MONTH
    lines.append(
        priced_line(
            book,
            "ebs.gp3.gb_month",
            "EBS",
            f"GB-months (gp3, {EBS_GIB} GiB per instance)",
            fleet.instances * EBS_GIB * months,
        )
    )
    lines.append(
        priced_line(book, "ecr.gb_month", "ECR", f"GB-months (image, {IMAGE_GIB:g} GB assumed)", IMAGE_GIB)
    )
    # The service logs a line when it takes a job, one per results object written and one per defect.
    log_lines = counts.sqs_receive + counts.s3_put + counts.sns_publish + live_log_lines
    log_gb = log_lines * LOG_BYTES_PER_LINE / 1e9
    lines.append(
        priced_line(
            book,
            "logs.ingest_gb",
            "CloudWatch Logs",
            "GB ingested (container logs)",
            log_gb,
            note=f"{LOG_BYTES_PER_LINE} B per line assumed",
        )
    )
    # The corrective-action function (shared with the before, tracing on) is a trace root per defect;
    # the service itself is not traced.
    lines.append(xray_line(book, {"corrective actions": streams * defects_per_hour / 3600}, hours * 3600))
    api_gb = (counts.sqs + live_sqs + idle + counts.sns_publish + log_lines) * API_BYTES_PER_REQUEST / 1e9
    image_gb = fleet.instances * IMAGE_GIB  # each instance pulls the image once a month (assumed)
    if opts.network == "public":
        lines.append(
            priced_line(
                book, "vpc.ipv4.hour", "VPC", "public IPv4 address-hours (one per instance)", instance_hours
            )
        )
    elif opts.network == "nat":
        # The gateways stay up all month, whether streams run or not.
        lines.append(
            priced_line(
                book,
                "vpc.nat.hour",
                "VPC",
                f"NAT gateway-hours ({AZS} AZs, all month)",
                AZS * HOURS_PER_MONTH,
            )
        )
        lines.append(
            priced_line(
                book,
                "vpc.nat.gb",
                "VPC",
                "NAT GB processed (API calls, logs, image pulls)",
                api_gb + log_gb + image_gb,
                note=f"{API_BYTES_PER_REQUEST} B per request, one image pull per instance assumed",
            )
        )
    else:
        lines.append(
            priced_line(
                book,
                "vpc.endpoint.hour",
                "VPC",
                f"interface endpoint-hours ({len(INTERFACE_ENDPOINTS)} x {AZS} AZs, all month)",
                len(INTERFACE_ENDPOINTS) * AZS * HOURS_PER_MONTH,
            )
        )
        lines.append(
            priced_line(
                book,
                "vpc.endpoint.gb",
                "VPC",
                "interface endpoint GB processed",
                api_gb + log_gb + image_gb,
                note=f"{API_BYTES_PER_REQUEST} B per request, one image pull per instance assumed",
            )
        )
    return lines, fleet


def after_summary(
    streams: int, hours: float, defects_per_hour: float, resolution: str, opts: AfterOptions, book: PriceBook
) -> dict[str, Any]:
    """The after's block of `compare --json`: lines at the median CPU, the fleet, and the monthly range the
    measured spread (min..max CPU) implies."""
    lines, fleet = after_lines(streams, hours, defects_per_hour, resolution, opts, book)
    spread = {}
    for statistic in ("min", "max"):
        other, f = after_lines(streams, hours, defects_per_hour, resolution, opts, book, statistic=statistic)
        spread[statistic] = {"instances": f.instances, "monthly_usd": total(other)}
    cpu = opts.calibration.monolith_cpu(resolution)
    return {
        "monthly_usd": total(lines),
        "lines": lines,
        "fleet": {
            "instance": fleet.instance,
            "architecture": fleet.architecture,
            "instances": fleet.instances,
            "tasks": fleet.tasks,
            "tasks_per_instance": fleet.tasks_per_instance,
            "streams_per_task": opts.settings.concurrency,
            "task_cpu_units": fleet.task.cpu_units,
            "task_memory_mib": fleet.task.memory_mib,
            "bound": fleet.bound,
            "headroom": HEADROOM,
            "cpu_s_per_stream_s": fleet.cpu_s_per_stream_s,
            "cpu_s_per_stream_s_measured": {
                "median": cpu.median,
                "min": cpu.min,
                "max": cpu.max,
                "runs": cpu.runs,
            },
            "arm64_cpu_factor": ARM64_CPU_FACTOR if fleet.architecture == "arm64" else None,
            "arm64_cpu_source": ARM64_CPU_SOURCE if fleet.architecture == "arm64" else None,
        },
        "range": {"low": spread["min"], "high": spread["max"]},
        "purchase": opts.purchase,
        "network": NETWORKS[opts.network],
    }
