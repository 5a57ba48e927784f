"""The after stack, `StreamQuality-after-<stage>`: the monolith as a queue-driven service on ECS.

It owns only what the before has no equivalent of: the job queue and its dead-letter queue, the rule that
turns a live playlist written to a source bucket into a job, and (on AWS)
the network, the ECS cluster on EC2 and the service. The source and results buckets, the topic and the
corrective-action function are the before stack's (infra/shared.py), passed in, not copied.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, CrossStackReferences, ReferenceStrength, Stack
from constructs import Construct

from infra.after_config import AfterConfig
from infra.config import MonitorConfig
from infra.jobs import JobQueue, LivePlaylists
from infra.service import MonitorService
from infra.shared import SharedResources
from lambdas.shared.live import LIVE_PREFIX
from settings import ServiceSettings


class StreamQualityAfterStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: MonitorConfig, after: AfterConfig,
                 shared: SharedResources, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        # Strong references (Export/Fn::ImportValue): CloudFormation refuses to delete or replace a shared
        # bucket or topic while the after uses it. Weak ones (Fn::GetStackOutput) would not protect the
        # results, and LocalStack 4.14 does not know Fn::GetStackOutput.
        CrossStackReferences.of(self).consume(ReferenceStrength.STRONG)
        # The queue's visibility timeout, redrive count and wait are the service's defaults.
        queue_settings = ServiceSettings()
        jobs = JobQueue(self, "Jobs", config=config, settings=queue_settings)
        self.jobs = jobs
        # A live stream's job: the S3 event of its playlist (monolith/live.py follows it).
        self.live = LivePlaylists(self, "LivePlaylists", buckets=shared.source_buckets, prefix=LIVE_PREFIX,
                                  queue=jobs.queue)
        self.service: MonitorService | None = None
        if not config.localstack:  # ECS is not in LocalStack's free edition: local processes stand in
            settings = ServiceSettings(
                job_queue_url=jobs.queue.queue_url,
                results_bucket=shared.results_bucket.bucket_name,
                topic_arn=shared.topic.topic_arn,
                source_buckets=tuple(b.bucket_name for b in shared.source_buckets),
                detectors=after.detectors,
                concurrency=after.concurrency,
            )
            self.service = MonitorService(self, "Monitor", config=config, after=after, shared=shared,
                                          queue=jobs.queue, settings=settings)

        CfnOutput(self, "JobQueueUrl", value=jobs.queue.queue_url)
        CfnOutput(self, "DeadLetterQueueUrl", value=jobs.dead_letters.queue_url)
        CfnOutput(self, "SourceBucket", value=shared.source_buckets[0].bucket_name)
        CfnOutput(self, "ResultsBucket", value=shared.results_bucket.bucket_name)
        CfnOutput(self, "TopicArn", value=shared.topic.topic_arn)
        if self.service is not None:
            CfnOutput(self, "ClusterName", value=self.service.cluster.cluster_name)
            CfnOutput(self, "ServiceName", value=self.service.service.service.service_name)
