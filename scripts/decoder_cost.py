"""`python scripts/decoder_cost.py`: what VP8's slice threads and VP9's libvpx witness cost, measured in one
run: the CPU of converting (`iter_seconds`) a clean 360p stream of the damage corpus (seed 0: `make corpus`)
as committed, over the same conversion without them (VP8 with one thread; VP9 without the witness),
`--pairs` interleaved pairs, the ratio taken pair by pair. Run it with nothing else running.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lambdas.converter import decode  # noqa: E402
from sample_streams.corpus import corpus_dir  # noqa: E402
from text_tables import render_text, text_table  # noqa: E402

STREAMS = ("bikes-{codec}-high", "bigbuckbunny-{codec}-low")


def _cpu(path: Path) -> float:
    started = time.process_time()
    for _ in decode.iter_seconds(path):
        pass
    return time.process_time() - started


def _without(codec: str) -> Callable[[bool], None]:
    """Switch the codec's addition on (True) or off."""
    def vp8(on: bool) -> None:
        decode.VP8_SLICE_THREADS = 2 if on else 1  # one slice thread: one thread decodes, as before

    def vp9(on: bool) -> None:
        decode.WITNESS_DECODERS.clear()
        if on:
            decode.WITNESS_DECODERS["vp9"] = "libvpx-vp9"
    return {"vp8": vp8, "vp9": vp9}[codec]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=7)
    args = parser.parse_args(argv)
    folder = corpus_dir(0)
    rows = []
    for codec in ("vp8", "vp9"):
        switch = _without(codec)
        for name in STREAMS:
            path = folder / f"{name.format(codec=codec)}.clean.webm"
            if not path.is_file():
                print(f"{path}: not built; run `make corpus` first", file=sys.stderr)
                return 2
            switch(True)
            _cpu(path)  # warm up
            ratios = []
            for _ in range(args.pairs):
                switch(True)
                with_it = _cpu(path)
                switch(False)
                ratios.append(with_it / _cpu(path))
            switch(True)
            spread = f"{min(ratios):.2f}–{max(ratios):.2f}"
            rows.append((path.name, f"{statistics.median(ratios):.2f}", spread))
    table = text_table("stream", "CPU as committed / without (median)", "min–max", right=("min–max",))
    for row in rows:
        table.add_row(*row)
    print(render_text(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
