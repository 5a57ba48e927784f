"""The stack: wires the capabilities together and nothing else."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra.analytics import Analytics
from infra.checkov import skip_check
from infra.config import MonitorConfig
from infra.failures import FailedInvocations
from infra.functions import Functions
from infra.live_input import LiveInput
from infra.nag import acknowledge
from infra.notifications import Notifications
from infra.shared import SharedResources
from infra.storage import Storage
from infra.workflow import Workflow

# CDK's own autoDeleteObjects function (sandbox stages on AWS): run by CloudFormation at stack deletion only.
CDK_PROVIDER_SKIPS = {
    "CKV_AWS_116": "CDK's autoDeleteObjects provider is called synchronously by CloudFormation, which "
                   "reports its failures; a dead-letter queue never receives anything.",
    "CKV_AWS_117": "CDK's autoDeleteObjects provider only calls the S3 API when a sandbox stack is deleted; "
                   "aws-cdk-lib defines it outside any VPC.",
    "CKV_AWS_115": "CDK's autoDeleteObjects provider runs once per bucket at stack deletion; a reserve would "
                   "hold account concurrency for it all the time.",
}


class StreamQualityStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: MonitorConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        storage = Storage(self, "Storage", config=config)
        functions = Functions(self, "Functions", config=config, source_buckets=storage.source_buckets,
                              temp_bucket=storage.temp, results_bucket=storage.results)
        failures = FailedInvocations(self, "FailedInvocations", config=config)
        notifications = Notifications(self, "Notifications", config=config,
                                      corrective_action=functions.corrective_action, failures=failures)
        workflow = Workflow(self, "Workflow", config=config, converter=functions.converter,
                            detectors=functions.detectors, topic=notifications.topic,
                            results_bucket=storage.results)
        LiveInput(self, "LiveInput", config=config, functions=functions,
                  source_buckets=storage.source_buckets, state_machine=workflow.state_machine,
                  failures=failures)
        if not config.localstack:  # Glue and Athena are not in LocalStack's free edition
            Analytics(self, "Analytics", config=config, results_bucket=storage.results)
        self._acknowledge_cdk_helpers()
        # What the after stack reuses instead of creating its own.
        self.shared = SharedResources(
            source_buckets=storage.source_buckets, results_bucket=storage.results,
            topic=notifications.topic, corrective_action=functions.corrective_action)

        CfnOutput(self, "StateMachineArn", value=workflow.state_machine.state_machine_arn)
        CfnOutput(self, "SourceBucket", value=storage.source_buckets[0].bucket_name)
        CfnOutput(self, "ResultsBucket", value=storage.results.bucket_name)
        CfnOutput(self, "FramesBucket", value=storage.temp.bucket_name)
        CfnOutput(self, "TopicArn", value=notifications.topic.topic_arn)
        CfnOutput(self, "FailedInvocationsQueueUrl", value=failures.queue.queue_url)
        CfnOutput(self, "AlarmsTopicArn", value=failures.alarms.topic_arn)

    def _acknowledge_cdk_helpers(self) -> None:
        # autoDeleteObjects (sandbox stages on AWS) adds CDK's own Node.js provider function.
        provider = self.node.try_find_child("Custom::S3AutoDeleteObjectsCustomResourceProvider")
        if provider is not None:
            acknowledge(provider, "AwsSolutions-L1",
                "CDK-managed autoDeleteObjects provider; its runtime is chosen by aws-cdk-lib.")
            handler = provider.node.find_child("Handler")
            for check_id, reason in CDK_PROVIDER_SKIPS.items():
                skip_check(handler, check_id, reason)
