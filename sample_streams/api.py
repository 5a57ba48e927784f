"""generate_stream / inject_defects: write a stream with known defects and its ground truth."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from .defects import AvOffset, BlockCorruption, DefectSpec, Freeze
from .synth import SyntheticVideo, event_frames, frozen_noise, synthetic_audio
from .truth import AudioInfo, GroundTruth, VideoInfo
from .writer import OPUS_RATES, StreamWriter, container_for, default_video_codec


def _round_half_up(x: Fraction | float) -> int:
    # Python's round() rounds halves to even; frame snapping must not depend on parity.
    return math.floor(x + Fraction(1, 2)) if isinstance(x, Fraction) else math.floor(x + 0.5 + 1e-9)


def _as_fraction(fps: float | Fraction) -> Fraction:
    return Fraction(fps).limit_denominator(1001)


@dataclass(frozen=True)
class _FreezePlan:
    spec: Freeze
    first: int  # the frame that is shown and then repeats
    resume: int  # the first new frame after the freeze

    def covers(self, i: int) -> bool:
        return self.first < i < self.resume


def _plan_freezes(freezes: list[Freeze], fps: Fraction, n_frames: int) -> list[_FreezePlan]:
    plans = []
    for f in sorted(freezes, key=lambda f: f.start_s):
        first = _round_half_up(Fraction(f.start_s) * fps)
        resume = min(n_frames, _round_half_up(Fraction(f.start_s + f.duration_s) * fps))
        if first >= n_frames:
            raise ValueError(f"freeze at {f.start_s} s starts after the end of the stream")
        if resume < first + 2:
            raise ValueError(f"freeze at {f.start_s} s for {f.duration_s} s repeats no frame at {fps} fps")
        if plans and first < plans[-1].resume:
            raise ValueError(f"freeze at {f.start_s} s overlaps the previous freeze")
        plans.append(_FreezePlan(f, first, resume))
    return plans


def _freeze_truth(plans: list[_FreezePlan], fps: Fraction) -> list[dict[str, Any]]:
    return [
        {
            "type": "freeze",
            "start_s": float(p.first / fps),
            "end_s": float(p.resume / fps),
            "noise": float(p.spec.noise),
        }
        for p in plans
    ]


def _shift_audio_content(audio: np.ndarray, offsets: list[AvOffset], sample_rate: int) -> np.ndarray:
    """Shift the signal from each start on: insert silence for a lag, drop samples for a lead.

    The length is kept, so timestamps stay continuous and audio still ends with the video.
    """
    n = audio.shape[1]
    for o in sorted(offsets, key=lambda o: o.start_s):
        s = min(n, round(o.start_s * sample_rate))
        d = round(abs(o.offset_ms) * sample_rate / 1000)
        head, tail = audio[:, :s], audio[:, s:]
        silence = np.zeros((audio.shape[0], min(d, n - s)), audio.dtype)
        if o.offset_ms > 0:
            audio = np.concatenate([head, silence, tail[:, : max(0, n - s - d)]], axis=1)
        else:
            audio = np.concatenate([head, tail[:, d:], silence], axis=1)
    return audio


def _av_truth(offsets: list[AvOffset], duration_s: float) -> list[dict[str, Any]]:
    return [
        {
            "type": "av_sync",
            "start_s": o.start_s,
            "end_s": duration_s,
            "offset_ms": o.offset_ms,
            "mode": o.mode,
        }
        for o in offsets
    ]


def _split(
    defects: Iterable[DefectSpec], duration_s: float, has_audio: bool
) -> tuple[list[Freeze], list[BlockCorruption], list[AvOffset]]:
    freezes: list[Freeze] = []
    corruptions: list[BlockCorruption] = []
    offsets: list[AvOffset] = []
    for d in defects:
        if d.start_s >= duration_s:
            raise ValueError(f"{type(d).__name__} at {d.start_s} s is not before the end ({duration_s:g} s)")
        if isinstance(d, Freeze):
            freezes.append(d)
        elif isinstance(d, BlockCorruption):
            corruptions.append(d)
        elif isinstance(d, AvOffset):
            if not has_audio:
                raise ValueError("an av offset needs audio")
            offsets.append(d)
        else:
            raise TypeError(f"not a defect spec: {d!r}")
    return freezes, corruptions, offsets


def _writer(
    path: str | Path,
    width: int,
    height: int,
    fps: Fraction,
    video_codec: str,
    gop_s: float,
    audio: np.ndarray | None,
    sample_rate: int,
    corruptions: list[BlockCorruption],
    offsets: list[AvOffset],
    seed: int,
    encoder_options: dict[str, str] | None = None,
) -> StreamWriter:
    """The writer of both entry points: a fixed GOP, content offsets applied to the audio signal,
    pts offsets left to the muxer, corruption to the coded packets."""
    if audio is not None:
        audio = _shift_audio_content(audio, [o for o in offsets if o.mode == "content"], sample_rate)
    return StreamWriter(
        path,
        width=width,
        height=height,
        fps=fps,
        video_codec=video_codec,
        gop_frames=max(1, _round_half_up(Fraction(gop_s) * fps)),
        audio=audio,
        sample_rate=sample_rate,
        corruptions=corruptions,
        pts_shifts=[o for o in offsets if o.mode == "pts"],
        seed=seed,
        encoder_options=encoder_options,
    )


def _finish(
    writer: StreamWriter,
    path: str | Path,
    truth: GroundTruth,
    plans: list[_FreezePlan],
    offsets: list[AvOffset],
) -> GroundTruth:
    fps = writer.fps
    defects = (
        _freeze_truth(plans, fps)
        + writer.corruption_truth(truth.duration_s)
        + _av_truth(offsets, truth.duration_s)
    )
    truth.defects = sorted(defects, key=lambda d: (d["start_s"], d["type"]))
    truth.write(path)
    return truth


def _synthetic_layout(
    path: str | Path,
    video_codec: str | None,
    fps: float,
    duration_s: float,
    defects: Iterable[DefectSpec],
    has_audio: bool,
) -> tuple[str, Fraction, int, float, list[BlockCorruption], list[AvOffset], list[_FreezePlan]]:
    """What both synthetic generators settle before drawing a frame: the codec (checked against the
    container), the frame rate, the frame count and exact duration, the defects sorted and planned."""
    video_codec = video_codec or default_video_codec(path)
    container_for(path, video_codec)  # fail before doing any work
    fpsf = _as_fraction(fps)
    n_frames = _round_half_up(Fraction(duration_s) * fpsf)
    if n_frames < 2:
        raise ValueError(f"duration {duration_s} s gives fewer than 2 frames at {fps} fps")
    duration = float(n_frames / fpsf)
    freezes, corruptions, offsets = _split(list(defects), duration, has_audio)
    return video_codec, fpsf, n_frames, duration, corruptions, offsets, _plan_freezes(freezes, fpsf, n_frames)


def write_pictures(
    writer: StreamWriter,
    n_frames: int,
    plans: list[_FreezePlan],
    picture: Callable[[int], np.ndarray],
    height: int,
    seed: int,
) -> None:
    """Frames 0..n_frames-1 as `picture(i)` draws them, frozen where a plan says (the plan's first picture
    again, with its noise), then the writer closed (also on an error, so nothing stays open)."""
    try:
        frozen: dict[int, np.ndarray] = {}
        for i in range(n_frames):
            plan = next((p for p in plans if p.covers(i)), None)
            if plan is None:
                writer.add_video(picture(i))
            else:
                base = frozen.setdefault(plan.first, picture(plan.first))
                writer.add_video(frozen_noise(base, height, plan.spec.noise, seed, i))
    finally:
        writer.close()


def generate_stream(
    path: str | Path,
    *,
    duration_s: float = 20.0,
    width: int = 640,
    height: int = 360,
    fps: float = 25,
    video_codec: str | None = None,
    audio: bool = True,
    sample_rate: int = 48000,
    event_period_s: float | None = 1.0,
    gop_s: float = 2.0,
    defects: Iterable[DefectSpec] = (),
    seed: int = 0,
    encoder_options: dict[str, str] | None = None,
) -> GroundTruth:
    """Write a synthetic test stream with flash/beep events and the given defects; return its truth.

    The container follows the extension (.mp4, .ts, .mkv, .webm); ``video_codec`` None picks the
    container's default (h264, or vp8 for .webm). ``encoder_options`` are passed to the video encoder
    last (e.g. ``{"crf": "48"}`` for x264, ``{"b": "100k"}`` for the others: heavily compressed).
    The truth is also written to ``<path>.truth.json``.
    """
    video_codec, fpsf, n_frames, duration, corruptions, offsets, plans = _synthetic_layout(
        path, video_codec, fps, duration_s, defects, audio
    )

    flashes = event_frames(n_frames, fpsf, event_period_s)
    video = SyntheticVideo(width, height, seed, flashes)
    samples = None
    if audio:
        samples = synthetic_audio(
            round(duration * sample_rate), sample_rate, [n / fpsf for n in flashes], seed
        )

    writer = _writer(
        path,
        width,
        height,
        fpsf,
        video_codec,
        gop_s,
        samples,
        sample_rate,
        corruptions,
        offsets,
        seed,
        encoder_options,
    )
    write_pictures(writer, n_frames, plans, video.frame, height, seed)

    truth = GroundTruth(
        source="synthetic",
        duration_s=duration,
        video=VideoInfo(width, height, float(fpsf), video_codec, float(writer.gop_frames / fpsf)),
        audio=AudioInfo(sample_rate, 1, writer.audio_codec) if audio else None,
        events_s=[float(n / fpsf) for n in flashes],
        event_period_s=event_period_s if flashes else None,
    )
    return _finish(writer, path, truth, plans, offsets)


def _read_audio(src: str, video_start_s: float, rate: int, channels: int, n_samples: int) -> np.ndarray:
    """Decode the source audio as float planar at ``rate``, aligned so sample 0 = first video frame."""
    layout = "mono" if channels == 1 else "stereo"
    resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
    chunks: list[np.ndarray] = []
    first_s: float | None = None
    with av.open(src) as inp:
        for frame in inp.decode(audio=0):
            if first_s is None and frame.time is not None:
                first_s = frame.time
            chunks.extend(f.to_ndarray() for f in resampler.resample(frame))
        chunks.extend(f.to_ndarray() for f in resampler.resample(None))
    audio = np.concatenate(chunks, axis=1) if chunks else np.zeros((channels, 0), np.float32)
    lead = round(((first_s or 0.0) - video_start_s) * rate)
    if lead > 0:
        audio = np.concatenate([np.zeros((channels, lead), np.float32), audio], axis=1)
    elif lead < 0:
        audio = audio[:, -lead:]
    if audio.shape[1] < n_samples:
        audio = np.concatenate([audio, np.zeros((channels, n_samples - audio.shape[1]), np.float32)], axis=1)
    return np.ascontiguousarray(audio[:, :n_samples], dtype=np.float32)


def _source_frames(src: str, n_frames: int, width: int, height: int) -> Iterator[np.ndarray]:
    """Exactly ``n_frames`` yuv420p pictures; a short decode is padded by repeating the last picture."""
    last = None
    count = 0
    with av.open(src) as inp:
        inp.streams.video[0].thread_type = "AUTO"
        for frame in inp.decode(video=0):
            if count == n_frames:
                break
            last = frame.to_ndarray(format="yuv420p", width=width, height=height)
            count += 1
            yield last
    if last is None:
        raise ValueError(f"{src}: no decodable video frames")
    for _ in range(n_frames - count):
        yield last


def inject_defects(
    src_path: str | Path,
    dst_path: str | Path,
    defects: Iterable[DefectSpec],
    *,
    seed: int = 0,
    duration_s: float | None = None,
    video_codec: str | None = None,
    gop_s: float = 2.0,
    encoder_options: dict[str, str] | None = None,
) -> GroundTruth:
    """Re-encode a real clip (first ``duration_s`` seconds, default all) with the given defects injected.

    Output is H.264/AAC for .mp4/.ts/.mkv (vp8/opus for .webm), audio as stereo (mono if the source
    is mono). The frame rate is taken from the source and assumed constant. Truth has no events.
    ``encoder_options`` go to the video encoder last, as in `generate_stream`.
    """
    src = str(src_path)
    if not Path(src).is_file():
        raise FileNotFoundError(f"source not found: {src}")
    video_codec = video_codec or default_video_codec(dst_path)
    container_for(dst_path, video_codec)
    with av.open(src) as inp:
        if not inp.streams.video:
            raise ValueError(f"{src}: no video stream")
        vst = inp.streams.video[0]
        fpsf = _as_fraction(vst.average_rate or vst.guessed_rate or 25)
        # Even dimensions: yuv420p cannot represent odd sizes.
        width, height = vst.codec_context.width & ~1, vst.codec_context.height & ~1
        video_start = float((vst.start_time or 0) * vst.time_base) if vst.time_base else 0.0
        ast = inp.streams.audio[0] if inp.streams.audio else None
        src_rate = ast.codec_context.sample_rate if ast else 0
        channels = 1 if ast and ast.codec_context.channels == 1 else 2
        # Packet count is the frame count for a CFR source; cheaper than decoding twice.
        n_frames = sum(1 for p in inp.demux(vst) if p.size > 0)
    if duration_s is not None:
        n_frames = min(n_frames, _round_half_up(Fraction(duration_s) * fpsf))
    if n_frames < 2:
        raise ValueError(f"{src}: fewer than 2 video frames to work with")
    duration = float(n_frames / fpsf)
    defects = list(defects)
    freezes, corruptions, offsets = _split(defects, duration, ast is not None)
    plans = _plan_freezes(freezes, fpsf, n_frames)

    samples = None
    rate = src_rate
    if ast is not None:
        if Path(dst_path).suffix.lower() == ".webm" and rate not in OPUS_RATES:
            rate = 48000
        samples = _read_audio(src, video_start, rate, channels, round(duration * rate))

    writer = _writer(
        dst_path,
        width,
        height,
        fpsf,
        video_codec,
        gop_s,
        samples,
        rate,
        corruptions,
        offsets,
        seed,
        encoder_options,
    )
    try:
        held: np.ndarray | None = None
        for i, yuv in enumerate(_source_frames(src, n_frames, width, height)):
            plan = next((p for p in plans if p.first <= i < p.resume), None)
            if plan is None:
                writer.add_video(yuv)
                continue
            if i == plan.first:
                held = yuv  # the picture that will repeat
                writer.add_video(yuv)
            else:
                assert held is not None
                writer.add_video(frozen_noise(held, height, plan.spec.noise, seed, i))
    finally:
        writer.close()

    truth = GroundTruth(
        source=src,
        duration_s=duration,
        video=VideoInfo(width, height, float(fpsf), video_codec, float(writer.gop_frames / fpsf)),
        audio=AudioInfo(rate, channels, writer.audio_codec) if samples is not None else None,
        events_s=[],
        event_period_s=None,
    )
    return _finish(writer, dst_path, truth, plans, offsets)
