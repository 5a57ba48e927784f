"""`make demo` fails when the Lambda path and `monolith analyze` disagree on the same file."""

from __future__ import annotations

import dataclasses

import pytest

from demo.__main__ import EXIT_DISAGREEMENT, outcome
from lambdas.shared.media import make_defect

FREEZE = make_defect("freeze", 3.0, 6.0, 0.87, duration_s=3.0)
DAMAGE = make_defect("block_corruption", 4.0, 14.0, 0.9, frames=200, evidence=["decoder_flag"])


def test_the_same_defects_on_both_paths_exit_zero() -> None:
    assert outcome("SUCCEEDED", [FREEZE], [FREEZE]) == (0, None)
    assert outcome("SUCCEEDED", [], []) == (0, None)


def test_defects_only_the_lambda_path_found_are_an_error_that_names_them() -> None:
    # Given the Lambda path reporting damage that the monolith did not find on the same file (issue 11)
    code, message = outcome("SUCCEEDED", [DAMAGE], [])
    # Then the demo exits non-zero and says which path found what
    assert code == EXIT_DISAGREEMENT != 0
    assert message is not None and "disagree" in message and "bug" in message
    assert "only on the Lambda path:" in message and "block_corruption" in message and "4.00" in message
    assert "only in `monolith analyze`" not in message


def test_defects_only_the_monolith_found_are_an_error_too() -> None:
    code, message = outcome("SUCCEEDED", [FREEZE], [FREEZE, DAMAGE])
    assert code == EXIT_DISAGREEMENT
    assert message is not None and "only in `monolith analyze`:" in message
    assert "only on the Lambda path" not in message


def test_a_different_value_in_one_defect_is_a_disagreement() -> None:
    other = make_defect("freeze", 3.0, 6.0, 0.5, duration_s=3.0)
    assert outcome("SUCCEEDED", [other], [FREEZE])[0] == EXIT_DISAGREEMENT


def test_a_failed_run_exits_one_and_skipped_comparison_is_no_error() -> None:
    assert outcome("FAILED", [], None) == (1, None)
    assert outcome("SUCCEEDED", [DAMAGE], None) == (0, None)  # --no-monolith: nothing to compare


def test_the_after_disagreeing_with_the_monolith_is_an_error_naming_the_after() -> None:
    # Given the before agreeing with the monolith and the after missing the damage
    code, message = outcome("SUCCEEDED", [FREEZE, DAMAGE], [FREEZE, DAMAGE], ("SUCCEEDED", [FREEZE]))
    assert code == EXIT_DISAGREEMENT
    assert message is not None and message.startswith("the after and `monolith analyze` disagree")
    assert "only in `monolith analyze`:" in message and "block_corruption" in message
    assert "Lambda path" not in message  # the before agreed: the message blames the after only
    # And a failed after run fails the demo even when the before succeeded
    assert outcome("SUCCEEDED", [FREEZE], [FREEZE], ("FAILED", [])) == (1, None)
    assert outcome("SUCCEEDED", [FREEZE], [FREEZE], ("SUCCEEDED", [FREEZE])) == (0, None)


def test_the_serverless_design_disagreeing_is_an_error_naming_it() -> None:
    both = ("SUCCEEDED", [FREEZE, DAMAGE])
    code, message = outcome("SUCCEEDED", [FREEZE, DAMAGE], [FREEZE, DAMAGE], both, ("SUCCEEDED", [DAMAGE]))
    assert code == EXIT_DISAGREEMENT
    assert message is not None and message.startswith("the serverless design and `monolith analyze` disagree")
    agree = ("SUCCEEDED", [FREEZE])
    assert outcome("SUCCEEDED", [FREEZE], [FREEZE], agree, ("FAILED", [])) == (1, None)
    assert outcome("SUCCEEDED", [FREEZE], [FREEZE], agree, agree) == (0, None)


def test_summary_has_a_before_and_an_after_with_the_same_keys_and_both_bills_priced() -> None:
    from demo.__main__ import summary_json
    from demo.after import after_detail, metered
    from demo.run import DesignRun, Execution, RunResult
    from metering.lambda_logs import Report
    from settings import ServiceSettings

    record = {"stream_id": "s", "source": "s3://b/k", "second": 9, "defects": [FREEZE]}
    action = {"key": "actions/s/freeze-0000003000.json", "action": "restart encoder", "defect": FREEZE}
    # Given a before run of 10 stream-seconds: one converter invocation of 1 s at 1 GB, one corrective
    # action record
    before = RunResult(
        stream_id="s", source="s3://b/k", stream_seconds=10, status="SUCCEEDED", error=None, cause=None,
        executions=[Execution("arn:x", "SUCCEEDED", None, None, [], 12.0)], records=[record],
        notifications=[], corrective_actions=[action], frame_objects=0,
        reports={"converter": [Report("r1", 1000.0, 0.0, 1024, 500.0)]}, wall_s=12.0)
    # And an after run of the same 10 s: 1 GET, 1 PUT, a receive and a delete, 1 publish, 0.36 CPU-s
    usage = {"job_id": "j", "stream_id": "s2", "stream_seconds": 10, "outcome": "analysed", "defects": 1,
             "requests": {"s3": {"GetObject": 1, "PutObject": 1}, "sns": {"Publish": 1},
                          "sqs": {"ReceiveMessage": 1, "DeleteMessage": 1}}, "cpu_s": 0.36, "wall_s": 0.5}
    after = DesignRun(stream_id="s2", source="s3://b/k2", status="SUCCEEDED", error=None,
                      records=[{**record, "stream_id": "s2"}], notifications=[], corrective_actions=[],
                      bill=metered([usage, {"outcome": "idle", "requests": {"sqs": {"ReceiveMessage": 4}}}],
                                   wall_s=1.0),
                      wall_s=1.0, detail=after_detail(ServiceSettings(), tasks=1))
    summary = summary_json(before, timings={}, truth=None, monolith=[FREEZE], after=after)
    # Then both objects carry the shared keys, and the top level keeps the before's for older readers
    shared = {"stream_seconds", "defects", "notifications", "corrective_actions", "s3_requests",
              "sqs_requests", "sns_publishes", "lambda_invocations", "lambda_gb_seconds", "cpu_s", "wall_s",
              "per_stream_second", "state_transitions", "matches_monolith"}
    assert shared <= set(summary["before"]) and shared <= set(summary["after"])
    assert summary["state_transitions"] == summary["before"]["state_transitions"] == 0
    assert summary["before"]["defects"] == summary["after"]["defects"] == [FREEZE]
    assert summary["matches_monolith"] and summary["after"]["matches_monolith"]
    assert summary["after"]["sqs_requests"] == {"ReceiveMessage": 1, "DeleteMessage": 1,
                                                "idle_ReceiveMessage": 4, "total": 2}
    # And the before costs, for the run: 1 request $0.0000002 + 1 GB-s $0.0000166667 + 1 PUT $0.000005
    # = $0.0000218667, x 360 (3,600 / 10 s) = $0.00787 per stream-hour
    prices = summary["prices"]
    assert prices["before"]["run_usd"] == pytest.approx(0.0000218667, rel=1e-5)
    assert prices["before"]["per_stream_hour_usd"] == pytest.approx(0.00787200, rel=1e-4)
    # And the after: PUT $0.000005 + GET $0.0000004 + 2 SQS $0.0000008 + SNS $0.0000005 + CPU
    # 0.36 s x 1.5 x $0.34 / 8 / 3,600 = $0.000006375, in all $0.000013075, x 360 = $0.004707
    assert prices["after"]["run_usd"] == pytest.approx(0.000013075, rel=1e-4)
    assert prices["after"]["per_stream_hour_usd"] == pytest.approx(0.004707, rel=1e-3)
    assert prices["before_to_after"] == pytest.approx(1.6724, rel=1e-3)
    # And a run that failed is not priced: it has no rate per stream-hour
    failed = summary_json(before, timings={}, truth=None, monolith=None,
                          after=dataclasses.replace(after, status="FAILED", error="StreamUnreadable: x"))
    assert "prices" not in failed and failed["after"]["status"] == "FAILED"


def test_a_failed_execution_s_cause_is_its_message_not_its_stack_trace() -> None:
    from demo.__main__ import _cause

    cause = ('{"errorMessage": "s3://b/k.mp4: no video stream", "errorType": "StreamUnreadable", '
             '"stackTrace": []}')
    assert _cause(cause) == "s3://b/k.mp4: no video stream"
    assert _cause("plain text cause") == "plain text cause"
    assert _cause(None) is None


def test_the_three_designs_are_printed_with_their_bills_side_by_side(
        capsys: pytest.CaptureFixture[str]) -> None:
    from typing import Any

    from demo.__main__ import print_tables
    from metering.bill import after_bill, before_bill, serverless_bill
    from metering.lambda_logs import Report

    def run(bill: Any, **detail: Any) -> dict[str, Any]:
        return {"source": "s3://b/live/s/index.m3u8", "status": "SUCCEEDED", "defects": [FREEZE],
                "matches_monolith": True, "notifications": [], "corrective_actions": [], **detail,
                **bill.as_dict()}

    # Given 10 stream-seconds through each design: the before's converter 2 invocations, 2 s at 2 GB
    before = before_bill([], {"converter": [Report("r1", 1000.0, 0.0, 2048, 400.0)] * 2}, stream_seconds=10,
                         wall_s=30.0, executions=1, corrective_action_puts=0)
    after = after_bill([{"job_id": "j", "stream_id": "s", "stream_seconds": 10, "outcome": "analysed",
                         "defects": 1, "requests": {"s3": {"GetObject": 5}}, "cpu_s": 0.5, "wall_s": 1.0}],
                       wall_s=12.0)
    # and the serverless design's analyser: 3 invocations, 5 segments, 10 objects written
    analyser = [Report(f"r{i}", 500.0, 0.0, 1769, 300.0) for i in range(3)]
    third = serverless_bill({"segment-analyzer": analyser},
                            [{"s3": {"GetObject": 12, "PutObject": 6}, "sqs": {"SendMessage": 1}}],
                            stream_seconds=10, wall_s=20.0, segments=5, objects_written=10)
    print_tables({"before": run(before, execution_arns=["arn:x"]), "after": run(after, tasks=1),
                  "serverless": run(third, segments=5)}, None, against="the stream as published")
    out = capsys.readouterr().out
    # Then each run is shown, checked against the stream as published, and the bills share one table
    assert out.count("same as `monolith analyze` on the stream as published: yes") == 3
    assert "1 execution(s)" in out and "1 local task(s)" in out and "5 segments of 2 s" in out
    invocations = next(line.split() for line in out.splitlines() if line.strip().startswith("Lambda inv"))
    # Lambda invocations: 2 (before), 0 (after), 3 (serverless), each also per stream-second
    assert invocations[2:] == ["2", "0.200", "0", "0.000", "3", "0.300"]
    # SQS: the after's none; the serverless design's 5 route sends + its own 1 + 3 receives + 3 deletes
    sqs = next(line.split() for line in out.splitlines() if line.strip().startswith("SQS requests"))
    assert sqs[2:] == ["0", "0.000", "0", "0.000", "12", "1.200"]
