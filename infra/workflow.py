"""The Step Functions workflow, defined by statemachine/stream_quality.asl.json (the single source).

The file is loaded here and passed with `DefinitionBody.from_string` plus substitutions (not `from_file`,
which becomes an S3 asset that LocalStack cannot update and template tests cannot see). Branches of
disabled detectors are dropped from the Parallel state; nothing else in the file depends on them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from aws_cdk import Arn, ArnComponents, ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.config import NOTIFICATIONS_PER_DETECTOR, MonitorConfig
from infra.functions import stage_log_group
from infra.nag import acknowledge, acknowledge_object_prefix
from lambdas.shared.results import RESULTS_PREFIX
from statemachine import ASL_PATH, CONVERTER_PLACEHOLDER, DETECTOR_PLACEHOLDERS

PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def load_definition(detectors: tuple[str, ...] | list[str], path: Path = ASL_PATH) -> str:
    """The ASL text with only the enabled detectors' branches (placeholders left in place)."""
    definition = json.loads(path.read_text())
    wanted = {DETECTOR_PLACEHOLDERS[name] for name in detectors}
    detect = definition["States"]["Detect"]
    detect["Branches"] = [b for b in detect["Branches"] if placeholders(json.dumps(b)) & wanted]
    return json.dumps(definition, indent=2)


class Workflow(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: MonitorConfig,
        converter: lambda_.IFunction, detectors: dict[str, lambda_.IFunction],
        topic: sns.ITopic, results_bucket: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        # A fixed name lets the role allow StartExecution on this machine (ContinueAsNew) without a
        # dependency cycle between the role and the machine.
        self.state_machine_name = f"{stack.stack_name}-stream-quality"
        machine_arn = Arn.format(ArnComponents(
            service="states", resource="stateMachine", resource_name=self.state_machine_name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME), stack)
        self.substitutions: dict[str, str] = {
            CONVERTER_PLACEHOLDER: converter.function_arn,
            "TopicArn": topic.topic_arn,
            "ResultsBucketName": results_bucket.bucket_name,
            "SecondsPerExecution": str(config.seconds_per_execution),
            "NotificationsPerDetector": str(NOTIFICATIONS_PER_DETECTOR),
            **{DETECTOR_PLACEHOLDERS[name]: fn.function_arn for name, fn in detectors.items()},
        }
        self.definition = load_definition(config.detectors)

        role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
                        description="Stream-quality workflow: invoke its functions, notify, record, continue")
        role.add_to_policy(iam.PolicyStatement(
            actions=["lambda:InvokeFunction"],
            resources=[converter.function_arn, *(fn.function_arn for fn in detectors.values())]))
        role.add_to_policy(iam.PolicyStatement(actions=["sns:Publish"], resources=[topic.topic_arn]))
        role.add_to_policy(iam.PolicyStatement(actions=["s3:PutObject"],
                                               resources=[results_bucket.arn_for_objects(f"{RESULTS_PREFIX}*")]))
        role.add_to_policy(iam.PolicyStatement(actions=["states:StartExecution"], resources=[machine_arn]))

        acknowledge_object_prefix(role, results_bucket, f"{RESULTS_PREFIX}*",
                                  "One results object per stream-second under results/date=/stream=/; "
                                  "PutObject only.")
        log_group = stage_log_group(self, "Logs", config)
        self.state_machine = sfn.StateMachine(
            self, "StateMachine",
            state_machine_name=self.state_machine_name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_string(self.definition),
            definition_substitutions=self.substitutions,
            role=role,
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ERROR,
                                include_execution_data=False),
        )
        acknowledge(self.state_machine, "AwsSolutions-SF1",
            "Logging ALL events would write a log record for every state of every stream-second; "
                   "errors are logged and the execution history keeps the rest.")
        acknowledge(role, "AwsSolutions-IAM5[Resource::*]",
            "CloudWatch Logs delivery and X-Ray actions for Step Functions do not support "
                   "resource-level permissions.")

