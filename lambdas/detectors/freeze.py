"""Video freeze: the picture stops changing for at least `min_duration_s`.

Like FFmpeg's freezedetect, each frame is compared with the last frame that *changed* (the reference),
not with its predecessor, so a slow drift is not mistaken for a freeze. Unlike it, the comparison runs
on a grid of block means: an encoder that keeps re-encoding a frozen picture adds small noise that
block means average away, while any real motion moves at least one block. Flat pictures (black, one
colour) are kept apart: a blank screen is not a frozen picture of real content.

Still live content (a talking head, a static camera on an empty scene) can stay that close to its
reference for seconds: lips move one or two blocks by less than `max_block_change`. What tells it from a
repeated picture is the change from one frame to the next. Live pictures keep changing a little in
some block on most frames (the lips, the eyes, the sensor's noise: the largest block change from the
previous frame is typically 1-3 levels); a repeated picture, re-encoded with noise, settles (0-0.7
levels, with a few transients where the encoder re-codes it: keyframes, the first frames after the
content stops). A run in which most frames show such a change is live, whatever its distance to the
reference. So is a run in which the same block keeps changing (a person walking far away, lips): live
motion is local and lasting, while the coding noise of a repeated picture lands on a different block
each time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lambdas.detectors.pictures import block_means, pack_array, pack_counts, unpack_array, unpack_counts
from lambdas.shared.media import StreamSecond, make_defect

GRID = (36, 64)  # rows, columns of the block-mean thumbnail at most
# Blocks never smaller than a macroblock: smaller ones follow the codec's own 8x8 quantisation noise,
# which changes at every keyframe of a frozen picture (MPEG-4 at 320x180 moves 5-px block means by 20).
MIN_BLOCK_PX = 16


@dataclass(frozen=True)
class FreezeConfig:
    min_duration_s: float = 2.0
    # mean |difference| of block means (luma levels) still counted as frozen: an encoder re-coding a
    # frozen picture shifts block means by 1–2 levels (MPEG-4 keyframes, VP9 realtime), motion by far more
    max_mean_change: float = 3.0
    max_block_change: float = 16.0  # no block may change more (motion moves some block by tens of levels)
    flat_std: float = 4.0  # a picture whose block means vary less than this is flat, not content
    # Measured on the thumbnail over runs that the two settings above call frozen: 8 runs of still live
    # content (GRID talking heads, static cameras in media/parity/) and 26 injected freezes (the
    # evaluation's seeds 0 and 1, four GRID clips frozen with noise 0, ±1, ±2).
    # A frame is lively when some block changed by more than this from the previous frame (levels):
    # the median of that largest change is 0.8-3.1 over live runs, at most 0.67 over frozen ones.
    lively_change: float = 0.75
    # A run with more lively frames than this share is live: 0.51-1.0 of the frames of live runs (but
    # 0.10 for a far-away landscape), at most 0.31 of frozen ones (VP9 realtime settling, noise ±1).
    max_lively_share: float = 0.4
    # ... counted from this long after the run began: an encoder settles on a repeated picture over its
    # first second (VP9 realtime, noise ±1: largest block change 2-4 levels falling below 0.75 within
    # ~1 s), which made one injected freeze 0.42 lively over the whole run and 0.20 after its first second.
    settle_s: float = 1.0
    # A block is busy on a frame when it changed by more than this from the previous frame (levels).
    busy_change: float = 0.45
    # A run in which one block was busy on more than this share of the frames is live: the busiest
    # block of live runs 0.24-0.75 (the landscape's walkers 0.75, lips 0.61-0.71; an empty room 0.17,
    # live by the share above), of frozen runs at most 0.17.
    max_busy_share: float = 0.3


# Busy counts are kept in one byte per block: past this many compared frames, the counts and the number
# of frames are halved, so that the share is over the run's last few hundred frames.
MAX_COMPARED = 250


DEFAULT = FreezeConfig()


def thumbnail(luma: np.ndarray) -> np.ndarray:
    height, width = luma.shape
    grid = (max(1, min(GRID[0], height // MIN_BLOCK_PX)), max(1, min(GRID[1], width // MIN_BLOCK_PX)))
    return block_means(luma, grid)


def detect(
    second: StreamSecond, state: dict[str, Any] | None, config: FreezeConfig = DEFAULT
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    state = dict(
        state
        or {
            "ref": None, "ref_s": None, "last_s": None, "run": 0, "worst": 0.0, "frame_s": 0.04,
            "prev": None, "lively": 0, "settled": 0, "busy": None, "compared": 0,
        }
    )
    ref, prev, busy = unpack_array(state["ref"]), unpack_array(state["prev"]), unpack_counts(state["busy"])
    defects: list[dict[str, Any]] = []
    for frame in second.frames:
        if state["last_s"] is not None and frame.pts_s > state["last_s"]:
            state["frame_s"] = round(min(frame.pts_s - state["last_s"], 1.0), 6)
        thumb = thumbnail(frame.luma)
        change = _change(ref, thumb)
        if (
            change is not None
            and change[0] <= config.max_mean_change
            and change[1] <= config.max_block_change
        ):
            state["run"] += 1
            state["worst"] = max(state["worst"], change[0])
            settled = frame.pts_s - state["ref_s"] >= config.settle_s - 1e-6
            busy = _count_step(state, busy, prev, thumb, settled, config)
        elif frame.corrupt and state["run"] > 0:
            # Damage hitting a frozen picture changes its pixels, not its content: the freeze goes on,
            # compared from now on with the damaged picture that the following frames repeat.
            ref, state["run"] = thumb, state["run"] + 1
        else:
            defects += _close(state, frame.pts_s, ref, busy, config)
            ref, state["ref_s"], state["run"], state["worst"] = thumb, frame.pts_s, 0, 0.0
            busy, state["lively"], state["settled"], state["compared"] = None, 0, 0, 0
        prev = thumb
        state["last_s"] = frame.pts_s
    if second.is_last and state["last_s"] is not None:
        defects += _close(state, state["last_s"] + state["frame_s"], ref, busy, config)
        state["run"] = state["lively"] = state["settled"] = state["compared"] = 0
        busy = None
    state["ref"], state["prev"], state["busy"] = pack_array(ref), pack_array(prev), pack_counts(busy)
    return defects, state


def _change(ref: np.ndarray | None, thumb: np.ndarray) -> tuple[float, float] | None:
    if ref is None or ref.shape != thumb.shape:
        return None
    diff = np.abs(thumb.astype(np.float32) - ref.astype(np.float32))
    return float(diff.mean()), float(diff.max())


def _count_step(
    state: dict[str, Any], busy: np.ndarray | None, prev: np.ndarray | None, thumb: np.ndarray,
    settled: bool, config: FreezeConfig,
) -> np.ndarray | None:
    """Count a frame of the run as lively (once `settled`) and its blocks as busy by their change from the
    previous frame; returns the busy counts."""
    if prev is None or prev.shape != thumb.shape:
        return busy
    step = np.abs(thumb.astype(np.float32) - prev.astype(np.float32))
    if settled:
        state["settled"] += 1
        state["lively"] += float(step.max()) > config.lively_change
    busy = (busy if busy is not None and busy.shape == step.shape else np.zeros(step.shape, np.int32))
    busy = busy + (step > config.busy_change)
    state["compared"] += 1
    if state["compared"] >= MAX_COMPARED:
        busy, state["compared"] = busy // 2, state["compared"] // 2
    return busy


def _close(
    state: dict[str, Any], end_s: float, ref: np.ndarray | None, busy: np.ndarray | None,
    config: FreezeConfig,
) -> list[dict[str, Any]]:
    """Report the run of frozen frames that just ended, if it lasted long enough and shows content."""
    if state["run"] == 0 or state["ref_s"] is None or ref is None:
        return []
    start_s = state["ref_s"]
    if end_s - start_s < config.min_duration_s - 1e-6:
        return []
    if float(ref.astype(np.float32).std()) < config.flat_std:
        return []
    if state["lively"] > config.max_lively_share * state["settled"]:
        return []  # most frames kept changing a little: still live content, not a repeated picture
    if busy is not None and int(busy.max()) > config.max_busy_share * state["compared"]:
        return []  # one block kept changing: local motion in still live content
    confidence = 1.0 - 0.5 * state["worst"] / config.max_mean_change
    return [make_defect("freeze", start_s, end_s, confidence, duration_s=round(end_s - start_s, 3))]
