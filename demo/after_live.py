"""`python -m demo.after_live`: the after follows a live stream on LocalStack; its lag to the live edge.

Generates a stream with a freeze and block damage, starts LocalStack, deploys both stacks, and publishes
the stream into the source bucket as live HLS (`sample_streams publish`: 2 s segments, paced in real time
unless `--speed`) while one local task of the after follows it (the playlist's S3 events through
EventBridge to the job queue; the before's live rule is paused meanwhile: the after is measured alone).
Prints the lag of every stream-second (its segment landing in S3 → its analysis complete) and of every
defect (the segment that made it known landing → its notification published) as p50 / p95 / max and
whether the lag stays bounded, and checks the defects against `monolith analyze` on the stream as
published: exit 1 when they differ. Timings depend on the machine: run it with nothing else running.
Writes the figures as JSON (`--out`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from demo.after import before_live_paused, follow_live
from demo.deploy import ROOT, deploy, load_launcher
from demo.live import lag_table
from demo.run import Aws
from monolith.pipeline import analyze
from sample_streams.publish import write_published
from text_tables import render_text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo.after_live", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=60, help="stream length (default 60)")
    parser.add_argument("--speed", type=float, default=1.0, help="times real time (default 1)")
    parser.add_argument("--segment-seconds", type=float, default=2.0, help="segment length (default 2)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-output" / "after-live.json")
    args = parser.parse_args(argv)
    if args.seconds < 8 or args.speed <= 0 or args.segment_seconds <= 0:
        parser.error("need --seconds >= 8, --speed > 0 and --segment-seconds > 0")
    launcher = load_launcher()
    if not launcher.localstack_python().exists():
        print("error: the LocalStack venv is missing: run `make localstack-venv`", file=sys.stderr)
        return 2
    from sample_streams import BlockCorruption, Freeze, generate_stream

    work = args.out.parent / "after-live"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    path = work / "live-360p.mp4"
    generate_stream(path, duration_s=args.seconds, width=640, height=360, fps=25, gop_s=1.0, seed=11,
                    defects=(Freeze(args.seconds / 4, 2.5), BlockCorruption(args.seconds * 0.6)))
    server = launcher.start(work / "localstack", keepalive_ms=300_000)
    try:
        print(f"LocalStack at {server.url}; deploying …", file=sys.stderr, flush=True)
        stack = deploy(server.url)
        aws = Aws(server.url)
        print(f"publishing {args.seconds} s live (x{args.speed:g}) while the after follows it …",
              file=sys.stderr, flush=True)
        started = time.monotonic()
        with before_live_paused(aws, stack):  # the after alone: the before would follow it too
            run = follow_live(aws, stack, path, log_dir=work / "tasks", speed=args.speed,
                              segment_seconds=args.segment_seconds,
                              timeout_s=args.seconds / args.speed + 300)
        wall_s = time.monotonic() - started
        assert run.published is not None  # a live run is on a published stream
        expected = analyze(write_published(run.published, aws.s3, work / "published.ts"))["defects"]
    finally:
        launcher.stop(server.pid)
    same = run.defects == expected
    print(render_text(lag_table({"after": run.lag})))
    outcome = run.detail["outcome"]
    print(f"outcome {outcome}; {len(run.records)} seconds recorded; {wall_s:.1f} s wall; "
          f"same as `monolith analyze`: {'yes' if same else 'NO'}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "stream_seconds": args.seconds, "speed": args.speed, "segment_seconds": args.segment_seconds,
        "outcome": outcome, "same_as_monolith": same, "wall_s": round(wall_s, 3),
        "lag": run.lag, "bill": run.bill.as_dict(), "playlist_reads": run.detail["playlist_reads"],
    }, indent=2))
    return 0 if same and outcome == "analysed" else 1


if __name__ == "__main__":
    raise SystemExit(main())
