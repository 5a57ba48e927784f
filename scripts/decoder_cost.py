"""`python scripts/decoder_cost.py`: what VP8's slice threads and VP9's libvpx decoder cost, measured in one
run: the CPU of converting (`iter_seconds`) two clean 360p streams of the damage corpus (seed 0: `make
corpus`) and a 4 s synthetic 1080p stream (`generate_stream`, made here) as committed, over the same
conversion with FFmpeg's decoder as it was before (VP8 with one thread; VP9 by FFmpeg's own VP9 decoder),
`--pairs` interleaved pairs, the ratio taken pair by pair. Run it with nothing else running.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lambdas.converter import decode  # noqa: E402
from sample_streams import generate_stream  # noqa: E402
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
        decode.REFERENCE_DECODERS.clear()
        if on:
            decode.REFERENCE_DECODERS["vp9"] = "libvpx-vp9"
    return {"vp8": vp8, "vp9": vp9}[codec]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=7)
    args = parser.parse_args(argv)
    folder = corpus_dir(0)
    made = Path(tempfile.mkdtemp(prefix="decoder-cost-"))
    rows = []
    for codec in ("vp8", "vp9"):
        switch = _without(codec)
        paths = [folder / f"{name.format(codec=codec)}.clean.webm" for name in STREAMS]
        for path in paths:
            if not path.is_file():
                print(f"{path}: not built; run `make corpus` first", file=sys.stderr)
                return 2
        paths.append(made / f"synthetic-{codec}-1080p.webm")
        generate_stream(paths[-1], duration_s=4, width=1920, height=1080, video_codec=codec, audio=False,
                        seed=1)
        for path in paths:
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
