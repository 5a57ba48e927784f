"""`make bench` and `make calibrate`: what a stream-second costs in CPU, measured repeatedly.

For each resolution the same generated stream (a freeze and block damage in it) is, `repeats` times each:
1. only decoded into stream-seconds (the converter's work);
2. fully analysed by the monolith (`monolith.pipeline.analyze`, what `monolith serve` runs per stream);
3. handled the Lambda path's way in one process: decoded, every frame and the audio packed into their
   objects (`transport.py`), and each detector unpacking what it reads (`NEEDS`) before detecting — the
   CPU the converter and detector functions spend, without S3.

Everything is CPU time of this process (`time.process_time`, decoder threads included), so ratios compare
CPU with CPU. Reported per resolution: the median, min and max over the runs of CPU-seconds per
stream-second, the throughput as a multiple of real time (wall), and, from the Lambda-path runs, the
per-frame costs of each step; object sizes come from real clips (generated pictures compress far better).
A stream's peak memory is measured in a fresh process per resolution.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import platform
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import numpy as np

from lambdas.converter.decode import DEFAULT_THREADS, iter_seconds, probe
from lambdas.detectors import NEEDS, registry
from lambdas.shared.transport import audio_from_bytes, audio_to_bytes, frame_from_bytes, frame_to_bytes
from monolith.pipeline import analyze
from sample_streams import BlockCorruption, Freeze, generate_stream
from text_tables import render_text, text_table

SIZES = {"360p": (640, 360), "720p": (1280, 720), "1080p": (1920, 1080)}
REPO = Path(__file__).resolve().parents[1]
# Real pictures for object sizes, scaled to each resolution: chaplin is 360p-class, bigbuckbunny 720p-class.
SIZE_CLIPS = {
    "360p": REPO / "media" / "chaplin.mp4",
    "720p": REPO / "media" / "bigbuckbunny.mp4",
    "1080p": REPO / "media" / "bigbuckbunny.mp4",
}
SIZE_SECONDS = 4  # seconds of each clip packed to measure object sizes
Log = Callable[[str], None]


def run_bench(
    *,
    duration_s: float = 10.0,
    repeats: int = 5,
    sizes: list[str] | None = None,
    memory: bool = True,
    log: Log,
) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        for name in sizes or list(SIZES):
            if name not in SIZES:
                raise ValueError(f"unknown size {name!r}; known: {', '.join(SIZES)}")
            width, height = SIZES[name]
            path = Path(tmp) / f"bench-{name}.mp4"
            log(
                f"{name}: generating a {duration_s:g} s {width}x{height} stream (freeze, block damage) …"
            )
            generate_stream(
                path,
                duration_s=duration_s,
                width=width,
                height=height,
                fps=25,
                defects=(
                    Freeze(start_s=0.3 * duration_s, duration_s=0.3 * duration_s),
                    BlockCorruption(start_s=0.73 * duration_s),
                ),
                seed=1,
            )
            info = probe(path)
            seconds = info.seconds
            decode, full, lambda_path, steps = [], [], [], []
            for run in range(repeats):
                log(f"  {name}: run {run + 1}/{repeats}")
                decode.append(_timed(lambda path=path, info=info: sum(1 for _ in iter_seconds(path, info))))
                full.append(_timed(lambda path=path: analyze(path)))
                lp_steps: dict[str, float] = {}
                lambda_path.append(
                    _timed(lambda path=path, info=info, s=lp_steps: _lambda_path(path, info, s))
                )
                steps.append(lp_steps)
            row: dict[str, Any] = {
                "resolution": name,
                "width": width,
                "height": height,
                "fps": info.fps,
                "stream_seconds": seconds,
                "runs": repeats,
                "decode_only": _summary(decode, seconds),
                "monolith": _summary(full, seconds),
                "lambda_path": _summary(lambda_path, seconds),
                "profile": {**_profile(steps, seconds * info.fps), **object_sizes(name)},
            }
            # CPU with CPU: how much the detectors add to decoding, and what the Lambda path's packing and
            # unpacking cost over the monolith's in-memory hand-over. Each ratio is taken within one run
            # (its measurements back to back) and the median of the runs is reported: the machine's
            # speed drifts between runs by more than the ratios differ.
            row["full_vs_decode_cpu_runs"] = _ratios(full, decode)
            row["full_vs_decode_cpu"] = round(statistics.median(row["full_vs_decode_cpu_runs"]), 3)
            row["lambda_path_vs_monolith_cpu_runs"] = _ratios(lambda_path, full)
            row["lambda_path_vs_monolith_cpu"] = round(
                statistics.median(row["lambda_path_vs_monolith_cpu_runs"]), 3
            )
            if memory:
                row["peak_rss_mib_per_stream"] = stream_memory_mib(path)
            log(
                f"  {name}: monolith {row['monolith']['cpu_s_per_stream_s']['median']:.4f} CPU-s per "
                f"stream-second (min {row['monolith']['cpu_s_per_stream_s']['min']:.4f}, "
                f"max {row['monolith']['cpu_s_per_stream_s']['max']:.4f})"
            )
            rows.append(row)
    return {
        "benchmark": "CPU per stream-second: monolith, decode only, Lambda path in one process",
        "machine": machine(),
        "decoder_threads": DEFAULT_THREADS,
        "repeats": repeats,
        "duration_s": duration_s,
        "results": rows,
    }


def machine() -> dict[str, Any]:
    processor = platform.processor() or platform.machine()
    try:  # the CPU model says more than "x86_64" when comparing two runs
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                processor = text.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "processor": processor,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "av": av.__version__,
        "numpy": np.__version__,
    }


def _timed(work: Callable[[], Any]) -> tuple[float, float]:
    """(wall_s, cpu_s) of one run; cpu includes the decoder's threads."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


def _lambda_path(path: Path, info: Any, steps: dict[str, float]) -> None:
    """The converter's and the detector functions' work for every second, S3 left out; CPU per step."""
    detectors = registry()
    states: dict[str, Any] = dict.fromkeys(detectors)
    clock = time.process_time()

    def lap(step: str) -> None:
        nonlocal clock
        now = time.process_time()
        steps[step] = steps.get(step, 0.0) + now - clock
        clock = now

    for second in iter_seconds(path, info):
        lap("decode")
        frames = [frame_to_bytes(frame) for frame in second.frames]
        audio = audio_to_bytes(second.audio) if second.audio is not None else None
        lap("pack")
        for name, detect in detectors.items():
            video, sound = NEEDS[name]
            unpacked = type(second)(
                index=second.index,
                frames=[frame_from_bytes(data) for data in frames] if video else [],
                audio=audio_from_bytes(audio) if sound and audio is not None else None,
                is_last=second.is_last,
            )
            lap("unpack")
            _, states[name] = detect(unpacked, states[name])
            lap(f"detect:{name}")
        steps["objects_read"] = steps.get("objects_read", 0) + sum(
            (len(frames) if NEEDS[n][0] else 0) + (1 if NEEDS[n][1] and audio is not None else 0)
            for n in detectors
        )


def _profile(steps: list[dict[str, float]], frames: float) -> dict[str, Any]:
    """Median per-frame milliseconds of each Lambda-path step over the runs."""

    def per(step: str, count: float) -> float:
        return round(statistics.median(s[step] for s in steps) * 1000 / count, 4)

    reads = statistics.median(s["objects_read"] for s in steps)
    return {
        "decode_ms_per_frame": per("decode", frames),
        "pack_ms_per_frame": per("pack", frames),
        "unpack_ms_per_object": per("unpack", reads),
        "detect_ms_per_frame": {name: per(f"detect:{name}", frames) for name in NEEDS},
    }


def object_sizes(name: str) -> dict[str, Any]:
    """Mean size of a frame object and of a second's audio object, from a real clip scaled to `name`."""
    width, height = SIZES[name]
    clip = SIZE_CLIPS[name]
    frame_sizes: list[int] = []
    audio_sizes: list[int] = []
    for second in iter_seconds(clip):
        if second.index >= SIZE_SECONDS:
            break
        for frame in second.frames:
            luma = frame.luma
            if luma.shape != (height, width):
                luma = _scaled(luma, width, height)
            frame_sizes.append(len(frame_to_bytes(dataclasses.replace(frame, luma=luma))))
        if second.audio is not None:
            audio_sizes.append(len(audio_to_bytes(second.audio)))
    return {
        "frame_bytes": round(statistics.mean(frame_sizes)),
        "audio_bytes": round(statistics.mean(audio_sizes)) if audio_sizes else 0,
        "object_sizes_from": (
            f"{clip.relative_to(REPO)}, first {SIZE_SECONDS} s, luma scaled to {width}x{height}"
        ),
    }


def _scaled(luma: np.ndarray, width: int, height: int) -> np.ndarray:
    """The luma plane resized with FFmpeg's scaler (bicubic), as a real 1080p picture would be sampled."""
    frame = av.VideoFrame.from_ndarray(luma, format="gray")
    return frame.reformat(width=width, height=height, format="gray").to_ndarray()


def stream_memory_mib(path: Path) -> float:
    """Peak memory one analysed stream adds to a fresh process that already imported everything."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return round(pool.apply(_memory_child, (str(path),)), 1)


def _memory_child(path: str) -> float:
    analyze(path, detectors=["freeze"])  # warm the imports and the decoder's first allocations
    base = _rss_kib()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    analyze(path)
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, before)
    return max(0.0, (peak - base) / 1024)


def _rss_kib() -> float:
    for text in Path("/proc/self/status").read_text().splitlines():
        if text.startswith("VmRSS:"):
            return float(text.split()[1])
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _summary(samples: list[tuple[float, float]], stream_s: float) -> dict[str, Any]:
    walls = [w for w, _ in samples]
    cpus = [c / stream_s for _, c in samples]
    return {
        "cpu_s_per_stream_s": _spread(cpus),
        "x_realtime": round(stream_s / statistics.median(walls), 2),
    }


def _ratios(numerators: list[tuple[float, float]], denominators: list[tuple[float, float]]) -> list[float]:
    """CPU over CPU of (wall, cpu) samples taken in the same runs."""
    return [round(n[1] / d[1], 3) for n, d in zip(numerators, denominators, strict=True)]


def _spread(values: list[float]) -> dict[str, Any]:
    return {
        "median": round(statistics.median(values), 5),
        "min": round(min(values), 5),
        "max": round(max(values), 5),
        "runs": len(values),
    }


def format_bench(report: dict[str, Any]) -> str:
    numbers = ("monolith CPU-s per stream-s", "× RT", "decode only", "full/decode CPU", "throughput",
               "Lambda path CPU-s", "LP/monolith", "MiB/stream")
    cpu = text_table("stream", *numbers, right=numbers)
    for row in report["results"]:
        m = row["monolith"]["cpu_s_per_stream_s"]
        cpu.add_row(
            row["resolution"],
            f"{m['median']:.4f} [{m['min']:.4f}–{m['max']:.4f}]",
            f"{row['monolith']['x_realtime']:.1f}",
            f"{row['decode_only']['cpu_s_per_stream_s']['median']:.4f}",
            f"{row['full_vs_decode_cpu']:.2f}",
            f"{1 / row['full_vs_decode_cpu']:.2f}×",
            f"{row['lambda_path']['cpu_s_per_stream_s']['median']:.4f}",
            f"{row['lambda_path_vs_monolith_cpu']:.2f}",
            f"{row.get('peak_rss_mib_per_stream', float('nan')):.0f}",
        )
    note = (
        f"median [min–max] of {report['repeats']} runs of a {report['duration_s']:g} s stream; "
        f"{report['machine']['cpus']} CPUs, {report['machine']['processor']}; throughput = decode-only CPU "
        "/ full CPU (the analysis's speed as a fraction of decoding alone), the ratios taken within each run "
        "(median of the runs)"
    )
    steps = ("decode", *NEEDS, "all detectors")
    per_frame = text_table("stream", *steps, right=steps)
    for row in report["results"]:
        profile = row["profile"]
        detect = profile["detect_ms_per_frame"]
        per_frame.add_row(row["resolution"], f"{profile['decode_ms_per_frame']:.3f}",
                          *(f"{detect[name]:.3f}" for name in NEEDS), f"{sum(detect.values()):.3f}")
    return render_text(cpu, note, "", "CPU ms per frame, median of the runs (process time around each call):",
                       per_frame)


def write_json(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
