"""The after's orchestration layer: a queue of stream jobs and the dead-letter queue behind it.

A job is the before's StartExecution input (bucket, key, stream_id). The service keeps a job invisible
while it works on the stream (extending the visibility timeout) and deletes it only after the results
are written; a job received `max_receives` times without being deleted (a stream that kills its worker,
or keeps failing) moves to the dead-letter queue.
"""

from __future__ import annotations

from aws_cdk import Duration
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
