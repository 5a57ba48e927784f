"""Live-stream starter Lambda: an S3 "Object Created" event (via EventBridge) for a playlist starts the
stream's workflow execution, once per stream."""

from __future__ import annotations

import os
from typing import Any

import boto3
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.live_starter.service import start_stream
from lambdas.shared.observability import MetricUnit, logger, metrics, tracer
from lambdas.shared.request_counting import RequestCounter, counting_client

COUNTER = RequestCounter()
S3 = counting_client(COUNTER, "s3")
SFN = boto3.client("stepfunctions")


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_source(data_class=EventBridgeEvent)
def handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    COUNTER.reset()
    bucket, key = event.detail["bucket"]["name"], event.detail["object"]["key"]
    started = start_stream(S3, SFN, os.environ["STATE_MACHINE_ARN"], bucket, key)
    metrics.add_metric(name="LiveStreamsStarted" if started.started else "LiveRewritesIgnored",
                       unit=MetricUnit.Count, value=1)
    logger.info("live playlist event", extra=started.to_dict())
    return {**started.to_dict(), "s3_requests": COUNTER.counts("s3")}
