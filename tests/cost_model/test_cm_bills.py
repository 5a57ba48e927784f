"""Pricing a measured bill: each line against a hand computation."""

from __future__ import annotations

import pytest

from cost_model.bills import bill_lines, priced
from cost_model.prices import PriceBook


def test_before_bill_is_priced_from_its_counts() -> None:
    # Given the before's bill for 20 stream-seconds
    bill = {"stream_seconds": 20, "state_transitions": 200,
            "s3_requests": {"put": 540, "get": 1500, "head": 20, "list": 0},
            "sns_publishes": 3, "lambda_invocations": 80, "lambda_gb_seconds": 40.0}
    lines = {(item["service"], item["unit"]): item for item in bill_lines(bill, PriceBook("us-east-1"))}
    # Then 200 transitions x $0.000025 = $0.005; 540 PUT x $0.000005 = $0.0027; 1,520 GET x $0.0000004
    # = $0.000608; 3 publishes x $0.0000005; 80 requests x $0.0000002 = $0.000016;
    # 40 GB-s x $0.0000166667 = $0.000666668
    assert lines[("Step Functions", "state transitions")]["monthly_usd"] == pytest.approx(0.005)
    assert lines[("S3", "PUT/LIST requests")]["monthly_usd"] == pytest.approx(0.0027)
    assert lines[("S3", "GET/HEAD requests")]["quantity"] == 1520
    assert lines[("S3", "GET/HEAD requests")]["monthly_usd"] == pytest.approx(0.000608)
    assert lines[("SNS", "publishes")]["monthly_usd"] == pytest.approx(0.0000015)
    assert lines[("Lambda", "requests")]["monthly_usd"] == pytest.approx(0.000016)
    assert lines[("Lambda", "GB-seconds (x86_64)")]["monthly_usd"] == pytest.approx(0.000666668)
    # And no line for what the before does not do
    assert not any(service in ("SQS", "EC2") for service, _ in lines)


def test_after_bill_prices_cpu_as_instance_vcpu_time_and_scales_to_a_scenario() -> None:
    # Given the after's bill: 20 stream-seconds, 1 GET, 1 PUT, 2 SQS requests, 3 publishes, 0.8 CPU-s
    bill = {"stream_seconds": 20, "state_transitions": 0, "s3_requests": {"put": 1, "get": 1},
            "sqs_requests": {"ReceiveMessage": 1, "DeleteMessage": 1, "total": 2}, "sns_publishes": 3,
            "lambda_invocations": 0, "lambda_gb_seconds": 0.0, "service_cpu_s": 0.8}
    result = priced(bill, PriceBook("us-east-1"), streams=3000, hours=730)
    lines = {item["service"]: item for item in result["lines"]}
    # Then CPU: 0.8 s x 1.5 headroom x $0.34 / 8 vCPU / 3600 s = $0.0000141667
    assert lines["EC2"]["run_usd"] == pytest.approx(0.8 * 1.5 * 0.34 / 8 / 3600)
    assert lines["EC2"]["run_usd"] == pytest.approx(0.0000141667, rel=1e-4)
    # And SQS 2 x $0.0000004 = $0.0000008
    assert lines["SQS"]["run_usd"] == pytest.approx(0.0000008)
    # And the run: 0.0000141667 + 0.000005 (PUT) + 0.0000004 (GET) + 0.0000008 + 0.0000015 = 0.0000218667
    assert result["run_usd"] == pytest.approx(0.0000218667, rel=1e-4)
    # And per stream-hour x180 (3600 / 20) = $0.003936; x 3000 streams x 730 h = $8,620
    assert result["per_stream_hour_usd"] == pytest.approx(0.003936, rel=1e-3)
    assert result["scenario"]["monthly_usd"] == pytest.approx(8620, rel=1e-3)
