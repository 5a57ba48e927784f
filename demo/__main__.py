"""`python -m demo [--stream PATH] [--json]`: the serverless "before" architecture, end to end, on LocalStack.

Starts LocalStack (host mode, its own data directory under the output folder, a free port), deploys the
CDK app with cdklocal, generates a sample stream with defects (unless --stream), runs it through the
workflow with a progress bar, prints the defects, notifications, corrective actions and the run's bill
of materials, writes `<out>/summary.json`, and always stops LocalStack.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from demo.deploy import ROOT, DeployError, deploy, load_launcher
from demo.report import (
    actions_table,
    bills_table,
    console,
    defects_table,
    disagreement,
    functions_table,
    notifications_table,
    progress,
)
from demo.run import Aws, RunError, RunResult, run_stream

# The Lambda path and `monolith analyze` found different defects on the same file: a bug, not a result.
EXIT_DISAGREEMENT = 3


def sample_stream(out: Path) -> tuple[Path, list[dict[str, Any]]]:
    """The monolith demo's stream: 20 s at 640x360 with a freeze, block damage and an A/V offset."""
    from sample_streams import AvOffset, BlockCorruption, Freeze, generate_stream

    path = out / "sample.mp4"
    truth = generate_stream(
        path, duration_s=20, defects=(Freeze(3.0, 3.0), BlockCorruption(9.3), AvOffset(14.0, 240.0)), seed=7
    )
    return path, truth.defects


def summary_json(
    result: RunResult,
    *,
    timings: dict[str, float],
    truth: list[dict[str, Any]] | None,
    monolith: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    summary = result.summary()
    summary["timings_s"] = timings
    if truth is not None:
        summary["ground_truth"] = truth
    if monolith is not None:
        summary["monolith_defects"] = monolith
        summary["matches_monolith"] = monolith == result.defects
    return summary


def outcome(
    status: str, lambda_defects: list[dict[str, Any]], monolith: list[dict[str, Any]] | None
) -> tuple[int, str | None]:
    """The demo's exit code and error: a failed run is 1; a run whose defects differ from `monolith
    analyze` on the same file is EXIT_DISAGREEMENT (a bug, not a line of output); else 0."""
    if status != "SUCCEEDED":
        return 1, None
    problem = disagreement(lambda_defects, monolith) if monolith is not None else None
    return (EXIT_DISAGREEMENT, problem) if problem else (0, None)


def print_tables(summary: dict[str, Any]) -> None:
    console.print(
        f"\nstream {summary['source']}: {summary['stream_seconds']} stream-seconds, {summary['status']}"
        f" in {summary['wall_s']:.1f} s ({len(summary['execution_arns'])} execution(s))"
    )
    if summary.get("error"):
        console.print(f"  {summary['error']}: {summary['cause']}")
    console.print("\ndefects (results bucket):")
    console.print(defects_table(summary["defects"]))
    if "matches_monolith" in summary:
        console.print(f"  same as `monolith analyze` on the file: "
                      f"{'yes' if summary['matches_monolith'] else 'NO'}")
    console.print("\nnotifications (SNS → SQS):")
    console.print(notifications_table(summary["notifications"]))
    console.print("\ncorrective actions (corrective-action Lambda → results bucket):")
    console.print(actions_table(summary["corrective_actions"]))
    console.print("\nbill of materials:")
    console.print(bills_table({"before": summary}))
    console.print(functions_table(summary))
    console.print("  S3 requests by source: " + "; ".join(
        f"{src} " + ", ".join(f"{op} {n}" for op, n in ops.items())
        for src, ops in summary["s3_requests"]["by_source"].items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stream", type=Path, help="analyse this file instead of a generated sample")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON instead of tables")
    parser.add_argument("--out", type=Path, default=ROOT / "demo-output", help="default: demo-output/")
    parser.add_argument("--no-monolith", action="store_true", help="skip the monolith comparison")
    args = parser.parse_args(argv)
    if args.stream and not args.stream.is_file():
        print(f"error: {args.stream}: no such file", file=sys.stderr)
        return 2
    launcher = load_launcher()
    if not launcher.localstack_python().exists():
        print(
            "error: the LocalStack venv is missing: run `make localstack-venv` (or `make demo`)",
            file=sys.stderr,
        )
        return 2
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    data_dir = out / "localstack"
    shutil.rmtree(data_dir, ignore_errors=True)  # a fresh LocalStack every time
    timings: dict[str, float] = {}

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    started = time.monotonic()
    server = launcher.start(data_dir, keepalive_ms=60_000)
    try:
        timings["localstack_start"] = round(time.monotonic() - started, 2)
        log(
            f"LocalStack 4.14.0 ready at {server.url} in {timings['localstack_start']:.1f} s "
            f"(log: {server.log_file})"
        )
        log("deploying the CDK app with cdklocal (bootstrap + synth + deploy) …")
        stack = deploy(server.url)
        timings["deploy"] = stack.deploy_s
        log(f"deployed {stack.name} in {stack.deploy_s:.1f} s")
        truth = None
        if args.stream:
            path = args.stream.resolve()
        else:
            log("generating a 20 s 640x360 sample stream with a freeze, block damage and an A/V offset …")
            path, truth = sample_stream(out)
        with progress() as bars:
            task = bars.add_task("before: workflow", total=None)
            result = run_stream(Aws(server.url), stack, path,
                                progress=lambda done, total: bars.update(task, completed=done, total=total))
        timings["run"] = result.wall_s
        monolith = None
        if not args.no_monolith and result.status == "SUCCEEDED":
            from monolith.pipeline import analyze

            monolith = analyze(path)["defects"]
        summary = summary_json(result, timings=timings, truth=truth, monolith=monolith)
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        if args.json:
            print(json.dumps(summary, indent=2))
        else:
            print_tables(summary)
            print(f"\nwrote {out / 'summary.json'}")
        code, problem = outcome(result.status, result.defects, monolith)
        if problem:
            print(f"error: {problem}", file=sys.stderr)
        return code
    except (DeployError, RunError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        launcher.stop(server.pid)
        log("LocalStack stopped")


if __name__ == "__main__":
    sys.exit(main())
