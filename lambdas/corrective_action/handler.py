"""Corrective-action Lambda, subscribed to the defects topic: one action record per defect event."""

from __future__ import annotations

import json
import os
from typing import Any

from aws_lambda_powertools.utilities.data_classes import SNSEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.corrective_action.service import record_action
from lambdas.shared.observability import MetricUnit, logger, metrics, tracer
from lambdas.shared.request_counting import RequestCounter, counting_client

COUNTER = RequestCounter()
S3 = counting_client(COUNTER, "s3")


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_source(data_class=SNSEvent)
def handler(event: SNSEvent, context: LambdaContext) -> dict[str, Any]:
    COUNTER.reset()
    actions = []
    for record in event.records:
        message = json.loads(record.sns.message)
        logger.append_keys(stream_id=message.get("stream_id"), execution_id=message.get("execution_id"),
                           stream_second=message.get("second"))
        action = record_action(message, s3=S3, bucket=os.environ["RESULTS_BUCKET"],
                               message_id=record.sns.message_id)
        logger.info("corrective action recorded", extra={"action": action["action"], "key": action["key"]})
        actions.append(action)
    metrics.add_metric(name="CorrectiveActions", unit=MetricUnit.Count, value=len(actions))
    return {"actions": actions, "s3_requests": COUNTER.counts("s3")}
