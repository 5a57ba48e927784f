"""What the model reads from the project: the stack's configuration, what each detector reads, the frames
bucket's lifecycle, measured media costs, and the monolith benchmark. Each reader falls back to a
documented default and says which it used (`Provenance`)."""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.config import DETECTORS

REPO = Path(__file__).resolve().parents[1]
CDK_JSON = REPO / "cdk.json"
HANDLERS = REPO / "lambdas" / "detectors" / "handlers.py"
STORAGE = REPO / "infra" / "storage.py"
BENCH_JSON = REPO / "bench-output" / "media-bench.json"
SUMMARY_JSON = REPO / "demo-output" / "summary.json"

# Copy of lambdas/detectors/handlers.py NEEDS, used only when that file cannot be read.
DEFAULT_NEEDS: dict[str, tuple[bool, bool]] = {
    "freeze": (True, False),
    "block_corruption": (True, False),
    "av_sync": (True, True),
}


class InputError(ValueError):
    """An input file exists but cannot be used (unreadable, wrong shape)."""


@dataclass
class Provenance:
    """Where each input came from, printed with the results."""

    notes: list[str] = field(default_factory=list)

    def add(self, text: str) -> None:
        self.notes.append(text)


@dataclass(frozen=True)
class StackConfig:
    converter_memory_mb: int = 2048
    detector_memory_mb: int = 1024
    frames_per_second: int = 0  # 0 = every frame
    detectors: tuple[str, ...] = DETECTORS
    seconds_per_execution: int = 300
    architecture: str = "x86_64"
    temp_expiry_days: int = 1


def read_stack_config(prov: Provenance, cdk_json: Path = CDK_JSON, storage_py: Path = STORAGE) -> StackConfig:
    """The CDK context defaults (cdk.json) and the frames bucket's lifecycle (infra/storage.py)."""
    base = StackConfig()
    values: dict[str, Any] = {}
    try:
        context = json.loads(cdk_json.read_text()).get("context", {})
        for key in (
            "converter_memory_mb",
            "detector_memory_mb",
            "frames_per_second",
            "seconds_per_execution",
        ):
            if key in context:
                values[key] = int(context[key])
        if "detectors" in context:
            values["detectors"] = tuple(context["detectors"])
        if "architecture" in context:
            values["architecture"] = str(context["architecture"])
        prov.add(f"stack configuration: {cdk_json.name} context")
    except (OSError, ValueError, TypeError):
        prov.add("stack configuration: built-in defaults (cdk.json not readable)")
    try:
        match = re.search(r"^TEMP_EXPIRY_DAYS\s*=\s*(\d+)", storage_py.read_text(), re.MULTILINE)
        if match:
            values["temp_expiry_days"] = int(match.group(1))
    except OSError:
        pass
    return StackConfig(**{**base.__dict__, **values})


def read_needs(prov: Provenance, handlers: Path = HANDLERS) -> dict[str, tuple[bool, bool]]:
    """What each detector function GETs (video frames, audio): the NEEDS literal in the handlers module,
    read without importing it (it creates AWS clients at import)."""
    try:
        tree = ast.parse(handlers.read_text())
        for node in tree.body:
            target = (
                node.target
                if isinstance(node, ast.AnnAssign)
                else (node.targets[0] if isinstance(node, ast.Assign) else None)
            )
            if isinstance(target, ast.Name) and target.id == "NEEDS" and node.value is not None:
                needs = ast.literal_eval(node.value)
                shown = handlers.relative_to(REPO) if handlers.is_relative_to(REPO) else handlers
                prov.add(f"detector reads: NEEDS in {shown}")
                return {k: (bool(v[0]), bool(v[1])) for k, v in needs.items()}
    except (OSError, SyntaxError, ValueError):
        pass
    prov.add("detector reads: built-in copy of NEEDS (handlers.py not readable)")
    return dict(DEFAULT_NEEDS)


@dataclass(frozen=True)
class MediaProfile:
    """Per-frame costs of the Lambda path at one resolution, measured on this project's code.

    Measured 2026-11-26 on the 2-core dev machine (process CPU time, 4 stream-seconds of a generated
    25 fps stream; object sizes from the real clips media/chaplin.mp4 (360p) and media/bigbuckbunny.mp4
    (720p), since generated content compresses far better than real pictures)."""

    frame_bytes: float  # one frame object (zlib level 1 of the luma plane), real content
    audio_bytes: float  # one second of audio object
    decode_ms_per_frame: float  # converter: read_second
    pack_ms_per_frame: float  # converter: frame_to_bytes
    unpack_ms_per_object: float  # detector: frame_from_bytes / audio_from_bytes
    detect_ms_per_frame: dict[str, float]
    monolith_cpu_s_per_stream_s: float  # fallback when bench-output/media-bench.json is absent


PROFILES: dict[str, MediaProfile] = {
    "360p": MediaProfile(
        134_810,
        179_461,
        1.52,
        1.85,
        0.65,
        {"freeze": 0.56, "block_corruption": 0.16, "av_sync": 0.37},
        0.0454,
    ),
    "720p": MediaProfile(
        623_045,
        179_461,
        6.22,
        4.79,
        1.78,
        {"freeze": 1.28, "block_corruption": 0.42, "av_sync": 0.77},
        0.1365,
    ),
}
PROFILE_SOURCE = (
    "measured 2026-11-26 on the dev machine (cost_model/inputs.py PROFILES; monolith CPU from "
    "`monolith bench --duration 15 --repeats 1`)"
)


def read_bench(resolution: str, prov: Provenance, path: Path = BENCH_JSON) -> tuple[float, float | None]:
    """(monolith CPU-seconds per stream-second, peak RSS MB or None) at `resolution`: from `make bench`
    output when present, else the stored fallback."""
    if resolution not in PROFILES:
        raise InputError(f"unknown resolution {resolution!r}; known: {', '.join(PROFILES)}")
    if path.is_file():
        try:
            report = json.loads(path.read_text())
            for row in report["results"]:
                if row["resolution"] == resolution:
                    value = float(row["full_analysis"]["cpu_s_per_stream_s"])
                    if value <= 0:
                        raise InputError(f"{path}: cpu_s_per_stream_s must be > 0")
                    prov.add(f"monolith CPU: {value:g} CPU-s per stream-second at {resolution} from {path}")
                    rss = report.get("peak_rss_mb")
                    return value, float(rss) if rss else None
            raise InputError(f"{path}: no {resolution} result")
        except (ValueError, KeyError, TypeError) as error:
            raise InputError(f"{path}: not a media-bench report ({error})") from None
    value = PROFILES[resolution].monolith_cpu_s_per_stream_s
    prov.add(
        f"monolith CPU: {value:g} CPU-s per stream-second at {resolution} — DEFAULT ({path.name} not "
        f"found; run `make bench`), {PROFILE_SOURCE}"
    )
    return value, None
