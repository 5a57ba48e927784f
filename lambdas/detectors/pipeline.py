"""The three detectors run over a stream's seconds, state carried from one second to the next: the code
the monolith and the segment analyser (the event-driven serverless design) share, so that both give the
same answers on the same seconds."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from lambdas.detectors import registry
from lambdas.shared.media import StreamSecond


def select_detectors(names: Iterable[str] | None = None) -> dict[str, Callable]:
    """The named detectors in the registry's order (all of them for None); unknown names raise ValueError."""
    known = registry()
    if names is None:
        return known
    wanted = set(names)
    unknown = sorted(wanted - known.keys())
    if unknown:
        raise ValueError(f"unknown detector(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return {name: fn for name, fn in known.items() if name in wanted}


def run_detectors(
    second: StreamSecond, detectors: dict[str, Callable], states: dict[str, Any]
) -> list[dict[str, Any]]:
    """Run each detector on one second, updating `states` in place; return the defects they closed."""
    found: list[dict[str, Any]] = []
    for name, detect in detectors.items():
        defects, states[name] = detect(second, states[name])
        found += defects
    return found


def sort_defects(defects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(defects, key=lambda d: (d["start_s"], d["type"], d["end_s"]))
