"""Powertools logger, metrics and tracer, set up once for every function of the stack.

Each function names itself with POWERTOOLS_SERVICE_NAME (set by the stack); the namespace is shared so
that one dashboard shows the whole workflow. `bind_invocation` puts the execution id and the
stream-second into every log line of the invocation.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "StreamQualityMonitor")

logger = Logger()
metrics = Metrics(namespace=NAMESPACE)
tracer = Tracer()

__all__ = ["MetricUnit", "bind_invocation", "logger", "metrics", "tracer"]


def bind_invocation(event: Mapping[str, Any]) -> None:
    """Log keys for this invocation: which execution, stream and second it works on."""
    logger.append_keys(
        execution_id=event.get("execution_id"),
        stream_id=event.get("stream_id"),
        stream_second=event.get("second"),
        attempt=event.get("attempt"),  # the workflow's retry count for this task: 0 on the first try
    )
