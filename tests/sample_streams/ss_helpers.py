"""Decoding helpers shared by the sample_streams tests (unique module name: tests have no packages)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

REPO = Path(__file__).resolve().parents[2]
CHAPLIN = REPO / "media" / "chaplin.mp4"
BIGBUCKBUNNY = REPO / "media" / "bigbuckbunny.mp4"

# Small and short keeps the whole folder fast on a 2-core machine.
SMALL = {"width": 320, "height": 180, "fps": 25}


def decode_luma(path: Path, frame_threads: bool = True) -> tuple[list[float], list[np.ndarray]]:
    """(times from the first frame, luma planes as int16) of every decoded video frame."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        if frame_threads:
            s.codec_context.thread_type = "FRAME"
        frames = [(f.time, f.to_ndarray(format="gray").astype(np.int16)) for f in c.decode(s)]
    t0 = frames[0][0]
    return [t - t0 for t, _ in frames], [y for _, y in frames]


def decode_audio(path: Path) -> tuple[np.ndarray, int, float]:
    """(first channel as float32, sample rate, start time of the first decoded sample)."""
    with av.open(str(path)) as c:
        frames = list(c.decode(audio=0))
    x = np.concatenate([f.to_ndarray()[0] for f in frames])
    return x, frames[0].sample_rate, float(frames[0].time or 0.0)


def beep_onsets(x: np.ndarray, sr: int, near_s: list[float], threshold: float = 0.25) -> list[float | None]:
    """First sample above ``threshold`` in a window around each expected time (None if silent)."""
    above = np.abs(x) > threshold
    out: list[float | None] = []
    for t in near_s:
        lo, hi = max(0, int((t - 0.04) * sr)), int((t + 0.2) * sr)
        idx = np.flatnonzero(above[lo:hi])
        out.append((lo + idx[0]) / sr if len(idx) else None)
    return out


@dataclass
class Pkt:
    time_s: float
    pts: int
    data: bytes
    keyframe: bool


def demux(path: Path, kind: str = "video") -> list[Pkt]:
    with av.open(str(path)) as c:
        stream = c.streams.video[0] if kind == "video" else c.streams.audio[0]
        return [
            Pkt(float(p.pts * p.time_base), p.pts, bytes(p), p.is_keyframe)
            for p in c.demux(stream)
            if p.size > 0
        ]


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())
