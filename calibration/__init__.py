"""Measured figures the project prices and sizes with, from one committed file (`calibration.json`).

The file records when, where and with which command it was measured, and whether the machine was quiet;
`make calibrate` regenerates it (`python -m monolith calibrate`: the measuring code lives with what it
measures, so this package, which the cost model and infra read, imports nothing). The cost model and the
after stack's task size read it through `load()`, so a fresh clone prints and deploys with the same
numbers the README quotes.

Contents:
- `monolith`: CPU-seconds per stream-second of `monolith analyze` at each resolution (median, min, max
  over repeated runs) and the peak memory one analysed stream adds to an interpreter;
- `task`: the peak memory of a whole task, `monolith serve --concurrency N` (the supervisor and N worker
  interpreters, each analysing a stream at the resolution), summed over its processes, per resolution and
  concurrency (median, min, max over repeated runs);
- `lambda_path`: the same work done the Lambda path's way in one process (decode, pack every frame into
  its object, each detector unpacks what it reads), CPU-seconds per stream-second;
- `segment_analyzer`: the serverless design's function on the same stream cut into live segments (each
  segment's window decoded and analysed in memory, without its requests), CPU-seconds per stream-second;
- `profiles`: per-frame CPU costs of those steps and the size of a frame object and an audio object, which
  the cost model's Lambda duration estimate uses.

Every CPU figure is in the reference host's CPU-seconds: each run's measurement divided by the host's speed
in that run, the CPU of a reference workload (PyAV alone decoding the same stream) over what it cost when
`host_reference.json` was measured (`make calibrate-reference`). A shared host runs faster or slower for
minutes at a time; the reference, measured in the same runs, cancels that. The measured figures are kept
beside them (`measured_cpu_s_per_stream_second`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CALIBRATION_PATH = Path(__file__).resolve().parent / "calibration.json"
HOST_REFERENCE_PATH = Path(__file__).resolve().parent / "host_reference.json"
STATISTICS = ("median", "min", "max")


class CalibrationError(ValueError):
    pass


class HostReferenceError(CalibrationError):
    """The reference host's file is missing, unreadable, or does not fit this measurement."""


@dataclass(frozen=True)
class HostReference:
    """What the reference workload cost on the reference host: the unit every CPU figure is priced in."""

    cpu_s_per_stream_second: dict[str, float]  # the reference's median at each resolution
    av: str  # the PyAV it was measured with: another libavcodec decodes at another speed
    generated: str
    path: Path

    def check(self, sizes: list[str], av_version: str) -> None:
        missing = [name for name in sizes if name not in self.cpu_s_per_stream_second]
        if missing:
            raise HostReferenceError(f"{self.path}: no reference measured at {', '.join(missing)}; run "
                                     "`make calibrate-reference`")
        if av_version != self.av:
            raise HostReferenceError(
                f"{self.path}: measured with PyAV {self.av}, this is {av_version}: another decoder is "
                "another reference; run `make calibrate-reference`, then `make calibrate`")

    def describe(self) -> dict[str, Any]:
        return {"file": self.path.name, "generated": self.generated, "av": self.av,
                "cpu_s_per_stream_second": self.cpu_s_per_stream_second}


def load_host_reference(path: Path | None = None) -> HostReference:
    path = path or HOST_REFERENCE_PATH
    try:
        data = json.loads(path.read_text())
        rows = data["reference"]["cpu_s_per_stream_second"]
        return HostReference({name: float(row["median"]) for name, row in rows.items()},
                             str(data["machine"]["av"]), str(data["generated"]), path)
    except (OSError, ValueError) as error:
        raise HostReferenceError(f"{path}: cannot read the reference host ({error}); run "
                                 "`make calibrate-reference`") from None
    except (KeyError, TypeError) as error:
        raise HostReferenceError(f"{path}: not a reference host file (no {error}); run "
                                 "`make calibrate-reference`") from None


@dataclass(frozen=True)
class Spread:
    median: float
    min: float
    max: float
    runs: int


@dataclass(frozen=True)
class Profile:
    """What one stream-second costs on the Lambda path at one resolution (measured, this project's code)."""

    frame_bytes: float  # one frame object (zlib level 1 of the luma plane), real content
    audio_bytes: float  # one second of audio object
    decode_ms_per_frame: float  # converter: decode (read_second)
    pack_ms_per_frame: float  # converter: frame_to_bytes
    unpack_ms_per_object: float  # detector: frame_from_bytes / audio_from_bytes
    detect_ms_per_frame: dict[str, float]  # each detector's own work per frame it reads


@dataclass(frozen=True)
class Calibration:
    data: dict[str, Any]
    path: Path

    def _row(self, section: str, table: str, resolution: str) -> Any:
        try:
            rows = self.data[section][table]
        except (KeyError, TypeError):
            raise CalibrationError(f"{self.path}: no {section}.{table}; run `make calibrate`") from None
        if resolution not in rows:
            raise CalibrationError(
                f"{self.path}: no {table} measured for {resolution!r} "
                f"(measured: {', '.join(sorted(rows))}); run `make calibrate`"
            )
        return rows[resolution]

    @property
    def resolutions(self) -> tuple[str, ...]:
        """The resolutions measured for the monolith, smallest first."""
        rows = self.data.get("monolith", {}).get("cpu_s_per_stream_second", {})
        return tuple(sorted(rows, key=lambda name: int(name.rstrip("p"))))

    def monolith_cpu(self, resolution: str) -> Spread:
        """CPU-seconds per stream-second of the monolith at this resolution (median and spread)."""
        return Spread(**self._row("monolith", "cpu_s_per_stream_second", resolution))

    def monolith_peak_rss_mib(self, resolution: str) -> float:
        return float(self._row("monolith", "peak_rss_mib_per_stream", resolution))

    def task_concurrencies(self, resolution: str) -> tuple[int, ...]:
        """The concurrencies whose whole task was measured at this resolution, smallest first."""
        return tuple(sorted(int(n) for n in self._row("task", "peak_mib", resolution)))

    def task_peak_mib(self, resolution: str, concurrency: int) -> Spread:
        """Peak memory of a whole task analysing `concurrency` streams at `resolution`: the sum over its
        processes of each one's peak RSS (median and spread of the runs)."""
        rows = self._row("task", "peak_mib", resolution)
        if str(concurrency) not in rows:
            measured = [str(n) for n in self.task_concurrencies(resolution)]
            raise CalibrationError(
                f"{self.path}: no task of {concurrency} streams measured at {resolution} (measured: "
                f"{', '.join(measured)}); run `python -m monolith calibrate --concurrencies "
                f"{','.join([*measured, str(concurrency)])}`"
            )
        return Spread(**rows[str(concurrency)])

    def lambda_path_cpu(self, resolution: str) -> Spread:
        """CPU-seconds per stream-second of the Lambda path's work done in one process (no S3)."""
        return Spread(**self._row("lambda_path", "cpu_s_per_stream_second", resolution))

    def segment_analyzer_cpu(self, resolution: str) -> Spread:
        """CPU-seconds per stream-second of the serverless design's function on live segments, in memory."""
        return Spread(**self._row("segment_analyzer", "cpu_s_per_stream_second", resolution))

    def profile(self, resolution: str) -> Profile:
        row = self._row("profiles", "by_resolution", resolution)
        try:
            return Profile(**{k: row[k] for k in Profile.__dataclass_fields__})
        except KeyError as missing:
            raise CalibrationError(f"{self.path}: profile {resolution!r} lacks {missing}") from None

    def at(self, statistic: str = "median", *, cpu_factor: float = 1.0) -> Calibration:
        """The same calibration with the monolith's CPU `statistic` (min or max) times `cpu_factor` in place
        of the median, so that what is sized from the median (monolith.sizing.task_size) can be sized from
        the spread, or for another processor."""
        if statistic not in STATISTICS:
            raise CalibrationError(f"statistic must be one of {', '.join(STATISTICS)}, got {statistic!r}")
        data = json.loads(json.dumps(self.data))
        rows = data["monolith"].get("cpu_s_per_stream_second")
        if not isinstance(rows, dict) or not rows:
            raise CalibrationError(f"{self.path}: no monolith.cpu_s_per_stream_second; run `make calibrate`")
        for row in rows.values():
            chosen = row[statistic]
            row.update(median=chosen * cpu_factor, min=row["min"] * cpu_factor, max=row["max"] * cpu_factor)
        return Calibration(data, self.path)

    @property
    def cpu_unit(self) -> str:
        """What the CPU figures count: the reference host's CPU-seconds, or (an older file) as measured."""
        return "reference host" if "host" in self.data else "as measured"

    def describe(self) -> str:
        """One line: what was measured, when, where, how, and whether the machine was quiet."""
        machine = self.data.get("machine", "?")
        if isinstance(machine, dict):
            machine = machine.get("description") or ", ".join(f"{k} {v}" for k, v in machine.items())
        quiet = self.data.get("quiet")
        state = "" if not isinstance(quiet, dict) else (
            " (machine quiet)" if quiet.get("quiet") else " (machine NOT quiet: not comparable)")
        return (
            f"{self.path.name}: measured {self.data.get('generated', '?')} on {machine} "
            f"by `{self.data.get('command', '?')}`{state}; CPU {self.cpu_unit}"
        )


def load(path: Path | None = None) -> Calibration:
    path = path or CALIBRATION_PATH
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise CalibrationError(f"{path}: cannot read the calibration ({error})") from None
    if not isinstance(data, dict) or "monolith" not in data:
        raise CalibrationError(f'{path}: not a calibration file (no "monolith" section)')
    return Calibration(data, path)
