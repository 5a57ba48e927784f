"""The after stack's LocalStack variant, deployed beside the before with cdklocal: its queues exist with the
service's settings, a job redrives to the dead-letter queue after `max_receives` receives, and its outputs
name the before's buckets and topic (shared, not copied)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from localstack_fixtures import deployed

from demo.deploy import Stack
from infra.after_config import after_stack_name
from monolith.settings import ServiceSettings

__all__ = ["deployed"]
pytestmark = pytest.mark.slow


def test_both_stacks_deploy_and_the_after_reuses_the_befores_resources(
        deployed: Stack, aws_client: Callable[[str], Any]) -> None:
    after = deployed.after
    assert after is not None and after.name == after_stack_name("dev")
    assert (after.source_bucket, after.results_bucket, after.topic_arn) == (
        deployed.source_bucket, deployed.results_bucket, deployed.topic_arn)
    stacks = {s["StackName"]: s["StackStatus"]
              for s in aws_client("cloudformation").describe_stacks()["Stacks"]}
    assert stacks[deployed.name] == stacks[after.name] == "CREATE_COMPLETE"
    # On LocalStack the after is its queues: no cluster, service or Auto Scaling group
    kinds = {r["ResourceType"] for r in aws_client("cloudformation").describe_stack_resources(
        StackName=after.name)["StackResources"]}
    assert kinds - {"AWS::CDK::Metadata"} == {"AWS::SQS::Queue", "AWS::SQS::QueuePolicy"}
    print(f"both stacks deployed in {deployed.deploy_s:.1f} s (synth {deployed.synth_s:.1f} s)")


def test_job_queue_has_the_services_settings_and_redrives_to_the_dead_letter_queue(
        deployed: Stack, aws_client: Callable[[str], Any]) -> None:
    sqs = aws_client("sqs")
    after = deployed.after
    assert after is not None
    settings = ServiceSettings()
    attributes = sqs.get_queue_attributes(QueueUrl=after.job_queue_url, AttributeNames=["All"])["Attributes"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=after.dead_letter_queue_url,
                                       AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    assert json.loads(attributes["RedrivePolicy"]) == {"deadLetterTargetArn": dlq_arn,
                                                       "maxReceiveCount": settings.max_receives}
    assert int(attributes["VisibilityTimeout"]) == settings.visibility_timeout_s
    assert int(attributes["ReceiveMessageWaitTimeSeconds"]) == settings.receive_wait_s

    # A job received max_receives times and never deleted moves to the dead-letter queue
    job = json.dumps({"bucket": deployed.source_bucket, "key": "streams/never.mp4", "stream_id": "never"})
    sqs.send_message(QueueUrl=after.job_queue_url, MessageBody=job)
    receives = 0
    for _ in range(settings.max_receives + 2):
        got = sqs.receive_message(QueueUrl=after.job_queue_url, VisibilityTimeout=0, WaitTimeSeconds=1)
        receives += len(got.get("Messages", []))
    assert receives == settings.max_receives
    dead = sqs.receive_message(QueueUrl=after.dead_letter_queue_url, WaitTimeSeconds=2)["Messages"]
    assert [m["Body"] for m in dead] == [job]
