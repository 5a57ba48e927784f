"""Lag to the live edge, for any architecture that follows a live stream.

For a stream-second: from the moment it became readable in S3 (the landing of the last segment it
overlaps) to its analysis being complete. For a defect: from the landing of the segment that made it
detectable (the one holding the second at which it was reported) to its notification being published.
A run keeps up when its lag stays bounded over the stream, and falls behind when the lag grows with the
stream: the least-squares slope of lag against stream time says which.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

# Lag growing by more than this many seconds per stream-second falls behind: at 0.05 an hour of stream
# would end three minutes behind the edge. Below it, the lag is bounded for the run's purposes.
FALLING_BEHIND_SLOPE = 0.05


@dataclass(frozen=True)
class LagSummary:
    count: int
    p50_s: float | None
    p95_s: float | None
    max_s: float | None
    slope: float | None  # seconds of lag gained per stream-second
    keeps_up: bool | None

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "p50_s": self.p50_s, "p95_s": self.p95_s, "max_s": self.max_s,
                "slope_s_per_s": self.slope, "keeps_up": self.keeps_up}


def summarize(lags: Mapping[int, float]) -> LagSummary:
    """p50/p95/max of {stream-second: lag in seconds} and whether the lag stays bounded."""
    if not lags:
        return LagSummary(0, None, None, None, None, None)
    seconds = np.array(sorted(lags), dtype=float)
    values = np.array([lags[int(s)] for s in seconds])
    slope = float(np.polyfit(seconds, values, 1)[0]) if len(values) >= 3 else None
    return LagSummary(
        count=len(values), p50_s=round(float(np.percentile(values, 50)), 3),
        p95_s=round(float(np.percentile(values, 95)), 3), max_s=round(float(values.max()), 3),
        slope=round(slope, 4) if slope is not None else None,
        keeps_up=None if slope is None else slope <= FALLING_BEHIND_SLOPE)


def second_lags(
    completed_at: Mapping[int, float], landed_at: Callable[[int], float | None]
) -> dict[int, float]:
    """{second: completion time - when the second became readable} (seconds never readable left out)."""
    out = {}
    for second, done in completed_at.items():
        landed = landed_at(second)
        if landed is not None:
            out[second] = round(done - landed, 3)
    return out


def defect_lags(notified: list[tuple[int, float]], landed_at: Callable[[int], float | None]) -> list[float]:
    """Lags of defect notifications, each given as (stream-second it was reported at, publish time)."""
    lags = []
    for second, published in notified:
        landed = landed_at(second)
        if landed is not None:
            lags.append(round(published - landed, 3))
    return lags


def lag_report(completed_at: Mapping[int, float], notified: list[tuple[int, float]],
               landed_at: Callable[[int], float | None]) -> dict[str, Any]:
    """The lag figures of one run: per stream-second and per defect notification."""
    per_second = second_lags(completed_at, landed_at)
    per_defect = defect_lags(notified, landed_at)
    return {"seconds": summarize(per_second).to_dict(),
            # Defects come at irregular times: no trend, only the spread.
            "defects": summarize(dict(enumerate(per_defect))).to_dict()
            | {"slope_s_per_s": None, "keeps_up": None, "lags_s": per_defect},
            "per_second_s": per_second}
