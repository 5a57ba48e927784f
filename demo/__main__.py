"""`python -m demo [--stream PATH] [--json]`: the before, the after and the event-driven serverless design,
end to end, on LocalStack.

Starts LocalStack (host mode, its own data directory under the output folder, a free port), deploys the
CDK app's two stacks with cdklocal, generates a sample stream with defects (unless --stream), and runs
the same stream through both architectures:

- the before: the Step Functions workflow, a converter Lambda and three detector Lambdas;
- the after: the service's container command as local processes fed by the after's queue (ECS is not
  in LocalStack's free edition), frames in memory;
- the serverless design: the stream published as live segments at full speed, each analysed in memory by
  one Lambda (demo/serverless.py).

It prints what each found, the notifications and the corrective actions (one topic and one
corrective-action function for all), the bills as measured and priced with the cost model's price
table — per stream-hour and for the Prime-Video-like scenario — and writes `<out>/summary.json`. The
defects of each must equal `monolith analyze` on the file: a difference is a bug, and the demo exits 3.
LocalStack is always stopped.

With `--live` the stream is published once as live HLS (`--speed` times real time) and the three designs
follow it at the same time (`demo.live_designs`): a live board of the edge and of each design's second
and lag, then the three bills, the three lag tables and the same check against `monolith analyze` on the
stream as published.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from cost_model.bills import priced
from cost_model.prices import HOURS_PER_MONTH, PriceBook
from demo.after import run_after
from demo.deploy import REGION, ROOT, DeployError, deploy, load_launcher
from demo.live_designs import DESIGNS
from demo.report import (
    actions_table,
    bills_table,
    console,
    disagreement,
    functions_table,
    notifications_table,
    prices_table,
    progress,
)
from demo.run import Aws, DesignRun, Observer, RunError, RunResult, run_stream
from text_tables import defects_table

# A path found different defects from `monolith analyze` on the same file: a bug, not a result.
EXIT_DISAGREEMENT = 3
# The Prime-Video-like scenario the bills are scaled to (the cost model's `make cost`).
SCENARIO_STREAMS, SCENARIO_HOURS = 3000, HOURS_PER_MONTH


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
    after: DesignRun | None = None,
    stream_path: Path | None = None,
) -> dict[str, Any]:
    """The before's summary at the top level (as earlier readers expect it), plus `before` and `after`
    objects with the same keys where they mean the same, and both bills priced."""
    before = result.summary()
    summary = {**before, "timings_s": timings, "before": before}
    if stream_path is not None:
        summary["stream_path"] = str(stream_path)
    if truth is not None:
        summary["ground_truth"] = truth
    if monolith is not None:
        summary["monolith_defects"] = monolith
        summary["matches_monolith"] = before["matches_monolith"] = monolith == result.defects
    if after is not None:
        summary["after"] = after.summary()
        if monolith is not None:
            summary["after"]["matches_monolith"] = monolith == after.defects
    if after is not None and result.status == after.status == "SUCCEEDED":  # a failed run has no rate
        book = PriceBook(REGION)
        prices = {name: priced(summary[name], book, streams=SCENARIO_STREAMS, hours=SCENARIO_HOURS)
                  for name in ("before", "after")}
        after_usd = prices["after"]["per_stream_hour_usd"]
        summary["prices"] = {**prices, "before_to_after": prices["before"]["per_stream_hour_usd"] / after_usd
                             if after_usd else None}
    return summary


def outcome(
    status: str, lambda_defects: list[dict[str, Any]], monolith: list[dict[str, Any]] | None,
    after: tuple[str, list[dict[str, Any]]] | None = None,
    serverless: tuple[str, list[dict[str, Any]]] | None = None,
) -> tuple[int, str | None]:
    """The demo's exit code and error: a failed run is 1; a run whose defects differ from `monolith
    analyze` on the same file is EXIT_DISAGREEMENT (a bug, not a line of output); else 0."""
    if status != "SUCCEEDED" or any(run is not None and run[0] != "SUCCEEDED" for run in (after, serverless)):
        return 1, None
    if monolith is None:
        return 0, None
    problems = [disagreement(lambda_defects, monolith)]
    if after is not None:
        problems.append(disagreement(after[1], monolith, path="the after"))
    if serverless is not None:
        problems.append(disagreement(serverless[1], monolith, path="the serverless design"))
    found = [p for p in problems if p]
    return (EXIT_DISAGREEMENT, "\n".join(found)) if found else (0, None)


def print_run(title: str, run: dict[str, Any], detail: str, against: str = "the file") -> None:
    console.rule(title)
    console.print(f"stream {run['source']}: {run['stream_seconds']} stream-seconds, {run['status']} in "
                  f"{run['wall_s']:.1f} s ({detail})")
    if run.get("error"):
        console.print(f"  {run['error']}: {run.get('cause') or ''}")
    console.print("\ndefects (results bucket):")
    console.print(defects_table(run["defects"]))
    if "matches_monolith" in run:
        same = "yes" if run["matches_monolith"] else "NO"
        console.print(f"  same as `monolith analyze` on {against}: {same}")
    console.print("\nnotifications (SNS → SQS):")
    console.print(notifications_table(run["notifications"]))
    console.print("\ncorrective actions (corrective-action Lambda → results bucket):")
    console.print(actions_table(run["corrective_actions"]))


TITLES = {"before": "before: Step Functions + Lambda",
          "after": "after: one process per stream, fed by a queue",
          "serverless": "serverless: segment -> queue -> one Lambda, in memory"}


def run_detail(name: str, run: dict[str, Any]) -> str:
    if name == "before":
        return f"{len(run['execution_arns'])} execution(s)"
    if name == "after":
        return f"{run['tasks']} local task(s)" + (f", outcome {run['outcome']}" if "outcome" in run else "")
    return f"{run['segments']} segments of 2 s"


def print_tables(runs: dict[str, dict[str, Any]], prices: dict[str, Any] | None,
                 against: str = "the file") -> None:
    """Each design's run, then their bills side by side and (for those that succeeded) their prices."""
    for name, run in runs.items():
        print_run(TITLES[name], run, run_detail(name, run), against)
    console.rule("bills, as measured")
    console.print(bills_table(runs))
    for name in ("before", "serverless"):
        if name in runs:
            console.print(functions_table(runs[name]))
    console.print("  S3 requests by source: " + "; ".join(
        f"{arch} {src} " + ", ".join(f"{op} {n}" for op, n in ops.items())
        for arch, bill in runs.items() for src, ops in bill["s3_requests"]["by_source"].items()))
    priced_runs = {k: v for k, v in (prices or {}).items() if k in runs}
    if not priced_runs:
        return
    console.rule(f"priced (us-east-1 prices of cost_model/prices.py; scenario: {SCENARIO_STREAMS:,} "
                 f"streams x {SCENARIO_HOURS:g} h)")
    console.print(prices_table(priced_runs))
    after_usd = priced_runs["after"]["per_stream_hour_usd"] if "after" in priced_runs else None
    how = {"before": " ({saved:.1%} less with the after)",
           "serverless": "; its GB-seconds are priced from CPU time at 1 vCPU per 1,769 MB "
                         "(metering/bill.py)"}
    for name, what in (("before", "the before"), ("serverless", "the serverless design")):
        if after_usd and name in priced_runs:
            ratio = priced_runs[name]["per_stream_hour_usd"] / after_usd
            console.print(f"  {what} costs {ratio:,.1f}x the after per stream-hour"
                          + how[name].format(saved=1 - 1 / ratio))
    console.print("  Measured on LocalStack on this machine: Lambda GB-seconds include each function's "
                  "cold start once, the\n  after's CPU time is priced as instance vCPU time with the "
                  "task's headroom (cost_model/bills.py).")


def live_demo(aws: Aws, stack: Any, path: Path, *, out: Path, speed: float, timings: dict[str, float],
              truth: list[dict[str, Any]] | None, as_json: bool, designs: tuple[str, ...] = DESIGNS) -> int:
    """The stream published live once and followed as it is written by the before and (unless left out)
    the after and the serverless design at once: a live display of where each is, then the bills, the
    lag tables, and the same-defects check of each against `monolith analyze` on the stream as
    published."""
    from demo.live import lag_table, work_per_second
    from demo.live_designs import follow_live_designs
    from monolith.pipeline import analyze
    from sample_streams.publish import write_published

    found = follow_live_designs(aws, stack, path, log_dir=out / "after-tasks", speed=speed, designs=designs)
    for name, error in found.errors.items():
        print(f"error: the {name} did not follow the stream: {error}", file=sys.stderr)
    if found.before is None:
        return 1
    runs, errors, live = found.others, found.errors, found.before
    timings["before"] = live.run.wall_s
    published = write_published(live.published, aws.s3, out / "published.ts")
    monolith = analyze(published)["defects"]
    # The stream as published is what every count and comparison refers to (`cost_model count`).
    summary = summary_json(live.run, timings=timings, truth=truth, monolith=monolith, stream_path=published)
    summary["before"]["lag"] = live.lag
    lags = {"before": live.lag}
    summary["live"] = {"published": live.published.to_dict(), "published_file": str(published),
                       "lag": lags, "work_per_stream_second": {"before": work_per_second(summary["before"])}}
    for name in ("after", "serverless"):
        if name in designs:
            run = runs.get(name)
            summary["live"][name] = {"status": "FAILED", "error": str(errors.get(name)), "defects": []} \
                if run is None else {**run.summary(), "matches_monolith": run.defects == monolith}
            if run is not None:
                lags[name] = run.lag
    followed = {name: summary["before"] if name == "before" else summary["live"][name] for name in designs}
    summary["live"]["prices"] = live_prices(followed)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        print_tables({n: r for n, r in followed.items() if "wall_s" in r}, summary["live"]["prices"],
                     against="the stream as published")
        console.rule("lag to the live edge (segment landed in S3 → analysis recorded / defect notified)")
        console.print(lag_table(lags))
        work = summary["live"]["work_per_stream_second"]["before"]
        console.print(f"  before per stream-second: {work['wall_s']:.2f} s of wall time on LocalStack, of "
                      f"which {work['critical_path_busy_s']:.2f} s in the functions on the critical path "
                      f"(converter, then the slowest detector)\n  and {work['emulator_s']:.2f} s the "
                      "emulator's transitions and invocations (and any wait at the live edge)")
        if work["critical_path_aws_cpu_s"] is not None:
            console.print(f"  the critical path's CPU time at each function's AWS CPU share: "
                          f"{work['critical_path_aws_cpu_s']:.2f} s per stream-second, before S3 and Step "
                          "Functions latencies (README, \"Live streams\")")
        print(f"\nwrote {out / 'summary.json'}")
    code, problem = outcome(live.run.status, live.run.defects, monolith,
                            *((followed[n]["status"], followed[n]["defects"]) if n in designs else None
                              for n in ("after", "serverless")))
    if problem:
        print(f"error: {problem}", file=sys.stderr)
    for name, run in followed.items():
        if run["status"] != "SUCCEEDED":
            cause = f": {_cause(live.run.cause)}" if name == "before" else ""
            print(f"error: the {name}'s run {run['status']}: {run.get('error')}{cause}", file=sys.stderr)
    return code


def live_prices(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Each live run that succeeded priced per stream-hour and for the scenario (`cost_model.bills`)."""
    book = PriceBook(REGION)
    return {name: priced(run, book, streams=SCENARIO_STREAMS, hours=SCENARIO_HOURS)
            for name, run in runs.items() if run.get("status") == "SUCCEEDED"}


def _cause(cause: str | None) -> str | None:
    """A failed execution's cause for a person: the Lambda error's message, not its stack trace."""
    try:
        return str(json.loads(cause or "")["errorMessage"])
    except (ValueError, TypeError, KeyError):
        return cause


def _tracker(bars: Any, task: Any) -> Any:
    return lambda done, total: bars.update(task, completed=done, total=total)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stream", type=Path, help="analyse this file instead of a generated sample")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON instead of tables")
    parser.add_argument("--out", type=Path, default=ROOT / "demo-output", help="default: demo-output/")
    parser.add_argument("--no-monolith", action="store_true", help="skip the monolith comparison")
    parser.add_argument("--no-after", action="store_true", help="run the before only")
    parser.add_argument("--no-serverless", action="store_true",
                        help="skip the event-driven serverless design (the third stack)")
    parser.add_argument("--tasks", type=int, default=1, help="local tasks of the after's service (default 1)")
    parser.add_argument("--live", action="store_true",
                        help="publish the stream as live HLS into S3 and follow it as it is written")
    parser.add_argument("--speed", type=float, default=1.0,
                        help="with --live: publish at this many times real time (default 1)")
    args = parser.parse_args(argv)
    if args.speed <= 0:
        print(f"error: --speed must be > 0, got {args.speed}", file=sys.stderr)
        return 2
    if args.stream and not args.stream.is_file():
        print(f"error: {args.stream}: no such file", file=sys.stderr)
        return 2
    if args.tasks < 1:
        print(f"error: --tasks must be at least 1, got {args.tasks}", file=sys.stderr)
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
        log("deploying the CDK app's three stacks with cdklocal (bootstrap + synth + deploy) …")
        stack = deploy(server.url)
        timings["deploy"] = stack.deploy_s
        names = [stack.name] + [s.name for s in (stack.after, stack.serverless) if s is not None]
        log(f"deployed {', '.join(names)} in {stack.deploy_s:.1f} s")
        truth = None
        if args.stream:
            path = args.stream.resolve()
        else:
            log("generating a 20 s 640x360 sample stream with a freeze, block damage and an A/V offset …")
            path, truth = sample_stream(out)
        aws = Aws(server.url)
        if args.live:
            designs = tuple(d for d in DESIGNS if not (d == "after" and args.no_after)
                            and not (d == "serverless" and (args.no_serverless or args.no_after)))
            return live_demo(aws, stack, path, out=out, speed=args.speed, timings=timings, truth=truth,
                             as_json=args.json, designs=designs)
        observer = Observer(aws, stack.topic_arn)
        try:
            with progress() as bars:
                task = bars.add_task("before: workflow", total=None)
                result = run_stream(aws, stack, path, observer=observer, progress=_tracker(bars, task))
            timings["before"] = result.wall_s
            after = None
            if not args.no_after:
                with progress() as bars:
                    task = bars.add_task("after: service", total=None)
                    after = run_after(aws, stack, path, log_dir=out / "after-tasks", tasks=args.tasks,
                                      observer=observer, progress=_tracker(bars, task))
                timings["after"] = after.wall_s
            third = None
            if not args.no_after and not args.no_serverless:
                from demo.serverless import run_serverless

                with progress() as bars:
                    task = bars.add_task("serverless: segments", total=None)
                    third = run_serverless(aws, stack, path, observer=observer, progress=_tracker(bars, task))
                timings["serverless"] = third.wall_s
        finally:
            observer.close()
        monolith = None
        if not args.no_monolith and result.status == "SUCCEEDED":
            from monolith.pipeline import analyze

            monolith = analyze(path)["defects"]
        summary = summary_json(result, timings=timings, truth=truth, monolith=monolith, after=after,
                               stream_path=path)
        if third is not None:
            from demo.serverless import add_to_summary

            add_to_summary(summary, third, monolith, streams=SCENARIO_STREAMS, hours=SCENARIO_HOURS)
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        if args.json:
            print(json.dumps(summary, indent=2))
        else:
            print_tables({n: summary[n] for n in DESIGNS if summary.get(n)}, summary.get("prices"))
            print(f"\nwrote {out / 'summary.json'}")
        code, problem = outcome(result.status, result.defects, monolith,
                                (after.status, after.defects) if after else None,
                                (third.status, third.defects) if third else None)
        if problem:
            print(f"error: {problem}", file=sys.stderr)
        if result.status != "SUCCEEDED":
            print(f"error: the before's run {result.status}: {result.error}: {_cause(result.cause)}",
                  file=sys.stderr)
        if after is not None and after.status != "SUCCEEDED":
            print(f"error: the after's run {after.status}: {after.error}", file=sys.stderr)
        if third is not None and third.status != "SUCCEEDED":
            print(f"error: the serverless design's run {third.status}: {third.error}", file=sys.stderr)
        return code
    except (DeployError, RunError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        launcher.stop(server.pid)
        log("LocalStack stopped")


if __name__ == "__main__":
    sys.exit(main())
