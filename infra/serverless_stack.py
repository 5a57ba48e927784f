"""The third stack, `StreamQuality-serverless-<stage>`: the event-driven serverless design the case
study's critics proposed (segment -> queue -> one Lambda that decodes and detects in memory).

It owns only what the before has no equivalent of: the route from a landed segment to the function, the
streams' state and the function. The source and results buckets, the topic and the corrective action are
the before stack's (infra/shared.py), passed in, not copied, as the after does.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, CrossStackReferences, ReferenceStrength, Stack
from constructs import Construct

from infra.checkov import skip_check
from infra.config import MonitorConfig
from infra.nag import acknowledge
from infra.serverless import SegmentAnalyzer, SegmentRoute, StreamStates
from infra.shared import SharedResources
from infra.stack import CDK_PROVIDER_SKIPS
from lambdas.segment_analyzer.settings import SegmentSettings


def serverless_stack_name(stage: str) -> str:
    return f"StreamQuality-serverless-{stage}"


class StreamQualityServerlessStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: MonitorConfig,
                 settings: SegmentSettings, shared: SharedResources, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        CrossStackReferences.of(self).consume(ReferenceStrength.STRONG)  # as the after: see after_stack.py
        route = SegmentRoute(self, "Route", config=config, settings=settings, shared=shared)
        states = StreamStates(self, "States", config=config)
        analyzer = SegmentAnalyzer(self, "Analyzer", config=config, settings=settings, shared=shared,
                                   route=route, states=states)
        self.route, self.states, self.analyzer = route, states, analyzer
        # The state bucket's autoDeleteObjects (sandbox stages on AWS) adds CDK's Node.js provider function.
        provider = self.node.try_find_child("Custom::S3AutoDeleteObjectsCustomResourceProvider")
        if provider is not None:
            acknowledge(provider, "AwsSolutions-L1",
                        "CDK-managed autoDeleteObjects provider; its runtime is chosen by aws-cdk-lib.")
            for check_id, reason in CDK_PROVIDER_SKIPS.items():
                skip_check(provider.node.find_child("Handler"), check_id, reason)

        CfnOutput(self, "SegmentQueueUrl", value=route.queue.queue_url)
        CfnOutput(self, "DeadLetterQueueUrl", value=route.dead_letters.queue_url)
        CfnOutput(self, "StateBucket", value=states.bucket.bucket_name)
        CfnOutput(self, "FunctionName", value=analyzer.function.function_name)
        CfnOutput(self, "SourceBucket", value=shared.source_buckets[0].bucket_name)
        CfnOutput(self, "ResultsBucket", value=shared.results_bucket.bucket_name)
        CfnOutput(self, "TopicArn", value=shared.topic.topic_arn)
