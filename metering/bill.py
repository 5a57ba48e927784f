"""One bill shape for both architectures.

A `Bill` holds what one run did, in the units AWS bills: S3 requests by class, SNS publishes, Lambda
invocations and GB-seconds (the before's functions, and the corrective-action function both share),
state transitions (the before), SQS requests (the after's queue), and the CPU time spent, from which the
after's instance-hours follow. The keys mean the same in both; what one architecture does not do is
zero, not missing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from metering.lambda_logs import Report, function_usage
from metering.requests import merged, s3_by_class
from metering.stepfunctions import lambda_reported_s3, live_edge_waits, service_calls, transitions

if TYPE_CHECKING:
    from sample_streams.publish import PublishReport

CORRECTIVE_ACTION = "corrective-action"
LIVE_STARTER = "live-starter"


@dataclass
class Bill:
    architecture: str  # "before" | "after"
    stream_seconds: int
    wall_s: float
    s3_requests: dict[str, Any]
    sns_publishes: int
    lambda_functions: dict[str, dict[str, Any]]
    cpu_s: float | None  # all compute of the run; None where some of it was not measured
    state_transitions: int = 0
    state_transitions_detail: dict[str, int] = field(default_factory=dict)
    lambda_invocations_by_workflow: int = 0
    sqs_requests: dict[str, int] = field(default_factory=dict)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def lambda_invocations(self) -> int:
        return sum(f["invocations"] for f in self.lambda_functions.values())

    @property
    def lambda_gb_seconds(self) -> float:
        return round(sum(f["gb_seconds"] for f in self.lambda_functions.values()), 4)

    @property
    def sqs_total(self) -> int:
        return sum(v for k, v in self.sqs_requests.items() if not k.startswith("idle"))

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "architecture": self.architecture,
            "stream_seconds": self.stream_seconds,
            "wall_s": self.wall_s,
            "state_transitions": self.state_transitions,
            "s3_requests": self.s3_requests,
            "sqs_requests": {**self.sqs_requests, "total": self.sqs_total},
            "sns_publishes": self.sns_publishes,
            "lambda_invocations": self.lambda_invocations,
            "lambda_gb_seconds": self.lambda_gb_seconds,
            "lambda_duration_s": round(sum(f["duration_s"] for f in self.lambda_functions.values()), 3),
            "lambda_functions": self.lambda_functions,
            "cpu_s": self.cpu_s,
            **self.extra,
        }
        if self.architecture == "before":
            out["state_transitions_detail"] = self.state_transitions_detail
            out["lambda_invocations_by_workflow"] = self.lambda_invocations_by_workflow
        else:
            out["jobs"] = self.jobs
        per = max(1, self.stream_seconds)
        out["per_stream_second"] = {
            "state_transitions": round(self.state_transitions / per, 3),
            "s3_requests": {k: round(v / per, 3) for k, v in self.s3_requests.items() if isinstance(v, int)},
            "sqs_requests": round(self.sqs_total / per, 3),
            "lambda_invocations": round(self.lambda_invocations / per, 3),
            "lambda_gb_seconds": round(self.lambda_gb_seconds / per, 4),
            "sns_publishes": round(self.sns_publishes / per, 3),
            "cpu_s": round(self.cpu_s / per, 4) if self.cpu_s is not None else None,
        }
        return out


def _functions(reports: dict[str, list[Report]]) -> dict[str, dict[str, Any]]:
    return {role: function_usage(rs) for role, rs in sorted(reports.items())}


def _total_cpu(functions: dict[str, dict[str, Any]], *more: float | None) -> float | None:
    parts = [f["cpu_s"] for f in functions.values()] + list(more)
    return None if any(p is None for p in parts) else round(sum(parts), 3)


def before_bill(events: list[dict[str, Any]], reports: dict[str, list[Report]], *, stream_seconds: int,
                wall_s: float, executions: int, corrective_action_puts: int,
                objects_written: int = 0) -> Bill:
    """The before's bill from its execution histories and the functions' REPORT lines.

    S3 requests are what the converter and detectors reported in their outputs, the workflow's own
    `s3:putObject` calls, and the corrective-action function's one record per defect message (its output
    goes back to SNS, not to us, so it is counted from the records it left)."""
    calls = service_calls(events)
    by_source = lambda_reported_s3(events)
    if corrective_action_puts:
        by_source[CORRECTIVE_ACTION] = Counter({"PutObject": corrective_action_puts})
    by_source["workflow"] = Counter({"PutObject": calls.get("aws-sdk:s3:putObject", 0)})
    # A live stream's starter reads the playlist once per invocation (lambdas/live_starter/service.py);
    # EventBridge invokes it, so its output comes back to no one: counted from its REPORT lines.
    starts = len(reports.get(LIVE_STARTER, []))
    if starts:
        by_source[LIVE_STARTER] = Counter({"GetObject": starts})
    counted = transitions(events)
    functions = _functions(reports)
    return Bill(
        architecture="before", stream_seconds=stream_seconds, wall_s=wall_s,
        s3_requests=s3_by_class(by_source), sns_publishes=calls.get("sns:publish", 0),
        lambda_functions=functions, cpu_s=_total_cpu(functions),
        state_transitions=counted["total"],
        state_transitions_detail={**counted, "executions": executions},
        lambda_invocations_by_workflow=calls.get("lambda:invoke", 0),
        # Waits at a live stream's edge: each is a Retry of Convert (a billed transition, counted above),
        # one converter invocation and its playlist GET (counted with the converter's requests).
        # A live stream's objects (segments, playlist writes) are S3 events on EventBridge, as the other
        # designs' live bills count them.
        extra={"live_edge_waits": len(live_edge_waits(events)),
               **({"eventbridge_events": objects_written} if objects_written else {})},
    )


def after_bill(usages: list[dict[str, Any]], *, wall_s: float, idle: list[dict[str, Any]] | None = None,
               reports: dict[str, list[Report]] | None = None, corrective_action_puts: int = 0,
               live: PublishReport | None = None) -> Bill:
    """The after's bill from the service's per-job usage lines ("job finished") and, for requests no job
    caused (empty long polls), its "worker stopped" lines; plus the corrective-action function's REPORT
    lines and records, as in the before.

    A live stream (`live`: what its publisher wrote, segments and playlist rewrites) adds what the
    service does not see, counted as the serverless design's bill counts it: every object
    written is an S3 event ingested by EventBridge, and each playlist rewrite's event is one SQS
    SendMessage (the rule's target, one job message each)."""
    idle = idle or []
    by_service: dict[str, list[dict[str, int]]] = {"s3": [], "sqs": [], "sns": []}
    for usage in usages:
        for service, counts in (usage.get("requests") or {}).items():
            by_service.setdefault(service, []).append(counts)
    s3_sources: dict[str, Counter[str]] = {"service": Counter(merged(by_service["s3"]))}
    if corrective_action_puts:
        s3_sources[CORRECTIVE_ACTION] = Counter({"PutObject": corrective_action_puts})
    sqs = merged(by_service["sqs"])
    idle_sqs = merged([(u.get("requests") or {}).get("sqs", {}) for u in idle])
    sqs.update({f"idle_{op}": n for op, n in idle_sqs.items()})
    extra: dict[str, Any] = {}
    if live is not None:
        sqs["SendMessage"] = live.playlist_writes
        extra["eventbridge_events"] = live.objects_written
    functions = _functions(reports or {})
    analysed = [u for u in usages if u.get("outcome") == "analysed"]
    jobs_cpu = round(sum(float(u.get("cpu_s") or 0.0) for u in usages), 3)
    return Bill(
        architecture="after",
        stream_seconds=sum(int(u.get("stream_seconds") or 0) for u in analysed),
        wall_s=wall_s,
        s3_requests=s3_by_class(s3_sources),
        sns_publishes=sum(c.get("Publish", 0) for c in by_service["sns"]),
        lambda_functions=functions,
        cpu_s=_total_cpu(functions, jobs_cpu),
        sqs_requests=sqs,
        jobs=[{k: u[k] for k in ("job_id", "stream_id", "stream_seconds", "outcome", "defects", "cpu_s",
                                 "wall_s", "live") if k in u} for u in usages],
        extra={"service_cpu_s": jobs_cpu, **extra},
    )


SEGMENT_ANALYZER = "segment-analyzer"
STALL_WATCH = "stall-watch"  # the segment analyser's stall watches, a source of requests of their own


def cpu_priced_gb_seconds(cpu_s: float, memory_mb: int) -> float:
    """The GB-seconds AWS would bill for `cpu_s` of single-threaded CPU work at `memory_mb`: Lambda gives a
    function a CPU share proportional to its memory, a full vCPU at 1,769 MB (Lambda developer guide,
    "Configuring Lambda function memory"), so the work lasts cpu_s / share seconds, each billed at
    memory_mb / 1024 GB. LocalStack's process executor gives every function a whole core whatever its
    memory, so its wall time would bill less than AWS would (and a busy host's contention more)."""
    return aws_duration_s(cpu_s, memory_mb) * memory_mb / 1024


def aws_duration_s(cpu_s: float, memory_mb: int) -> float:
    """How long `cpu_s` of single-threaded CPU work lasts on AWS Lambda at `memory_mb`: at its CPU share,
    memory_mb / 1,769 of a vCPU, a whole one at and above 1,769 MB (see `cpu_priced_gb_seconds`)."""
    from lambdas.segment_analyzer.settings import FULL_VCPU_MB

    return cpu_s / min(1.0, memory_mb / FULL_VCPU_MB)


def serverless_bill(reports: dict[str, list[Report]], requests: list[dict[str, dict[str, int]]], *,
                    stream_seconds: int, wall_s: float, segments: int, objects_written: int,
                    corrective_action_puts: int = 0,
                    watch_requests: list[dict[str, dict[str, int]]] | None = None,
                    duplicates: int = 0) -> Bill:
    """The event-driven design's bill: the segment analyser's REPORT lines and the requests it logged
    per invocation ("requests" lines), the corrective action's REPORT lines and records.

    What the function does not see is counted from what the run did: every object written to the source
    bucket (segments and playlist rewrites) is an S3 event ingested by EventBridge, priced as an opt-in
    data event; each segment event is one SQS SendMessage (the rule's target); each analyser invocation
    is one ReceiveMessage that returned its batch and one DeleteMessageBatch (the event source's, billed
    to the queue's owner). The event source's empty long polls are a fixed cost per queue, not per
    stream, and are not in a run's bill. The analyser's GB-seconds are priced from its CPU time
    (`cpu_priced_gb_seconds`); the REPORT lines' GB-seconds stay beside them as `gb_seconds_local`."""
    functions = _functions(reports)
    analyzer = functions.get(SEGMENT_ANALYZER)
    if analyzer is not None and analyzer["cpu_s"] is not None and analyzer["memory_mb"]:
        analyzer["gb_seconds_local"] = analyzer["gb_seconds"]
        analyzer["gb_seconds"] = round(cpu_priced_gb_seconds(analyzer["cpu_s"], analyzer["memory_mb"]), 4)
    by_service: dict[str, list[dict[str, int]]] = {"s3": [], "sqs": [], "sns": []}
    for logged in requests:
        for service, counts in logged.items():
            by_service.setdefault(service, []).append(counts)
    s3_sources: dict[str, Counter[str]] = {SEGMENT_ANALYZER: Counter(merged(by_service["s3"]))}
    if corrective_action_puts:
        s3_sources[CORRECTIVE_ACTION] = Counter({"PutObject": corrective_action_puts})
    # The stall watches' own requests ("stall watch requests" lines): billed beside the segments', apart.
    watch_s3 = merged([w.get("s3", {}) for w in watch_requests or []])
    if watch_s3:
        s3_sources[STALL_WATCH] = Counter(watch_s3)
    invocations = len(reports.get(SEGMENT_ANALYZER, []))
    sqs = Counter(merged(by_service["sqs"]))
    sqs.update({f"stall_watch_{op}": n for op, n in merged([w.get("sqs", {}) for w in watch_requests or []]
                                                           ).items()})
    sqs.update({"SendMessage": segments, "ReceiveMessage": invocations, "DeleteMessageBatch": invocations})
    return Bill(
        architecture="serverless",
        stream_seconds=stream_seconds,
        wall_s=wall_s,
        s3_requests=s3_by_class(s3_sources),
        sns_publishes=sum(c.get("Publish", 0) for c in by_service["sns"])
        + sum(w.get("sns", {}).get("Publish", 0) for w in watch_requests or []),
        lambda_functions=functions,
        cpu_s=_total_cpu(functions),
        sqs_requests=dict(sorted(sqs.items())),
        # Invocations with stall-watch requests (a check, or arming one beside segments): an invocation
        # that only checked a watch analysed no segment.
        # Invocations that logged their requests (ended normally; one that failed or timed out did not,
        # and its batch came back), and deliveries of segments already analysed.
        extra={"eventbridge_events": objects_written, "segments": segments,
               "stall_watch_invocations": len(watch_requests or []),
               "analyser_invocations_completed": len(requests), "duplicate_deliveries": duplicates},
    )
