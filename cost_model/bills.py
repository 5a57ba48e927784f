"""Prices a measured bill (`metering.Bill.as_dict()`, as in `demo-output/summary.json`) with the dated
price table: what that run cost, per stream-hour, and scaled to a scenario of concurrent 24x7 streams.

Only what the run did is priced. The after's compute is its measured CPU time bought as instance vCPU
time: CPU-seconds × (1 + the task's headroom, `monolith.sizing.HEADROOM`) × the instance's on-demand
hourly price / its vCPUs / 3,600. Lambda GB-seconds are priced at the first tier, the rate a single run
pays. X-Ray traces are not counted on LocalStack, so a run's bill has none (the scenario's model,
`model.py`/`after.py`, prices them).
"""

from __future__ import annotations

from typing import Any

from cost_model.lines import Line, line, priced_line, total
from cost_model.prices import PriceBook
from infra.after_config import instance_capacity
from monolith.sizing import HEADROOM

SECONDS_PER_HOUR = 3600


def bill_lines(
    bill: dict[str, Any], book: PriceBook, *, instance: str = "c6i.2xlarge", architecture: str = "x86_64"
) -> list[Line]:
    """One line per billed quantity of the run (quantities as measured, cost for the run itself)."""
    s3 = bill.get("s3_requests") or {}
    lines = []
    if bill.get("state_transitions"):
        lines.append(
            priced_line(
                book, "sfn.transition", "Step Functions", "state transitions", bill["state_transitions"]
            )
        )
    put = int(s3.get("put", 0)) + int(s3.get("list", 0))
    get = int(s3.get("get", 0)) + int(s3.get("head", 0))
    if put:
        lines.append(priced_line(book, "s3.put", "S3", "PUT/LIST requests", put))
    if get:
        lines.append(priced_line(book, "s3.get", "S3", "GET/HEAD requests", get))
    sqs = (bill.get("sqs_requests") or {}).get("total", 0)
    if sqs:
        lines.append(priced_line(book, "sqs.request", "SQS", "requests", sqs))
    if bill.get("sns_publishes"):
        lines.append(priced_line(book, "sns.publish", "SNS", "publishes", bill["sns_publishes"]))
    if bill.get("eventbridge_events"):  # the event-driven design's route (metering.bill.serverless_bill)
        lines.append(priced_line(book, "events.s3_event", "EventBridge", "S3 object events",
                                 bill["eventbridge_events"]))
    if bill.get("lambda_invocations"):
        lines.append(priced_line(book, "lambda.request", "Lambda", "requests", bill["lambda_invocations"]))
        lines.append(
            priced_line(
                book,
                f"lambda.gb_s.{architecture}.1",
                "Lambda",
                f"GB-seconds ({architecture})",
                bill["lambda_gb_seconds"],
            )
        )
    service_cpu = bill.get("service_cpu_s")
    if service_cpu:
        vcpus = instance_capacity(instance).vcpus
        key = f"ec2.{instance}"
        per_vcpu_s = book[key].usd / vcpus / SECONDS_PER_HOUR * (1 + HEADROOM)
        lines.append(
            line(
                "EC2",
                f"vCPU-seconds ({instance} / {vcpus} vCPU, +{HEADROOM:.0%} headroom)",
                service_cpu,
                per_vcpu_s,
                f"{book[key].source} [{book[key].date}]",
            )
        )
    return lines


def priced(
    bill: dict[str, Any], book: PriceBook, *, streams: int, hours: float, instance: str = "c6i.2xlarge"
) -> dict[str, Any]:
    """The run's lines, its cost per stream-hour, and that cost for `streams` streams × `hours` a month."""
    lines = bill_lines(bill, book, instance=instance)
    run_usd = total(lines)  # "monthly_usd" holds the run's cost here
    seconds = max(1, int(bill["stream_seconds"]))
    per_stream_hour = run_usd * SECONDS_PER_HOUR / seconds
    return {
        "lines": [{**item, "run_usd": item.pop("monthly_usd")} for item in lines],
        "run_usd": run_usd,
        "per_stream_hour_usd": per_stream_hour,
        "scenario": {"streams": streams, "hours": hours, "monthly_usd": per_stream_hour * streams * hours},
    }
