"""Block corruption: damaged bits in coded video, concealed by the decoder until the next keyframe.

The decoder is the only witness that never lies about *whether* a picture was damaged: FFmpeg flags
the frames it had to conceal (`VideoFrame.corrupt`, H.264 with frame threading, MPEG-4 Part 2) or
fails whole packets (`VideoFrame.decode_errors`, e.g. VP9). So decoder evidence opens an event. The
damage then lives on in every picture predicted from a damaged one, unflagged, until a keyframe that
decodes cleanly resets the references: that keyframe ends the event.

A visual score backs this up: concealed macroblocks leave luma steps along the 16-px macroblock
grid that are much stronger than the steps right beside them. It is measured relative to the clip's
own baseline (learnt on frames outside events), reported as evidence ("seams") and peak score, and
it closes an event when no keyframe comes for a long time but the seams have gone. It never opens an
event on its own: grid-aligned content (the synthetic checkerboard, low-bitrate MPEG-4 blocking)
scores as high as real damage or higher, and damage smeared by motion soon stops lining up with the
grid (chaplin: seams back at baseline 1.5 s after the hit while 0.8% of pixels stay wrong for 6 s).

Limits: VP8/VP9 decode damaged data silently (no flag, no error) and go unseen; under frame threading
FFmpeg's concealment is not bit-exact from run to run, so "seams" and peak_score may differ slightly
between two decodes of the same stream (times, frames and confidence do not).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lambdas.shared.media import StreamSecond, VideoFrame, make_defect

MB = 16  # macroblock size: H.264 and MPEG-2/4 conceal whole macroblocks
SEGMENT = 64  # boundary length judged as one unit: long enough to average texture, short enough for a band


@dataclass(frozen=True)
class BlockCorruptionConfig:
    # A boundary segment is a seam when the step across it is this many times the steps beside it ...
    seam_ratio: float = 3.0
    # ... and at least this many luma levels larger (flat areas have tiny steps whose ratios mean nothing).
    seam_min_step: float = 6.0
    # Every `step`-th pixel along a boundary is read: keeps 720p well under 1 ms a frame.
    step: int = 2
    # Seams are "visible" when the seam fraction exceeds the clip's baseline mean + k deviations + margin.
    baseline_k: float = 4.0
    seam_margin: float = 0.02
    baseline_alpha: float = 0.05  # EMA weight of each clean frame in the baseline (~20 frames memory)
    baseline_frames: int = 5  # clean frames needed before the visual score is trusted
    # With no clean keyframe, an event whose seams were seen closes once they have been gone this long.
    # Longer than the usual 2 s GOP so that, wherever keyframes come regularly, the keyframe decides.
    clean_close_s: float = 10.0


DEFAULT = BlockCorruptionConfig()


def seam_fractions(luma: np.ndarray, config: BlockCorruptionConfig = DEFAULT) -> tuple[float, float]:
    """Fractions of 64-px macroblock-boundary segments that are seams: (horizontal, vertical) boundaries.

    A seam is a luma step across the boundary far larger than the steps one pixel before and after
    it, so smooth gradients and texture (steps everywhere) do not count; only edges that sit exactly
    on the grid do, which is what a concealed or displaced macroblock leaves.
    """
    h, w = luma.shape
    return (
        _fraction(luma, np.arange(MB, h - 1, MB), config) if h >= MB + 2 and w >= SEGMENT else 0.0,
        _fraction(luma.T, np.arange(MB, w - 1, MB), config) if w >= MB + 2 and h >= SEGMENT else 0.0,
    )


def _fraction(luma: np.ndarray, rows: np.ndarray, config: BlockCorruptionConfig) -> float:
    """Seam fraction over the boundaries just above `rows` (for columns, pass the transposed plane)."""
    step = config.step
    per_segment = SEGMENT // step
    n_seg = luma.shape[1] // SEGMENT
    cols = slice(0, n_seg * SEGMENT, step)
    # Four rows around each boundary: two steps beside it, one across it.
    a, b, c, d = (luma[rows + k, cols].astype(np.int16) for k in (-2, -1, 0, 1))
    across = np.abs(c - b).reshape(len(rows), n_seg, per_segment).mean(axis=2)
    beside = (np.abs(b - a) + np.abs(d - c)).reshape(len(rows), n_seg, per_segment).mean(axis=2) / 2
    seams = (across + 1.0 > config.seam_ratio * (beside + 1.0)) & (across - beside > config.seam_min_step)
    return float(seams.mean())


def detect(
    second: StreamSecond, state: dict[str, Any] | None, config: BlockCorruptionConfig = DEFAULT
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    state = dict(state or _initial_state())
    defects: list[dict[str, Any]] = []
    for frame in second.frames:
        defects += _step(state, frame, config)
        state["last_s"] = frame.pts_s
    if second.is_last and state["event"] is not None and state["last_s"] is not None:
        defects.append(_report(state["event"], state["last_s"] + state["frame_s"]))
        state["event"] = None
    return defects, state


def _initial_state() -> dict[str, Any]:
    # base: per direction [mean, mean |deviation|] of the seam fraction on clean frames; n: how many.
    return {"base": [[0.0, 0.0], [0.0, 0.0]], "n": 0, "event": None, "last_s": None, "frame_s": 0.04}


def _step(state: dict[str, Any], frame: VideoFrame, config: BlockCorruptionConfig) -> list[dict[str, Any]]:
    # The frame interval, learnt only where no picture went missing (a lost packet leaves a double gap).
    if state["last_s"] is not None and frame.pts_s > state["last_s"] and not frame.decode_errors:
        state["frame_s"] = round(min(frame.pts_s - state["last_s"], 1.0), 6)
    fractions = seam_fractions(frame.luma, config)
    excess = _excess(state, fractions, config)
    decoder_hit = frame.corrupt or frame.decode_errors > 0
    defects: list[dict[str, Any]] = []
    event = state["event"]
    if event is not None and frame.key_frame and not decoder_hit:
        # A keyframe that decoded cleanly resets every reference: the damage ends here.
        defects.append(_report(event, frame.pts_s))
        event = state["event"] = None
    if event is None and decoder_hit:
        event = state["event"] = {
            "start_s": _start_s(state, frame),
            "frames": 0,
            "evidence": [],
            "peak": 0.0,
            "clean_s": None,  # first frame of the current run that looks clean
            "clean_frames": 0,
        }
    if event is None:
        _learn(state, fractions, config)
        return defects
    event["frames"] += 1
    visible = excess > config.seam_margin
    fired = {"decoder_flag": frame.corrupt, "decode_error": frame.decode_errors > 0, "seams": visible}
    for name, hit in fired.items():
        if hit and name not in event["evidence"]:
            event["evidence"].append(name)
    event["peak"] = max(event["peak"], round(excess, 4))
    if decoder_hit or visible:
        event["clean_s"], event["clean_frames"] = None, 0
        return defects
    if event["clean_s"] is None:
        event["clean_s"] = frame.pts_s
    event["clean_frames"] += 1
    # No keyframe for a long while, but the seams that were seen have been gone since `clean_s`. Only
    # seams seen and then gone say anything: damage smeared by motion stays invisible to the grid score
    # (measured on chaplin: 0.8% of pixels still wrong 6 s on, seam score back at baseline after 1.5 s).
    if "seams" in event["evidence"] and frame.pts_s - event["clean_s"] >= config.clean_close_s - 1e-6:
        event["frames"] -= event["clean_frames"]
        defects.append(_report(event, event["clean_s"]))
        state["event"] = None
    return defects


def _start_s(state: dict[str, Any], frame: VideoFrame) -> float:
    """When the damage began: this frame, or just after the previous one if packets before it were lost."""
    if frame.decode_errors > 0 and not frame.corrupt and state["last_s"] is not None:
        return min(frame.pts_s, state["last_s"] + state["frame_s"])
    return frame.pts_s


def _excess(state: dict[str, Any], fractions: tuple[float, float], config: BlockCorruptionConfig) -> float:
    """How far the seams stand above the clip's own baseline (0 until the baseline is learnt)."""
    if state["n"] < config.baseline_frames:
        return 0.0
    base = state["base"]
    margins = [f - (mean + config.baseline_k * dev) for f, (mean, dev) in zip(fractions, base, strict=True)]
    return max(0.0, *margins)


def _learn(state: dict[str, Any], fractions: tuple[float, float], config: BlockCorruptionConfig) -> None:
    # The first frame seeds the mean; early frames learn faster so a short clip still gets a baseline.
    alpha = max(config.baseline_alpha, 1.0 / (state["n"] + 1))
    for stats, value in zip(state["base"], fractions, strict=True):
        mean, dev = stats
        stats[1] = round(dev + alpha * (abs(value - mean) - dev), 6) if state["n"] else 0.0
        stats[0] = round(mean + alpha * (value - mean), 6)
    state["n"] += 1


def _report(event: dict[str, Any], end_s: float) -> dict[str, Any]:
    evidence = list(event["evidence"])
    # Confidence rests on the decoder alone: it never flagged a clean stream in our measurements, while
    # concealed pixels (hence "seams" and peak_score) vary from run to run under frame threading.
    confidence = 0.8 + 0.1 * sum(name in evidence for name in ("decoder_flag", "decode_error"))
    return make_defect(
        "block_corruption",
        event["start_s"],
        max(end_s, event["start_s"]),
        confidence,
        frames=event["frames"],
        evidence=evidence,
        peak_score=round(event["peak"], 3),
    )
