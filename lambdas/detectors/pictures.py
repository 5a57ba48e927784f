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
    # Samples per block side: those of every `step`-th row and column that fill whole blocks.
    bh, bw = -(-height // step) // rows, -(-width // step) // cols
    blocks = luma[: bh * rows * step : step, : bw * cols * step : step].reshape(rows, bh, cols, bw)
    # Sums of integers in float32 are exact (a block holds at most a few hundred samples) in any order.
    # einsum reads the strided view in place: ~25% cheaper than numpy's sum over two short axes, and no
    # copy of the picture (copies of a few hundred kB per picture grew the heap by ~50 MiB at 720p).
    sums = np.einsum("akbl->ab", blocks, dtype=np.float32, casting="unsafe")
    return (sums / (bh * bw)).astype(np.float16)


def pack_array(array: np.ndarray | None) -> dict[str, Any] | None:
    """A float16 array as a small JSON-serialisable dict (for detector state)."""
    if array is None:
        return None
    return {"shape": list(array.shape), "f16": base64.b64encode(array.astype(np.float16).tobytes()).decode()}


def unpack_array(data: dict[str, Any] | None) -> np.ndarray | None:
    if data is None:
        return None
    return np.frombuffer(base64.b64decode(data["f16"]), dtype=np.float16).reshape(data["shape"])


def _pack_bytes(array: np.ndarray) -> dict[str, Any]:
    return {"shape": list(array.shape), "u8": base64.b64encode(array.astype(np.uint8).tobytes()).decode()}


def _unpack_bytes(data: dict[str, Any]) -> np.ndarray:
    return np.frombuffer(base64.b64decode(data["u8"]), dtype=np.uint8).reshape(data["shape"])


def pack_counts(counts: np.ndarray | None) -> dict[str, Any] | None:
    """Small non-negative integer counts (at most 255 each) as a JSON-serialisable dict."""
    if counts is None:
        return None
    if counts.size and int(counts.max()) > 255:
        raise ValueError(f"counts above 255 do not fit one byte: {int(counts.max())}")
    return _pack_bytes(counts)


def unpack_counts(data: dict[str, Any] | None) -> np.ndarray | None:
    return None if data is None else _unpack_bytes(data).astype(np.int32)


def pack_levels(array: np.ndarray | None) -> dict[str, Any] | None:
    """Non-negative luma quantities (0-255) rounded to whole levels, as a JSON-serialisable dict: half the
    size of `pack_array` where a level's fraction does not matter."""
    if array is None:
        return None
    return _pack_bytes(np.clip(np.round(array), 0, 255))


def unpack_levels(data: dict[str, Any] | None) -> np.ndarray | None:
    return None if data is None else _unpack_bytes(data).astype(np.float32)
