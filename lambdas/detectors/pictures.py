"""Picture features shared by the detectors: block-mean thumbnails and their JSON-safe form."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

# Pixels sampled along each side of a block: enough to average coding noise away, few enough that a
# 720p thumbnail costs a fraction of a millisecond.
SAMPLES_PER_BLOCK_SIDE = 5


def block_means(luma: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """Mean luma of each block of a rows x columns grid, as float16 (exact through JSON state).

    Blocks are sampled on a regular sub-grid of pixels rather than read whole: the mean of a few dozen
    evenly spread pixels differs from the full mean by far less than the detectors' thresholds.
    """
    rows, cols = grid
    height, width = luma.shape
    if height < rows or width < cols:  # tiny pictures: compare them whole
        return luma.astype(np.float16)
    step = max(1, min(height // rows, width // cols) // SAMPLES_PER_BLOCK_SIDE)
    sampled = luma[::step, ::step]
    bh, bw = sampled.shape[0] // rows, sampled.shape[1] // cols
    blocks = sampled[: bh * rows, : bw * cols].reshape(rows, bh, cols, bw)
    sums = blocks.sum(axis=(1, 3), dtype=np.uint32)
    return (sums.astype(np.float32) / (bh * bw)).astype(np.float16)


def pack_array(array: np.ndarray | None) -> dict[str, Any] | None:
    """A float16 array as a small JSON-serialisable dict (for detector state)."""
    if array is None:
        return None
    return {"shape": list(array.shape), "f16": base64.b64encode(array.astype(np.float16).tobytes()).decode()}


def unpack_array(data: dict[str, Any] | None) -> np.ndarray | None:
    if data is None:
        return None
    return np.frombuffer(base64.b64decode(data["f16"]), dtype=np.float16).reshape(data["shape"])


def pack_levels(array: np.ndarray | None) -> dict[str, Any] | None:
    """Non-negative luma quantities (0-255) rounded to whole levels, as a JSON-serialisable dict: half the
    size of `pack_array` where a level's fraction does not matter."""
    if array is None:
        return None
    levels = np.clip(np.round(array), 0, 255).astype(np.uint8)
    return {"shape": list(array.shape), "u8": base64.b64encode(levels.tobytes()).decode()}


def unpack_levels(data: dict[str, Any] | None) -> np.ndarray | None:
    if data is None:
        return None
    return (
        np.frombuffer(base64.b64decode(data["u8"]), dtype=np.uint8).reshape(data["shape"]).astype(np.float32)
    )
