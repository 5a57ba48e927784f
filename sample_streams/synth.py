"""Synthetic content: a moving textured picture with white flashes, and audio with matching beeps.

Every picture is a pure function of (seed, frame index), so a frozen frame can be re-rendered and
two encodes with the same seed see identical input whatever defects are requested.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

FLASH_FRAMES = 2
BEEP_HZ = 1000.0
BEEP_S = 0.060
BEEP_AMPLITUDE = 0.5
FLASH_LUMA = 235  # limited-range white


def event_frames(n_frames: int, fps: Fraction, period_s: float | None, first_s: float = 0.5) -> list[int]:
    """Frame indices where a flash starts: every ``period_s`` from ``first_s``, snapped up to a frame."""
    if not period_s or period_s <= 0:
        return []
    frames: list[int] = []
    k = 0
    while True:
        # ceil with a tolerance so 0.52 s at 25 fps is frame 13, not 14 from float error
        n = math.ceil((first_s + k * period_s) * fps - 1e-9)
        if n + FLASH_FRAMES > n_frames:
            return frames
        if not frames or n > frames[-1] + FLASH_FRAMES:
            frames.append(n)
        k += 1


class SyntheticVideo:
    """Scrolling gradient + checker texture, two moving shapes, mild noise; flashes at event frames."""

    def __init__(self, width: int, height: int, seed: int, flash_starts: list[int]) -> None:
        if width % 2 or height % 2:
            raise ValueError(f"width and height must be even for yuv420p, got {width}x{height}")
        self.width, self.height, self.seed = width, height, seed
        self.flash = {n + j for n in flash_starts for j in range(FLASH_FRAMES)}
        self._y, self._x = np.mgrid[0:height, 0:width].astype(np.float32)
        cy, cx = np.mgrid[0 : height // 2, 0 : width // 2].astype(np.float32)
        self._cx, self._cy = cx, cy

    def frame(self, i: int) -> np.ndarray:
        """The yuv420p picture of frame ``i`` as a (H*3/2, W) uint8 array."""
        w, h = self.width, self.height
        if i in self.flash:
            # Sharp onset: the whole picture jumps to white for FLASH_FRAMES frames.
            out = np.full((h * 3 // 2, w), 128, np.uint8)
            out[:h] = FLASH_LUMA
            return out
        x, y = self._x, self._y
        scale = max(1.0, w / 320)  # keep motion visually similar across sizes
        luma = 60 + 0.25 * ((x + 0.5 * y + 3 * scale * i) % (w / 2)) * (256 / (w / 2)) * 0.5
        cell = max(4, int(8 * scale))
        checker = ((((x + 2 * scale * i) // cell) + (y // cell)) % 2) * 30 - 15
        luma = luma + checker
        # Bright square on a Lissajous path and a dark disc bouncing horizontally.
        side = int(h / 6)
        sx = int((w - side) * (0.5 + 0.45 * math.sin(i * 0.11)))
        sy = int((h - side) * (0.5 + 0.45 * math.sin(i * 0.07 + 1.0)))
        luma[sy : sy + side, sx : sx + side] = 200
        r = h / 8
        period = 2 * (w - 2 * r)
        px = (i * 4 * scale) % period
        dx = r + (px if px < w - 2 * r else period - px)
        dy = h / 2 + h / 4 * math.sin(i * 0.05)
        luma[(x - dx) ** 2 + (y - dy) ** 2 < r * r] = 30
        # Mild noise so even a static region changes a little every frame.
        rng = np.random.default_rng([self.seed, 1, i])
        luma = luma + rng.integers(-2, 3, size=luma.shape)
        out = np.empty(h * w * 3 // 2, np.uint8)
        out[: h * w] = np.clip(luma, 16, 235).ravel()
        cx, cy = self._cx, self._cy
        u = 128 + 40 * np.sin((cx + i) / 37.0)
        v = 128 + 40 * np.cos((cy - i) / 23.0)
        # yuv420p as PyAV's from_ndarray wants it: the Y, U and V planes back to back, viewed as W columns.
        q = h * w // 4
        out[h * w : h * w + q] = np.clip(u, 16, 240).ravel()
        out[h * w + q :] = np.clip(v, 16, 240).ravel()
        return out.reshape(h * 3 // 2, w)


def frozen_noise(base: np.ndarray, height: int, noise: float, seed: int, i: int) -> np.ndarray:
    """``base`` with per-frame random luma noise of up to ±noise levels (chroma untouched)."""
    if noise <= 0:
        return base
    rng = np.random.default_rng([seed, 2, i])
    amp = math.ceil(noise)
    delta = rng.integers(-amp, amp + 1, size=(height, base.shape[1]))
    out = base.copy()
    out[:height] = np.clip(base[:height].astype(np.int16) + delta, 0, 255).astype(np.uint8)
    return out


def synthetic_audio(n_samples: int, sample_rate: int, beep_starts_s: list[Fraction], seed: int) -> np.ndarray:
    """Mono float32 audio (shape (1, n)): quiet noise + 50 Hz hum, and a 1 kHz beep at each event."""
    rng = np.random.default_rng([seed, 3])
    t = np.arange(n_samples) / sample_rate
    audio = 0.01 * rng.standard_normal(n_samples) + 0.01 * np.sin(2 * np.pi * 50 * t)
    beep_len = round(BEEP_S * sample_rate)
    tail = round(0.005 * sample_rate)
    # Sharp onset (sine from phase 0 at full amplitude); a 5 ms fade-out avoids a click at the end.
    env = np.ones(beep_len)
    env[-tail:] = np.linspace(1, 0, tail)
    beep = BEEP_AMPLITUDE * env * np.sin(2 * np.pi * BEEP_HZ * np.arange(beep_len) / sample_rate)
    for start in beep_starts_s:
        s = round(start * sample_rate)
        e = min(n_samples, s + beep_len)
        if s < n_samples:
            audio[s:e] += beep[: e - s]
    return audio.astype(np.float32)[None, :]
