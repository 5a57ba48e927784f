"""Each cost line against a hand computation, the monolith sizing, the quota ceiling and the what-ifs."""

from __future__ import annotations

from typing import Any

import pytest

from cost_model.asl import load
from cost_model.inputs import DEFAULT_NEEDS, PROFILES, InputError, StackConfig
from cost_model.model import (
    GIB,
    Workload,
    compare,
    serverless_lines,
    serverless_usage,
    size_monolith,
)
from cost_model.prices import PriceBook
from infra.config import ASL_PATH

STACK = StackConfig()  # 2048/1024 MB, every frame, 3 detectors, 300 s per execution, 1-day expiry


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    if not ASL_PATH.is_file():
        pytest.skip("statemachine/stream_quality.asl.json not present")
    return load(ASL_PATH)


def workload(**kw: Any) -> Workload:
    base = dict(
        streams=1,
        hours=1.0,
        fps=25.0,
        resolution="720p",
        stack=STACK,
        needs=dict(DEFAULT_NEEDS),
        defects_per_hour=1.0,
    )
    return Workload(**{**base, **kw})


def by_unit(lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f"{x['service']}|{x['unit']}": x for x in lines}


def test_one_stream_hour_lines_match_hand_computation(definition: dict[str, Any]) -> None:
    # Given 1 stream for 1 hour (3,600 stream-seconds), 1 defect in that hour, us-east-1
    w = workload()
    u, _ = serverless_usage(definition, w)
    lines = by_unit(serverless_lines(u, w, PriceBook("us-east-1")))
    # Then transitions: 3,600 x 10 + 3,600/300 x 3 (execution boundaries) + 1 Notify + 1 Publish = 36,038
    sfn = lines["Step Functions|state transitions"]
    assert sfn["quantity"] == pytest.approx(36_038)
    assert sfn["monthly_usd"] == pytest.approx(36_038 * 0.025 / 1000)
    # Lambda requests: converter + 3 detectors = 4 per second
    assert lines["Lambda|requests"]["quantity"] == pytest.approx(14_400)
    assert lines["Lambda|requests"]["monthly_usd"] == pytest.approx(14_400 * 0.20 / 1e6)
    # S3 PUT: 25 frames + 1 audio + 1 Record = 27 per second
    assert lines["S3|PUT requests"]["quantity"] == pytest.approx(27 * 3600)
    assert lines["S3|PUT requests"]["monthly_usd"] == pytest.approx(27 * 3600 * 0.005 / 1000)
    # S3 GET: freeze 25 + block_corruption 25 + av_sync 25 + 1 audio + converter HEAD 1 = 77 per second
    assert lines["S3|GET requests"]["quantity"] == pytest.approx(77 * 3600)
    assert lines["S3|GET requests"]["monthly_usd"] == pytest.approx(77 * 3600 * 0.0004 / 1000)
    # SNS: one publish per defect
    assert lines["SNS|publishes"]["quantity"] == pytest.approx(1)
    # Storage: (25 x frame + audio) bytes/s held 1.5 days, 1 h of 730 h in the month, GiB
    p = PROFILES["720p"]
    held = (25 * p.frame_bytes + p.audio_bytes) * 1.5 * 86400 / GIB
    storage = lines["S3|GB-months (frames bucket)"]
    assert storage["quantity"] == pytest.approx(held / 730)
    assert storage["monthly_usd"] == pytest.approx(held / 730 * 0.023)


def test_lambda_gb_seconds_match_the_duration_model_by_hand(definition: dict[str, Any]) -> None:
    # Given 720p: converter at 2048 MB (>= 1 vCPU), detectors at 1024 MB (1024/1769 of a vCPU)
    w = workload()
    u, _ = serverless_usage(definition, w)
    p = PROFILES["720p"]
    bytes_s = 25 * p.frame_bytes + p.audio_bytes
    conv_ms = (p.decode_ms_per_frame * 25 + p.pack_ms_per_frame * 25) + 26 * 25 + bytes_s / 1e5 + 25
    share = 1024 / 1769
    freeze_ms = (
        (p.unpack_ms_per_object * 25 + p.detect_ms_per_frame["freeze"] * 25) / share
        + 25 * 25
        + 25 * p.frame_bytes / 1e5
    )
    av_ms = (
        (p.unpack_ms_per_object * 26 + p.detect_ms_per_frame["av_sync"] * 25) / share
        + 26 * 25
        + (25 * p.frame_bytes + p.audio_bytes) / 1e5
    )
    assert u.converter_ms == pytest.approx(conv_ms)
    assert u.detector_ms["freeze"] == pytest.approx(freeze_ms)
    assert u.detector_ms["av_sync"] == pytest.approx(av_ms)
    # Then GB-s per stream-second = 2 GB x conv + 1 GB x (sum of detectors)
    assert u.gb_s == pytest.approx(2 * conv_ms / 1000 + sum(u.detector_ms.values()) / 1000)


def test_lambda_gb_seconds_split_into_volume_tiers(definition: dict[str, Any]) -> None:
    # Given enough streams to pass 15B GB-s a month
    w = workload(streams=3000, hours=730)
    u, _ = serverless_usage(definition, w)
    lines = [x for x in serverless_lines(u, w, PriceBook("us-east-1")) if x["unit"].startswith("GB-seconds")]
    total = u.gb_s * w.stream_seconds
    # Then 6B at the first price, 9B at the second, the rest at the third
    assert [x["quantity"] for x in lines] == pytest.approx([6e9, 9e9, total - 15e9])
    assert sum(x["monthly_usd"] for x in lines) == pytest.approx(
        6e9 * 0.0000166667 + 9e9 * 0.000015 + (total - 15e9) * 0.0000133334
    )


def test_free_tier_lines_are_negative_and_capped(definition: dict[str, Any]) -> None:
    # Given the free tier asked for on a small workload
    w = workload()
    u, _ = serverless_usage(definition, w)
    lines = by_unit(serverless_lines(u, w, PriceBook("us-east-1"), free_tier=True))
    # Then 4,000 transitions free (less than 36,038 used), all 14,400 requests free (< 1M)
    assert lines["Step Functions|free tier: state transitions"]["quantity"] == -4000
    assert lines["Lambda|free tier: requests"]["quantity"] == pytest.approx(-14_400)
    for x in lines.values():
        assert x["monthly_usd"] == pytest.approx(x["quantity"] * x["unit_price_usd"])


def test_monolith_sizing_by_hand() -> None:
    # Given 0.1365 CPU-s per stream-second on 8 vCPUs at 70%: floor(5.6 / 0.1365) = 41 per instance
    s = size_monolith(1000, 0.1365, instance="c6i.2xlarge", utilisation=0.7, rss_mb=200)
    assert (s.streams_per_instance, s.instances, s.bound) == (41, 25, "CPU")
    # Given a memory-hungry process: 16 GiB x 0.9 / 1000 MB = 14 per instance
    m = size_monolith(1000, 0.1365, instance="c6i.2xlarge", utilisation=0.7, rss_mb=1000)
    assert (m.streams_per_instance, m.bound) == (14, "memory")


def test_monolith_rejects_bad_sizing_inputs() -> None:
    with pytest.raises(InputError, match="unknown instance"):
        size_monolith(10, 0.1, instance="m9.huge")
    with pytest.raises(InputError, match="utilisation"):
        size_monolith(10, 0.1, utilisation=1.5)
    with pytest.raises(InputError, match="larger instance"):
        size_monolith(10, 3.0, instance="c6i.large")


def test_monolith_lines_and_savings_plan(definition: dict[str, Any]) -> None:
    # Given 1,000 streams 24x7 on c6i.2xlarge: 25 instances x 730 h x $0.34
    w = workload(streams=1000, hours=730)
    book = PriceBook("us-east-1")
    on_demand = compare(definition, w, book, cpu_s_per_stream_s=0.1365, rss_mb=200)
    ec2 = on_demand["monolith"]["lines"][0]
    assert ec2["quantity"] == 25 * 730 and ec2["monthly_usd"] == pytest.approx(25 * 730 * 0.34)
    # And the same results PUTs as the serverless Record state: 1 per stream-second
    results = on_demand["monolith"]["lines"][1]
    assert results["quantity"] == pytest.approx(1000 * 730 * 3600)
    # Given a Savings Plan at 27% off
    plan = compare(
        definition, w, book, cpu_s_per_stream_s=0.1365, rss_mb=200, purchase="savings-plan", discount=0.27
    )
    assert plan["monolith"]["lines"][0]["unit_price_usd"] == pytest.approx(0.34 * 0.73)


def test_quota_ceiling_from_the_refill_rate(definition: dict[str, Any]) -> None:
    # Given 10 + 3/300 + 2/3600 transitions per stream-second
    per = 10 + 3 / 300 + 2 / 3600
    for region, refill in (("us-east-1", 1500), ("sa-east-1", 500)):
        r = compare(
            definition, workload(streams=1000, hours=730), PriceBook(region), cpu_s_per_stream_s=0.1365
        )
        # Then floor(refill / per): 149 in us-east-1, 49 where the refill is 500/s
        assert r["quota"]["max_concurrent_streams"] == int(refill // per)
        assert "StateTransition" in r["quota"]["limit"]


def test_every_line_is_quantity_times_unit_price_and_totals_add_up(definition: dict[str, Any]) -> None:
    r = compare(
        definition,
        workload(streams=50, hours=200),
        PriceBook("eu-west-1"),
        cpu_s_per_stream_s=0.05,
        free_tier=True,
    )
    for side in ("serverless", "monolith"):
        for x in r[side]["lines"]:
            assert set(x) == {"service", "unit", "quantity", "unit_price_usd", "monthly_usd", "source"}
            assert x["monthly_usd"] == pytest.approx(x["quantity"] * x["unit_price_usd"])
            assert x["source"]
        assert r[side]["monthly_usd"] == pytest.approx(sum(x["monthly_usd"] for x in r[side]["lines"]))
    assert r["reduction_pct"] == pytest.approx(
        100 * (1 - r["monolith"]["monthly_usd"] / r["serverless"]["monthly_usd"])
    )


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


def test_express_variant_bills_requests_and_duration_and_has_no_transition_ceiling(
    definition: dict[str, Any],
) -> None:
    # Given 1 stream-hour on Express
    w = workload(variant="express")
    u, _ = serverless_usage(definition, w)
    lines = by_unit(serverless_lines(u, w, PriceBook("us-east-1")))
    # Then one execution per 300 s (12 requests) and 3,600 s x 64 MB of duration
    assert lines["Step Functions|Express requests"]["quantity"] == pytest.approx(12)
    assert lines["Step Functions|Express GB-seconds"]["quantity"] == pytest.approx(3600 / 16)
    assert "Step Functions|state transitions" not in lines
    r = compare(
        definition,
        workload(variant="express", streams=1000, hours=730),
        PriceBook("us-east-1"),
        cpu_s_per_stream_s=0.1365,
    )
    assert "Lambda concurrency" in r["quota"]["limit"]


def test_prime_video_like_scenario(definition: dict[str, Any]) -> None:
    # Given 3,000 concurrent 25 fps 720p streams, 24x7, us-east-1, the stack as configured, the measured
    # monolith CPU (fallback value) on c6i.2xlarge at 70%
    w = workload(streams=3000, hours=730)
    r = compare(
        definition,
        w,
        PriceBook("us-east-1"),
        cpu_s_per_stream_s=PROFILES["720p"].monolith_cpu_s_per_stream_s,
        rss_mb=200,
    )
    # Then the monolith saves more than 90%
    assert r["reduction_pct"] >= 90
    # And the account's StateTransition refill admits 149 streams: 5.0% of this load (the post: "around 5%")
    assert r["quota"]["max_concurrent_streams"] == 149
    assert 4.0 <= r["quota"]["ceiling_pct_of_load"] <= 6.0
    # And the two biggest lines are Step Functions transitions and S3 PUTs
    top = sorted(r["serverless"]["lines"], key=lambda x: -x["monthly_usd"])[:2]
    assert {(x["service"], x["unit"]) for x in top} == {
        ("Step Functions", "state transitions"),
        ("S3", "PUT requests"),
    }


def test_workload_rejects_bad_input() -> None:
    for kw, message in [
        ({"streams": 0}, "streams"),
        ({"hours": -1.0}, "hours"),
        ({"fps": 0.0}, "fps"),
        ({"variant": "nope"}, "variant"),
        ({"resolution": "8k"}, "resolution"),
        ({"detectors": ("x",)}, "detectors"),
    ]:
        with pytest.raises(InputError, match=message):
            workload(**kw)


def test_calibrated_gb_seconds_replace_the_estimate(definition: dict[str, Any]) -> None:
    u, _ = serverless_usage(definition, workload(gb_s_per_stream_s=2.5))
    assert u.gb_s == 2.5 and u.gb_s_source.startswith("measured")
