"""The stack's resources and their properties, read from the synthesized template."""

from __future__ import annotations

import json
from typing import Any

import pytest
from infra_helpers import Synth, synth

from infra.config import MonitorConfig
from infra.workflow import placeholders
from lambdas.shared.frame_store import FRAMES_PREFIX
from lambdas.shared.results import ACTIONS_PREFIX, RESULTS_PREFIX


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def logical_id(template: dict[str, Any], kind: str, path_part: str) -> str:
    """The logical id of the one resource of `kind` whose id contains `path_part`."""
    found = [k for k in resources(template, kind) if path_part in k]
    assert len(found) == 1, (kind, path_part, found)
    return found[0]


def statements(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(policy logical id, statement) for every identity policy in the template."""
    out = []
    for key, policy in resources(template, "AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            out.append((key, statement))
    return out


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _nag_report(result: Synth) -> dict[str, Any]:
    # cdk-nag v3 runs as a CDK policy-validation plugin; CDK writes its report next to the templates.
    report = result.outdir / "validation-report.json"
    assert report.exists(), sorted(p.name for p in result.outdir.iterdir())
    plugins = json.loads(report.read_text())["pluginReports"]
    (plugin,) = [p for p in plugins if p["pluginName"] == "AwsSolutions"]
    return dict(plugin)


def test_nag_passes_with_no_unacknowledged_findings(synthesized: Synth) -> None:
    # Given the default app with cdk-nag's AwsSolutions pack, When it is synthesized
    plugin = _nag_report(synthesized)
    # Then the pack ran and found nothing that is not acknowledged, and each acknowledgement has a reason
    assert plugin["conclusion"] == "success"
    assert plugin["violations"] == []
    assert plugin["suppressedViolations"]
    assert all(len(v["reason"].split()) >= 5 for v in plugin["suppressedViolations"])


def test_nag_passes_on_the_localstack_target_with_fault_injection() -> None:
    plugin = _nag_report(synth({"localstack": "true", "fault_injection": "error_rate=0.2,timeout_rate=0.05"}))
    assert (plugin["conclusion"], plugin["violations"]) == ("success", [])


def test_every_acknowledgement_has_a_reason(synthesized: Synth) -> None:
    # Given every construct's acknowledged rules (CDK records them as construct metadata)
    acknowledgements = []
    for construct in synthesized.stack.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == "aws:cdk:acknowledged-rules":
                acknowledgements += as_list(entry.data)
    ours = {rule: reason for ack in acknowledgements for rule, reason in ack.items()
            if rule.startswith("AwsSolutions::")}
    # Then the AwsSolutions ones are there, each with a reason of more than a few words
    assert any("IAM5" in rule for rule in ours) and any("L1" in rule for rule in ours)
    for rule, reason in ours.items():
        assert len(reason.split()) >= 8, (rule, reason)


def test_buckets_block_public_access_encrypt_and_enforce_tls(synthesized: Synth) -> None:
    template = synthesized.template
    buckets = resources(template, "AWS::S3::Bucket")
    # Given the source, frames, results and access-log buckets
    assert len(buckets) == 4
    policies = resources(template, "AWS::S3::BucketPolicy")
    for key, bucket in buckets.items():
        props = bucket["Properties"]
        # Then each blocks every kind of public access
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True}
        # And is encrypted with S3-managed keys
        rule = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
        # And its bucket policy denies requests without TLS
        policy = next(p for p in policies.values() if p["Properties"]["Bucket"] == {"Ref": key})
        denies = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
        assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} and s["Action"] == "s3:*"
                   for s in denies), key


def test_frames_bucket_expires_objects_within_a_day(synthesized: Synth) -> None:
    frames = synthesized.template["Resources"][logical_id(synthesized.template, "AWS::S3::Bucket", "Frames")]
    rules = frames["Properties"]["LifecycleConfiguration"]["Rules"]
    expiring = [r for r in rules if r["Status"] == "Enabled" and r["ExpirationInDays"] <= 1]
    # Then frame objects expire after at most one day, and the rule reaches no other prefix of the stack
    assert [rule_prefix(r) for r in expiring] == [FRAMES_PREFIX]
    for other in STACK_PREFIXES:
        assert not covers(expiring, other), other
    assert covers(expiring, f"{FRAMES_PREFIX}cam-1/run-1/000000/frame-000.bin")


# Every key prefix the stack writes besides the frames: results and actions (results bucket), the access
# logs' prefixes (infra/storage.py), streams (any key in a source bucket).
STACK_PREFIXES = (RESULTS_PREFIX, ACTIONS_PREFIX, "source/", "results/", "streams/")


def rule_prefix(rule: dict[str, Any]) -> str:
    return rule.get("Prefix") or (rule.get("Filter") or {}).get("Prefix") or ""


def covers(rules: list[dict[str, Any]], key: str) -> bool:
    return any(key.startswith(rule_prefix(r)) for r in rules)


def test_functions_run_python313_with_tracing_and_their_own_log_groups(synthesized: Synth) -> None:
    functions = {k: r for k, r in resources(synthesized.template, "AWS::Lambda::Function").items()
                 if r["Properties"].get("Runtime", "").startswith("python")}
    # Given converter, three detectors, the corrective action and the live starter
    assert len(functions) == 6
    handlers = sorted(f["Properties"]["Handler"] for f in functions.values())
    assert handlers == sorted([
        "lambdas.converter.handler.handler", "lambdas.corrective_action.handler.handler",
        "lambdas.detectors.handlers.av_sync_handler", "lambdas.detectors.handlers.block_corruption_handler",
        "lambdas.detectors.handlers.freeze_handler", "lambdas.live_starter.handler.handler"])
    for fn in functions.values():
        props = fn["Properties"]
        assert props["Runtime"] == "python3.13"
        assert props["Architectures"] == ["x86_64"]
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert "LoggingConfig" in props  # an explicit log group with retention, no LogRetention helper
        assert props["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"] == "StreamQualityMonitor"


def test_no_managed_policies_and_no_wildcard_actions(synthesized: Synth) -> None:
    template = synthesized.template
    for key, role in resources(template, "AWS::IAM::Role").items():
        if "AutoDeleteObjects" in key:  # CDK's own helper, present on sandbox stages only
            continue
        assert "ManagedPolicyArns" not in role["Properties"], key
    for key, statement in statements(template):
        for action in as_list(statement["Action"]):
            service, name = action.split(":")
            if service in ("s3", "sns", "lambda", "states"):
                assert "*" not in name, (key, action)


def _s3_statements(template: dict[str, Any], policy_part: str) -> list[dict[str, Any]]:
    return [s for key, s in statements(template) if policy_part in key
            and any(a.startswith("s3:") for a in as_list(s["Action"]))]


def _object_arn(bucket_id: str, pattern: str) -> dict[str, Any]:
    return {"Fn::Join": ["", [{"Fn::GetAtt": [bucket_id, "Arn"]}, f"/{pattern}"]]}


def test_s3_permissions_are_scoped_to_buckets_and_prefixes(synthesized: Synth) -> None:
    t = synthesized.template
    frames = logical_id(t, "AWS::S3::Bucket", "Frames")
    results = logical_id(t, "AWS::S3::Bucket", "Results")
    source = logical_id(t, "AWS::S3::Bucket", "Source")
    # Then the converter reads streams and writes frames, nothing else
    converter = _s3_statements(t, "ConverterRole")
    assert {(json.dumps(as_list(s["Action"])), json.dumps(s["Resource"])) for s in converter} == {
        (json.dumps(["s3:GetObject"]), json.dumps(_object_arn(source, "*"))),
        (json.dumps(["s3:PutObject"]), json.dumps(_object_arn(frames, "frames/*"))),
    }
    # And each detector only reads frames
    for name in ("FreezeRole", "BlockCorruptionRole", "AvSyncRole"):
        (statement,) = _s3_statements(t, name)
        assert as_list(statement["Action"]) == ["s3:GetObject"]
        assert statement["Resource"] == _object_arn(frames, "frames/*")
    # And the corrective action only writes actions/, the workflow only results/
    (corrective,) = _s3_statements(t, "CorrectiveActionRole")
    assert (as_list(corrective["Action"]), corrective["Resource"]) == (
        ["s3:PutObject"], _object_arn(results, "actions/*"))
    (workflow,) = _s3_statements(t, "WorkflowRole")
    assert (as_list(workflow["Action"]), workflow["Resource"]) == (
        ["s3:PutObject"], _object_arn(results, "results/*"))


def test_workflow_role_invokes_only_its_functions_and_publishes_only_to_the_topic(synthesized: Synth) -> None:
    t = synthesized.template
    topic = logical_id(t, "AWS::SNS::Topic", "Defects")
    workflow = [s for key, s in statements(t) if "WorkflowRole" in key]
    invoke = next(s for s in workflow if as_list(s["Action"]) == ["lambda:InvokeFunction"])
    functions = {r["Fn::GetAtt"][0] for r in as_list(invoke["Resource"])}
    assert len(functions) == 4 and all(
        t["Resources"][f]["Type"] == "AWS::Lambda::Function" for f in functions)
    publish = next(s for s in workflow if as_list(s["Action"]) == ["sns:Publish"])
    assert publish["Resource"] == {"Ref": topic}
    start = next(s for s in workflow if as_list(s["Action"]) == ["states:StartExecution"])
    assert "stateMachine:StreamQuality-dev-stream-quality" in json.dumps(start["Resource"])


def test_topic_is_encrypted_and_the_corrective_action_gets_only_defects(synthesized: Synth) -> None:
    t = synthesized.template
    topic = t["Resources"][logical_id(t, "AWS::SNS::Topic", "Defects")]
    assert topic["Properties"]["KmsMasterKeyId"]
    (subscription,) = resources(t, "AWS::SNS::Subscription").values()
    assert subscription["Properties"]["Protocol"] == "lambda"
    assert subscription["Properties"]["FilterPolicy"] == {"kind": ["defect"]}
    topic_policies = resources(t, "AWS::SNS::TopicPolicy").values()
    assert len(topic_policies) == 2 and all("aws:SecureTransport" in json.dumps(p) for p in topic_policies)


def test_failed_asynchronous_invocations_go_to_a_queue_that_raises_an_alarm(synthesized: Synth) -> None:
    t = synthesized.template
    failures = logical_id(t, "AWS::SQS::Queue", "FailedInvocations")
    failures_arn = {"Fn::GetAtt": [failures, "Arn"]}
    queue = t["Resources"][failures]["Properties"]
    assert queue["MessageRetentionPeriod"] == 14 * 24 * 3600 and queue["SqsManagedSseEnabled"] is True
    # Given SNS cannot deliver to the corrective action, or EventBridge to the live starter: the
    # subscription's redrive policy and the rule target's dead-letter queue send the event to the queue
    (subscription,) = resources(t, "AWS::SNS::Subscription").values()
    assert subscription["Properties"]["RedrivePolicy"] == {"deadLetterTargetArn": failures_arn}
    (rule,) = resources(t, "AWS::Events::Rule").values()
    (target,) = rule["Properties"]["Targets"]
    assert target["DeadLetterConfig"] == {"Arn": failures_arn}
    # Given either function fails after Lambda's 2 retries: its on-failure destination is the same queue
    configs = {c["Properties"]["FunctionName"]["Ref"]: c["Properties"]
               for c in resources(t, "AWS::Lambda::EventInvokeConfig").values()}
    asynchronous = {logical_id(t, "AWS::Lambda::Function", "CorrectiveAction"),
                    logical_id(t, "AWS::Lambda::Function", "LiveStarter")}
    assert set(configs) == asynchronous
    for props in configs.values():
        assert props["MaximumRetryAttempts"] == 2
        assert props["DestinationConfig"] == {"OnFailure": {"Destination": failures_arn}}
    # And each function may send there, and SNS and EventBridge may, for this topic and rule only
    for part in ("CorrectiveAction", "LiveStarter"):
        sends = [s for key, s in statements(t) if part in key and "sqs:SendMessage" in as_list(s["Action"])]
        assert [s["Resource"] for s in sends] == [failures_arn], part
    (queue_policy,) = [p["Properties"]["PolicyDocument"]
                       for p in resources(t, "AWS::SQS::QueuePolicy").values()
                       if p["Properties"]["Queues"] == [{"Ref": failures}]]
    sources = {s["Principal"]["Service"]: s["Condition"]["ArnEquals"]["aws:SourceArn"]
               for s in queue_policy["Statement"] if s["Effect"] == "Allow"}
    assert sources == {"sns.amazonaws.com": {"Ref": logical_id(t, "AWS::SNS::Topic", "Defects")},
                       "events.amazonaws.com": {"Fn::GetAtt": [next(iter(resources(t, "AWS::Events::Rule"))),
                                                               "Arn"]}}
    # And one message in the queue raises an alarm that notifies the alarms topic
    (alarm,) = resources(t, "AWS::CloudWatch::Alarm").values()
    a = alarm["Properties"]
    assert (a["Namespace"], a["MetricName"], a["Dimensions"]) == (
        "AWS/SQS", "ApproximateNumberOfMessagesVisible",
        [{"Name": "QueueName", "Value": {"Fn::GetAtt": [failures, "QueueName"]}}])
    assert (a["ComparisonOperator"], a["Threshold"], a["EvaluationPeriods"], a["TreatMissingData"]) == (
        "GreaterThanOrEqualToThreshold", 1, 1, "notBreaching")
    assert a["AlarmActions"] == [{"Ref": logical_id(t, "AWS::SNS::Topic", "Alarms")}]


def test_state_machine_is_standard_traced_and_fully_substituted(synthesized: Synth) -> None:
    (machine,) = resources(synthesized.template, "AWS::StepFunctions::StateMachine").values()
    props = machine["Properties"]
    assert props["StateMachineType"] == "STANDARD"
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert "DefinitionS3Location" not in props  # from_string, not an S3 asset
    # And CloudFormation is given a value for exactly the placeholders the definition holds
    definition = props["DefinitionString"]
    assert isinstance(definition, str)  # the file's text, not a token
    assert placeholders(definition) == set(props["DefinitionSubstitutions"])
    assert props["DefinitionSubstitutions"]["SecondsPerExecution"] == "60"
    assert props["DefinitionSubstitutions"]["NotificationsPerDetector"] == "2"


def test_glue_table_is_partitioned_by_date_and_stream(synthesized: Synth) -> None:
    (table,) = resources(synthesized.template, "AWS::Glue::Table").values()
    table_input = table["Properties"]["TableInput"]
    assert [k["Name"] for k in table_input["PartitionKeys"]] == ["date", "stream"]
    assert table_input["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] == \
        "org.openx.data.jsonserde.JsonSerDe"
    assert "/results/" in json.dumps(table_input["StorageDescriptor"]["Location"])


def test_localstack_target_has_no_node_helpers_and_no_glue() -> None:
    # Given the LocalStack target with two detectors and arm64
    result = synth({"localstack": "true", "detectors": "freeze,av_sync", "architecture": "arm64"})
    t = result.template
    # Then no Node.js Lambda (autoDeleteObjects provider) and no Glue/Athena resources exist
    assert "Custom::S3AutoDeleteObjects" not in json.dumps(t)
    assert not resources(t, "AWS::Glue::Table")
    # And only the enabled detectors are deployed (+ converter, corrective action, live starter), on arm64
    functions = resources(t, "AWS::Lambda::Function").values()
    assert len(functions) == 5
    assert all(f["Properties"]["Architectures"] == ["arm64"] for f in functions)


@pytest.mark.parametrize("context, message", [
    ({"architecture": "sparc"}, "architecture"),
    ({"detectors": "freeze,ghosts"}, "detectors"),
    ({"seconds_per_execution": "5000"}, "seconds_per_execution"),
    ({"seconds_per_execution": "69"}, r"seconds_per_execution must be within 1\.\.68:"),
])
def test_bad_context_is_refused(context: dict[str, str], message: str) -> None:
    from aws_cdk import App

    with pytest.raises(ValueError, match=message):
        MonitorConfig.from_node(App(context=context).node)


# Actions that do not support resource-level permissions: the only ones allowed on Resource "*".
NO_RESOURCE_LEVEL = {
    "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets",
    "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}


def test_no_wildcard_resource_where_a_narrower_one_exists(synthesized: Synth) -> None:
    t = synthesized.template
    for key, statement in statements(t):
        actions = set(as_list(statement["Action"]))
        for resource in as_list(statement["Resource"]):
            text = json.dumps(resource)
            if resource == "*":
                # Then "*" appears only for actions that cannot be scoped (X-Ray, log delivery)
                assert actions <= NO_RESOURCE_LEVEL, (key, actions)
            elif "*" in text:
                # And any other wildcard is an object pattern inside one bucket of this stack
                assert all(a.startswith("s3:") for a in actions), (key, actions, text)
                (bucket,) = resource["Fn::Join"][1][:1]
                assert t["Resources"][bucket["Fn::GetAtt"][0]]["Type"] == "AWS::S3::Bucket", key
                assert resource["Fn::Join"][1][1] in ("/*", "/frames/*", "/results/*", "/actions/*",
                                                      "/live/*.m3u8"), key
            else:
                # And everything else names one resource: a function, the topic, the machine, a log group
                assert "Fn::GetAtt" in text or "Ref" in text, (key, text)


def _converter_environment(template: dict[str, Any]) -> dict[str, Any]:
    (converter,) = [r for r in resources(template, "AWS::Lambda::Function").values()
                    if r["Properties"]["Handler"] == "lambdas.converter.handler.handler"]
    return converter["Properties"]["Environment"]["Variables"]


def test_converter_only_accepts_requests_for_the_stacks_source_buckets(synthesized: Synth) -> None:
    t = synthesized.template
    source = logical_id(t, "AWS::S3::Bucket", "Source")
    # Then the converter is told the allowed bucket names (it refuses others before any read)
    assert _converter_environment(t)["SOURCE_BUCKETS"] == {"Ref": source}
    # And with existing buckets configured instead, exactly those
    imported = synth({"source_bucket_names": "cams-eu,cams-us"}).template
    assert _converter_environment(imported)["SOURCE_BUCKETS"] == "cams-eu,cams-us"
    # And the converter knows the detectors' memory, to refuse a stream whose second they cannot hold
    assert _converter_environment(t)["DETECTOR_MEMORY_MB"] == "1024"


KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def kms_statements(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(k, s) for k, s in statements(template)
            if any(a.startswith("kms:") for a in as_list(s["Action"]))]


def test_imported_sse_kms_buckets_get_decrypt_on_the_given_key_only(synthesized: Synth) -> None:
    # Given no key: no KMS permission at all
    assert kms_statements(synthesized.template) == []
    # When imported buckets are encrypted with a customer key named in context
    t = synth({"source_bucket_names": "cams-eu", "source_kms_key_arns": KEY}).template
    # Then the converter's role, and only it, may decrypt with exactly that key
    ((policy, statement),) = kms_statements(t)
    assert statement["Action"] == "kms:Decrypt" and statement["Resource"] == KEY
    assert "Converter" in policy
    # And anything but a key ARN is refused at synth
    from aws_cdk import App

    with pytest.raises(ValueError, match="source_kms_key_arns"):
        MonitorConfig.from_node(App(context={"source_kms_key_arns": "alias/streams"}).node)


def test_fault_injection_is_absent_from_production_and_refused_outside_localstack(synthesized: Synth) -> None:
    # Given the default (production) template: no function carries the fault plan, timeouts are the real ones
    functions = [f for f in resources(synthesized.template, "AWS::Lambda::Function").values()
                 if f["Properties"].get("Runtime", "").startswith("python")]
    assert "FAULT_INJECTION" not in json.dumps(synthesized.template)
    assert sorted(f["Properties"]["Timeout"] for f in functions) == [30, 30, 60, 60, 60, 120]
    # Then asking for it without LocalStack is refused
    from aws_cdk import App

    with pytest.raises(ValueError, match="fault_injection"):
        MonitorConfig.from_node(App(context={"fault_injection": "error_rate=0.2"}).node)
    # And on LocalStack the workflow's functions (not the corrective action) get the plan and its timeout
    spec = "error_rate=0.2,timeout_rate=0.05,seed=3,function_timeout_s=15"
    t = synth({"localstack": "true", "fault_injection": spec}).template
    for fn in resources(t, "AWS::Lambda::Function").values():
        props = fn["Properties"]
        workflow_step = not any(name in props["Handler"] for name in ("corrective_action", "live_starter"))
        assert (props["Environment"]["Variables"].get("FAULT_INJECTION") == spec) == workflow_step
        assert (props["Timeout"] == 15) == workflow_step


@pytest.mark.slow
def test_plain_pytest_from_the_repository_root_imports_the_app() -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    # Given the venv's own `pytest` command (not `python -m pytest`, which puts the cwd on sys.path)
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # When it runs a stack test (synth imports app.py) from the repository root
    done = subprocess.run([str(Path(sys.executable).with_name("pytest")), "-q", "-p", "no:cacheprovider",
                           "tests/infra/test_infra_workflow.py::test_placeholders_match_the_stacks_substitutions_exactly"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=600)
    # Then it passes
    assert done.returncode == 0, done.stdout[-3000:]
