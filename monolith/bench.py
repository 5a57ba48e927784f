"""`make bench` and `make calibrate`: what a stream-second costs in CPU, measured repeatedly and steadily.

For each resolution the same generated stream (a freeze and block damage in it) is, `repeats` times each:
1. only decoded into stream-seconds (the converter's work);
2. fully analysed by the monolith (`monolith.pipeline.analyze`, what `monolith serve` runs per stream);
3. handled the Lambda path's way in one process: decoded, every frame and the audio packed into their
   objects (`transport.py`), and each detector unpacking what it reads (`NEEDS`) before detecting — the
   CPU the converter and detector functions spend, without S3;
4. nothing: the interpreter with everything imported (its resident memory: the process base);
5. the host's reference: PyAV alone decoding the stream's pictures on one thread, none of this project's
   code, so that what it costs measures the host's speed of the moment and nothing we change.

Each measurement is a fresh child process (`python -m monolith.bench --child KIND PATH`), so no run inherits
another's heap or caches. The compared commands are interleaved: every run measures each kind at each
resolution once, in an order rotated from run to run, so a drift of the machine's speed reaches every kind
alike. CPU is read from the child's rusage (`os.wait4`: user + system time of all its threads) minus what it
had spent on its imports when the work began; the child leaves with `os._exit`, so no interpreter teardown
is counted. Children are pinned to one core (`os.sched_setaffinity`) where the machine has more than one:
the decoder runs one thread, and a pinned process is not migrated between caches.

A shared host runs faster or slower for minutes at a time (two quiet calibrations of one commit, 14
minutes apart, differed by 16% at 360p, and decoding alone moved alike). So every CPU figure is also given
in the reference host's CPU-seconds: each run's measurement divided by that run's host speed, the
reference's CPU over what it cost on the reference host (`calibration/host_reference.json`, `make
calibrate-reference`). Those normalised figures are the ones priced; the measured ones stay beside them.

Reported per resolution: the median, min and max over the runs of CPU-seconds per stream-second, the
throughput as a multiple of real time (wall), the ratios taken within each run, the memory one stream adds
to an interpreter that imported everything (the full analysis's peak RSS during its work, the kernel's
high-water mark reset as it began, over its RSS then), the imports-only child's RSS as the base, and,
from the Lambda-path runs, the per-frame costs of each step; object sizes come from real clips
(generated pictures compress far better).

The figures mean something only on a quiet machine: the load average before and after, and the CPU other
processes used during the run (`/proc/stat` less this process tree's rusage), are in the report, and a busy
machine is refused before anything is measured (`require_quiet`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

from calibration import HostReference, load_host_reference
from lambdas.converter.decode import DEFAULT_THREADS, iter_seconds, probe
from lambdas.detectors import NEEDS, registry
from lambdas.segment_analyzer.service import StreamState, analyse_segment
from lambdas.segment_analyzer.settings import SegmentSettings
from lambdas.shared.live import LivePlaylist, LiveSegment
from lambdas.shared.transport import audio_from_bytes, audio_to_bytes, frame_from_bytes, frame_to_bytes
from monolith.pipeline import analyze
from sample_streams.publish import cut_segments
from text_tables import render_text, text_table

SIZES = {"360p": (640, 360), "720p": (1280, 720), "1080p": (1920, 1080)}
# A small picture's run is short (10 s of 360p is ~0.6 CPU-s), and a short run's CPU time moves with what
# the host does for a moment (two quiet calibrations differed by 17% at 360p, by 1.5% at 720p and 1080p):
# smaller pictures get a longer stream, up to this many times `duration_s`, so every run does about the
# same work as `duration_s` seconds of the largest size.
MAX_STRETCH = 4.0
REPO = Path(__file__).resolve().parents[1]
# Real pictures for object sizes, scaled to each resolution: chaplin is 360p-class, bigbuckbunny 720p-class.
SIZE_CLIPS = {
    "360p": REPO / "media" / "chaplin.mp4",
    "720p": REPO / "media" / "bigbuckbunny.mp4",
    "1080p": REPO / "media" / "bigbuckbunny.mp4",
}
SIZE_SECONDS = 4  # seconds of each clip packed to measure object sizes
# What a child process does once everything is imported: the compared commands, and nothing (the base).
# "segments": the serverless design's function on the stream cut into live segments (each segment's
# window decoded and analysed in memory, `analyse_segment`), without its requests.
KINDS = ("imports", "decode", "full", "lambda_path", "segments", "reference")
SEGMENT_SECONDS = 2.0  # the segments' length: the live scenario's (cost_model Workload.segment_seconds)
# Quiet: other processes used at most this share of the machine's CPU (all cores together), measured over
# QUIET_SAMPLE_S before the run and over the whole run. 5% of 2 cores = a tenth of one core.
QUIET_SHARE = 0.05
QUIET_SAMPLE_S = 3.0
Log = Callable[[str], None]


class NotQuiet(RuntimeError):
    """Other processes use the CPU: figures measured now would not be comparable."""


@dataclass(frozen=True)
class ChildRun:
    """One measurement: a child process that imported everything, then did `kind`'s work on a stream."""

    kind: str
    cpu_s: float  # the work's CPU (all threads), from the child's rusage
    wall_s: float
    start_rss_kib: int  # resident once everything was imported, as the work began
    peak_rss_kib: int  # the largest resident size during the work alone
    steps: dict[str, float]  # the Lambda path's CPU per step (kind "lambda_path" only)


def run_bench(
    *,
    duration_s: float = 10.0,
    repeats: int = 5,
    sizes: list[str] | None = None,
    pin: bool = True,
    require_quiet: bool = True,
    reference_only: bool = False,
    host: HostReference | None = None,
    log: Log,
) -> dict[str, Any]:
    """Every kind of work at every size, `repeats` interleaved runs of fresh child processes, each CPU
    figure also normalised by `host` (the committed reference host by default); with `reference_only`,
    the reference workload alone (the reference host's own measurement). Raises NotQuiet before measuring
    when `require_quiet` and other processes use the CPU; HostReferenceError when the reference host was
    measured with another PyAV or lacks a size."""
    sizes = sizes or list(SIZES)
    unknown = [name for name in sizes if name not in SIZES]
    if unknown:
        raise ValueError(f"unknown size {', '.join(unknown)}; known: {', '.join(SIZES)}")
    kinds = ("reference",) if reference_only else KINDS
    if not reference_only:
        host = host or load_host_reference()
        host.check(sizes, av.__version__)
    log(f"checking that the machine is quiet ({QUIET_SAMPLE_S:g} s) …")
    before = quiet_check(QUIET_SAMPLE_S)
    if not before["quiet"] and require_quiet:
        raise NotQuiet(
            f"other processes used {before['other_cpu_share']:.0%} of the CPU over {QUIET_SAMPLE_S:g} s "
            f"(load average {before['load_average'][0]:.2f}); the figures would not be comparable: stop "
            f"them and run again (at most {QUIET_SHARE:.0%} allowed)"
        )
    if not before["quiet"]:
        log(f"WARNING: the machine is busy (others used {before['other_cpu_share']:.0%} of the CPU): these "
            "figures are not comparable with a quiet run's")
    core = pinned_core() if pin else None
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        streams = {name: generate_bench_stream(Path(tmp), name, bench_seconds(name, duration_s), log)
                   for name in sizes}
        infos = {name: probe(path) for name, path in streams.items()}
        runs: dict[str, dict[str, list[ChildRun]]] = {name: {kind: [] for kind in kinds} for name in sizes}
        window = CpuWindow()
        for run in range(repeats):
            order = kinds[run % len(kinds):] + kinds[: run % len(kinds)]  # each kind first in turn
            log(f"run {run + 1}/{repeats} ({', '.join(order)} at {', '.join(sizes)})")
            for name in sizes:
                for kind in order:
                    runs[name][kind].append(run_child(kind, streams[name], core))
        during = window.close()
    if reference_only:
        rows = [{"resolution": name, "stream_seconds": infos[name].seconds, "runs": repeats,
                 "reference": _summary(runs[name]["reference"], infos[name].seconds)} for name in sizes]
    else:
        assert host is not None
        rows = [_row(name, infos[name], runs[name], repeats, host) for name in sizes]
        for row in rows:
            m = row["monolith"]["cpu_s_per_stream_s"]
            log(f"  {row['resolution']}: monolith {m['median']:.4f} reference-host CPU-s per stream-second "
                f"(min {m['min']:.4f}, max {m['max']:.4f}; host speed {row['host_speed']['median']:.3f})")
    after_load = list(os.getloadavg())
    quiet = {
        "before": before,
        "during": during,
        "load_average_after": [round(x, 2) for x in after_load],
        "quiet": bool(before["quiet"] and during["quiet"]),
    }
    if not during["quiet"]:
        log(f"WARNING: other processes used {during['other_cpu_share']:.0%} of the CPU during the run: "
            "these figures are not comparable with a quiet run's")
    return {
        "benchmark": "CPU per stream-second: monolith, decode only, Lambda path in one process",
        "machine": machine(),
        "decoder_threads": DEFAULT_THREADS,
        "pinned_core": core,
        "repeats": repeats,
        "duration_s": duration_s,
        "segment_seconds": SEGMENT_SECONDS,
        "quiet": quiet,
        "host_reference": host.describe() if host and not reference_only else None,
        "results": rows,
    }


def bench_seconds(name: str, duration_s: float) -> float:
    """The bench's stream length at `name`: `duration_s` stretched by the largest size's pixels over its
    own (at most MAX_STRETCH times), in whole seconds."""
    width, height = SIZES[name]
    largest = max(w * h for w, h in SIZES.values())
    return float(round(duration_s * min(MAX_STRETCH, largest / (width * height))))


def generate_bench_stream(folder: Path, name: str, duration_s: float, log: Log) -> Path:
    """The bench's stream at `name`: a freeze and block damage in it, the same content every time."""
    from sample_streams import BlockCorruption, Freeze, generate_stream

    width, height = SIZES[name]
    path = folder / f"bench-{name}.mp4"
    log(f"{name}: generating a {duration_s:g} s {width}x{height} stream (freeze, block damage) …")
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
    return path


def _row(name: str, info: Any, runs: dict[str, list[ChildRun]], repeats: int,
         host: HostReference) -> dict[str, Any]:
    width, height = SIZES[name]
    seconds = info.seconds
    decode, full, lambda_path, segments = runs["decode"], runs["full"], runs["lambda_path"], runs["segments"]
    speeds = host_speeds(runs["reference"], seconds, host.cpu_s_per_stream_second[name])
    row: dict[str, Any] = {
        "resolution": name,
        "width": width,
        "height": height,
        "fps": info.fps,
        "stream_seconds": seconds,
        "runs": repeats,
        "reference": _summary(runs["reference"], seconds),
        "host_speed": _spread(speeds, digits=4),
        "host_speed_runs": [round(x, 4) for x in speeds],
        "decode_only": _summary(decode, seconds, speeds),
        "monolith": _summary(full, seconds, speeds),
        "lambda_path": _summary(lambda_path, seconds, speeds),
        "segment_analyzer": _summary(segments, seconds, speeds),
        "profile": {**_profile([r.steps for r in lambda_path], seconds * info.fps), **object_sizes(name)},
    }
    # CPU with CPU: how much the detectors add to decoding, and what the Lambda path's packing and unpacking
    # cost over the monolith's in-memory hand-over. Each ratio is taken within one run (its measurements
    # interleaved) and the median of the runs is reported.
    row["full_vs_decode_cpu_runs"] = _ratios(full, decode)
    row["full_vs_decode_cpu"] = round(statistics.median(row["full_vs_decode_cpu_runs"]), 3)
    row["lambda_path_vs_monolith_cpu_runs"] = _ratios(lambda_path, full)
    row["lambda_path_vs_monolith_cpu"] = round(statistics.median(row["lambda_path_vs_monolith_cpu_runs"]), 3)
    row["segment_analyzer_vs_monolith_cpu_runs"] = _ratios(segments, full)
    row["segment_analyzer_vs_monolith_cpu"] = round(
        statistics.median(row["segment_analyzer_vs_monolith_cpu_runs"]), 3)
    # Memory: what one analysed stream adds to an interpreter that imported everything, within each run.
    base = [r.start_rss_kib / 1024 for r in runs["imports"]]
    added = [max(0.0, (f.peak_rss_kib - f.start_rss_kib) / 1024) for f in full]
    row["process_base_mib"] = _spread(base, digits=1)
    row["peak_rss_mib_per_stream_runs"] = [round(x, 1) for x in added]
    row["peak_rss_mib_per_stream"] = round(statistics.median(added), 1)
    return row


# --- one measurement: a child process ----------------------------------------------------------------
def pinned_core() -> int | None:
    """The last core this process may run on, when it may run on more than one (the first takes most of
    the system's interrupts)."""
    cores = sorted(os.sched_getaffinity(0))
    return cores[-1] if len(cores) > 1 else None


def run_child(kind: str, path: Path, core: int | None) -> ChildRun:
    """`kind`'s work on `path` in a fresh interpreter; its CPU from the child's rusage (os.wait4)."""

    def pin() -> None:
        if core is not None:
            os.sched_setaffinity(0, {core})

    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "monolith.bench", "--child", kind, str(path)],
            cwd=REPO, stdout=subprocess.PIPE, stderr=errors, preexec_fn=pin,
        )
        assert process.stdout
        out = process.stdout.read()
        process.stdout.close()
        _, status, usage = os.wait4(process.pid, 0)  # not process.wait(): the rusage comes with the status
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            errors.seek(0)
            raise RuntimeError(f"bench child {kind} {path.name} failed ({process.returncode}): "
                               f"{errors.read().decode(errors='replace')[-2000:]}")
    report = json.loads(out)
    return ChildRun(
        kind=kind,
        cpu_s=usage.ru_utime + usage.ru_stime - report["cpu_at_start_s"],
        wall_s=report["wall_s"],
        start_rss_kib=report["start_rss_kib"],
        peak_rss_kib=report["peak_rss_kib"],
        steps=report["steps"],
    )


def _child(kind: str, path: str) -> None:
    """In the child: the work, then the CPU spent before it (imports) and its wall time on stdout."""
    if kind not in KINDS:
        raise SystemExit(f"unknown kind {kind!r}; known: {', '.join(KINDS)}")
    info = probe(path)
    steps: dict[str, float] = {}
    # Cut before measuring: a packager's work, not the function's.
    segments = cut_segments(path, SEGMENT_SECONDS) if kind == "segments" else []
    # The peak of the work alone: the kernel's high-water mark reset now (clear_refs 5), not the imports'
    Path("/proc/self/clear_refs").write_text("5")
    start_rss = _status_kib("VmRSS")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    start_cpu, start_wall = usage.ru_utime + usage.ru_stime, time.perf_counter()
    if kind == "decode":
        sum(1 for _ in iter_seconds(path, info))
    elif kind == "full":
        analyze(path)
    elif kind == "lambda_path":
        _lambda_path(Path(path), info, steps)
    elif kind == "segments":
        _segment_analyser(segments, path)
    elif kind == "reference":
        _reference_decode(path)
    wall = time.perf_counter() - start_wall
    sys.stdout.write(json.dumps({"cpu_at_start_s": start_cpu, "wall_s": wall, "steps": steps,
                                 "start_rss_kib": start_rss, "peak_rss_kib": _status_kib("VmHWM")}))
    sys.stdout.flush()
    os._exit(0)  # no interpreter teardown in the measured CPU


def _reference_decode(path: str) -> None:
    """The host's reference: libavcodec through PyAV alone, every picture of the video, one thread."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_count = 1
        for _ in container.decode(stream):
            pass


def _segment_analyser(segments: list[Any], source: str) -> None:
    """The serverless design's analysis of each segment in turn, from the stream's state after the one
    before, each window's segments read from memory (the function GETs them from S3)."""
    playlist = LivePlaylist(key="index.m3u8", ended=True, segments=tuple(
        LiveSegment(s.index, f"segment-{s.index:05d}.ts", s.start_s, s.duration_s) for s in segments))
    data = {s.index: s.data for s in segments}
    state = StreamState(stream_id="bench")
    for index in range(len(segments)):
        state = analyse_segment(playlist, index, lambda part: data[part.index], state, stream_id="bench",
                                source=source, detectors=SegmentSettings().detectors,
                                on_defect=lambda _second, _defect: None).state


def _status_kib(field: str) -> int:
    """A memory figure of this process from /proc/self/status (VmRSS: resident now; VmHWM: its peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


# --- is the machine quiet? ---------------------------------------------------------------------------
def _machine_busy_s() -> tuple[float, float]:
    """CPU-seconds all cores have been busy since boot (/proc/stat: user, nice, system, irq, softirq), and
    the seconds the hypervisor gave them to other guests (steal), kept apart: not this machine's work."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / tick, steal / tick


def _own_cpu_s() -> float:
    """CPU-seconds of this process and its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class CpuWindow:
    """The CPU other processes use from now until `close()`: the machine's busy time less this process's
    and its children's (children are waited for before closing)."""

    def __init__(self) -> None:
        self.wall, self.busy, self.own = time.monotonic(), _machine_busy_s(), _own_cpu_s()
        self.load_average = [round(x, 2) for x in os.getloadavg()]

    def close(self) -> dict[str, Any]:
        wall = time.monotonic() - self.wall
        busy, steal = _machine_busy_s()
        other = max(0.0, (busy - self.busy[0]) - (_own_cpu_s() - self.own))
        capacity = wall * (os.cpu_count() or 1)
        share = other / capacity if wall > 0 else 0.0
        return {"wall_s": round(wall, 1), "other_cpu_s": round(other, 2), "other_cpu_share": round(share, 4),
                "steal_share": round((steal - self.busy[1]) / capacity, 4) if wall > 0 else 0.0,
                "quiet": share <= QUIET_SHARE}


def quiet_check(seconds: float = QUIET_SAMPLE_S) -> dict[str, Any]:
    """The load average now and the share of the CPU other processes use over the next `seconds`."""
    window = CpuWindow()
    time.sleep(seconds)
    return {"load_average": window.load_average, **window.close()}


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


def _summary(samples: list[ChildRun], stream_s: float, speeds: list[float] | None = None) -> dict[str, Any]:
    """CPU-s per stream-second over the runs; with the runs' host speeds, in the reference host's CPU-s
    (`cpu_s_per_stream_s`) and as measured (`measured_cpu_s_per_stream_s`)."""
    measured = [r.cpu_s / stream_s for r in samples]
    summary = {
        "cpu_s_per_stream_s": _spread(measured),
        "x_realtime": round(stream_s / statistics.median(r.wall_s for r in samples), 2),
    }
    if speeds is not None:
        summary["measured_cpu_s_per_stream_s"] = summary["cpu_s_per_stream_s"]
        summary["cpu_s_per_stream_s"] = _spread(normalised(measured, speeds))
    return summary


def host_speeds(reference: list[ChildRun], stream_s: float, on_reference_host: float) -> list[float]:
    """Each run's host speed: what the reference cost in that run over what it cost on the reference host
    (above 1: the host was slower than the reference host)."""
    return [r.cpu_s / stream_s / on_reference_host for r in reference]


def normalised(measured: list[float], speeds: list[float]) -> list[float]:
    """Each run's CPU in the reference host's CPU-seconds: divided by the host speed of the same run."""
    return [m / s for m, s in zip(measured, speeds, strict=True)]


def _ratios(numerators: list[ChildRun], denominators: list[ChildRun]) -> list[float]:
    """CPU over CPU of measurements taken in the same runs."""
    return [round(n.cpu_s / d.cpu_s, 3) for n, d in zip(numerators, denominators, strict=True)]


def _spread(values: list[float], digits: int = 5) -> dict[str, Any]:
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
        "runs": len(values),
    }


def spread_percent(spread: dict[str, Any]) -> float:
    """(max - min) / median, in per cent: how far apart the runs lie."""
    return 100 * (spread["max"] - spread["min"]) / spread["median"] if spread["median"] else 0.0


def format_bench(report: dict[str, Any]) -> str:
    numbers = ("monolith CPU-s per stream-s", "spread", "measured", "host speed", "× RT", "decode only",
               "full/decode CPU", "throughput", "Lambda path CPU-s", "LP/monolith", "segments/monolith",
               "MiB/stream")
    cpu = text_table("stream", *numbers, right=numbers)
    for row in report["results"]:
        m = row["monolith"]["cpu_s_per_stream_s"]
        cpu.add_row(
            row["resolution"],
            f"{m['median']:.4f} [{m['min']:.4f}–{m['max']:.4f}]",
            f"{spread_percent(m):.0f}%",
            f"{row['monolith']['measured_cpu_s_per_stream_s']['median']:.4f}",
            f"{row['host_speed']['median']:.3f}",
            f"{row['monolith']['x_realtime']:.1f}",
            f"{row['decode_only']['cpu_s_per_stream_s']['median']:.4f}",
            f"{row['full_vs_decode_cpu']:.2f}",
            f"{1 / row['full_vs_decode_cpu']:.2f}×",
            f"{row['lambda_path']['cpu_s_per_stream_s']['median']:.4f}",
            f"{row['lambda_path_vs_monolith_cpu']:.2f}",
            f"{row['segment_analyzer_vs_monolith_cpu']:.2f}",
            f"{row.get('peak_rss_mib_per_stream', float('nan')):.0f}",
        )
    note = (
        f"median [min–max] of {report['repeats']} runs of a stream of {report['duration_s']:g} s at the "
        f"largest size, longer at smaller ones (monolith.bench.bench_seconds); CPU in the reference "
        f"host's CPU-seconds (measured / host speed, run by run; reference host: "
        f"{report['host_reference']['file']} of {report['host_reference']['generated']}); host speed = the "
        "reference workload's CPU in the run over the reference host's (above 1: slower); "
        "segments/monolith: the "
        f"serverless design's function on {SEGMENT_SECONDS:g} s segments over the monolith, CPU; "
        f"{report['machine']['cpus']} CPUs, {report['machine']['processor']}; throughput = decode-only CPU "
        "/ full CPU (the analysis's speed as a fraction of decoding alone), the ratios taken within each run "
        "(median of the runs); spread = (max - min) / median"
    )
    if "quiet" in report:
        note += "\n" + describe_quiet(report["quiet"])
    steps = ("decode", *NEEDS, "all detectors")
    per_frame = text_table("stream", *steps, right=steps)
    for row in report["results"]:
        profile = row["profile"]
        detect = profile["detect_ms_per_frame"]
        per_frame.add_row(row["resolution"], f"{profile['decode_ms_per_frame']:.3f}",
                          *(f"{detect[name]:.3f}" for name in NEEDS), f"{sum(detect.values()):.3f}")
    return render_text(cpu, note, "", "CPU ms per frame, median of the runs (process time around each call):",
                       per_frame)


def describe_quiet(quiet: dict[str, Any]) -> str:
    """One line: the load average before and after, and the CPU other processes used during the run."""
    before, during = quiet["before"], quiet["during"]
    verdict = "quiet" if quiet["quiet"] else "NOT QUIET: not comparable with a quiet run"
    return (
        f"machine {verdict}: load average {before['load_average'][0]:.2f} before, "
        f"{quiet['load_average_after'][0]:.2f} after (this run's own load included); other processes "
        f"used {before['other_cpu_share']:.1%} of the CPU before, {during['other_cpu_share']:.1%} during it"
    )


def write_json(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":  # a bench child: python -m monolith.bench --child KIND PATH
    if len(sys.argv) != 4 or sys.argv[1] != "--child":
        raise SystemExit("usage: python -m monolith.bench --child KIND PATH (run by run_bench)")
    _child(sys.argv[2], sys.argv[3])
