"""metering for the event-driven serverless design: GB-seconds priced from CPU time at Lambda's CPU share,
requests from the function's "requests" lines and what the run did (numbers by hand)."""

from __future__ import annotations

import json

import pytest

from metering.bill import cpu_priced_gb_seconds, serverless_bill
from metering.lambda_logs import logged_json, parse_reports


def test_gb_seconds_follow_cpu_time_and_the_cpu_share_of_the_memory_size() -> None:
    # 2 CPU-seconds at 1,769 MB (one full vCPU): 2 s x 1769/1024 GB = 3.455078125 GB-s
    assert cpu_priced_gb_seconds(2.0, 1769) == pytest.approx(3.455078125)
    # At 884.5 MB the share is one half: 4 s x 884.5/1024 GB, the same GB-s (flat below 1,769 MB)
    assert cpu_priced_gb_seconds(2.0, 884.5) == pytest.approx(3.455078125)
    # Above it there is no more CPU to have: 2 s x 3538/1024 GB = 6.91015625 GB-s
    assert cpu_priced_gb_seconds(2.0, 3538) == pytest.approx(6.91015625)


def test_the_serverless_bill_counts_the_route_the_function_and_its_requests() -> None:
    # Given two analyser invocations (1,769 MB; 0.5 s and 1.5 s of CPU) and one corrective action
    reports = {
        "segment-analyzer": parse_reports([
            "REPORT RequestId: a1 Duration: 900.00 ms Memory Size: 1769 MB CPU Time: 500.0 ms",
            "REPORT RequestId: a2 Duration: 2000.00 ms Memory Size: 1769 MB CPU Time: 1500.0 ms"]),
        "corrective-action": parse_reports(["REPORT RequestId: c1 Duration: 10.00 ms Memory Size: 256 MB"]),
    }
    logged = [json.dumps({"message": "requests", "function_request_id": rid, "requests": counts})
              for rid, counts in [
                  ("a1", {"s3": {"GetObject": 3, "PutObject": 1}}),
                  ("a2", {"s3": {"GetObject": 5, "PutObject": 3}, "sns": {"Publish": 2},
                          "sqs": {"ChangeMessageVisibility": 1}})]]
    lines = logged_json([*logged, "START RequestId: a1", logged[0]], "requests")
    requests = [line["requests"] for line in lines]
    assert len(requests) == 2  # one line per invocation, a repeat counted once
    bill = serverless_bill(reports, requests, stream_seconds=9, wall_s=30.0, segments=3, objects_written=6,
                           corrective_action_puts=2).as_dict()
    # Then S3: 8 GETs; 4 PUTs by the analyser + 2 corrective-action records
    assert (bill["s3_requests"]["get"], bill["s3_requests"]["put"]) == (8, 6)
    # SQS: 3 sends (one per segment event), 2 receives and 2 batch deletes (one per invocation), 1 retry
    assert bill["sqs_requests"] == {"ChangeMessageVisibility": 1, "DeleteMessageBatch": 2,
                                    "ReceiveMessage": 2, "SendMessage": 3, "total": 8}
    assert bill["sns_publishes"] == 2 and bill["eventbridge_events"] == 6 and bill["lambda_invocations"] == 3
    # Lambda: the analyser's 2 CPU-s at one vCPU = 3.4551 GB-s; the corrective action 0.01 s x 0.25 GB
    analyzer = bill["lambda_functions"]["segment-analyzer"]
    assert analyzer["gb_seconds"] == pytest.approx(3.4551)
    assert analyzer["gb_seconds_local"] == pytest.approx(2.9 * 1769 / 1024, abs=1e-4)
    assert bill["lambda_gb_seconds"] == pytest.approx(3.4551 + 0.0025)


def test_the_stall_watches_requests_are_billed_apart_from_the_segments() -> None:
    # Given 3 segments analysed in one invocation (5 GETs, 2 PUTs) and a stall watch armed then checked
    # in a second invocation (its SendMessage, then a state GET)
    reports = {"segment-analyzer": parse_reports([
        "REPORT RequestId: a Duration: 900.0 ms Billed Duration: 900 ms Memory Size: 1769 MB",
        "REPORT RequestId: b Duration: 50.0 ms Billed Duration: 50 ms Memory Size: 1769 MB"])}
    bill = serverless_bill(reports, [{"s3": {"GetObject": 5, "PutObject": 2}}], stream_seconds=6,
                           wall_s=10.0, segments=3, objects_written=6,
                           watch_requests=[{"sqs": {"SendMessage": 1}}, {"s3": {"GetObject": 1}}]).as_dict()
    # Then the segments' requests stay the analyser's, the watch's are their own source and SQS keys,
    # and both are in the totals: 6 GETs, and 3 route sends + 1 watch send + 2 receives + 2 deletes
    assert bill["s3_requests"]["by_source"] == {"segment-analyzer": {"GetObject": 5, "PutObject": 2},
                                                "stall-watch": {"GetObject": 1}}
    assert (bill["s3_requests"]["get"], bill["s3_requests"]["put"]) == (6, 2)
    assert bill["sqs_requests"] == {"DeleteMessageBatch": 2, "ReceiveMessage": 2, "SendMessage": 3,
                                    "stall_watch_SendMessage": 1, "total": 8}
