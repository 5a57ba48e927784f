"""Converter Lambda: decode stream-second n of a stream in S3 and ship it to the temporary bucket."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.converter.live_source import LiveSegmentCache, SecondNotPublishedYet
from lambdas.converter.service import ConvertRequest, StreamCache, StreamUnreadable, convert
from lambdas.shared.faults import inject_faults
from lambdas.shared.keys import InvalidRequest
from lambdas.shared.observability import MetricUnit, bind_invocation, logger, metrics, tracer
from lambdas.shared.request_counting import RequestCounter, counting_client

__all__ = ["SecondNotPublishedYet", "StreamUnreadable", "handler"]

COUNTER = RequestCounter()
S3 = counting_client(COUNTER, "s3")
# The sandbox's temporary folder (/tmp on AWS; TMPDIR where several environments share a host, as with
# LocalStack's process executor: a fixed /tmp/streams there lets one environment delete another's stream).
CACHE_DIR = Path(os.environ.get("STREAM_CACHE_DIR") or Path(tempfile.gettempdir(), "streams"))
CACHE = StreamCache(CACHE_DIR)
# Beside the file cache, not in it: a file download empties the file cache's folder.
LIVE = LiveSegmentCache(CACHE_DIR.with_name(f"{CACHE_DIR.name}-live"))
# The buckets requests may name (the stack sets them; unset, e.g. in a local run, any bucket is accepted
# and IAM alone decides).
_SOURCES = os.environ.get("SOURCE_BUCKETS")
SOURCE_BUCKETS = frozenset(filter(None, _SOURCES.split(","))) if _SOURCES is not None else None


def memory_limits() -> dict[str, int]:
    """The memory of the functions that hold a whole second: this one (Lambda sets its size) and the
    detectors (the stack sets DETECTOR_MEMORY_MB)."""
    sizes = {"converter": os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"),
             "detector": os.environ.get("DETECTOR_MEMORY_MB")}
    return {function: int(size) for function, size in sizes.items() if size}


@inject_faults("converter")
@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    bind_invocation(event)
    COUNTER.reset()
    try:
        result = convert(
            ConvertRequest.from_event(event, SOURCE_BUCKETS),
            s3=S3,
            temp_bucket=os.environ["TEMP_BUCKET"],
            cache=CACHE,
            frames_per_second=int(os.environ.get("FRAMES_PER_SECOND", "0")),
            memory_mb=memory_limits(),
            live=LIVE,
        )
    except SecondNotPublishedYet as error:
        # Not a failure: the workflow's Retry on this error name is its wait at the live edge. The message
        # carries this invocation's S3 requests, which the bill counts from the execution history.
        metrics.add_metric(name="LiveEdgeWaits", unit=MetricUnit.Count, value=1)
        raise SecondNotPublishedYet(f"{error} [s3 {json.dumps(COUNTER.counts('s3'))}]") from None
    except (StreamUnreadable, InvalidRequest) as error:
        # The workflow ends the stream on these; the metric lets an alarm count streams it gave up on.
        metrics.add_metric(name="StreamsRejected", unit=MetricUnit.Count, value=1)
        logger.warning("stream rejected", extra={"reason": str(error)})
        raise
    result["s3_requests"] = COUNTER.counts("s3")
    metrics.add_metric(name="FramesWritten", unit=MetricUnit.Count, value=len(result["frames"]))
    written = result["s3_requests"].get("PutObject", 0)
    metrics.add_metric(name="ObjectsWritten", unit=MetricUnit.Count, value=written)
    logger.info("second converted", extra={"frames": len(result["frames"]), "is_last": result["is_last"]})
    return result
