"""`make calibrate` = `python -m monolith calibrate`: measure, then write calibration/calibration.json.

Two phases, on a quiet machine (a busy one is refused before anything is measured, and a run during which
other processes used the CPU is not written):
1. CPU (`monolith.bench`): decode only, the monolith and the Lambda path at each resolution, interleaved
   fresh child processes, CPU from their rusage, pinned to one core, each run's figures divided by the
   host's speed in that run (a reference workload's CPU over the reference host's,
   `calibration/host_reference.json`, written by `--reference` = `make calibrate-reference`);
2. whole-task memory (`monolith.task_memory`): `monolith serve --concurrency N` for each concurrency the
   stack may be configured with, N streams at once at each resolution, on a LocalStack started for it
   (real SQS and S3), the peak of the process tree.
The file says when, on what machine, with which command, and how quiet the machine was; the cost model and
the after stack read it by default, so commit it after running this.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from calibration import (
    CALIBRATION_PATH,
    HOST_REFERENCE_PATH,
    Calibration,
    CalibrationError,
    HostReferenceError,
    load,
)

REPO = Path(__file__).resolve().parents[1]

# The concurrencies measured by default: the after stack's default (4, cdk.json after_concurrency), one
# stream per task, and the steps between and above that the README's scenarios use.
CONCURRENCIES = (1, 2, 4, 8)
TASK_ATTEMPTS = 3  # whole-task runs tried before the calibration gives up (see _measure_with_retries)
AGREE_PERCENT = 10  # two calibrations of one commit agree when every figure lies within ±10% (issue 21)
Log = Callable[[str], None]


def measure_tasks(*, sizes: list[str], concurrencies: list[int], repeats: int, duration_s: float,
                  log: Log) -> dict[str, Any]:
    """Every concurrency at every size, `repeats` interleaved runs, on a LocalStack started for them."""
    from monolith.bench import generate_bench_stream
    from monolith.local_tasks import load_launcher
    from monolith.task_memory import measure_task, service_aws

    runs: dict[str, dict[str, list[dict[str, Any]]]] = {name: {str(n): [] for n in concurrencies}
                                                        for name in sizes}
    with tempfile.TemporaryDirectory(prefix="calibrate-") as tmp:
        folder = Path(tmp)
        streams = {name: generate_bench_stream(folder, name, duration_s, log) for name in sizes}
        launcher = load_launcher()
        log("starting LocalStack (SQS and S3 for the tasks) …")
        server = launcher.start(folder / "localstack")
        try:
            aws = service_aws(server.client_env(), "calibrate")
            for run in range(repeats):
                for name in sizes:
                    for n in concurrencies:
                        log(f"task run {run + 1}/{repeats}: {name}, {n} stream(s) at once")
                        begun = time.monotonic()
                        task = _measure_with_retries(
                            lambda attempt, name=name, n=n, run=run: measure_task(
                                streams[name], n, aws, folder / f"tasks-{run}-{name}-{n}-{attempt}"),
                            log=log)
                        log(f"  peak {task.peak_mib:.0f} MiB over {task.processes} processes "
                            f"(idle {task.idle_mib:.0f} MiB, sampled peak {task.sampled_peak_mib:.0f} MiB); "
                            f"{time.monotonic() - begun:.0f} s, the jobs {task.wall_s:.0f} s")
                        runs[name][str(n)].append(asdict(task))
        finally:
            launcher.stop(server.pid)
    return {"stream_seconds": duration_s, "runs": repeats, "concurrencies": concurrencies,
            "by_resolution": runs}


def _measure_with_retries(measure: Callable[[int], Any], *, log: Log, attempts: int = TASK_ATTEMPTS) -> Any:
    """A whole-task run, measured again when it could not be measured as asked (on a busy machine a worker
    can finish its stream and take a second before another worker's poll returns: then not every stream
    ran at once); the last attempt's error goes up."""
    from monolith.task_memory import TaskMemoryError

    for attempt in range(1, attempts + 1):
        try:
            return measure(attempt)
        except TaskMemoryError as error:
            if attempt == attempts:
                raise
            log(f"  not measured ({str(error).splitlines()[0]}); attempt {attempt + 1}/{attempts}")
    raise AssertionError("unreachable")


def _spread(values: list[float]) -> dict[str, Any]:
    return {"median": round(statistics.median(values), 1), "min": round(min(values), 1),
            "max": round(max(values), 1), "runs": len(values)}


def task_section(tasks: dict[str, Any]) -> dict[str, Any]:
    """The calibration's `task` section from `measure_tasks`' report: each figure's median and spread."""
    rows = tasks["by_resolution"]

    def table(figure: str) -> dict[str, Any]:
        return {name: {n: _spread([r[figure] for r in runs]) for n, runs in by_n.items()}
                for name, by_n in rows.items()}

    processes = {n: max(r["processes"] for by_n in rows.values() for r in by_n[n])
                 for n in next(iter(rows.values()))}
    return {
        "comment": "Whole tasks: `monolith serve --concurrency N` (supervisor, N workers, resource "
        "tracker) on LocalStack's SQS and S3, each worker analysing one stream, all at once. peak_mib = the "
        "sum of each process's own peak RSS (VmHWM), which sizes the task (monolith/sizing.py); "
        "sampled_peak_mib = the largest sum of RSS seen in one sample; idle_mib = the tree with its workers "
        "polling, before any job.",
        "stream_seconds": tasks["stream_seconds"],
        "runs": tasks["runs"],
        "processes": processes,
        "peak_mib": table("peak_mib"),
        "sampled_peak_mib": table("sampled_peak_mib"),
        "idle_mib": table("idle_mib"),
        "runs_by_resolution": rows,
    }


def _header(report: dict[str, Any], comment: str, command: str) -> dict[str, Any]:
    """What every measured file opens with: what it is, when, on what machine, by which command, how quiet
    the machine was."""
    m = report["machine"]
    return {
        "comment": comment,
        "generated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {**m, "description": f"{m['cpus']}-CPU {m['processor']} ({m['platform']})"},
        "command": command,
        "runs": report["repeats"],
        "stream_seconds": report["duration_s"],
        "pinned_core": report["pinned_core"],
        "quiet": report["quiet"],
    }


def _command(target: str, args: argparse.Namespace, options: str) -> str:
    """The command line that made a file, with the flags that make its figures incomparable."""
    return (f"{target} = python -m monolith calibrate {options}"
            + (" --allow-busy" if args.allow_busy else "") + (" --no-pin" if args.no_pin else ""))


def document(report: dict[str, Any], tasks: dict[str, Any], command: str) -> dict[str, Any]:
    """The calibration document for a `monolith.bench.run_bench` report and a `measure_tasks` report."""
    rows = report["results"]
    comment = ("Generated by `make calibrate` (python -m monolith calibrate): monolith.bench and "
               "monolith.task_memory measured on the machine below. The cost model and the after stack's "
               "task size read this file. CPU figures are in the reference host's CPU-seconds "
               "(host.reference; the measured ones are measured_cpu_s_per_stream_second).")
    return {
        **_header(report, comment, command),
        # Every CPU figure below is in the reference host's CPU-seconds (measured / host speed, run by run);
        # the measured ones sit beside them as measured_cpu_s_per_stream_second.
        "host": {
            "reference": report["host_reference"],
            "speed": {r["resolution"]: r["host_speed"] for r in rows},
            "speed_runs": {r["resolution"]: r["host_speed_runs"] for r in rows},
        },
        "monolith": {
            "cpu_s_per_stream_second": {r["resolution"]: r["monolith"]["cpu_s_per_stream_s"] for r in rows},
            "measured_cpu_s_per_stream_second": {
                r["resolution"]: r["monolith"]["measured_cpu_s_per_stream_s"] for r in rows
            },
            "decode_only_cpu_s_per_stream_second": {
                r["resolution"]: r["decode_only"]["cpu_s_per_stream_s"] for r in rows
            },
            "x_realtime": {r["resolution"]: r["monolith"]["x_realtime"] for r in rows},
            "peak_rss_mib_per_stream": {r["resolution"]: r["peak_rss_mib_per_stream"] for r in rows},
            "peak_rss_mib_per_stream_runs": {
                r["resolution"]: r["peak_rss_mib_per_stream_runs"] for r in rows
            },
            "process_base_mib": {r["resolution"]: r["process_base_mib"] for r in rows},
            # CPU of the full analysis over decoding alone, taken within each run; the median reported.
            "full_vs_decode_cpu": {r["resolution"]: r["full_vs_decode_cpu"] for r in rows},
            "full_vs_decode_cpu_runs": {r["resolution"]: r["full_vs_decode_cpu_runs"] for r in rows},
        },
        "task": task_section(tasks),
        "lambda_path": {
            "cpu_s_per_stream_second": {
                r["resolution"]: r["lambda_path"]["cpu_s_per_stream_s"] for r in rows
            },
            "measured_cpu_s_per_stream_second": {
                r["resolution"]: r["lambda_path"]["measured_cpu_s_per_stream_s"] for r in rows
            },
            "vs_monolith_cpu": {r["resolution"]: r["lambda_path_vs_monolith_cpu"] for r in rows},
            "vs_monolith_cpu_runs": {r["resolution"]: r["lambda_path_vs_monolith_cpu_runs"] for r in rows},
        },
        # The serverless design's function on the same stream cut into live segments, in memory.
        "segment_analyzer": {
            "segment_seconds": report["segment_seconds"],
            "cpu_s_per_stream_second": {
                r["resolution"]: r["segment_analyzer"]["cpu_s_per_stream_s"] for r in rows
            },
            "measured_cpu_s_per_stream_second": {
                r["resolution"]: r["segment_analyzer"]["measured_cpu_s_per_stream_s"] for r in rows
            },
            "vs_monolith_cpu": {r["resolution"]: r["segment_analyzer_vs_monolith_cpu"] for r in rows},
            "vs_monolith_cpu_runs": {
                r["resolution"]: r["segment_analyzer_vs_monolith_cpu_runs"] for r in rows
            },
        },
        "profiles": {"by_resolution": {r["resolution"]: r["profile"] for r in rows}},
    }


def format_tasks(section: dict[str, Any]) -> str:
    """The whole-task table, and what one interpreter per stream costs: the idle tree at N workers over
    the idle tree at one (the extra interpreters), as a share of the task's peak."""
    from text_tables import render_text, text_table

    numbers = ("streams", "processes", "peak MiB [min–max]", "sampled peak", "idle", "extra interpreters")
    table = text_table("stream", *numbers, right=numbers)
    for name, by_n in section["peak_mib"].items():
        idle = section["idle_mib"][name]
        one = idle.get("1", {}).get("median")
        for n, peak in by_n.items():
            extra = idle[n]["median"] - one if one is not None and n != "1" else None
            table.add_row(
                name, n, str(section["processes"][n]),
                f"{peak['median']:.0f} [{peak['min']:.0f}–{peak['max']:.0f}]",
                f"{section['sampled_peak_mib'][name][n]['median']:.0f}", f"{idle[n]['median']:.0f}",
                "" if extra is None else f"{extra:.0f} MiB ({100 * extra / peak['max']:.0f}% of the peak)",
            )
    note = (f"median [min–max] of {section['runs']} runs, each worker analysing a "
            f"{section['stream_seconds']:g} s stream; extra interpreters = idle tree − idle tree of one "
            "worker: what threads, or one process per task, would save")
    return render_text(table, note)


def compare(first: Calibration, second: Calibration) -> tuple[str, float]:
    """Every figure that prices or sizes, in both files, and how far the second lies from the first; the
    table and the largest difference in per cent."""
    from text_tables import render_text, text_table

    def median(cal: Calibration, table: str, resolution: str) -> float:
        return float(cal.data["monolith"][table][resolution]["median"])

    numbers = ("first", "second", "difference")
    table = text_table("stream", "figure", *numbers, right=numbers)
    worst = 0.0
    for resolution in (r for r in first.resolutions if r in second.resolutions):
        figures = [
            ("monolith CPU-s per stream-second",
             *(c.monolith_cpu(resolution).median for c in (first, second))),
            ("decode only CPU-s per stream-second",
             *(median(c, "decode_only_cpu_s_per_stream_second", resolution) for c in (first, second))),
            ("Lambda path CPU-s per stream-second",
             *(c.lambda_path_cpu(resolution).median for c in (first, second))),
            ("MiB per stream", *(c.monolith_peak_rss_mib(resolution) for c in (first, second))),
        ]
        if all("segment_analyzer" in c.data for c in (first, second)):
            figures.insert(3, ("segment analyser CPU-s per stream-second",
                               *(c.segment_analyzer_cpu(resolution).median for c in (first, second))))
        both = sorted(set(first.task_concurrencies(resolution)) & set(second.task_concurrencies(resolution)))
        figures += [(f"task of {n} peak MiB (largest run)",
                     *(c.task_peak_mib(resolution, n).max for c in (first, second))) for n in both]
        for name, a, b in figures:
            percent = 100 * (b - a) / a if a else (0.0 if a == b else float("inf"))
            worst = max(worst, abs(percent))
            table.add_row(resolution, name, f"{a:.4g}", f"{b:.4g}", f"{percent:+.1f}%")
    verdict = (f"largest difference {worst:.1f}%: "
               + ("they agree" if worst <= AGREE_PERCENT else f"outside ±{AGREE_PERCENT}%"))
    units = {c.cpu_unit for c in (first, second)}
    if len(units) > 1:
        verdict += ("\nWARNING: one file's CPU is in the reference host's CPU-seconds, the other's as "
                    "measured: their CPU figures are not in the same unit")
    return render_text(f"first: {first.describe()}", f"second: {second.describe()}", table, verdict,
                       *_measured_table(first, second), *_ratio_table(first, second)), worst


def _measured_table(first: Calibration, second: Calibration) -> list[Any]:
    """The monolith's CPU as measured and the host's speed in each file (not in the verdict: the priced
    figure is the measured one over the host speed)."""
    from text_tables import text_table

    if not all("host" in c.data for c in (first, second)):
        return []
    numbers = ("first", "second", "difference")
    table = text_table("stream", "as measured, not priced", *numbers, right=numbers)
    for resolution in (r for r in first.resolutions if r in second.resolutions):
        for label, values in (
            ("monolith CPU-s per stream-second",
             [c.data["monolith"]["measured_cpu_s_per_stream_second"][resolution]["median"]
              for c in (first, second)]),
            ("host speed (reference CPU / reference host's)",
             [c.data["host"]["speed"][resolution]["median"] for c in (first, second)]),
        ):
            a, b = (float(v) for v in values)
            table.add_row(resolution, label, f"{a:.4g}", f"{b:.4g}", f"{100 * (b - a) / a:+.1f}%")
    return ["", table, "the priced CPU figures above are these measurements over the host speed of their own "
            "run: a host faster or slower for a while moves these two alike, and the priced figure not"]


# CPU over CPU, each taken within one run (the median of the runs): what the code decides, with the host's
# speed of the moment cancelled. (file section, table, what it compares)
RATIOS = (("monolith", "full_vs_decode_cpu", "monolith / decode only"),
          ("segment_analyzer", "vs_monolith_cpu", "segment analyser / monolith"),
          ("lambda_path", "vs_monolith_cpu", "Lambda path / monolith"))


def _ratio_table(first: Calibration, second: Calibration) -> list[Any]:
    """The within-run CPU ratios of both files side by side (not in the verdict: they price nothing)."""
    from text_tables import text_table

    numbers = ("first", "second", "difference")
    table = text_table("stream", "CPU ratio within each run", *numbers, right=numbers)
    worst = 0.0
    for resolution in (r for r in first.resolutions if r in second.resolutions):
        for section, name, label in RATIOS:
            values = [(c.data.get(section) or {}).get(name, {}).get(resolution) for c in (first, second)]
            if None in values:
                continue
            a, b = (float(v) for v in values)
            percent = 100 * (b - a) / a
            worst = max(worst, abs(percent))
            table.add_row(resolution, label, f"{a:.3f}", f"{b:.3f}", f"{percent:+.1f}%")
    if not table.rows:
        return []
    return ["", table, f"largest difference of the ratios {worst:.1f}% (a host faster or slower for a while "
            "moves every CPU figure of a run alike; the ratios cancel it)"]


def _compare(paths: list[Path]) -> int:
    try:
        first, second = (load(path) for path in paths)
        text, worst = compare(first, second)
    except CalibrationError as error:
        return _refuse(str(error))
    print(text)
    return 0 if worst <= AGREE_PERCENT else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monolith calibrate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="CPU runs per measurement (median and spread)")
    parser.add_argument("--duration", type=float, default=10.0, help="generated stream length, seconds")
    parser.add_argument("--sizes", default="360p,720p,1080p", help="comma list of resolutions")
    parser.add_argument("--concurrencies", default=",".join(map(str, CONCURRENCIES)),
                        help="comma list of streams per task to measure whole tasks at "
                        "(default: %(default)s)")
    parser.add_argument("--task-repeats", type=int, default=3, help="whole-task runs per concurrency")
    parser.add_argument("--out", type=Path, help=f"default: {CALIBRATION_PATH.relative_to(REPO)}")
    parser.add_argument("--allow-busy", action="store_true",
                        help="measure even when other processes use the CPU (the file says so)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the measured processes to a core")
    parser.add_argument("--reference", action="store_true",
                        help="measure only the reference workload and write the reference host's file "
                        f"(default --out {HOST_REFERENCE_PATH.relative_to(REPO)}): the unit every later "
                        "calibration's CPU is priced in; no whole tasks are measured")
    parser.add_argument("--compare", type=Path, nargs=2, metavar=("FIRST", "SECOND"),
                        help=f"measure nothing: print how far two calibration files lie apart (exit 1 when a "
                        f"figure differs by more than {AGREE_PERCENT}%%)")
    args = parser.parse_args(argv)
    if args.compare:
        return _compare(args.compare)
    args.out = args.out or (HOST_REFERENCE_PATH if args.reference else CALIBRATION_PATH)
    from monolith.bench import SIZES, NotQuiet, format_bench, run_bench

    # Checked before minutes of measuring, not after.
    sizes = [name.strip() for name in args.sizes.split(",") if name.strip()]
    unknown = [name for name in sizes if name not in SIZES]
    if not sizes or unknown:
        return _refuse(f"--sizes takes a comma list of {', '.join(SIZES)}, got {args.sizes!r}")
    try:
        concurrencies = sorted({int(n) for n in args.concurrencies.split(",") if n.strip()})
    except ValueError:
        concurrencies = []
    if not concurrencies or concurrencies[0] < 1:
        return _refuse(f"--concurrencies takes a comma list of whole numbers from 1, "
                       f"got {args.concurrencies!r}")
    if args.repeats < 1 or args.task_repeats < 1 or args.duration < 2:
        return _refuse("--repeats and --task-repeats must be at least 1 and --duration at least 2 s")
    if not args.out.parent.is_dir():
        return _refuse(f"--out {args.out}: no such directory {args.out.parent}")

    started = time.monotonic()
    if args.reference:
        return _measure_reference(args, sizes, started)
    try:
        report = run_bench(duration_s=args.duration, repeats=args.repeats, sizes=sizes, pin=not args.no_pin,
                           require_quiet=not args.allow_busy, log=_log)
    except NotQuiet as error:
        return _refuse(f"{error} (or pass --allow-busy: the file will say the machine was not quiet)", code=1)
    except HostReferenceError as error:
        return _refuse(str(error))
    print(format_bench(report))
    if not report["quiet"]["quiet"] and not args.allow_busy:
        return _refuse(f"the machine was not quiet during the run; {args.out} is left as it was: run again "
                       "with nothing else running", code=1)
    from monolith.task_memory import TaskMemoryError

    try:
        tasks = measure_tasks(sizes=sizes, concurrencies=concurrencies, repeats=args.task_repeats,
                              duration_s=args.duration, log=_log)
    except TaskMemoryError as error:
        return _refuse(f"the whole-task memory could not be measured: {error}; {args.out} is left as it was",
                       code=1)
    command = _command(
        "make calibrate", args,
        f"--repeats {args.repeats} --duration {args.duration:g} --sizes {','.join(sizes)}"
        f" --concurrencies {','.join(map(str, concurrencies))} --task-repeats {args.task_repeats}")
    calibration = document(report, tasks, command)
    args.out.write_text(json.dumps(calibration, indent=2) + "\n")
    print()
    print(format_tasks(calibration["task"]))
    print(f"wrote {args.out} ({(time.monotonic() - started) / 60:.1f} min)")
    return 0


def _measure_reference(args: argparse.Namespace, sizes: list[str], started: float) -> int:
    """The reference host's file: the reference workload alone, `--repeats` interleaved runs."""
    from monolith.bench import NotQuiet, run_bench

    try:
        report = run_bench(duration_s=args.duration, repeats=args.repeats, sizes=sizes, pin=not args.no_pin,
                           require_quiet=not args.allow_busy, reference_only=True, log=_log)
    except NotQuiet as error:
        return _refuse(f"{error} (or pass --allow-busy: the file will say the machine was not quiet)", code=1)
    if not report["quiet"]["quiet"] and not args.allow_busy:
        return _refuse(f"the machine was not quiet during the run; {args.out} is left as it was", code=1)
    rows = report["results"]
    comment = ("The reference host: what the reference workload (PyAV alone decoding the bench stream's "
               "pictures on one thread, monolith.bench) cost here. `make calibrate` measures the same "
               "workload in every run and prices every CPU figure in this host's CPU-seconds (measured / "
               "(reference now / reference here)). Regenerate only with a new PyAV, then recalibrate.")
    command = _command("make calibrate-reference", args, f"--reference --repeats {args.repeats} "
                       f"--duration {args.duration:g} --sizes {','.join(sizes)}")
    document = {
        **_header(report, comment, command),
        "reference": {
            "stream_seconds": {r["resolution"]: r["stream_seconds"] for r in rows},
            "cpu_s_per_stream_second": {r["resolution"]: r["reference"]["cpu_s_per_stream_s"] for r in rows},
        },
    }
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    for r in rows:
        spread = r["reference"]["cpu_s_per_stream_s"]
        print(f"{r['resolution']}: reference {spread['median']:.5f} CPU-s per stream-second "
              f"[{spread['min']:.5f}–{spread['max']:.5f}] over {spread['runs']} runs")
    print(f"wrote {args.out} ({(time.monotonic() - started) / 60:.1f} min)")
    return 0


def _refuse(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
