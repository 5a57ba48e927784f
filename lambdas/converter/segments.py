"""A live stream's segments decoded as one stream: the segment-window decoder of every design.

HLS segments start on keyframes, so consecutive segments from any one of them decode on their own into the
seconds `monolith analyze` gives out on the whole published stream, given what only the stream's first
segment tells (`StreamStart`: the origin of its clock and the decoder options of
lambdas/converter/decode.py). The decode starts at the segment `window_start` names for the first second
wanted (its sound needs `AUDIO_PREROLL_S` before it) and runs through `decode.window_seconds`.

Each design keeps its own I/O pattern around it, reading every segment with one GET
(lambdas/shared/live.py; this module reads nothing from S3):
- the before (lambdas/converter/live_source.py) decodes one stream-second per invocation from the segments
  that hold it, kept in /tmp across warm invocations;
- the after (monolith/live.py) streams every segment through one container (`SegmentReader`), waiting
  at the live edge for the next;
- the serverless design (lambdas/segment_analyzer/) decodes the window ending at each new segment, in
  memory.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import av
import av.error

from lambdas.converter.decode import (
    AUDIO_PREROLL_S,
    MAX_PIXELS,
    X264_VERSION,
    UnreadableStreamError,
    Window,
    window_seconds,
)
from lambdas.shared.live import LivePlaylist
from lambdas.shared.media import StreamInfo, StreamSecond

TS_PACKET = 188
TS_SYNC = 0x47
# The demuxer's look-ahead when a followed stream (a `SegmentReader`) is opened: it reads until it knows
# every stream's parameters or has read this much, and reading past the first segment would wait for the
# next one (5 MB / 5 s by default: up to 5 s of lag before the first second). One keyframe and a few audio
# frames tell it all. A window held in memory is opened with the defaults: nothing to wait for.
OPEN_OPTIONS = {"probesize": "65536", "analyzeduration": "500000"}


def is_ts(data: bytes) -> bool:
    """Whether `data` is 188-byte MPEG-TS packets starting with the sync byte 0x47 (its first ones)."""
    packets = data[: TS_PACKET * 8 : TS_PACKET]
    return bool(data) and not len(data) % TS_PACKET and all(b == TS_SYNC for b in packets)


def check_ts(data: bytes, source: str) -> None:
    """A segment that is not MPEG-TS fails clearly (the demuxer would skip it silently, resynchronising on
    the next segment)."""
    if not is_ts(data):
        raise UnreadableStreamError(source, f"not an MPEG-TS segment (no sync byte every {TS_PACKET} bytes)")


def check_segment_decodes(data: bytes, source: str) -> None:
    """A segment that is MPEG-TS and whose video decodes (its first picture): a poison segment fails here,
    clearly, rather than as damage the detectors would report."""
    check_ts(data, source)
    try:
        with av.open(io.BytesIO(data), "r", format="mpegts") as container:
            if not container.streams.video:
                raise UnreadableStreamError(source, "no video stream")
            for _ in container.decode(container.streams.video[0]):
                return
    except av.error.FFmpegError as error:
        raise UnreadableStreamError(source, f"the video does not decode ({error.strerror})") from None
    raise UnreadableStreamError(source, "the video stream holds no decodable picture")


@dataclass(frozen=True)
class StreamStart:
    """What a decode starting at a later segment must be told to decode as one from the stream's start,
    read from the first segment: small and serialisable (each design keeps it in its own state)."""

    origin_s: float  # the stream's first timestamp (absolute): every window keeps the stream's clock
    decoder_options: dict[str, str] = field(default_factory=dict)  # the x264 build its first keyframe names


def stream_start(first_segment: bytes, source: str) -> StreamStart:
    """The stream's origin and decoder options from its first segment (demuxed, not decoded)."""
    check_ts(first_segment, source)
    options: dict[str, str] = {}
    try:
        with av.open(io.BytesIO(first_segment), "r", format="mpegts") as container:
            if not container.streams.video:
                raise UnreadableStreamError(source, "no video stream")
            origin = container.start_time / av.time_base if container.start_time is not None else 0.0
            for packet in container.demux(container.streams.video[0]):
                if packet.size and packet.is_keyframe:
                    match = X264_VERSION.search(bytes(packet))
                    if match and int(match.group(1)):
                        options = {"x264_build": match.group(1).decode()}
                    break
    except av.error.FFmpegError as error:
        raise UnreadableStreamError(source, f"not a readable MPEG-TS segment ({error.strerror})") from None
    return StreamStart(origin_s=origin, decoder_options=options)


def window_start(playlist: LivePlaylist, second: int, *, slack_s: float = 0.0) -> int:
    """The segment a decode giving out `second` on starts at: the last one starting at or before
    `AUDIO_PREROLL_S` (and `slack_s` more) before it. Segments start on keyframes."""
    at = second - AUDIO_PREROLL_S - slack_s
    starts = [s.index for s in playlist.segments if s.start_s <= at + 1e-6]
    return max(starts, default=0)


class SegmentReader:
    """A file-like object for PyAV's demuxer: the bytes of consecutive segments, each asked of
    `read_next` once the one before is used up (b"" from it: the end of the data)."""

    def __init__(self, read_next: Callable[[], bytes]) -> None:
        self.read_next = read_next
        self.buffer = b""
        self.offset = 0

    def read(self, size: int = -1) -> bytes:
        if self.offset >= len(self.buffer):
            self.buffer, self.offset = self.read_next(), 0
        if size < 0:
            size = len(self.buffer) - self.offset
        out = self.buffer[self.offset:self.offset + size]
        self.offset += len(out)
        return out


def keyframe_times(window: bytes, origin_s: float) -> list[float]:
    """When each video keyframe of a window starts, in stream seconds, by demuxing only."""
    times: list[float] = []
    try:
        with av.open(io.BytesIO(window), "r", format="mpegts") as container:
            if not container.streams.video:
                return times
            for packet in container.demux(container.streams.video[0]):
                if packet.size and packet.is_keyframe and packet.pts is not None:
                    times.append(round(float(packet.pts * packet.time_base) - origin_s, 6))
    except av.error.FFmpegError:
        pass  # a damaged tail: the keyframes before it stand
    return times


def video_from(window: bytes, origin_s: float, second: int) -> float | None:
    """The keyframe decoding `second`'s pictures starts at: the last one at or before it (the window's
    earlier pictures are there for the sound's sake only). None: the window holds no keyframe."""
    keyframes = keyframe_times(window, origin_s)
    before = [k for k in keyframes if k <= second + 1e-6]
    return max(before) if before else (keyframes[0] if keyframes else None)


class SegmentWindow:
    """Consecutive segments of a live stream opened as one MPEG-TS container, with what the decoder must
    know (`info`: the stream's clock and decoder options, no duration unless the caller knows it). `data`:
    a `SegmentReader` (segments read as the decoder needs them) or a file-like window in memory."""

    def __init__(self, data: Any, source: str, start: StreamStart, *, duration_s: float | None = None
                 ) -> None:
        self.start = start
        options = dict(OPEN_OPTIONS) if isinstance(data, SegmentReader) else {}
        try:
            self.container = av.open(data, "r", format="mpegts", options=options)
        except av.error.FFmpegError as error:
            raise UnreadableStreamError(source, f"not a readable MPEG-TS stream ({error.strerror})") from None
        try:
            self.info = replace(_stream_info(self.container, source), origin_s=start.origin_s,
                                decoder_options=dict(start.decoder_options), duration_s=duration_s)
        except UnreadableStreamError:
            self.container.close()
            raise

    @property
    def end_s(self) -> float | None:
        """Where the window ends on the stream's clock (absolute), as libavformat estimates it from the
        timestamps at its end (as `decode.probe` finds a file's duration); None if it cannot tell."""
        container = self.container
        if container.start_time is None or not container.duration:
            return None
        return (container.start_time + container.duration) / av.time_base

    def seconds(self, first_second: int, *, video_from_s: float | None = None, stop_second: int | None = None,
                last_second: int | None = None, to_end: bool = False) -> Iterator[StreamSecond]:
        """The complete seconds from `first_second` on (see `decode.Window`)."""
        window = Window(origin_s=self.start.origin_s, first_second=first_second, video_from_s=video_from_s,
                        stop_second=stop_second, last_second=last_second, to_end=to_end)
        yield from window_seconds(self.container, self.info, window)

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> SegmentWindow:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _stream_info(container: Any, source: str) -> StreamInfo:
    if not container.streams.video:
        raise UnreadableStreamError(source, "no video stream")
    video = container.streams.video[0]
    audio = container.streams.audio[0] if container.streams.audio else None
    width, height = int(video.codec_context.width or 0), int(video.codec_context.height or 0)
    if width <= 0 or height <= 0 or width * height > MAX_PIXELS:
        raise UnreadableStreamError(source, f"picture size {width}x{height} cannot be analysed")
    return StreamInfo(
        source=source, duration_s=None, width=width, height=height,
        fps=float(video.average_rate or video.guessed_rate or 0) or 25.0,
        video_codec=video.codec_context.name,
        sample_rate=int(audio.codec_context.sample_rate) if audio else None,
        channels=int(audio.codec_context.channels) if audio else None,
        audio_codec=audio.codec_context.name if audio else None)
