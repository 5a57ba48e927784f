"""Measured figures the project prices and sizes with, from one committed file (`calibration.json`).

The file records when, where and with which command it was measured; `make calibrate` regenerates it.
The cost model and the after stack's task size read it through `load()`, so a fresh clone prints and
deploys with the same numbers the README quotes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CALIBRATION_PATH = Path(__file__).resolve().parent / "calibration.json"


class CalibrationError(ValueError):
    pass


@dataclass(frozen=True)
class Spread:
    median: float
    min: float
    max: float
    runs: int


@dataclass(frozen=True)
class Calibration:
    data: dict[str, Any]
    path: Path

    def _row(self, table: str, resolution: str) -> Any:
        rows = self.data["monolith"][table]
        if resolution not in rows:
            raise CalibrationError(f"{self.path}: no {table} measured for {resolution!r} "
                                   f"(measured: {', '.join(sorted(rows))}); run `make calibrate`")
        return rows[resolution]

    def monolith_cpu(self, resolution: str) -> Spread:
        """CPU-seconds per stream-second of the monolith at this resolution (median and spread)."""
        return Spread(**self._row("cpu_s_per_stream_second", resolution))

    def monolith_peak_rss_mib(self, resolution: str) -> float:
        return float(self._row("peak_rss_mib_per_stream", resolution))


def load(path: Path | None = None) -> Calibration:
    path = path or CALIBRATION_PATH
    try:
        return Calibration(json.loads(path.read_text()), path)
    except (OSError, ValueError) as error:
        raise CalibrationError(f"{path}: cannot read the calibration ({error})") from None
