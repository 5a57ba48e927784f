"""Run one detector over a sequence of stream-seconds, as the monolith does or as the Lambda path does."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from lambdas.shared.media import StreamSecond

Detect = Callable[[StreamSecond, dict[str, Any] | None], tuple[list[dict[str, Any]], dict[str, Any]]]


def run_detector(
    detect: Detect, seconds: Iterable[StreamSecond], through_json: bool = False
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """(every defect found, the final state). ``through_json``: carry the state and the findings through
    JSON between seconds, as Step Functions does on the Lambda path."""
    state: dict[str, Any] | None = None
    found: list[dict[str, Any]] = []
    for second in seconds:
        defects, state = detect(second, state)
        if through_json:
            state, defects = json.loads(json.dumps(state)), json.loads(json.dumps(defects))
        found += defects
    return found, state
