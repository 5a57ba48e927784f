"""The monolith: converter and detectors in one process, frames passed in memory.

This is the "after" architecture of the Prime Video case, and the reference answer that the Lambda path
must reproduce: the same converter code and the same detector functions, called second by second.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from lambdas.converter.decode import DEFAULT_THREADS, iter_seconds, probe
from lambdas.detectors import registry
from lambdas.shared.media import StreamSecond

ProgressFn = Callable[[int, int | None], None]  # (seconds done, total or None when the header has none)


def analyze(
    path: str | Path,
    *,
    detectors: list[str] | None = None,
    threads: int = DEFAULT_THREADS,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Analyse one stream; return the `monolith analyze --json` report (raises UnreadableStreamError)."""
    info = probe(path)
    chosen = select_detectors(detectors)
    states: dict[str, Any] = dict.fromkeys(chosen)
    defects: list[dict[str, Any]] = []
    read_s = 0.0
    for second in iter_seconds(path, info, threads=threads):
        defects += run_detectors(second, chosen, states)
        read_s = max(read_s, content_end_s(second, info.fps))
        if progress:
            progress(second.index + 1, info.seconds)
    report = info.to_report()
    if report["duration_s"] is None:  # no duration in the header (a live recording): what was read
        report["duration_s"] = round(read_s, 3)
    return {**report, "defects": sort_defects(defects)}


def content_end_s(second: StreamSecond, fps: float) -> float:
    """Where the second's last picture (shown for one frame period) or its last sound ends."""
    ends = [frame.pts_s + 1.0 / fps for frame in second.frames]
    if second.audio is not None:
        rate = second.audio.sample_rate
        ends += [start + count / rate for start, count in second.audio.chunks]
    return max(ends, default=0.0)


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
