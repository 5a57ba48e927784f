"""The monolith: converter and detectors in one process, frames passed in memory.

This is the "after" architecture of the Prime Video case, and the reference answer that the Lambda path
must reproduce: the same converter code and the same detector functions, called second by second.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from lambdas.converter.decode import DEFAULT_THREADS, iter_seconds, probe
from lambdas.detectors.pipeline import run_detectors, select_detectors, sort_defects
from lambdas.shared.media import StreamSecond

__all__ = ["analyze", "content_end_s", "run_detectors", "select_detectors", "sort_defects"]

ProgressFn = Callable[[int, int | None], None]  # (seconds done, total or None when the header has none)


def analyze(
    path: str | Path,
    *,
    detectors: list[str] | None = None,
    threads: int = DEFAULT_THREADS,
    progress: ProgressFn | None = None,
    states: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Analyse one stream; return the `monolith analyze --json` report (raises UnreadableStreamError).
    `states`: a dictionary to hold each detector's state at the end (what it concluded, e.g. whether the
    A/V methods could measure the stream at all), for evaluations."""
    info = probe(path)
    chosen = select_detectors(detectors)
    states = {} if states is None else states
    states.update(dict.fromkeys(chosen))
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


