"""Event content unlike `synth.py`'s: a background that never stops moving, and audio-visual events at
irregular times that touch only part of the picture.

`synth.py` flashes the whole picture white with a 1 kHz beep every second, which a detector can find by the
mean luma alone and pair by the period. Here:
- the background pans a random texture with a speed that changes, moves a few shapes (some fast enough to
  cross a thumbnail block in a frame or two), drifts in brightness and carries grain: every block of the
  picture keeps changing;
- events come 0.6-2.5 s apart (random, no period). Each is a rectangle covering 5-25% of the frame at a
  random place, either flashed for 1-3 frames or appearing and staying until shortly before the next event;
- each event's sound starts on the event's first frame: a tone burst (200-4000 Hz, 40-120 ms, sharp
  attack) or a clap (noise shaped to a random band, decaying within 10-30 ms), over quiet noise or a
  quiet sustained chord.

Content is a pure function of the seed. Defects reuse `api.py`'s writer and ground truth: an `AvOffset`
(content mode shifts the audio signal from its start on; pts mode moves the audio timestamps), so the
truth has the same shape as `generate_stream`'s, with the events' times in `events_s`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import numpy as np

from .api import _finish, _synthetic_layout, _writer, write_pictures
from .defects import DefectSpec
from .truth import AudioInfo, GroundTruth, VideoInfo

Sound = Literal["tone", "clap"]
AudioBackground = Literal["noise", "chord"]
GAP_S = (0.6, 2.5)  # time between events, drawn uniformly
AREA = (0.05, 0.25)  # share of the frame an event's rectangle covers


@dataclass(frozen=True)
class Event:
    frame: int  # first frame showing it; its sound starts at this frame's time
    box: tuple[int, int, int, int]  # top, left, height, width in pixels
    luma: int
    frames_shown: int  # 1-3 for a flash; longer for an appearance
    sound: Sound
    pitch_hz: float  # tone frequency, or the centre of a clap's band
    sound_s: float  # tone length, or a clap's decay time constant
    amplitude: float


def plan_events(
    n_frames: int,
    fps: Fraction,
    width: int,
    height: int,
    seed: int,
    sounds: tuple[Sound, ...] = ("tone", "clap"),
    gap_s: tuple[float, float] = GAP_S,
    first_s: float = 0.5,
) -> list[Event]:
    """Events at irregular times from ``first_s``, each on a frame, until the stream ends."""
    if not sounds or any(s not in ("tone", "clap") for s in sounds):
        raise ValueError(f"sounds must be a non-empty selection of 'tone' and 'clap', got {sounds!r}")
    if not 0 < gap_s[0] <= gap_s[1]:
        raise ValueError(f"gap_s must be 0 < low <= high, got {gap_s!r}")
    rng = np.random.default_rng([seed, 10])
    times: list[float] = []
    t = first_s
    while t < n_frames / fps - 0.3:  # an event needs a few frames and its sound before the end
        times.append(t)
        t += float(rng.uniform(*gap_s))
    events: list[Event] = []
    for k, t in enumerate(times):
        frame = math.ceil(t * fps - 1e-9)
        area = float(rng.uniform(*AREA)) * width * height
        aspect = float(np.exp(rng.uniform(math.log(0.5), math.log(2.0))))
        w = min(width - 2, max(8, int(math.sqrt(area * aspect)) & ~1))
        h = min(height - 2, max(8, int(area / w) & ~1))
        top, left = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
        # A flash (bright, 1-3 frames) or an appearance (bright or dark) that stays a while.
        appears = bool(rng.random() < 0.35)
        next_frame = math.ceil(times[k + 1] * fps - 1e-9) if k + 1 < len(times) else n_frames
        if appears:  # for 0.3-0.8 s, gone at least 3 frames before the next event
            shown = max(1, min(next_frame - frame - 3, int(fps * rng.uniform(0.3, 0.8))))
        else:
            shown = int(rng.integers(1, 4))
        luma = int(rng.choice([25, 225])) if appears else int(rng.integers(205, 236))
        sound: Sound = sounds[int(rng.integers(len(sounds)))]
        pitch = float(np.exp(rng.uniform(math.log(200.0), math.log(4000.0))))
        length = float(rng.uniform(0.04, 0.12)) if sound == "tone" else float(rng.uniform(0.010, 0.030))
        # Peak amplitude; a clap's noise has a higher crest factor, so it peaks higher to sound as loud.
        amplitude = float(rng.uniform(0.2, 0.5)) if sound == "tone" else float(rng.uniform(0.5, 0.9))
        events.append(Event(frame, (top, left, h, w), luma, shown, sound, pitch, length, amplitude))
    return events


class MovingBackground:
    """A panning random texture, moving shapes, a brightness drift and grain; events drawn on top."""

    def __init__(self, width: int, height: int, seed: int, events: list[Event]) -> None:
        if width % 2 or height % 2:
            raise ValueError(f"width and height must be even for yuv420p, got {width}x{height}")
        self.width, self.height, self.seed = width, height, seed
        self.events = events
        rng = np.random.default_rng([seed, 11])
        # Texture: random noise at three scales, upsampled and summed, periodic so that it can pan forever.
        texture = np.zeros((height, width), np.float32)
        for cells, weight in ((6, 40.0), (24, 25.0), (96, 12.0)):
            small = rng.standard_normal((max(2, cells * height // width), cells)).astype(np.float32)
            rows = (np.arange(height) * small.shape[0] // height) % small.shape[0]
            cols = (np.arange(width) * small.shape[1] // width) % small.shape[1]
            texture += weight * small[rows][:, cols]
        self._texture = 110 + texture
        self._pan = rng.uniform(-1, 1, 4)  # velocity (x, y) and how it wanders
        scale = width / 640
        self._shapes = [
            {
                "r": float(rng.uniform(0.05, 0.15) * height),
                "luma": float(rng.integers(20, 236)),
                "pos": rng.uniform(0, 1, 2) * [width, height],
                "vel": rng.uniform(2, 12, 2) * scale * rng.choice([-1, 1], 2),
                "disc": bool(rng.random() < 0.5),
            }
            for _ in range(int(rng.integers(3, 6)))
        ]
        self._y, self._x = np.mgrid[0:height, 0:width].astype(np.float32)
        cy, cx = np.mgrid[0 : height // 2, 0 : width // 2].astype(np.float32)
        self._chroma_u = np.clip(128 + 30 * np.sin(cx / 41.0), 16, 240).astype(np.uint8).ravel()
        self._chroma_v = np.clip(128 + 30 * np.cos(cy / 29.0), 16, 240).astype(np.uint8).ravel()

    def _shape_at(self, shape: dict, i: int) -> tuple[float, float]:
        """Where a shape is at frame i: constant velocity, bouncing off the picture's edges."""
        out = []
        for axis, size in ((0, self.width), (1, self.height)):
            span = max(1.0, size - 2 * shape["r"])
            p = (shape["pos"][axis] + shape["vel"][axis] * i) % (2 * span)
            out.append(shape["r"] + (p if p < span else 2 * span - p))
        return out[0], out[1]

    def luma(self, i: int) -> np.ndarray:
        w, h = self.width, self.height
        scale = w / 640
        vx, vy, wx, wy = self._pan
        ox = round(scale * (3 * vx * i + 25 * math.sin(i * 0.05 * (1 + wx))))
        oy = round(scale * (2 * vy * i + 15 * math.sin(i * 0.03 * (1 + wy))))
        luma = np.roll(self._texture, (oy, ox), axis=(0, 1))
        for shape in self._shapes:
            cx, cy = self._shape_at(shape, i)
            r = shape["r"]
            top, bottom = max(0, int(cy - r)), min(h, int(cy + r) + 1)
            left, right = max(0, int(cx - r)), min(w, int(cx + r) + 1)
            if shape["disc"]:
                x, y = self._x[top:bottom, left:right], self._y[top:bottom, left:right]
                inside = (x - cx) ** 2 + (y - cy) ** 2 < r * r
                luma[top:bottom, left:right][inside] = shape["luma"]
            else:
                luma[top:bottom, left:right] = shape["luma"]
        luma = luma + 12 * math.sin(i * 2 * math.pi / 170)  # a slow brightness drift over ~7 s
        rng = np.random.default_rng([self.seed, 12, i])
        luma = luma + rng.integers(-3, 4, size=luma.shape)
        for event in self.events:
            if event.frame <= i < event.frame + event.frames_shown:
                top, left, eh, ew = event.box
                luma[top : top + eh, left : left + ew] = event.luma
        return np.clip(luma, 16, 235).astype(np.uint8)

    def frame(self, i: int) -> np.ndarray:
        """The yuv420p picture of frame ``i`` as a (H*3/2, W) uint8 array."""
        w, h = self.width, self.height
        out = np.empty(h * w * 3 // 2, np.uint8)
        out[: h * w] = self.luma(i).ravel()
        q = h * w // 4
        out[h * w : h * w + q] = self._chroma_u
        out[h * w + q :] = self._chroma_v
        return out.reshape(h * 3 // 2, w)


def event_audio(
    n_samples: int,
    sample_rate: int,
    events: list[Event],
    fps: Fraction,
    seed: int,
    background: AudioBackground = "noise",
) -> np.ndarray:
    """Mono float32 audio (shape (1, n)): a quiet background and each event's sound from its first frame."""
    rng = np.random.default_rng([seed, 13])
    t = np.arange(n_samples) / sample_rate
    audio = 0.006 * rng.standard_normal(n_samples)
    if background == "chord":
        # A quiet sustained chord whose loudness swells slowly: music that never makes a sharp onset.
        swell = 0.5 + 0.5 * np.sin(2 * np.pi * t / 5.3)
        for hz in rng.uniform(110, 440, 3):
            audio += 0.01 * swell * np.sin(2 * np.pi * hz * t + rng.uniform(0, 2 * np.pi))
    elif background != "noise":
        raise ValueError(f"audio background must be 'noise' or 'chord', got {background!r}")
    for event in events:
        start = round(event.frame / fps * sample_rate)
        if start >= n_samples:
            continue
        if event.sound == "tone":
            n = round(event.sound_s * sample_rate)
            k = np.arange(n) / sample_rate
            attack = np.minimum(1.0, k / 0.002)  # 2 ms: sharp, without a click
            release = np.minimum(1.0, (event.sound_s - k) / 0.010)
            sound = event.amplitude * attack * release * np.sin(2 * np.pi * event.pitch_hz * k)
        else:
            n = round(6 * event.sound_s * sample_rate)
            k = np.arange(n) / sample_rate
            sound = _band_noise(n, sample_rate, event.pitch_hz, rng) * np.exp(-k / event.sound_s)
            sound *= event.amplitude / max(1e-9, float(np.abs(sound).max()))
        end = min(n_samples, start + len(sound))
        audio[start:end] += sound[: end - start]
    return np.clip(audio, -1, 1).astype(np.float32)[None, :]


def _band_noise(n: int, sample_rate: int, centre_hz: float, rng: np.random.Generator) -> np.ndarray:
    """White noise kept to about an octave either side of ``centre_hz`` (a clap's colour)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    hz = np.fft.rfftfreq(n, 1 / sample_rate)
    spectrum *= np.exp(-0.5 * (np.log2(np.maximum(hz, 1.0) / centre_hz)) ** 2)
    return np.fft.irfft(spectrum, n)


def generate_event_stream(
    path: str | Path,
    *,
    duration_s: float = 12.0,
    width: int = 640,
    height: int = 360,
    fps: float = 25,
    video_codec: str | None = None,
    sample_rate: int = 48000,
    sounds: tuple[Sound, ...] = ("tone", "clap"),
    audio_background: AudioBackground = "noise",
    events: bool = True,
    gop_s: float = 2.0,
    defects: Iterable[DefectSpec] = (),
    seed: int = 0,
) -> GroundTruth:
    """Write event content (see the module doc) with the given defects; return its truth.

    The container follows the extension (.mp4: h264 or hevc, .webm: vp8/vp9 with Opus, .ts, .mkv);
    ``events=False`` writes the moving background and the audio background alone. The truth is also
    written to ``<path>.truth.json``.
    """
    video_codec, fpsf, n_frames, duration, corruptions, offsets, plans = _synthetic_layout(
        path, video_codec, fps, duration_s, defects, True
    )
    planned = plan_events(n_frames, fpsf, width, height, seed, sounds) if events else []
    video = MovingBackground(width, height, seed, planned)
    samples = event_audio(round(duration * sample_rate), sample_rate, planned, fpsf, seed, audio_background)

    writer = _writer(
        path, width, height, fpsf, video_codec, gop_s, samples, sample_rate, corruptions, offsets, seed
    )
    write_pictures(writer, n_frames, plans, video.frame, height, seed)

    truth = GroundTruth(
        source="synthetic-events",
        duration_s=duration,
        video=VideoInfo(width, height, float(fpsf), video_codec, float(writer.gop_frames / fpsf)),
        audio=AudioInfo(sample_rate, 1, writer.audio_codec),
        events_s=[float(e.frame / fpsf) for e in planned],
        event_period_s=None,
    )
    return _finish(writer, path, truth, plans, offsets)
