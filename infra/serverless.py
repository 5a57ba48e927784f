"""The event-driven serverless design's capabilities: the route a landed segment takes to the function
(EventBridge rule -> SQS queue with a dead-letter queue), the streams' state (S3), and the segment
analyser function with its event source.

Why this route. S3 cannot notify an SQS FIFO queue, and EventBridge sets one static message group per
target, so no AWS route gives per-stream order without a router of our own: order is enforced by the
function against the stream's state (a conditional write on the segment number), which also makes
at-least-once delivery harmless. EventBridge rather than a direct S3 -> SQS notification: the before
owns the bucket, and a notification configuration pointing at this stack's queue would make the before
depend on the third stack (or need CDK's notifications custom resource, a Lambda of its own); with
EventBridge enabled on the bucket (a native property) any stack may subscribe by rule.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.bundling import SEGMENT_ANALYZER, lambda_code
from infra.checkov import FUNCTION_SKIPS, SQS_MANAGED_SSE_SKIP, skip_check
from infra.config import MonitorConfig
from infra.functions import FunctionSpec, allow, lambda_function, removal_policy
from infra.nag import acknowledge, acknowledge_object_prefix
from infra.shared import SharedResources
from lambdas.segment_analyzer.service import STATE_PREFIX
from lambdas.segment_analyzer.settings import SEGMENT_PATTERN, SegmentSettings
from lambdas.shared.faults import ENV as FAULTS_ENV
from lambdas.shared.results import RESULTS_PREFIX

DEAD_LETTER_RETENTION = Duration.days(14)  # SQS's maximum: time for someone to look at a failed segment


def segment_settings(config: MonitorConfig) -> SegmentSettings:
    """The design's settings on this deployment. With a fault plan (test-only, LocalStack) the function's
    timeout is the plan's, as the before's functions' are, and so the queue's visibility timeout (six
    times it) follows: an injected timeout is retried after seconds, not the production minutes."""
    plan = config.fault_plan
    return SegmentSettings(detectors=config.detectors,
                           **({"timeout_s": plan.function_timeout_s} if plan is not None else {}))


class SegmentRoute(Construct):
    """Every segment that lands in a source bucket, as one message on a queue."""

    def __init__(self, scope: Construct, construct_id: str, *, config: MonitorConfig,
                 settings: SegmentSettings, shared: SharedResources) -> None:
        super().__init__(scope, construct_id)
        removal = removal_policy(config)
        self.dead_letters = sqs.Queue(
            self, "DeadLetters", retention_period=DEAD_LETTER_RETENTION,
            encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True, removal_policy=removal)
        skip_check(self.dead_letters, *SQS_MANAGED_SSE_SKIP)
        acknowledge(self.dead_letters, "AwsSolutions-SQS3",
                    "This is the dead-letter queue of the segment queue; a queue behind it would only move "
                    "the same failed segments once more.")
        self.queue = sqs.Queue(
            self, "Segments",
            visibility_timeout=Duration.seconds(settings.visibility_timeout_s),
            encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dead_letters,
                                                  max_receive_count=settings.max_receives),
            removal_policy=removal)
        skip_check(self.queue, *SQS_MANAGED_SSE_SKIP)
        self.rule = events.Rule(
            self, "SegmentLanded",
            description="A live segment landed in a source bucket: analyse it",
            event_pattern=events.EventPattern(
                source=["aws.s3"], detail_type=["Object Created"],
                detail={"bucket": {"name": [b.bucket_name for b in shared.source_buckets]},
                        "object": {"key": [{"wildcard": SEGMENT_PATTERN}]}}),
            targets=[targets.SqsQueue(self.queue)])


class StreamStates(Construct):
    """One small object per live stream: the next segment it expects and its detectors' state, written
    conditionally (lambdas/segment_analyzer/service.py StateStore says why S3 and not DynamoDB)."""

    def __init__(self, scope: Construct, construct_id: str, *, config: MonitorConfig) -> None:
        super().__init__(scope, construct_id)
        self.bucket = s3.Bucket(
            self, "Bucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            removal_policy=RemovalPolicy.DESTROY if config.sandbox else RemovalPolicy.RETAIN,
            auto_delete_objects=config.sandbox and not config.localstack)
        no_logs = ("State bucket: one GET and one PUT per segment of every stream; an access-log line per "
                   "request would cost as much as the requests, and the function logs each segment.")
        acknowledge(self.bucket, "AwsSolutions-S1", no_logs)
        skip_check(self.bucket, "CKV_AWS_18", no_logs)
        skip_check(self.bucket, "CKV_AWS_21", "Each state object is rewritten once per segment under a "
                   "conditional write; versions would keep one copy per segment of every stream for nothing.")


class SegmentAnalyzer(Construct):
    """The function: each segment read once, decoded and analysed in memory, defects to the topic."""

    def __init__(self, scope: Construct, construct_id: str, *, config: MonitorConfig,
                 settings: SegmentSettings, shared: SharedResources, route: SegmentRoute,
                 states: StreamStates) -> None:
        super().__init__(scope, construct_id)
        spec = FunctionSpec("Function", "segment-analyzer", "lambdas.segment_analyzer.handler.handler",
                            SEGMENT_ANALYZER, settings.memory_mb, settings.timeout_s)
        code = lambda_code(SEGMENT_ANALYZER, config.architecture, bundle=config.bundle)
        self.function = lambda_function(
            self, config, spec, code,
            {**settings.environment(), "STATE_BUCKET": states.bucket.bucket_name,
             "TOPIC_ARN": shared.topic.topic_arn, "RESULTS_BUCKET": shared.results_bucket.bucket_name,
             "QUEUE_URL": route.queue.queue_url, "DEAD_LETTER_URL": route.dead_letters.queue_url,
             # Test-only fault injection (LocalStack): the plan, struck mid-segment (handler.py).
             **({FAULTS_ENV: config.fault_injection} if config.fault_injection else {})},
            role_description="segment-analyzer: analyses each live segment of a stream in memory")
        self.function.node.default_child.add_property_override(  # type: ignore[union-attr]
            "ReservedConcurrentExecutions", settings.reserved_concurrency)
        skip_check(self.function, "CKV_AWS_116", "SQS invokes this function through an event source mapping, "
                   "never asynchronously; the queue's redrive policy and dead-letter queue hold what fails.")
        skip_check(self.function, "CKV_AWS_117", "The function reaches only S3, SQS, SNS and X-Ray through "
                   "their public endpoints; a VPC would add NAT gateways or interface endpoints and nothing "
                   "to guard inside it.")
        skip_check(self.function, "CKV_AWS_173", FUNCTION_SKIPS["CKV_AWS_173"])
        fn = self.function
        allow(fn, ["s3:GetObject"], [b.arn_for_objects(SEGMENT_READS) for b in shared.source_buckets])
        for bucket in shared.source_buckets:
            acknowledge_object_prefix(fn.role, bucket, SEGMENT_READS,
                                      "Live streams are folders of segments and a playlist under live/; the "
                                      "stream ids are not known in advance. Read-only (GetObject).")
        results = f"{RESULTS_PREFIX}*"
        allow(fn, ["s3:PutObject"], [shared.results_bucket.arn_for_objects(results)])
        acknowledge_object_prefix(fn.role, shared.results_bucket, results,
                                  "One results object per analysed segment under results/date=/stream=/; "
                                  "keys are not known in advance. PutObject only.")
        allow(fn, ["s3:GetObject", "s3:PutObject"], [states.bucket.arn_for_objects(f"{STATE_PREFIX}*")])
        acknowledge_object_prefix(fn.role, states.bucket, f"{STATE_PREFIX}*",
                                  "One state object per live stream, state/<stream_id>.json; the stream ids "
                                  "are not known in advance.")
        shared.topic.grant_publish(fn)
        route.dead_letters.grant_send_messages(fn)
        route.queue.grant_send_messages(fn)  # its own stall watches (delayed messages)
        fn.add_event_source(sources.SqsEventSource(
            route.queue, batch_size=settings.batch_size, report_batch_item_failures=True))
        # grant_send_messages on an SQS-managed-encrypted queue adds no KMS statement; the event source
        # adds ReceiveMessage/DeleteMessage/ChangeMessageVisibility on the queue alone.


# The function reads segments and playlists of live streams only.
SEGMENT_READS = "live/*"
