"""Segment analyser Lambda: SQS messages holding S3 notifications of live segments, each segment's
seconds decoded and analysed in memory (service.py), a partial batch response naming the ones to retry."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.segment_analyzer.service import Analyser, Queues, StateStore, is_stall_watch, process_batch
from lambdas.segment_analyzer.settings import FAULT_FUNCTION
from lambdas.shared.faults import FaultPlan, mid_work_faults
from lambdas.shared.observability import logger, metrics, tracer
from lambdas.shared.request_counting import RequestCounter, counting_client

COUNTER = RequestCounter()
S3 = counting_client(COUNTER, "s3")
SNS = counting_client(COUNTER, "sns")
SQS = counting_client(COUNTER, "sqs")
TOPIC_ARN = os.environ.get("TOPIC_ARN", "")


def _log(message: str, extra: dict[str, Any]) -> None:
    logger.info(message, extra=extra)


# Test-only (a LocalStack deployment given `fault_injection`): faults strike mid-segment. Unset: no hook.
PLAN = FaultPlan.from_env()
ANALYSER = Analyser(
    s3=S3,
    state=StateStore(S3, os.environ.get("STATE_BUCKET", "")),
    publish=lambda message: SNS.publish(TopicArn=TOPIC_ARN, **message),
    results_bucket=os.environ.get("RESULTS_BUCKET", ""),
    detectors=tuple(filter(None, os.environ.get("DETECTORS", "freeze,block_corruption,av_sync").split(","))),
    stall_timeout_s=float(os.environ.get("STALL_TIMEOUT_S", "30")),
    before_state_write=mid_work_faults(FAULT_FUNCTION, PLAN, tell=_log) if PLAN is not None else None,
)
QUEUES = Queues(sqs=SQS, queue_url=os.environ.get("QUEUE_URL", ""),
                dead_letter_url=os.environ.get("DEAD_LETTER_URL", ""),
                max_receives=int(os.environ.get("MAX_RECEIVES", "8")),
                retry_base_s=int(os.environ.get("RETRY_BASE_S", "2")),
                retry_cap_s=int(os.environ.get("RETRY_CAP_S", "60")))


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # The segments' requests, then the stall watches' (checks and arming) apart: metering bills both, and
    # counts the segments' against what the design's definition implies per segment.
    records = event.get("Records", [])
    COUNTER.reset()
    QUEUES.deferred = []
    response = process_batch([r for r in records if not is_stall_watch(r)], ANALYSER, QUEUES, _log,
                             context.get_remaining_time_in_millis)
    logger.info("requests", extra={"requests": COUNTER.snapshot()})  # metering reads these
    COUNTER.reset()
    watches = process_batch([r for r in records if is_stall_watch(r)], ANALYSER, QUEUES, _log,
                            context.get_remaining_time_in_millis)
    QUEUES.arm_deferred()
    if COUNTER.snapshot():
        logger.info("stall watch requests", extra={"requests": COUNTER.snapshot()})
    return {"batchItemFailures": response["batchItemFailures"] + watches["batchItemFailures"]}
