"""Fault injection for tests on LocalStack: make the workflow's functions fail now and then, reproducibly.

Off unless the function's environment has FAULT_INJECTION, which the stack sets only for a LocalStack
deployment given the `fault_injection` context (infra/config.py refuses it anywhere else). The value is a
comma-separated list of settings:

    error_rate=0.2,timeout_rate=0.05,seed=7,streams=faulty-,function_timeout_s=20

- error_rate: share of invocations that do their work (frames written, state computed) and then raise
  `TransientError` — the worst case for idempotency: the side effects happened, the answer is lost;
- timeout_rate: share of invocations that sleep past the function's timeout before doing anything, so
  the runtime kills them (`Sandbox.Timedout`);
- seed: the draw for an invocation depends only on (seed, function, stream, second, attempt), so a run
  is reproducible and a test can predict every fault and retry; attempt is `$$.State.RetryCount`;
- streams: only streams whose id starts with this prefix get faults (others on the same stack run clean);
- function_timeout_s: the functions' timeout on that deployment (used by the stack), so that an injected
  timeout costs seconds instead of the production timeout.

The workflow's functions draw once per invocation (`inject_faults`). The event-driven design's segment
analyser draws once per segment, at the point the function chooses (`mid_work_faults`): there "second" is
the segment's index and "attempt" the SQS receive count (1 on the first delivery).
"""

from __future__ import annotations

import functools
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

ENV = "FAULT_INJECTION"
Handler = Callable[[dict[str, Any], Any], Any]


class TransientError(Exception):
    """A failure worth retrying (the workflow's Retry lists this error name)."""


@dataclass(frozen=True)
class FaultPlan:
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    seed: int = 0
    streams: str = ""
    function_timeout_s: int = 20

    def __post_init__(self) -> None:
        if not (0 <= self.error_rate <= 1 and 0 <= self.timeout_rate <= 1
                and self.error_rate + self.timeout_rate <= 1):
            raise ValueError("error_rate and timeout_rate must be within 0..1 and add up to at most 1")
        if not 3 <= self.function_timeout_s <= 900:
            raise ValueError("function_timeout_s must be within 3..900")

    @classmethod
    def parse(cls, text: str) -> FaultPlan:
        """`key=value,key=value`; unknown keys and bad values are refused."""
        types = {f.name: f.type for f in fields(cls)}
        values: dict[str, Any] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            key, sep, value = item.partition("=")
            key = key.strip()
            if not sep or key not in types:
                raise ValueError(f"fault injection: unknown setting {item!r} (known: {', '.join(types)})")
            kind = {"float": float, "int": int}.get(str(types[key]), str)
            try:
                values[key] = kind(value.strip())
            except ValueError:
                raise ValueError(f"fault injection: {key} must be a {kind.__name__}, got {value!r}") from None
        return cls(**values)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> FaultPlan | None:
        text = environ.get(ENV, "").strip()
        return cls.parse(text) if text else None

    def decide(self, function: str, stream_id: str, second: int, attempt: int) -> str | None:
        """"error", "timeout" or None for one invocation or unit of work (a pure function of its
        identity; `second` is the unit's index: a stream-second, or a live segment)."""
        if not stream_id.startswith(self.streams):
            return None
        draw = random.Random(f"{self.seed}/{function}/{stream_id}/{second}/{attempt}").random()
        if draw < self.timeout_rate:
            return "timeout"
        if draw < self.timeout_rate + self.error_rate:
            return "error"
        return None


def inject_faults(function: str, plan: FaultPlan | None = None) -> Callable[[Handler], Handler]:
    """Wrap a handler with the plan from the environment; with none (production) the handler is unchanged."""
    plan = plan if plan is not None else FaultPlan.from_env()

    def wrap(handler: Handler) -> Handler:
        if plan is None:
            return handler

        @functools.wraps(handler)
        def faulty(event: dict[str, Any], context: Any) -> Any:
            fault = plan.decide(function, str(event.get("stream_id", "")), _int(event.get("second")),
                                _int(event.get("attempt")))
            if fault == "timeout":
                # Sleep past the deadline: the runtime kills the sandbox and reports Sandbox.Timedout.
                time.sleep(context.get_remaining_time_in_millis() / 1000 + 5)
            result = handler(event, context)
            if fault == "error":
                raise TransientError(f"injected fault: {function} second {event.get('second')} "
                                     f"attempt {event.get('attempt')}")
            return result

        return faulty

    return wrap


def mid_work_faults(function: str, plan: FaultPlan, tell: Callable[[str, dict[str, Any]], None] | None = None,
                    sleep: Callable[[float], None] = time.sleep) -> Callable[[str, int, int], None]:
    """A strike for a function that calls it at the point of its work where a fault hurts most, with the
    unit's identity (stream, index, attempt): a "timeout" sleeps past the deadline (the function's timeout
    on a deployment with this plan is `function_timeout_s`, so no invocation has more left), and the
    runtime kills it; an "error" raises `TransientError`; no fault returns at once. `tell` logs a fault
    before it strikes (a killed invocation says nothing afterwards)."""

    def strike(stream_id: str, index: int, attempt: int) -> None:
        fault = plan.decide(function, stream_id, index, attempt)
        if fault is not None and tell is not None:
            tell("fault injected", {"fault": fault, "stream_id": stream_id, "unit": index,
                                    "attempt": attempt})
        if fault == "timeout":
            sleep(plan.function_timeout_s + 5)
        if fault is not None:  # a timeout's sleep returns only where nothing enforces the deadline
            raise TransientError(f"injected {fault}: {function} {stream_id} unit {index} attempt {attempt}")

    return strike


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
