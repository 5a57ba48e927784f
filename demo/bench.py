"""`python -m demo.bench`: the before and the after on LocalStack, per stream-second, at 360p.

Not a test: timings depend on the machine. Deploys the stack on a fresh LocalStack, runs the same 360p
stream twice (the first run pays the Lambda cold starts, the second finds warm environments), and
reports for each run the end-to-end wall time per stream-second and the Lambda-path time per
stream-second — the sum of the handlers' durations from their REPORT lines (the billed busy time: CPU
plus the S3 round trips, without init) and the CPU time the process executor adds to those lines, each
divided by the stream-seconds. Then the after on the same file, twice (a task started per run, so both
pay the process start): end-to-end wall time from sending the job to its "job finished" line, the job's
CPU time and its requests (S3, SQS, SNS) per stream-second, from the service's usage line. Next to them:
the monolith (`monolith.pipeline.analyze`) in this process, CPU time (process_time) and wall time per
stream-second. The ratios are from this one run. Last, the same stream published live (`--live-speed`
times real time, default 1) and followed by the three designs at once (`demo.live_designs`): each one's
lag to the live edge, p50 / p95 / max per stream-second and per defect notice, and whether it keeps up,
with the before's wall time per stream-second taken apart into the functions' work and the emulator.
Writes `bench-output/localstack-bench.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from demo.after import run_after
from demo.deploy import ROOT, deploy, load_launcher
from demo.live import lag_table, work_per_second
from demo.run import Aws, DesignRun, RunResult, run_stream
from text_tables import render_text, text_table


def lambda_path(result: RunResult) -> dict[str, float]:
    seconds = max(1, result.stream_seconds)
    bill = result.bill()
    functions = bill["lambda_functions"]
    workflow = {k: f for k, f in functions.items() if k != "corrective-action"}
    return {
        "wall_s": result.wall_s,
        "wall_per_stream_s": round(result.wall_s / seconds, 4),
        "handler_s_per_stream_s": _per(sum(f["duration_s"] for f in workflow.values()), seconds),
        "cpu_s_per_stream_s": _per(sum(f["cpu_s"] for f in workflow.values()), seconds)
        if all(f["cpu_s"] is not None for f in workflow.values()) else None,
        "init_s": round(sum(f["init_s"] for f in workflow.values()), 3),
        "gb_seconds_per_stream_s": bill["per_stream_second"]["lambda_gb_seconds"],
        "state_transitions_per_stream_s": bill["per_stream_second"]["state_transitions"],
        "s3_requests_per_stream_s": bill["per_stream_second"]["s3_requests"]["total"],
        "by_function_s_per_stream_s": {k: round(f["duration_s"] / seconds, 4) for k, f in workflow.items()},
    }


def after_path(run: DesignRun) -> dict[str, Any]:
    bill = run.bill.as_dict()
    seconds = max(1, bill["stream_seconds"])
    job = next(j for j in bill["jobs"] if j["outcome"] == "analysed")
    return {
        "wall_s": run.wall_s,
        "wall_per_stream_s": round(run.wall_s / seconds, 4),
        "job_wall_per_stream_s": _per(job["wall_s"], seconds),
        "cpu_s_per_stream_s": _per(job["cpu_s"], seconds),
        "s3_requests_per_stream_s": bill["per_stream_second"]["s3_requests"]["total"],
        "sqs_requests_per_stream_s": bill["per_stream_second"]["sqs_requests"],
        "sns_publishes_per_stream_s": bill["per_stream_second"]["sns_publishes"],
    }


def _per(total: float, seconds: int) -> float:
    return round(total / seconds, 4)


def monolith(path: Path, seconds: int) -> dict[str, float]:
    from monolith.pipeline import analyze

    wall, cpu = time.perf_counter(), time.process_time()
    analyze(path)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"cpu_s": round(cpu, 3), "wall_s": round(wall, 3), "cpu_per_stream_s": round(cpu / seconds, 4),
            "wall_per_stream_s": round(wall / seconds, 4)}


def table(result: dict[str, Any]) -> str:
    stream = result["stream"]
    title = (f"{stream['seconds']} stream-seconds at {stream['width']}x{stream['height']} "
             f"{stream['fps']:g} fps (deploy {result['deploy_s']:.1f} s)")

    def cell(value: float | None) -> str:
        return f"{value:.3f}" if value is not None else "-"

    times = text_table("per stream-second", "wall s", "busy s", "CPU s", right=("wall s", "busy s", "CPU s"))
    for name in ("cold", "warm"):
        run = result["lambda"][name]
        times.add_row(f"LocalStack, Lambda path ({name})", cell(run["wall_per_stream_s"]),
                      cell(run["handler_s_per_stream_s"]), cell(run["cpu_s_per_stream_s"]))
    for name in ("run 1", "run 2"):
        run = result["after"][name]
        times.add_row(f"LocalStack, after, one task ({name})", cell(run["wall_per_stream_s"]),
                      cell(run["job_wall_per_stream_s"]), cell(run["cpu_s_per_stream_s"]))
    mono = result["monolith"]
    times.add_row("monolith (one process)", cell(mono["wall_per_stream_s"]), cell(None),
                  cell(mono["cpu_per_stream_s"]))
    warm = result["lambda"]["warm"]
    mono_cpu = max(mono["cpu_per_stream_s"], 1e-9)
    lines = ["  Lambda path, warm, busy s per stream-second by function: " + ", ".join(
        f"{k} {v:.3f}" for k, v in warm["by_function_s_per_stream_s"].items()),
        f"  Lambda-path busy time / monolith CPU time: {warm['handler_s_per_stream_s'] / mono_cpu:.1f}x"]
    if warm["cpu_s_per_stream_s"] is not None:
        ratio = warm["cpu_s_per_stream_s"] / mono_cpu
        lines.append(f"  Lambda-path CPU time / monolith CPU time: {ratio:.1f}x")
    after = result["after"]["run 2"]
    if warm["cpu_s_per_stream_s"] is not None and after["cpu_s_per_stream_s"]:
        lines.append(f"  Lambda-path CPU time / after's CPU time: "
                     f"{warm['cpu_s_per_stream_s'] / after['cpu_s_per_stream_s']:.1f}x")
    lines.append(f"  end-to-end wall time, before (warm) / after (run 2): "
                 f"{warm['wall_per_stream_s'] / max(after['wall_per_stream_s'], 1e-9):.1f}x")
    requests = text_table("requests per stream-second", "S3", "SQS", "transitions",
                          right=("S3", "SQS", "transitions"))
    requests.add_row("before (warm)", f"{warm['s3_requests_per_stream_s']:.2f}", f"{0:.2f}",
                     f"{warm['state_transitions_per_stream_s']:.2f}")
    requests.add_row("after (run 2)", f"{after['s3_requests_per_stream_s']:.2f}",
                     f"{after['sqs_requests_per_stream_s']:.2f}", f"{0:.2f}")
    parts: list[Any] = [title, times, "\n".join(lines), requests]
    live = result.get("live")
    if live:
        work = live["before_work_per_stream_s"]
        parts += [f"live, x{live['speed']:g} real time, the three designs on one publisher (lag in s):",
                  lag_table(live["lag"]),
                  f"  before per stream-second: {work['wall_s']:.3f} s wall, "
                  f"{work['critical_path_busy_s']:.3f} s of it the functions on the critical path, "
                  f"{work['emulator_s']:.3f} s the emulator"]
    return render_text(*parts)


def live_lags(aws: Aws, stack: Any, path: Path, *, speed: float, log_dir: Path) -> dict[str, Any]:
    """The three designs following `path` published live: each one's lag figures (without the per-second
    detail) and status, and the before's work per stream-second."""
    from demo.live_designs import follow_live_designs

    found = follow_live_designs(aws, stack, path, log_dir=log_dir, speed=speed, display=False)
    if found.before is None or found.errors:
        raise RuntimeError(f"a design could not follow the live stream: {found.errors}")
    runs = {"before": (found.before.run.status, found.before.lag)} | {
        name: (run.status, run.lag) for name, run in found.others.items()}
    return {"speed": speed,
            "status": {name: status for name, (status, _) in runs.items()},
            "lag": {name: {k: v for k, v in (lag or {}).items() if k != "per_second_s"}
                    for name, (_, lag) in runs.items()},
            "before_work_per_stream_s": work_per_second(found.before.run.bill())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=20, help="stream length (default 20)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-output" / "localstack-bench.json")
    parser.add_argument("--live-speed", type=float, default=1.0,
                        help="the live part's pace, times real time (default 1)")
    args = parser.parse_args(argv)
    if args.live_speed <= 0:
        parser.error(f"--live-speed must be > 0, got {args.live_speed}")
    launcher = load_launcher()
    if not launcher.localstack_python().exists():
        print("error: the LocalStack venv is missing: run `make localstack-venv`", file=sys.stderr)
        return 2
    from sample_streams import BlockCorruption, Freeze, generate_stream

    work = args.out.parent / "localstack-bench"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    path = work / "bench-360p.mp4"
    width, height, fps = 640, 360, 25
    defects = (Freeze(min(5.0, args.seconds / 4), 2.5), BlockCorruption(args.seconds * 0.6))
    generate_stream(path, duration_s=args.seconds, width=width, height=height, fps=fps, defects=defects,
                    seed=11)
    server = launcher.start(work / "localstack", keepalive_ms=300_000)
    try:
        print(f"LocalStack at {server.url}; deploying …", file=sys.stderr, flush=True)
        stack = deploy(server.url)
        aws = Aws(server.url)
        runs = {}
        for name in ("cold", "warm"):
            print(f"running the stream ({name}) …", file=sys.stderr, flush=True)
            result = run_stream(aws, stack, path)
            if result.status != "SUCCEEDED":
                print(f"error: {result.error}: {result.cause}", file=sys.stderr)
                return 1
            runs[name] = lambda_path(result)
        seconds = result.stream_seconds
        after_runs = {}
        for name in ("run 1", "run 2"):
            print(f"running the stream through the after ({name}) …", file=sys.stderr, flush=True)
            after = run_after(aws, stack, path, log_dir=work / f"after-{name.replace(' ', '')}")
            if after.status != "SUCCEEDED":
                print(f"error: the after failed: {after.error}", file=sys.stderr)
                return 1
            after_runs[name] = after_path(after)
        print(f"publishing the stream live (x{args.live_speed:g}) to the three designs …", file=sys.stderr,
              flush=True)
        live = live_lags(aws, stack, path, speed=args.live_speed, log_dir=work / "after-live")
    finally:
        launcher.stop(server.pid)
    print("running the monolith on the same file …", file=sys.stderr, flush=True)
    report = {
        "stream": {"seconds": seconds, "width": width, "height": height, "fps": fps},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "deploy_s": stack.deploy_s,
        "lambda": runs,
        "after": after_runs,
        "monolith": monolith(path, seconds),
        "live": live,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(table(report))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
