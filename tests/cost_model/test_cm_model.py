"""Worked examples: each cost line against numbers computed by hand and written out, for the before, the
express-batched serverless variant and the after (fleet, requests, fixed lines, purchase options)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cm_helpers import live_after_run

from calibration import Calibration, Profile
from cost_model.after import (
    AfterOptions,
    after_lines,
    check_live_run,
    check_run,
    count_stream,
    month_counts,
    pack,
    size_fleet,
)
from cost_model.inputs import NEEDS, InputError, StackConfig
from cost_model.model import Workload, breakeven, compare, serverless_lines, serverless_usage
from cost_model.prices import PURCHASES, PriceBook, PurchaseUnavailable
from infra.after_config import AfterConfig
from monolith.sizing import TaskSize
from settings import ServiceSettings
from statemachine import ASL_PATH
from statemachine.asl import load

# 2048/1024 MB, every frame, 3 detectors, 1-day expiry; 300 s per execution, the worked examples' choice
# (the stack's default is 60, bounded by the history limit)
STACK = StackConfig(seconds_per_execution=300)
# Round numbers, so every figure below can be worked out on paper.
PROFILE = Profile(
    frame_bytes=100_000,
    audio_bytes=50_000,
    decode_ms_per_frame=2.0,
    pack_ms_per_frame=1.0,
    unpack_ms_per_object=0.5,
    detect_ms_per_frame={"freeze": 0.4, "block_corruption": 0.2, "av_sync": 0.3},
)
CALIBRATION = Calibration(
    {
        "monolith": {
            "cpu_s_per_stream_second": {"1080p": {"median": 0.2, "min": 0.1, "max": 0.4, "runs": 3}},
            "peak_rss_mib_per_stream": {"1080p": 100},
        },
        "task": {
            "peak_mib": {
                "1080p": {
                    "1": {"median": 250, "min": 240, "max": 260, "runs": 3},
                    "4": {"median": 580, "min": 560, "max": 600, "runs": 3},
                }
            }
        },
    },
    Path("hand.json"),
)
BOOK = PriceBook("us-east-1")
# A calibration file of round numbers (not a measurement), so the task size below is worked out by hand
# whatever `make calibrate` last measured.
FIXED_CALIBRATION = Path(__file__).parent / "data" / "calibration-fixed.json"


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    return load(ASL_PATH)  # a missing definition fails here: never a skip


def workload(**kw: Any) -> Workload:
    base = dict(
        streams=1,
        hours=1.0,
        fps=25.0,
        resolution="1080p",
        stack=STACK,
        needs=dict(NEEDS),
        defects_per_hour=1.0,
        media=PROFILE,
        live=False,  # the worked examples price finished files; live streams have their own below
    )
    return Workload(**{**base, **kw})


def after(**kw: Any) -> AfterOptions:
    """Finished files, unless a test asks for live segments."""
    return AfterOptions(**{"calibration": CALIBRATION, "settings": ServiceSettings(concurrency=4),
                           "live_segment_seconds": None, **kw})


def by_unit(lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f"{x['service']}|{x['unit']}": x for x in lines}


# --- the before -----------------------------------------------------------------------------------------
def test_one_stream_hour_of_the_before_by_hand(definition: dict[str, Any]) -> None:
    # Given 1 stream for 1 hour (3,600 stream-seconds), 1 defect in that hour, us-east-1
    w = workload()
    u, _ = serverless_usage(definition, w)
    lines = by_unit(serverless_lines(u, w, BOOK))
    # Then transitions: 3,600 x 10 + 12 executions x 3 + 1 Notify + 1 Publish = 36,038, at $0.025 per 1,000
    sfn = lines["Step Functions|state transitions"]
    assert sfn["quantity"] == pytest.approx(36_038)
    assert sfn["monthly_usd"] == pytest.approx(0.90095)
    # Lambda requests: converter + 3 detectors = 4 per second = 14,400, at $0.20 per million
    assert lines["Lambda|requests"]["quantity"] == pytest.approx(14_400)
    assert lines["Lambda|requests"]["monthly_usd"] == pytest.approx(0.00288)
    # S3 PUT: 25 frames + 1 audio + 1 Record = 27 per second = 97,200, at $0.005 per 1,000
    assert lines["S3|PUT requests"]["quantity"] == pytest.approx(97_200)
    assert lines["S3|PUT requests"]["monthly_usd"] == pytest.approx(0.486)
    # S3 GET: 25 + 25 + 25 frames + 1 audio (A/V sync) + 1 converter HEAD = 77 per second = 277,200
    assert lines["S3|GET requests"]["quantity"] == pytest.approx(277_200)
    assert lines["S3|GET requests"]["monthly_usd"] == pytest.approx(0.11088)
    assert lines["SNS|publishes"]["quantity"] == pytest.approx(1)
    # Storage: 2,550,000 B/s held 1.5 days = 307.783 GiB, 1 h of the month's 730: 0.42162 GB-months
    storage = lines["S3|GB-months (frames bucket)"]
    assert storage["quantity"] == pytest.approx(0.4216212, rel=1e-6)
    assert storage["monthly_usd"] == pytest.approx(0.0096973, rel=1e-4)
    # X-Ray: one execution per 300 s (1/300 a second, under the 1/s reservoir: all traced) and 1/3,600
    # corrective actions a second: (1/300 + 1/3,600) x 3,600 s = 12 + 1 = 13 traces at $5 per million
    xray = lines["X-Ray|traces recorded (default sampling)"]
    assert xray["quantity"] == pytest.approx(13)
    assert xray["monthly_usd"] == pytest.approx(0.000065)


def test_xray_traces_past_the_reservoir_by_hand(definition: dict[str, Any]) -> None:
    # Given 1,000 streams 24x7 (2,628,000 s): 1,000 / 300 = 3.3333 executions a second: 1 + 5% of 2.3333 =
    # 1.116667 traced a second; 1,000 / 3,600 = 0.27778 corrective actions a second, all traced (under 1/s)
    w = workload(streams=1000, hours=730)
    u, _ = serverless_usage(definition, w)
    xray = by_unit(serverless_lines(u, w, BOOK))["X-Ray|traces recorded (default sampling)"]
    # Then (1.116667 + 0.277778) x 2,628,000 = 3,664,600 traces = $18.323
    assert xray["quantity"] == pytest.approx(3_664_600)
    assert xray["monthly_usd"] == pytest.approx(18.323)
    # And --free-tier takes the first 100,000 off: -$0.50
    free = by_unit(serverless_lines(u, w, BOOK, free_tier=True))["X-Ray|free tier: traces recorded"]
    assert free["monthly_usd"] == pytest.approx(-0.5)


def test_lambda_durations_of_the_before_by_hand(definition: dict[str, Any]) -> None:
    u, _ = serverless_usage(definition, workload())
    # CPU time only (the wait on S3 is not counted). Converter at 2,048 MB (a whole vCPU): 25 x 2.0 ms
    # decode + 25 x 1.0 ms pack = 75 ms
    assert u.converter_ms == pytest.approx(75.0)
    # Detectors at 1,024 MB get 1024/1769 of a vCPU (x 1.7275390625). Freeze: 25 x (0.5 unpack + 0.4) =
    # 22.5 ms CPU -> 38.8696 ms
    assert u.detector_ms["freeze"] == pytest.approx(38.86963)
    # Block corruption: 25 x (0.5 + 0.2) = 17.5 ms -> 30.2319 ms
    assert u.detector_ms["block_corruption"] == pytest.approx(30.23193)
    # A/V sync: 26 objects x 0.5 + 25 x 0.3 = 20.5 ms -> 35.4146 ms
    assert u.detector_ms["av_sync"] == pytest.approx(35.41455)
    # GB-s per stream-second: 2 GB x 0.075 s + 1 GB x (0.0388696 + 0.0302319 + 0.0354146) s = 0.2545161
    assert u.gb_s == pytest.approx(0.2545161, rel=1e-6)


def test_lambda_gb_seconds_split_into_volume_tiers(definition: dict[str, Any]) -> None:
    # Given 30,000 streams 24x7: 0.25451611328125 GB-s x 78,840,000,000 stream-seconds = 20,066,050,371 GB-s
    w = workload(streams=30_000, hours=730)
    u, _ = serverless_usage(definition, w)
    lines = [x for x in serverless_lines(u, w, BOOK) if x["unit"].startswith("GB-seconds")]
    # Then 6B at the first price, 9B at the second, 5,066,050,371 at the third:
    # $100,000.20 + $135,000 + $67,547.68
    assert [x["quantity"] for x in lines] == pytest.approx([6e9, 9e9, 5_066_050_371], rel=1e-9)
    assert sum(x["monthly_usd"] for x in lines) == pytest.approx(302_547.88, rel=1e-7)


def test_free_tier_lines_are_negative_and_capped(definition: dict[str, Any]) -> None:
    w = workload()
    u, _ = serverless_usage(definition, w)
    lines = by_unit(serverless_lines(u, w, BOOK, free_tier=True))
    # 4,000 transitions free (of 36,038 used), all 14,400 requests free (< 1M)
    assert lines["Step Functions|free tier: state transitions"]["quantity"] == -4000
    assert lines["Lambda|free tier: requests"]["quantity"] == pytest.approx(-14_400)
    assert lines["Lambda|free tier: requests"]["monthly_usd"] == pytest.approx(-0.00288)


@pytest.mark.parametrize(
    ("variant", "put", "get", "transitions"),
    [
        ("batched", 1 + 1, 1 + 3, 10),  # one object per second; each detector GETs it; + HEAD
        ("fewer-detectors", 26 + 1, 1 + 25, 8),  # freeze only: 2 branches fewer
        ("sampled", 5 + 1 + 1, 1 + 5 + 5 + 6, 10),  # 5 frames + audio shipped
    ],
)
def test_what_if_variants_by_hand(
    definition: dict[str, Any], variant: str, put: int, get: int, transitions: int
) -> None:
    u, _ = serverless_usage(definition, workload(variant=variant, defects_per_hour=0))
    assert u.s3_put_frames + u.s3_put_results == pytest.approx(put)
    assert u.s3_get == pytest.approx(get)
    assert u.transitions == pytest.approx(transitions + 3 / 300)


def test_express_bills_requests_and_duration_without_a_transition_ceiling(definition: dict[str, Any]) -> None:
    w = workload(variant="express")
    u, _ = serverless_usage(definition, w)
    lines = by_unit(serverless_lines(u, w, BOOK))
    # One execution per 300 s: 12 requests in an hour; 3,600 s x 64 MB = 225 GB-s
    assert lines["Step Functions|Express requests"]["quantity"] == pytest.approx(12)
    assert lines["Step Functions|Express GB-seconds"]["quantity"] == pytest.approx(225)
    assert "Step Functions|state transitions" not in lines


def test_express_batched_variant_by_hand(definition: dict[str, Any]) -> None:
    # Given the before improved (Express, one object per second, the detectors combined), 1 stream-hour,
    # no defects
    w = workload(variant="express-batched", defects_per_hour=0)
    u, _ = serverless_usage(definition, w)
    # Then per second: 2 invocations (converter, one detectors function), 2 PUTs (the second's object, the
    # Record), 2 GETs (converter HEAD, the object read once)
    assert u.lambda_invocations == pytest.approx(2)
    assert u.detector_invocations == {"detectors": pytest.approx(1)}
    assert u.s3_put_frames + u.s3_put_results == pytest.approx(2)
    assert u.s3_get == pytest.approx(2)
    # Converter: 75 ms CPU (the wait on S3 is not counted)
    assert u.converter_ms == pytest.approx(75.0)
    # Detectors: 26 unpacks x 0.5 + freeze on 5 sampled frames x 0.4 + 25 x 0.2 + 25 x 0.3 = 27.5 ms CPU
    # -> 47.5073 ms at 1,024 MB
    assert u.detector_ms["detectors"] == pytest.approx(47.50732)
    # GB-s: 2 x 0.075 + 1 x 0.0475073 = 0.1975073 per stream-second
    assert u.gb_s == pytest.approx(0.1975073, rel=1e-6)
    lines = by_unit(serverless_lines(u, w, BOOK))
    assert lines["Step Functions|Express requests"]["quantity"] == pytest.approx(12)
    assert lines["Lambda|requests"]["quantity"] == pytest.approx(7_200)
    assert lines["S3|PUT requests"]["quantity"] == pytest.approx(7_200)
    assert lines["S3|GET requests"]["quantity"] == pytest.approx(7_200)
    # The object is deleted once read: 2,550,000 B held 2 s = 0.0047497 GiB, for 1 h of the month's 730
    assert lines["S3|GB-months (frames bucket)"]["quantity"] == pytest.approx(0.0047497 / 730, rel=1e-4)


# --- the after --------------------------------------------------------------------------------------------
def test_after_requests_for_one_stream_by_hand() -> None:
    s = ServiceSettings()  # results every 60 stream-seconds, a heartbeat every 30
    # chaplin (9.64 s = 10 stream-seconds), no defect: 1 GET, 1 results PUT, receive + delete, no extension
    assert count_stream(s, 10, 0).astuple() == (1, 1, 1, 1, 0, 0)
    # An hour with 2 defects: 60 results objects, extensions before seconds 30, 60, …, 3,570 = 119,
    # 2 publishes
    assert count_stream(s, 3600, 2).astuple() == (1, 60, 1, 1, 119, 2)
    # A stream that cannot be analysed: each of 3 receives reads it and sets the message's visibility;
    # one failure notification; nothing written or deleted (SQS moves it to the dead-letter queue)
    assert count_stream(s, 0, 0, analysable=False).astuple() == (3, 0, 3, 0, 3, 1)
    with pytest.raises(InputError):
        count_stream(s, -1, 0)


def test_fleet_bin_packing_by_hand() -> None:
    # Given 0.2 CPU-s per stream-second (median; min 0.1, max 0.4), a whole task of 4 streams peaking at
    # 560-600 MiB, 50% headroom: a task reserves 0.2 x 4 x 1.5 = 1.2 vCPU = 1,229 units and the largest
    # peak 600 x 1.5 = 900 -> 1,024 MiB. A c6i.2xlarge offers 8,192 units and 90% of 16,384 = 14,745 MiB:
    # 6 tasks by CPU, 14 by memory. 1,000 streams = 250 tasks -> 42 instances.
    f = size_fleet(1000, CALIBRATION, "1080p", settings=ServiceSettings(concurrency=4))
    assert (f.task.cpu_units, f.task.memory_mib) == (1229, 1024)
    assert (f.tasks, f.tasks_per_instance, f.instances, f.bound) == (250, 6, 42, "CPU")
    # The spread: at the max (0.4) 2,458 units, 3 tasks each, 84 instances; at the min (0.1) 615 units,
    # 13 each, 20 instances
    high = size_fleet(1000, CALIBRATION, "1080p", settings=ServiceSettings(concurrency=4), statistic="max")
    low = size_fleet(1000, CALIBRATION, "1080p", settings=ServiceSettings(concurrency=4), statistic="min")
    assert (high.task.cpu_units, high.tasks_per_instance, high.instances) == (2458, 3, 84)
    assert (low.task.cpu_units, low.tasks_per_instance, low.instances) == (615, 13, 20)
    # arm64 (c7g.2xlarge): 0.832 x the CPU: 0.9984 vCPU = 1,023 units, 8 tasks each, 32 instances
    arm = size_fleet(
        1000, CALIBRATION, "1080p", settings=ServiceSettings(concurrency=4), architecture="arm64"
    )
    assert (arm.instance, arm.task.cpu_units, arm.tasks_per_instance, arm.instances) == (
        "c7g.2xlarge",
        1023,
        8,
        32,
    )
    # One stream per task: 0.3 vCPU = 308 units, its task's peak 260 x 1.5 = 390 -> 512 MiB: 26 per instance
    # by CPU (28 by memory)
    one = size_fleet(1000, CALIBRATION, "1080p", settings=ServiceSettings(concurrency=1))
    assert (one.task.cpu_units, one.task.memory_mib, one.tasks_per_instance, one.bound) == (
        308,
        512,
        26,
        "CPU",
    )
    with pytest.raises(InputError, match="arm64"):
        size_fleet(
            1, CALIBRATION, "1080p", settings=ServiceSettings(), architecture="x86_64", instance="c7g.2xlarge"
        )


def test_after_month_by_hand() -> None:
    # Given 1,000 streams 24x7 (730 h = 2,628,000 s each, one job per stream), 1 defect per stream-hour,
    # 4 streams per task, on demand, public subnets
    lines = by_unit(after_lines(1000, 730, 1.0, "1080p", after(), BOOK)[0])
    # EC2: 42 instances x 730 h = 30,660 instance-hours x $0.34 = $10,424.40
    ec2 = lines["EC2|instance-hours (c6i.2xlarge, on-demand)"]
    assert (ec2["quantity"], ec2["monthly_usd"]) == (30_660, pytest.approx(10_424.40))
    # S3: 1 GET per stream = 1,000; ceil(2,628,000 / 60) = 43,800 results PUTs per stream = 43.8M at
    # $0.005 per 1,000
    assert lines["S3|GET requests (streams)"]["quantity"] == 1000
    assert lines["S3|PUT requests (results)"]["monthly_usd"] == pytest.approx(219.0)
    # SQS: receive + delete + (2,628,000 - 1) // 30 = 87,599 extensions = 87,601 per stream x 1,000 x $0.40/M
    sqs = lines["SQS|requests (receive, delete, visibility)"]
    assert (sqs["quantity"], sqs["monthly_usd"]) == (87_601_000, pytest.approx(35.0404))
    assert "SQS|requests (idle long polls)" not in lines  # 1,000 streams fill 250 tasks exactly
    # SNS: 730,000 defects x $0.50/M
    assert lines["SNS|publishes"]["monthly_usd"] == pytest.approx(0.365)
    # EBS: 42 x 30 GiB = 1,260 GB-months x $0.08; ECR: 0.5 GB x $0.10
    assert lines["EBS|GB-months (gp3, 30 GiB per instance)"]["monthly_usd"] == pytest.approx(100.80)
    assert lines["ECR|GB-months (image, 0.5 GB assumed)"]["monthly_usd"] == pytest.approx(0.05)
    # Logs: (1,000 jobs + 43.8M results + 730,000 defects) lines x 300 B = 13.3593 GB x $0.50
    assert lines["CloudWatch Logs|GB ingested (container logs)"]["monthly_usd"] == pytest.approx(6.67965)
    # A public IPv4 address per instance: 30,660 h x $0.005
    assert lines["VPC|public IPv4 address-hours (one per instance)"]["monthly_usd"] == pytest.approx(153.30)
    # X-Ray: the corrective action is traced, 1,000 / 3,600 a second (all under the 1/s reservoir):
    # 730,000 traces x $5 per million; the service itself is not
    xray = lines["X-Ray|traces recorded (default sampling)"]
    assert (xray["quantity"], xray["monthly_usd"]) == (pytest.approx(730_000), pytest.approx(3.65))
    for x in lines.values():
        assert set(x) == {"service", "unit", "quantity", "unit_price_usd", "monthly_usd", "source"}


def test_after_network_options_and_idle_polling_by_hand() -> None:
    # NAT: 2 AZs x 730 h x $0.045 = $65.70; GB processed: (87,601,000 SQS + 730,000 SNS + 44,531,000 log
    # lines) x 2,000 B = 265.724 GB + 13.3593 GB of logs + 42 image pulls x 0.5 GB = 300.0833 GB x $0.045
    nat = by_unit(after_lines(1000, 730, 1.0, "1080p", after(network="nat"), BOOK)[0])
    assert nat["VPC|NAT gateway-hours (2 AZs, all month)"]["monthly_usd"] == pytest.approx(65.70)
    assert nat["VPC|NAT GB processed (API calls, logs, image pulls)"]["monthly_usd"] == pytest.approx(
        13.50375
    )
    assert not any(k.startswith("VPC|public IPv4") for k in nat)
    # Interface endpoints: 8 endpoints x 2 AZs x 730 h x $0.01 = $116.80
    ep = by_unit(after_lines(1000, 730, 1.0, "1080p", after(network="endpoints"), BOOK)[0])
    assert ep["VPC|interface endpoint-hours (8 x 2 AZs, all month)"]["monthly_usd"] == pytest.approx(116.80)
    # 10 streams in tasks of 4: the third task has a free slot and long-polls every 20 s: 131,400 receives
    counts, idle = month_counts(10, 730, 0.0, ServiceSettings(concurrency=4))
    assert idle == 131_400 and counts.sqs_receive == 10


def test_purchase_options_by_hand() -> None:
    # Given the 42 c6i.2xlarge of the bin-packing example, 730 h: 30,660 instance-hours.
    # A 3-year Standard Reserved Instance at AWS's published $0.14969 an hour: $4,589.4954
    def ec2(**kw: Any) -> dict[str, Any]:
        lines = after_lines(1000, 730, 1.0, "1080p", after(**kw), BOOK)[0]
        return next(x for x in lines if x["service"] == "EC2")

    ri = ec2(purchase="ri-standard-3y")
    assert ri["unit"] == "instance-hours (c6i.2xlarge, ri-standard-3y)"
    assert (ri["unit_price_usd"], ri["monthly_usd"]) == (0.14969, pytest.approx(4_589.4954))
    assert "yeo/ec2.shop" in ri["source"] and "2025-04-04" in ri["source"]
    # 1-year Convertible: $0.2457 x 30,660 = $7,533.162
    assert ec2(purchase="ri-convertible-1y")["monthly_usd"] == pytest.approx(7_533.162)
    # arm64: 32 c7g.2xlarge (see the bin-packing example) x 730 h x $0.1274 (3-year Standard) = $2,976.064
    arm = ec2(purchase="ri-standard-3y", architecture="arm64")
    assert (arm["quantity"], arm["monthly_usd"]) == (23_360, pytest.approx(2_976.064))
    # Compute Savings Plans: the user's rate per term, so 1 and 3 years differ: 0.2 off = $0.272, 0.45 off =
    # $0.187
    assert ec2(purchase="savings-1y", sp_discount_1y=0.2, sp_discount_3y=0.45)["unit_price_usd"] == (
        pytest.approx(0.272)
    )
    assert ec2(purchase="savings-3y", sp_discount_1y=0.2, sp_discount_3y=0.45)["unit_price_usd"] == (
        pytest.approx(0.187)
    )
    # No rate given: no rate assumed
    with pytest.raises(PurchaseUnavailable, match="no Compute Savings Plan rate given"):
        ec2(purchase="savings-3y", sp_discount_1y=0.2)
    # No sourced Reserved Instance rate for another size: refused, not scaled
    with pytest.raises(PurchaseUnavailable, match=r"no sourced ri-standard-1y rate for c6i\.4xlarge"):
        ec2(purchase="ri-standard-1y", instance="c6i.4xlarge")
    with pytest.raises(InputError):
        after(purchase="reserved")
    with pytest.raises(InputError):
        after(network="carrier-pigeon")
    with pytest.raises(InputError, match="--sp-discount-3y"):
        after(sp_discount_3y=1.0)


def test_compare_prices_both_with_the_range_and_every_purchase(definition: dict[str, Any]) -> None:
    r = compare(definition, workload(streams=1000, hours=730), BOOK, after=after())
    m = r["monolith"]
    # The range follows the instances at min and max CPU: 20 and 84 (see the bin-packing example)
    assert (m["range"]["low"]["instances"], m["range"]["high"]["instances"]) == (20, 84)
    assert m["range"]["low"]["monthly_usd"] < m["monthly_usd"] < m["range"]["high"]["monthly_usd"]
    assert set(m["by_purchase"]) == set(PURCHASES)
    # A 3-year Standard Reserved Instance saves 30,660 h x ($0.34 - $0.14969) = $5,834.9046
    assert m["by_purchase"]["on-demand"] - m["by_purchase"]["ri-standard-3y"] == pytest.approx(5_834.9046)
    # The Savings Plans have no rate given: none, and a note that says so
    assert m["by_purchase"]["savings-1y"] is None and m["by_purchase"]["savings-3y"] is None
    assert set(m["purchase_notes"]) == {"savings-1y", "savings-3y"}
    for side in ("serverless", "monolith"):
        for x in r[side]["lines"]:
            assert x["monthly_usd"] == pytest.approx(x["quantity"] * x["unit_price_usd"])
        assert r[side]["monthly_usd"] == pytest.approx(sum(x["monthly_usd"] for x in r[side]["lines"]))


def test_quota_ceiling_from_the_refill_rate(definition: dict[str, Any]) -> None:
    # 10 + 3/300 + 2/3600 transitions per stream-second: floor(1,500 / 10.0106) = 149, floor(500 / …) = 49
    for region, ceiling in (("us-east-1", 149), ("sa-east-1", 49)):
        r = compare(definition, workload(streams=1000, hours=730), PriceBook(region), after=after())
        assert r["quota"]["max_concurrent_streams"] == ceiling
        assert "StateTransition" in r["quota"]["limit"]


def test_breakeven_is_where_the_serverless_side_first_costs_the_after(definition: dict[str, Any]) -> None:
    # Given the after on one c6i.4xlarge per 13 tasks or so, and the express-batched serverless side
    w = workload(variant="express-batched", hours=730)
    opts = after(instance="c6i.4xlarge")
    n = breakeven(definition, w, BOOK, opts)
    assert n is not None and n > 1

    def gap(k: int) -> float:
        r = compare(definition, replace(w, streams=k), BOOK, after=opts)
        return r["serverless"]["monthly_usd"] - r["monolith"]["monthly_usd"]

    # Then at n the serverless side costs at least the after, one stream fewer it does not
    assert gap(n) >= 0 > gap(n - 1)


def test_workload_rejects_bad_input() -> None:
    for kw, message in [
        ({"streams": 0}, "streams"),
        ({"hours": -1.0}, "hours"),
        ({"fps": 0.0}, "fps"),
        ({"variant": "nope"}, "variant"),
        ({"detectors": ("x",)}, "detectors"),
    ]:
        with pytest.raises(InputError, match=message):
            workload(**kw)


def test_check_run_counts_each_job_of_an_after_bill() -> None:
    # Given two jobs: a 20 s stream with 3 defects and a 7 s one without, results every 5 s, heartbeat 4 s
    bill = {
        "jobs": [
            {"stream_seconds": 20, "outcome": "analysed", "defects": 3},
            {"stream_seconds": 7, "outcome": "analysed", "defects": 0},
        ],
        "s3_requests": {"get": 2, "put": 6, "head": 0, "list": 0},
        "sqs_requests": {"ReceiveMessage": 2, "DeleteMessage": 2, "ChangeMessageVisibility": 5},
        "sns_publishes": 3,
        "settings": {"results_batch_seconds": 5, "heartbeat_seconds": 4},
    }
    rows = {r["quantity"]: r for r in check_run(bill)}
    # Then by hand: 2 GETs; 4 + 2 = 6 PUTs; 2 receives, 2 deletes; 19 // 4 + 6 // 4 = 4 + 1 = 5 extensions;
    # 3 publishes
    assert [
        rows[k]["analytic"]
        for k in (
            "after S3 GET",
            "after S3 PUT",
            "after SQS ReceiveMessage",
            "after SQS DeleteMessage",
            "after SQS ChangeMessageVisibility",
            "after SNS publishes",
        )
    ] == [2, 6, 2, 2, 5, 3]
    assert all(r["equal"] for r in rows.values())
    # A failed attempt among the jobs: where it stopped decides its requests, so nothing is checked
    bill["jobs"].append({"stream_seconds": 4, "outcome": "failed", "defects": 0})
    assert check_run(bill) == []


def test_network_hours_are_the_whole_month_even_for_part_time_streams() -> None:
    # Given streams that run 100 h a month: the instances run 100 h, the NAT gateways all 730
    lines = by_unit(after_lines(10, 100, 0.0, "1080p", after(network="nat"), BOOK)[0])
    assert lines["VPC|NAT gateway-hours (2 AZs, all month)"]["quantity"] == 1460
    assert lines["EC2|instance-hours (c6i.2xlarge, on-demand)"]["quantity"] == 100  # 1 instance x 100 h


def test_tasks_reserve_90_percent_of_an_instances_memory() -> None:
    # Given tasks of 100 CPU units and 1,024 MiB on a c6i.2xlarge (16 GiB): 90% = 14,745 MiB -> 14 tasks,
    # memory-bound (by CPU it would be 81); 100 streams at 4 per task = 25 tasks -> 2 instances
    assert pack(100, TaskSize(cpu_units=100, memory_mib=1024), 4, "c6i.2xlarge") == (25, 14, 2, "memory")
    with pytest.raises(InputError, match="cannot hold"):
        pack(1, TaskSize(cpu_units=9000, memory_mib=512), 1, "c6i.2xlarge")


def test_cost_model_packs_tasks_as_the_after_stack_places_them() -> None:
    # Given the stack's default task (4 streams at 720p) sized from a fixed calibration (0.1 CPU-s per
    # stream-second; a whole task of 4 streams peaking at 880-960 MiB): 0.1 x 4 x 1.5 = 0.6 vCPU x 1,024 =
    # 614.4 -> 615 CPU units; the largest peak 960 x 1.5 = 1,440 -> 1,536 MiB in 128 MiB steps. A
    # c6i.2xlarge: 8,192 // 615 = 13 by CPU, 90% of 16,384 = 14,745 MiB // 1,536 = 9 by memory -> 9,
    # memory-bound. The cost model prices the fleet the stack would place: the same 9 and the same bound
    # (120 streams = 30 tasks = 4 instances).
    config = AfterConfig(calibration_path=str(FIXED_CALIBRATION))
    task = config.task_size
    assert (task.cpu_units, task.memory_mib) == (615, 1536)
    assert (config.tasks_per_instance, config.memory_bound) == (9, True)
    assert pack(120, task, config.concurrency, config.instance_type) == (30, 9, 4, "memory")


def test_a_live_stream_of_the_before_by_hand(definition: dict[str, Any]) -> None:
    # Given the batched variant (short functions: it keeps up with a live stream), no defects, 2 s segments
    files, _ = serverless_usage(definition, workload(variant="batched", defects_per_hour=0))
    live, _ = serverless_usage(definition, workload(variant="batched", defects_per_hour=0, live=True,
                                                    segment_seconds=2.0))
    # The critical path of a second (CPU time): converter 75 ms, then the slowest detector, freeze: 26 x 0.5
    # + 25 x 0.4 = 23 ms CPU at 1024/1769 of a vCPU = 39.7334 ms; 114.7334 ms of work leaves 885.2666 ms of
    # each second to wait at the edge, polled every 1 s (the ASL's Retry): 0.8852666 waits per stream-second
    assert live.live_edge_waits == pytest.approx(0.8852666, rel=1e-5)
    # Each wait is a retry transition, a converter invocation and its playlist GET; each 2 s segment one
    # starter invocation, its playlist GET and the converter's GET of the segment
    assert live.transitions - files.transitions == pytest.approx(0.8852666, rel=1e-5)
    assert live.lambda_invocations - files.lambda_invocations == pytest.approx(0.8852666 + 0.5, rel=1e-5)
    assert live.s3_get - files.s3_get == pytest.approx(0.8852666 + 1.0, rel=1e-5)
    assert live.s3_put_frames + live.s3_put_results == files.s3_put_frames + files.s3_put_results
    # GB-s: each poll and each start is billed Lambda's least duration, 1 ms: waits 0.8852666 x 2 GB x 1 ms
    # + starts 0.5 x 0.25 GB x 1 ms = 0.0017705 + 0.000125
    assert live.gb_s - files.gb_s == pytest.approx(0.0018955, rel=1e-4)
    # And every segment and playlist written is an EventBridge event: 2 per 2 s, 3,600 in the hour, $0.0036
    w = workload(variant="batched", defects_per_hour=0, live=True)
    events = by_unit(serverless_lines(live, w, BOOK))["EventBridge|S3 object events"]
    assert (events["quantity"], events["monthly_usd"]) == (pytest.approx(3600), pytest.approx(0.0036))
    assert "EventBridge|S3 object events" not in by_unit(serverless_lines(files, workload(variant="batched"),
                                                                          BOOK))


def test_live_is_the_default_and_its_wait_comes_from_the_definition(definition: dict[str, Any]) -> None:
    from statemachine.asl import live_edge_wait

    assert Workload(streams=1, hours=1, media=PROFILE).live
    assert live_edge_wait(definition) == (1.0, 30)
    without = json.loads(json.dumps(definition))
    without["States"]["Convert"]["Retry"] = without["States"]["Convert"]["Retry"][1:]
    with pytest.raises(ValueError, match="no Retry on SecondNotPublishedYet"):
        serverless_usage(without, workload(variant="batched", live=True))


# --- the after following live streams ---------------------------------------------------------------
def test_after_live_month_by_hand() -> None:
    # Given the same 1,000 streams as live HLS in 2 s segments, the follower busy 0.2 s of each second
    # (the calibration's 1080p median) and polling every 0.5 s at the edge, 1 defect per stream-hour
    lines = by_unit(after_lines(1000, 730, 1.0, "1080p", after(live_segment_seconds=2.0), BOOK)[0])
    n = 2_628_000_000  # stream-seconds: 1,000 x 730 h x 3,600 s
    # Then no stream is one object read once: the segments are, 1.314 billion GETs x $0.40/M = $525.60
    assert "S3|GET requests (streams)" not in lines
    segments = lines["S3|GET requests (live: segments)"]
    assert (segments["quantity"], segments["monthly_usd"]) == (n / 2, pytest.approx(525.60))
    # And the playlist is read 0.8 s / 0.5 s = 1.6 times a stream-second: 4.2048 billion x $0.40/M
    polls = lines["S3|GET requests (live: playlist polls at the edge)"]
    assert (polls["quantity"], polls["monthly_usd"]) == (pytest.approx(4_204_800_000), pytest.approx(1681.92))
    # And every playlist rewrite is a job: its follower-record GET, and send + receive + delete
    assert lines["S3|GET requests (live: follower record, one per playlist event)"]["quantity"] == n / 2
    sqs = lines["SQS|requests (live: send, receive, delete per playlist event)"]
    assert (sqs["quantity"], sqs["monthly_usd"]) == (3 * n / 2, pytest.approx(1576.80))
    # And the follower record is written every 60 s (batches, and lease_s / 3 = 60 s) and after each of
    # the 730,000 defects: 43.8M + 0.73M = 44.53M x $0.005 per 1,000 = $222.65
    checkpoints = lines["S3|PUT requests (live: checkpoints)"]
    assert (checkpoints["quantity"], checkpoints["monthly_usd"]) == (pytest.approx(44_530_000),
                                                                     pytest.approx(222.65))
    # And every segment and every playlist rewrite is an S3 event on EventBridge: 2.628 billion x $1/M
    assert lines["EventBridge|S3 object events (segments, playlists)"]["monthly_usd"] == pytest.approx(2628.0)
    # And the job's message only gets its heartbeats: 87,599 per stream, as for a file
    assert lines["SQS|requests (visibility heartbeats)"]["quantity"] == 87_599_000
    # When priced as files instead, Then none of the live lines is there
    files = by_unit(after_lines(1000, 730, 1.0, "1080p", after(), BOOK)[0])
    assert not [k for k in files if "live" in k] and "S3|GET requests (streams)" in files


def test_a_live_after_run_checked_by_hand() -> None:
    rows = {r["quantity"]: r for r in check_live_run(live_after_run(), segments=10)}
    # Then what timing does not decide is equal
    for quantity in ("after live jobs (playlist events)", "after S3 GET", "after S3 PUT (results)",
                     "after checkpoint PUTs", "after SQS ReceiveMessage", "after SQS DeleteMessage",
                     "after SNS publishes"):
        assert rows[quantity]["equal"] is True, rows[quantity]
    assert (rows["after S3 GET"]["analytic"], rows["after checkpoint PUTs"]["analytic"]) == (45, 5)
    # And the polls are shown beside the real-time model: busy 2 s / 20 s = 10%, 20 x 0.9 / 0.5 = 36
    polls = rows["after playlist reads"]
    assert (polls["analytic"], polls["measured"], polls["equal"]) == (36, 25, None)
    # And one heartbeat in 12 s of following is within 1..1 + ceil(12 / 30)
    assert rows["after SQS ChangeMessageVisibility"]["equal"] is None


def test_a_live_after_run_that_read_a_segment_twice_or_lost_a_job_is_caught() -> None:
    # When a segment was read twice, Then the GETs differ
    twice = live_after_run(s3_requests={"by_source": {"service": {"GetObject": 46, "PutObject": 6}}})
    assert {r["quantity"]: r for r in check_live_run(twice, segments=10)}["after S3 GET"]["equal"] is False
    # When a playlist event's job never came, Then the jobs and their receives differ
    lost = live_after_run()
    lost["jobs"] = lost["jobs"][:-1]
    lost["sqs_requests"] = {"ReceiveMessage": 9, "DeleteMessage": 9, "ChangeMessageVisibility": 1}
    rows = {r["quantity"]: r for r in check_live_run(lost, segments=10)}
    assert rows["after live jobs (playlist events)"]["equal"] is False
    assert rows["after SQS ReceiveMessage"]["equal"] is False
    # When the follower wrote its record 12 times in 12 s (lease renewals at most 12 // 60 = 0), Then not
    more = live_after_run()
    more["jobs"] = [{**more["jobs"][0], "live": {"playlist_reads": 25, "checkpoints": 12}}, *more["jobs"][1:]]
    more["s3_requests"] = {"by_source": {"service": {"GetObject": 45, "PutObject": 13}}}
    rows = {r["quantity"]: r for r in check_live_run(more, segments=10)}
    assert rows["after checkpoint PUTs"]["equal"] is False
    # When the follower was taken over, Then nothing is checked (where it stopped decides)
    taken = live_after_run()
    taken["jobs"] = [{**taken["jobs"][0], "outcome": "superseded"}, *taken["jobs"][1:]]
    assert check_live_run(taken, segments=10) == []
