"""Buckets: streams in, frames in transit (expiring), results out, and their access logs."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.checkov import skip_check
from infra.config import TEMP_EXPIRY_DAYS, MonitorConfig
from infra.nag import acknowledge
from lambdas.shared.frame_store import FRAMES_PREFIX


class Storage(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: MonitorConfig) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = self._bucket("AccessLogs", config, logs=None)
        acknowledge(self.access_logs, "AwsSolutions-S1",
                    "This is the server access log bucket; logging it would recurse.")
        skip_check(self.access_logs, "CKV_AWS_18", "This is the server access log bucket; logging it would "
                   "recurse.")
        skip_check(self.access_logs, "CKV_AWS_21", "Access log lines are written once and never changed; "
                   "versions would only add copies to pay for.")
        # Streams: either buckets that already hold them (the stack reads, never writes them) or one of ours.
        self.source_buckets: list[s3.IBucket]
        if config.source_bucket_names:
            self.source_buckets = [s3.Bucket.from_bucket_name(self, f"Source{i}", name)
                                   for i, name in enumerate(config.source_bucket_names)]
        else:
            # Every architecture follows live streams from this bucket's events on EventBridge, each with
            # its own rule (one S3 notification configuration per bucket could serve only one of them).
            # An imported bucket needs EventBridge notifications turned on by its owner.
            self.source_buckets = [self._bucket("Source", config, logs="source/", events=True)]
            skip_check(self.source_buckets[0], "CKV_AWS_21",
                       "Streams and live segments are written once and read; a live playlist is rewritten "
                       "after every segment, and versions would keep each rewrite and each stream twice.")
        # Frames in transit: objects live for a day at most (lifecycle), which bounds the storage bill
        # without a delete request per frame. The rule names the frames prefix, so nothing else that
        # may ever be kept in this bucket expires with them.
        self.temp = self._bucket("Frames", config, logs=None, lifecycle=[s3.LifecycleRule(
            id="expire-frames", prefix=FRAMES_PREFIX, expiration=Duration.days(TEMP_EXPIRY_DAYS),
            abort_incomplete_multipart_upload_after=Duration.days(1))])
        acknowledge(self.temp, "AwsSolutions-S1",
            "Transient frames bucket: one access-log line per frame PUT/GET would cost as much as the "
                   "requests themselves; the Lambdas report their S3 request counts instead.")
        skip_check(self.temp, "CKV_AWS_18",
                   "Transient frames bucket: one access-log line per frame PUT/GET would cost as much as "
                   "the requests themselves; the Lambdas report their S3 request counts instead.")
        skip_check(self.temp, "CKV_AWS_21",
                   "Frames live for a day and are written once; versions would keep every frame twice.")
        self.results = self._bucket("Results", config, logs="results/")
        skip_check(self.results, "CKV_AWS_21",
                   "Results and action records are derived data, each written once under a key of its own "
                   "(a rerun of the stream recreates them); production stages retain the bucket.")

    def _bucket(
        self, name: str, config: MonitorConfig, *, logs: str | None,
        lifecycle: list[s3.LifecycleRule] | None = None, events: bool = False,
    ) -> s3.Bucket:
        # Sandbox stacks clean up after themselves; autoDeleteObjects adds a Node.js custom-resource
        # Lambda, which LocalStack without Docker cannot run, so it is off there.
        sandbox = config.sandbox
        bucket = s3.Bucket(
            self, name,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            server_access_logs_bucket=self.access_logs if logs is not None else None,
            server_access_logs_prefix=logs,
            lifecycle_rules=lifecycle,
            removal_policy=RemovalPolicy.DESTROY if sandbox else RemovalPolicy.RETAIN,
            auto_delete_objects=sandbox and not config.localstack,
        )
        if events:
            # CloudFormation's own property, not `event_bridge_enabled` (which sets it through CDK's
            # notifications custom resource, one more Lambda for nothing).
            cfn = bucket.node.default_child
            assert isinstance(cfn, s3.CfnBucket)
            cfn.add_property_override(
                "NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled", True)
        return bucket
