"""X-Ray traces the stacks record: tracing is on in every function and in the state machine (infra/), so
traces are a line of both bills.

X-Ray bills per trace recorded. A trace starts at a root, the first traced service a request reaches, which
decides whether it is sampled; the services it calls follow that decision. With the default sampling rule a
root records the first request each second and 5% of the others (SOURCES.md, "X-Ray tracing"). The roots
here: each workflow execution (its functions join its trace) and each corrective action (invoked by SNS,
which passes no decision). Each root service samples on its own, so each gets its own reservoir.
"""

from __future__ import annotations

from cost_model.lines import Line, priced_line
from cost_model.prices import PriceBook

RESERVOIR_PER_S = 1.0  # the default rule: the first request each second ...
FIXED_RATE = 0.05  # ... and 5% of the others


def traced_per_second(requests_per_second: float) -> float:
    """Traces a root records per second at a steady `requests_per_second`, by the default rule."""
    first = min(requests_per_second, RESERVOIR_PER_S)
    return first + FIXED_RATE * (requests_per_second - first)


def xray_line(book: PriceBook, roots: dict[str, float], seconds: float) -> Line:
    """The traces recorded in `seconds` of running, for `roots` (name -> requests per second)."""
    traces = sum(traced_per_second(rate) for rate in roots.values()) * seconds
    described = " + ".join(f"{name} ({rate:,.4g}/s)" for name, rate in roots.items())
    return priced_line(
        book,
        "xray.trace",
        "X-Ray",
        "traces recorded (default sampling)",
        traces,
        note=f"roots: {described}, each sampled 1/s + {FIXED_RATE:.0%} of the rest",
    )
