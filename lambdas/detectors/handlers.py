"""Detector Lambdas: one function per detector, each running the shared detector code on one second.

Input (from the state machine): {frames: [keys], audio: key|null, second, is_last, states, ...} where
`states` is the list of {"detector", "state"} entries every detector returned for the previous second;
each function picks its own entry, so the Parallel state needs no per-branch bookkeeping.
Output: {defects, carry: [{"detector", "state"}], usage: [{"function", "s3_requests"}]} — the
one-element lists let the Evaluate state flatten all branches with `[*]` paths.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.detectors import NEEDS, DetectFn, registry
from lambdas.shared.faults import Handler, inject_faults
from lambdas.shared.frame_store import get_second
from lambdas.shared.observability import MetricUnit, bind_invocation, logger, metrics, tracer
from lambdas.shared.request_counting import RequestCounter, counting_client

COUNTER = RequestCounter()
S3 = counting_client(COUNTER, "s3")


def detector(name: str) -> DetectFn:
    """The detect function by name, from the same registry the monolith runs."""
    if name not in NEEDS:
        raise ValueError(f"unknown detector {name!r}")
    return registry()[name]


def previous_state(states: list[dict[str, Any]] | None, name: str) -> dict[str, Any] | None:
    for entry in states or []:
        if entry.get("detector") == name:
            return entry.get("state")
    return None


def analyze_second(name: str, event: dict[str, Any], *, s3: Any, bucket: str) -> dict[str, Any]:
    """Fetch the second's objects, run detector `name` with its carried state, return its findings."""
    video, audio = NEEDS[name]
    second = get_second(
        s3,
        bucket,
        index=int(event["second"]),
        is_last=bool(event["is_last"]),
        frame_keys=list(event.get("frames") or []),
        audio_key=event.get("audio"),
        video=video,
        audio=audio,
    )
    defects, state = detector(name)(second, previous_state(event.get("states"), name))
    return {"defects": defects, "carry": [{"detector": name, "state": state}]}


def _handle(name: str, event: dict[str, Any]) -> dict[str, Any]:
    bind_invocation(event)
    COUNTER.reset()
    result = analyze_second(name, event, s3=S3, bucket=os.environ["TEMP_BUCKET"])
    requests = COUNTER.counts("s3")
    result["usage"] = [{"function": name, "s3_requests": requests}]
    metrics.add_dimension(name="detector", value=name)
    metrics.add_metric(name="ObjectsRead", unit=MetricUnit.Count, value=requests.get("GetObject", 0))
    metrics.add_metric(name="Defects", unit=MetricUnit.Count, value=len(result["defects"]))
    if result["defects"]:
        logger.info("defects found", extra={"detector": name, "defects": result["defects"]})
    return result


def _lambda_handler(name: str) -> Handler:
    """The Lambda entry point for detector `name`: Powertools decorators plus one call into `_handle`."""

    @inject_faults(name)
    @logger.inject_lambda_context
    @metrics.log_metrics
    @tracer.capture_lambda_handler
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        return _handle(name, event)

    return handler


freeze_handler = _lambda_handler("freeze")
block_corruption_handler = _lambda_handler("block_corruption")
av_sync_handler = _lambda_handler("av_sync")
