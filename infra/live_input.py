"""Live input for the before: a playlist written to a source bucket starts its stream's execution.

S3 sends "Object Created" events to EventBridge; a rule matching playlists (`.m3u8`) under the live prefix
invokes the starter function, which starts one execution per stream (lambdas/live_starter/).
"""

from __future__ import annotations

from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.bundling import LIVE_STARTER
from infra.config import MonitorConfig
from infra.failures import FailedInvocations
from infra.functions import Functions, FunctionSpec, allow
from infra.nag import acknowledge_object_prefix
from lambdas.shared.live import LIVE_PREFIX, PLAYLIST_SUFFIX


def playlist_created(source_buckets: list[s3.IBucket]) -> events.EventPattern:
    """S3's EventBridge event for a playlist written to a source bucket (the starter checks the prefix:
    one matcher per field, and a suffix keeps the segments' events away from it)."""
    return events.EventPattern(
        source=["aws.s3"], detail_type=["Object Created"],
        detail={"bucket": {"name": [b.bucket_name for b in source_buckets]},
                "object": {"key": [{"suffix": PLAYLIST_SUFFIX}]}})


class LiveInput(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: MonitorConfig, functions: Functions,
        source_buckets: list[s3.IBucket], state_machine: sfn.IStateMachine, failures: FailedInvocations,
    ) -> None:
        super().__init__(scope, construct_id)
        self.starter = functions.function(
            FunctionSpec("LiveStarter", "live-starter", "lambdas.live_starter.handler.handler", LIVE_STARTER,
                         256, 30),
            {"STATE_MACHINE_ARN": state_machine.state_machine_arn})
        state_machine.grant_start_execution(self.starter)
        playlists = f"{LIVE_PREFIX}*{PLAYLIST_SUFFIX}"
        allow(self.starter, ["s3:GetObject"], [b.arn_for_objects(playlists) for b in source_buckets])
        for bucket in source_buckets:
            acknowledge_object_prefix(self.starter.role, bucket, playlists,
                                      "Reads live playlists (live/<stream>/index.m3u8) to name each "
                                      "stream's execution.")
        self.rule = events.Rule(self, "PlaylistWritten", event_pattern=playlist_created(source_buckets),
                                description="A live playlist was written: start its stream's execution")
        # EventBridge invokes the starter asynchronously: what it cannot deliver, and what the starter
        # still fails after Lambda's retries (a stream that would never start), go to the failures queue.
        self.rule.add_target(targets.LambdaFunction(self.starter, retry_attempts=4,
                                                    dead_letter_queue=failures.queue))
        failures.catch_failures_of(self.starter)
