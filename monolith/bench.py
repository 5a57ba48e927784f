"""`make bench`: how fast the monolith analyses streams, measured as ratios within one run.

For each resolution the same generated stream is (1) only decoded into stream-seconds, the converter's
work, and (2) fully analysed. Reported: throughput as a multiple of real time, CPU-seconds per
stream-second (the cost model reads this), and full-analysis / decode-only throughput.
"""

from __future__ import annotations

import json
import os
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lambdas.converter.decode import DEFAULT_THREADS, iter_seconds, probe
from monolith.pipeline import analyze
from sample_streams import BlockCorruption, Freeze, generate_stream

SIZES = {"360p": (640, 360), "720p": (1280, 720)}


def run_bench(
    *, duration_s: float = 20.0, repeats: int = 2, sizes: list[str] | None = None, log: Callable[[str], None]
) -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        for name in sizes or list(SIZES):
            width, height = SIZES[name]
            path = Path(tmp) / f"bench-{name}.mp4"
            log(f"generating a {duration_s:g} s {name} stream with a freeze and block damage …")
            generate_stream(
                path,
                duration_s=duration_s,
                width=width,
                height=height,
                fps=25,
                defects=(Freeze(start_s=5.0, duration_s=3.0), BlockCorruption(start_s=12.3)),
                seed=1,
            )
            info = probe(path)
            decode = _best(repeats, lambda path=path, info=info: sum(1 for _ in iter_seconds(path, info)))
            full = _best(repeats, lambda path=path: analyze(path))
            stream_s = info.duration_s
            row = {
                "resolution": name,
                "width": width,
                "height": height,
                "fps": info.fps,
                "stream_seconds": round(stream_s, 3),
                "decode_only": _rates(decode, stream_s),
                "full_analysis": _rates(full, stream_s),
            }
            row["full_vs_decode_throughput"] = round(
                row["full_analysis"]["x_realtime"] / row["decode_only"]["x_realtime"], 3
            )
            log(
                f"  {name}: decode-only {row['decode_only']['x_realtime']:.1f}x real time, "
                f"full {row['full_analysis']['x_realtime']:.1f}x"
            )
            results.append(row)
    return {
        "benchmark": "monolith media pipeline",
        "machine": {"cpus": os.cpu_count()},
        "decoder_threads": DEFAULT_THREADS,
        "repeats_best_of": repeats,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "results": results,
    }


def _best(repeats: int, work: Callable[[], Any]) -> tuple[float, float]:
    """(wall_s, cpu_s) of the fastest of `repeats` runs; cpu includes the decoder's threads."""
    best: tuple[float, float] | None = None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        work()
        sample = (time.perf_counter() - wall, time.process_time() - cpu)
        best = sample if best is None or sample[0] < best[0] else best
    assert best is not None
    return best


def _rates(timing: tuple[float, float], stream_s: float) -> dict[str, float]:
    wall, cpu = timing
    return {
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "x_realtime": round(stream_s / wall, 2),
        "x_realtime_per_core": round(stream_s / cpu, 2),
        "cpu_s_per_stream_s": round(cpu / stream_s, 4),
    }


def format_bench(report: dict[str, Any]) -> str:
    head = (
        f"{'stream':<8}{'decode x RT':>12}{'full x RT':>11}{'full x RT/core':>16}"
        f"{'CPU-s per stream-s':>20}{'full/decode':>13}"
    )
    lines = [head, "-" * len(head)]
    for row in report["results"]:
        lines.append(
            f"{row['resolution']:<8}{row['decode_only']['x_realtime']:>12.1f}"
            f"{row['full_analysis']['x_realtime']:>11.1f}{row['full_analysis']['x_realtime_per_core']:>16.1f}"
            f"{row['full_analysis']['cpu_s_per_stream_s']:>20.3f}{row['full_vs_decode_throughput']:>13.2f}"
        )
    return "\n".join(lines)


def write_json(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
