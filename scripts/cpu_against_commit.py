"""`python scripts/cpu_against_commit.py COMMIT`: the CPU of `monolith analyze` here against the same
analysis at COMMIT, measured in one run (issue 22's budget: at most +10% CPU per stream-second at 360p
and 1080p).

COMMIT is checked out in a temporary git worktree. Each size's bench stream (`monolith.bench`: a freeze
and block damage, longer at smaller sizes) is analysed by both in turn, `--pairs` times, each in a fresh
interpreter pinned to one core, the order swapped from pair to pair; a child reports the CPU of the
analysis alone (imports excluded). The ratio is taken pair by pair, so a host that speeds up or slows down
during the run moves both sides of a pair alike. Run it with nothing else running.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monolith.bench import bench_seconds, generate_bench_stream  # noqa: E402
from text_tables import render_text, text_table  # noqa: E402

# Run in the child: the analysis of the repository named first, on the stream named second.
CHILD = """
import json, resource, sys
sys.path.insert(0, sys.argv[1])
from monolith.pipeline import analyze
usage = resource.getrusage(resource.RUSAGE_SELF)
start = usage.ru_utime + usage.ru_stime
found = analyze(sys.argv[2])
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"cpu_s": usage.ru_utime + usage.ru_stime - start, "defects": len(found["defects"])}))
"""


def analysis_cpu(repo: Path, stream: Path, core: int) -> dict[str, Any]:
    """CPU-seconds of one analysis of `stream` by the code in `repo`, in a fresh interpreter on `core`."""
    done = subprocess.run([sys.executable, "-c", CHILD, str(repo), str(stream)], capture_output=True,
                          text=True, cwd=tempfile.gettempdir(),
                          preexec_fn=lambda: os.sched_setaffinity(0, {core}))
    if done.returncode != 0:
        raise SystemExit(f"error: the analysis by {repo} failed:\n{done.stderr[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("commit", help="the commit to compare with (its monolith analyze)")
    parser.add_argument("--pairs", type=int, default=7, help="interleaved pairs per size (default 7)")
    parser.add_argument("--sizes", default="360p,1080p", help="bench sizes (default 360p,1080p)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    core = max(os.sched_getaffinity(0))
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="cpu-against-") as tmp:
        old = Path(tmp) / "old"
        checkout = subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old),
                                   args.commit], capture_output=True, text=True)
        if checkout.returncode != 0:
            print(f"error: cannot check out {args.commit}: {checkout.stderr.strip()}", file=sys.stderr)
            return 2
        try:
            for size in args.sizes.split(","):
                seconds = bench_seconds(size, 10)
                stream = generate_bench_stream(Path(tmp), size, seconds,
                                               lambda text: print(text, file=sys.stderr))
                pairs = []
                for index in range(args.pairs):
                    sides = [("here", ROOT), ("then", old)]
                    run = {name: analysis_cpu(repo, stream, core) for name, repo in
                           (sides if index % 2 == 0 else sides[::-1])}
                    pairs.append(run)
                    print(f"{size} pair {index + 1}/{args.pairs}: here {run['here']['cpu_s']:.3f} CPU-s, "
                          f"then {run['then']['cpu_s']:.3f}", file=sys.stderr)
                ratios = [p["here"]["cpu_s"] / p["then"]["cpu_s"] for p in pairs]
                results[size] = {
                    "stream_seconds": seconds,
                    "here_cpu_s_per_stream_s": statistics.median(p["here"]["cpu_s"] for p in pairs) / seconds,
                    "then_cpu_s_per_stream_s": statistics.median(p["then"]["cpu_s"] for p in pairs) / seconds,
                    "ratio": {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)},
                    "defects": {"here": pairs[0]["here"]["defects"], "then": pairs[0]["then"]["defects"]},
                }
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)],
                           capture_output=True)
    if args.json:
        print(json.dumps({"commit": args.commit, "pairs": args.pairs, "results": results}, indent=2))
        return 0
    numbers = ("here CPU-s per stream-s", f"at {args.commit[:8]}", "ratio (median of pairs)", "min–max")
    table = text_table("stream", *numbers, right=numbers)
    for size, r in results.items():
        table.add_row(size, f"{r['here_cpu_s_per_stream_s']:.4f}", f"{r['then_cpu_s_per_stream_s']:.4f}",
                      f"{r['ratio']['median']:.3f}", f"{r['ratio']['min']:.3f}–{r['ratio']['max']:.3f}")
    print(render_text(table, f"{args.pairs} interleaved pairs per size, each side in a fresh interpreter on "
                             f"core {core}; the analysis's CPU, imports excluded"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
