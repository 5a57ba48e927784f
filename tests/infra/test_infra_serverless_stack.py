"""The third stack, StreamQuality-serverless-<stage>: the route from a landed segment to the function, the
streams' state, the function's settings and IAM scope, what it shares with the before, cdk-nag and
cfn-lint, read from templates synthesized without Docker."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import lint_file
from infra_helpers import synth  # noqa: F401  (sets the jsii environment variables before aws_cdk loads)

from infra.serverless_stack import serverless_stack_name
from lambdas.segment_analyzer.settings import SegmentSettings

NAME = serverless_stack_name("dev")


@dataclass
class Synthesized:
    outdir: Path
    before: dict[str, Any]
    serverless: dict[str, Any]

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.serverless["Resources"].items() if v["Type"] == kind}


def synth_all(context: dict[str, Any] | None = None) -> Synthesized:
    from app import build_stacks

    stacks = build_stacks({"aws:cdk:bundling-stacks": [], **(context or {})})
    outdir = Path(stacks.app.synth().directory)
    read = lambda name: json.loads((outdir / f"{name}.template.json").read_text())  # noqa: E731
    return Synthesized(outdir, read(stacks.before.stack_name), read(stacks.serverless.stack_name))


@pytest.fixture(scope="module")
def default() -> Synthesized:
    return synth_all()


@pytest.fixture(scope="module")
def localstack() -> Synthesized:
    return synth_all({"localstack": "true"})


def test_the_befores_source_bucket_sends_its_events_to_eventbridge(default: Synthesized) -> None:
    (source,) = [r for k, r in default.before["Resources"].items()
                 if r["Type"] == "AWS::S3::Bucket" and k.startswith("StorageSource")]
    assert source["Properties"]["NotificationConfiguration"] == {
        "EventBridgeConfiguration": {"EventBridgeEnabled": True}}


def test_a_rule_sends_live_segments_and_nothing_else_to_the_queue(default: Synthesized) -> None:
    (rule,) = default.of_type("AWS::Events::Rule").values()
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.s3"] and pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["object"] == {"key": [{"wildcard": "live/*.ts"}]}  # not the playlist rewrites
    (bucket,) = pattern["detail"]["bucket"]["name"]
    assert "Fn::ImportValue" in bucket  # the before's bucket, by reference
    (target,) = rule["Properties"]["Targets"]
    assert "Ref" not in target["Arn"] and target["Arn"]["Fn::GetAtt"][0].startswith("RouteSegments")


def test_the_queue_dead_letters_after_max_receives_and_hides_a_message_six_timeouts(
        default: Synthesized) -> None:
    settings = SegmentSettings()
    queues = default.of_type("AWS::SQS::Queue")
    (main,) = [q for k, q in queues.items() if k.startswith("RouteSegments")]
    assert main["Properties"]["VisibilityTimeout"] == 6 * 60 == settings.visibility_timeout_s
    assert main["Properties"]["RedrivePolicy"]["maxReceiveCount"] == 8
    assert all(q["Properties"]["SqsManagedSseEnabled"] is True for q in queues.values())


def test_the_function_gets_batches_with_partial_failures_and_its_settings(default: Synthesized) -> None:
    (mapping,) = default.of_type("AWS::Lambda::EventSourceMapping").values()
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["Properties"]["BatchSize"] == 10
    (function,) = [f for f in default.of_type("AWS::Lambda::Function").values()
                   if f["Properties"]["Handler"] == "lambdas.segment_analyzer.handler.handler"]
    props = function["Properties"]
    assert (props["MemorySize"], props["Timeout"], props["ReservedConcurrentExecutions"]) == (1769, 60, 20)
    env = props["Environment"]["Variables"]
    assert env["DETECTORS"] == "freeze,block_corruption,av_sync" and env["MAX_RECEIVES"] == "8"
    assert env["STALL_TIMEOUT_S"] == "30"  # the before's 30 waits of 1 s, the after's stall_timeout_s
    assert {"STATE_BUCKET", "TOPIC_ARN", "RESULTS_BUCKET", "QUEUE_URL", "DEAD_LETTER_URL"} <= env.keys()
    assert "Fn::ImportValue" in env["TOPIC_ARN"] and "Fn::ImportValue" in env["RESULTS_BUCKET"]


# A test deployment's plan (lambdas/shared/faults.py): LocalStack only.
FAULT_PLAN = "timeout_rate=0.5,seed=1,streams=faulty-,function_timeout_s=12"


@pytest.fixture(scope="module")
def faulty() -> Synthesized:
    return synth_all({"localstack": "true", "fault_injection": FAULT_PLAN})


def analyser_and_queue(synthesized: Synthesized) -> tuple[dict[str, Any], dict[str, Any]]:
    (function,) = [f["Properties"] for f in synthesized.of_type("AWS::Lambda::Function").values()
                   if f["Properties"]["Handler"] == "lambdas.segment_analyzer.handler.handler"]
    (queue,) = [q["Properties"] for k, q in synthesized.of_type("AWS::SQS::Queue").items()
                if k.startswith("RouteSegments")]
    return function, queue


def test_a_fault_plan_reaches_the_function_with_its_timeout_and_the_queue_follows(
        default: Synthesized, localstack: Synthesized, faulty: Synthesized) -> None:
    # Given a LocalStack deployment with a fault plan whose functions time out after 12 s
    function, queue = analyser_and_queue(faulty)
    # Then the analyser gets the plan and that timeout, and its queue hides a message 6 x 12 = 72 s
    assert function["Environment"]["Variables"]["FAULT_INJECTION"] == FAULT_PLAN
    assert (function["Timeout"], queue["VisibilityTimeout"]) == (12, 72)
    # And without a plan (the default and a plain LocalStack deployment) neither changes
    for synthesized in (default, localstack):
        function, queue = analyser_and_queue(synthesized)
        assert "FAULT_INJECTION" not in function["Environment"]["Variables"]
        assert (function["Timeout"], queue["VisibilityTimeout"]) == (60, 360)


def test_the_state_bucket_is_private_encrypted_and_ssl_only(default: Synthesized) -> None:
    (bucket,) = default.of_type("AWS::S3::Bucket").values()
    props = bucket["Properties"]
    assert props["PublicAccessBlockConfiguration"]["BlockPublicPolicy"] is True
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    (policy,) = default.of_type("AWS::S3::BucketPolicy").values()
    assert "aws:SecureTransport" in json.dumps(policy)


def test_the_function_may_do_only_what_it_does(default: Synthesized) -> None:
    policies = default.of_type("AWS::IAM::Policy")
    (policy,) = [p for k, p in policies.items() if k.startswith("AnalyzerFunction")]
    actions = sorted({a for s in policy["Properties"]["PolicyDocument"]["Statement"]
                      for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])})
    assert actions == sorted([
        "logs:CreateLogStream", "logs:PutLogEvents", "s3:GetObject",
        "s3:PutObject", "sns:Publish", "sqs:ChangeMessageVisibility", "sqs:DeleteMessage",
        "sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:ReceiveMessage", "sqs:SendMessage",
        "xray:PutTelemetryRecords", "xray:PutTraceSegments"])
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    reads = [s for s in statements if s["Action"] == "s3:GetObject"]
    assert json.dumps(reads).count("/live/*") == 1  # segments and playlists only
    (state,) = [s for s in statements if s["Action"] == ["s3:GetObject", "s3:PutObject"]]
    assert json.dumps(state["Resource"]).endswith('/state/*"]]}')
    # It sends to its dead-letter queue and, for its stall watches, to its own queue: those two only
    sends = [s for s in statements if "sqs:SendMessage" in s["Action"]]
    queues = {json.dumps(s["Resource"]) for s in sends}
    assert len(queues) == 2 and all("Fn::GetAtt" in q for q in queues)


@pytest.mark.parametrize("variant", ["default", "localstack"])
def test_nag_is_clean_and_cfn_lint_finds_no_error(variant: str, request: pytest.FixtureRequest) -> None:
    synthesized: Synthesized = request.getfixturevalue(variant)
    report = json.loads((synthesized.outdir / "validation-report.json").read_text())
    (plugin,) = [p for p in report["pluginReports"] if p["pluginName"] == "AwsSolutions"]
    assert (plugin["conclusion"], plugin["violations"]) == ("success", [])
    ours = [v for v in plugin["suppressedViolations"]
            if any(r["constructPath"].startswith(NAME) for r in v["violatingConstructs"])]
    assert ours and all(len(v["reason"].split()) >= 6 for v in ours)  # each with a reason
    errors = [f"{m.rule.id} {m.message}" for m in lint_file(synthesized.outdir / f"{NAME}.template.json")
              if m.rule.severity == "error"]
    assert errors == []
