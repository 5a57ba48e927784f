"""The after (`python -m monolith serve` on ECS on EC2), counted from its settings and priced line by line.

Requests follow from `settings` (its docstring states the rules) and the stream itself:
- S3: one GET per stream; `results_objects(n, results_batch_seconds)` PUTs;
- SQS: one ReceiveMessage and one DeleteMessage per job, `visibility_extensions(n, heartbeat_seconds)`
  ChangeMessageVisibility calls; a poller with nothing to do long-polls, one receive per `receive_wait_s`;
- SNS: one publish per defect, one failure notification per stream that cannot be analysed.

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
    lines = [
        priced_line(book, "s3.get", "S3", "GET requests (streams)", counts.s3_get),
        priced_line(book, "s3.put", "S3", "PUT requests (results)", counts.s3_put),
        priced_line(book, "sqs.request", "SQS", "requests (receive, delete, visibility)", counts.sqs),
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
) -> tuple[StreamCounts, int]:
    """(requests in a month, idle receives) for `streams` live streams running `hours` each, one job per
    stream (a live stream is one long job, its message kept invisible by the heartbeats)."""
    month_s = round(hours * 3600)
    one = count_stream(settings, month_s, 0)
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
    counts, idle = month_counts(streams, hours, defects_per_hour, settings)
    lines = [ec2, *request_lines(counts, book, idle_receives=idle)]
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
    log_lines = counts.sqs_receive + counts.s3_put + counts.sns_publish
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
    api_gb = (counts.sqs + idle + counts.sns_publish + log_lines) * API_BYTES_PER_REQUEST / 1e9
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
