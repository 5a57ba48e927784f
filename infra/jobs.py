"""The after's orchestration layer: a queue of stream jobs and the dead-letter queue behind it.

A job is the before's StartExecution input (bucket, key, stream_id), or, for a live stream, the S3 event
of its playlist being written (`LivePlaylists`: S3 → EventBridge → this queue; monolith/live.py follows
the stream, one worker per stream whatever the number of events). The service keeps a job invisible
while it works on the stream (extending the visibility timeout) and deletes it only after the results
are written; a job received `max_receives` times without being deleted (a stream that kills its worker,
or keeps failing) moves to the dead-letter queue.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.checkov import SQS_MANAGED_SSE_SKIP, skip_check
from infra.config import MonitorConfig
from infra.functions import removal_policy
from infra.nag import acknowledge
from settings import ServiceSettings

DEAD_LETTER_RETENTION = Duration.days(14)  # SQS's maximum: time for someone to look at a failed stream


class JobQueue(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: MonitorConfig,
                 settings: ServiceSettings) -> None:
        super().__init__(scope, construct_id)
        removal = removal_policy(config)
        self.dead_letters = sqs.Queue(
            self, "DeadLetters",
            retention_period=DEAD_LETTER_RETENTION,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            removal_policy=removal,
        )
        acknowledge(self.dead_letters, "AwsSolutions-SQS3",
                    "This is the dead-letter queue of the job queue; a queue behind it would only move "
                    "the same failed jobs once more.")
        skip_check(self.dead_letters, *SQS_MANAGED_SSE_SKIP)
        self.queue = sqs.Queue(
            self, "Jobs",
            visibility_timeout=Duration.seconds(settings.visibility_timeout_s),
            receive_message_wait_time=Duration.seconds(settings.receive_wait_s),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dead_letters,
                                                  max_receive_count=settings.max_receives),
            removal_policy=removal,
        )
        skip_check(self.queue, *SQS_MANAGED_SSE_SKIP)


class LivePlaylists(Construct):
    """Every playlist written under the live prefix of the source buckets becomes a job on `queue`.

    Through EventBridge rather than a bucket notification: the buckets are the before stack's, and a
    notification to this stack's queue would make the before depend on the after (a cycle), while the
    rule lives here and only names the buckets. The before's Storage turns EventBridge on for the bucket it
    creates; an imported bucket's owner turns it on. S3 → EventBridge is at least once, like notifications.
    """

    def __init__(self, scope: Construct, construct_id: str, *, buckets: list[s3.IBucket], prefix: str,
                 queue: sqs.IQueue) -> None:
        super().__init__(scope, construct_id)
        self.rule = events.Rule(
            self, "Written",
            description=f"Live playlists ({prefix}*.m3u8) written to the source buckets: follow the stream",
            event_pattern=events.EventPattern(
                source=["aws.s3"], detail_type=["Object Created"],
                detail={"bucket": {"name": [b.bucket_name for b in buckets]},
                        "object": {"key": events.Match.wildcard(f"{prefix}*.m3u8")}}),
            targets=[targets.SqsQueue(queue)],
        )
