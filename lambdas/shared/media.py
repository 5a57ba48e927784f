"""What the converter hands to the detectors: one stream-second of decoded video and audio.

Plain dataclasses over numpy arrays, importable without PyAV so that the detector Lambdas stay small.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

DefectType = Literal["freeze", "block_corruption", "av_sync"]
DEFECT_TYPES: tuple[DefectType, ...] = ("freeze", "block_corruption", "av_sync")


@dataclass(frozen=True)
class VideoFrame:
    """One decoded picture: its luma plane and the decoder's evidence about it."""

    pts_s: float  # presentation time, seconds from the start of the stream
    luma: np.ndarray  # (height, width) uint8, the Y plane without padding
    key_frame: bool
    corrupt: bool  # FFmpeg's AV_FRAME_FLAG_CORRUPT (needs frame threading for H.264, see converter)
    decode_errors: int = 0  # packets that failed to decode since the previous frame
    # Pictures after this one whose packets the decoder took without error but never gave out: FFmpeg's
    # HEVC decoder silently drops every picture that refers to a damaged one, up to the next keyframe.
    # Also those whose packets failed to decode right before a keyframe (not counted on the keyframe,
    # where random access would not see them). Counted on the picture before them, which the random
    # access to their second decodes too.
    dropped_after: int = 0


@dataclass(frozen=True)
class AudioSecond:
    """The second's audio as mono float32 PCM, placed by pts on the stream's clock.

    Samples are placed where their timestamps say, so a lost packet becomes silence (counted in
    `filled_samples`) instead of shifting everything after it and faking an A/V desync.
    """

    samples: np.ndarray  # (sample_rate,) float32, mono mix, index 0 is the start of the second
    sample_rate: int
    filled_samples: int  # samples with no decoded audio (gaps, lost packets), left silent
    decode_errors: int  # audio packets the decoder rejected
    # The decoded audio frames that overlap this second, as (start_s, sample_count) on the stream clock:
    # the raw timing evidence, from which the A/V sync detector judges the audio clock.
    chunks: list[tuple[float, int]] = field(default_factory=list)


@dataclass(frozen=True)
class StreamSecond:
    """Everything the detectors see of second `index` of a stream: [index, index + 1) seconds."""

    index: int
    frames: list[VideoFrame]
    audio: AudioSecond | None
    is_last: bool

    @property
    def start_s(self) -> float:
        return float(self.index)


@dataclass(frozen=True)
class StreamInfo:
    source: str
    # From the container's header; None when it gives none (WebM written live, as MediaRecorder and live
    # encoders write it): the stream is then read to its end, which is found by reading.
    duration_s: float | None
    width: int
    height: int
    fps: float
    video_codec: str
    sample_rate: int | None
    channels: int | None
    audio_codec: str | None
    # What the video decoder would learn only from the stream's start, as decoder options for every
    # decode, so that one starting at a keyframe mid-stream (random access) sees what the sequential
    # pass sees: e.g. {"x264_build": "142"}, the x264 build whose known bugs FFmpeg works around.
    decoder_options: dict[str, str] = field(default_factory=dict)
    # Random access to second n seeks the video to the keyframe before n, which is exact given
    # `decoder_options`, unless a restart point (seconds from the stream's start) lies at or before n:
    # then decoding starts at the latest such point, from which it is exact while the keyframes after
    # it are not (what the decoder learned there cannot be carried by an option). [0.0]: always decode
    # from the stream's start. `restart_reason` says why there are any.
    restart_points: list[float] = field(default_factory=list)
    restart_reason: str | None = None
    # Where stream time 0 is on the container's clock, when the file decoded is not the stream's start: a
    # live stream is read a few segments at a time, and every window of it keeps the first segment's
    # origin. None: the container's own start.
    origin_s: float | None = None

    def decode_from(self, index: int) -> float | None:
        """The restart point random access to second `index` must decode from (None: any keyframe)."""
        earlier = [t for t in self.restart_points if t <= index + 1e-6]
        return max(earlier) if earlier else None

    @property
    def seconds(self) -> int | None:
        """How many stream-seconds the pipeline iterates over (the last one may be partial); None when the
        header gives no duration: the count is known only once the stream has been read to its end."""
        if self.duration_s is None:
            return None
        return max(1, int(np.ceil(self.duration_s - 1e-6)))

    def to_report(self) -> dict[str, Any]:
        """The header of `monolith analyze --json` (the contract other parts read)."""
        audio = None
        if self.sample_rate is not None:
            audio = {"sample_rate": self.sample_rate, "channels": self.channels}
        return {
            "source": self.source,
            "duration_s": round(self.duration_s, 3) if self.duration_s is not None else None,
            "video": {"width": self.width, "height": self.height, "fps": round(self.fps, 3)},
            "audio": audio,
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StreamInfo:
        return cls(**{
            **data,
            "decoder_options": dict(data.get("decoder_options") or {}),
            "restart_points": [float(t) for t in data.get("restart_points") or []],
        })


def make_defect(
    defect_type: DefectType, start_s: float, end_s: float, confidence: float, **details: Any
) -> dict[str, Any]:
    """One finding in the shape of `monolith analyze --json` (times in seconds from the stream start)."""
    return {
        "type": defect_type,
        "start_s": round(float(start_s), 3),
        "end_s": round(float(end_s), 3),
        "confidence": round(float(min(max(confidence, 0.0), 1.0)), 3),
        **details,
    }
