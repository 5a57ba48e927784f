"""Decode a stream one stream-second at a time with PyAV.

Two ways in, one assembly: `iter_seconds` walks the whole stream once (the monolith), `read_second`
seeks to one second and decodes only what it needs (the converter Lambda). Both place video frames and
audio samples by their timestamps on the same clock, so they yield the same `StreamSecond`: the same
pictures and decoder flags bit for bit, and the same audio samples: each second's sound comes from a
decoder of its own started at the same packet on both ways (`_SecondsOfAudio`), since AAC's noise
substitution (PNS) draws from a generator that depends on where decoding started.

Random access is exact because `probe` learns what the decoder would otherwise learn only from the
stream's start and every decode is given it (`StreamInfo.decoder_options`): the x264 build, announced
once in an SEI message of the first frame, selects FFmpeg's workarounds for that build's known bugs;
a decode that starts at a later keyframe never sees it. Parameter sets (SPS/PPS, sequence headers) sent
only at the start travel as the container's extradata, which libavformat extracts from the stream's
start when it opens the file, for every decode alike. Where a keyframe is not known to be an exact entry
point (a codec the parity suite does not cover: from the stream's start; a later x264 build in a
spliced stream, MPEG-4 encoder user data missing from the extradata: from where it is announced),
random access decodes from that earlier point instead (`StreamInfo.restart_points`) and logs why.
Damaged pictures match too: H.264 conceals damage from the picture decoded last, even one from before an
IDR, so both ways reset the decoder at every IDR (`_drain_and_reset`), as a seek to it does.
"""

from __future__ import annotations

import bisect
import logging
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import av
import av.error
import numpy as np

from lambdas.shared.media import AudioSecond, StreamInfo, StreamSecond, VideoFrame

log = logging.getLogger(__name__)

# Pictures larger than 8K UHD are refused: a forged header could otherwise make us allocate gigabytes.
MAX_PIXELS = 7680 * 4320
# A second (the partial last one included) that should last at least this long must hold a picture or
# sound; shorter tails (a container duration a few ms past the last frame) may be empty.
MIN_EXPECTED_S = 0.5
# How far before the wanted second audio decoding starts after a seek, so that the codec's priming
# (AAC/MP3 overlap windows) has settled by the time the second begins.
AUDIO_PREROLL_S = 0.5
# H.264 only flags damaged frames (is_corrupt) when error concealment runs, which needs frame threading
# or one thread; slice threading (PyAV's default) hides the damage. With several frame threads the
# concealed pixels vary from run to run, so the default is one thread: the Lambda path and the monolith
# then see the same pixels, and the monolith scales by analysing several streams at once instead.
THREAD_TYPE = "FRAME"
DEFAULT_THREADS = 1
# FFmpeg's VP8 decoder rejects a packet whose data runs out mid-picture (flipped bytes desync its bool
# decoder; a truncated packet) only when it decodes with slice threads; with one thread it conceals the
# rest of the picture without a word. Measured on the damage corpus's tuning sources, seed 0: packets
# rejected in 6 of the 12 damaged VP8 streams with slice threads, in 2 with one thread, in none of the 12
# clean ones either way. So VP8 decodes with slice threads (`_SlicedVp8`). (FFmpeg's VP9 decoder does the
# opposite: slice threads hide what one thread rejects.)
VP8_SLICE_THREADS = 2
# FFmpeg's VP9 decoder conceals much damage that libvpx, the reference decoder, rejects (it checks that its
# bool decoder stayed within the data, and refuses the pictures that refer to a rejected one up to the next
# keyframe). Measured on the damage corpus's tuning sources, seed 0: libvpx rejects packets in all 12
# damaged VP9 streams, FFmpeg in 11, in none of the 12 clean ones either, and both give the same pictures
# on clean data (VP9's decoding is normative). So VP9 decodes with libvpx (`_ReferenceDecoder`): a viewer
# sees the last whole picture, not a concealed one, and libvpx costs no more (0.95x-0.98x FFmpeg's CPU at
# 360p and 1080p, `scripts/decoder_cost.py`).
REFERENCE_DECODERS = {"vp9": "libvpx-vp9"}
# Video codecs whose keyframes FFmpeg decodes from, after a seek, into the same pictures and flags as the
# sequential pass (given `decoder_options`): each is covered by tests/test_random_access_parity.py on real
# clips. Random access into any other codec decodes from the stream's start.
KEYFRAME_EXACT_CODECS = frozenset({"h264", "hevc", "vp8", "vp9", "mpeg2video", "mpeg4", "libdav1d"})
# The version string x264 writes into an SEI user-data message of its first frame; FFmpeg's H.264 decoder
# reads the build from it (the same pattern, build > 0) and otherwise assumes none (x264_build = -1).
X264_VERSION = re.compile(rb"x264 - core (\d+)")
# An Annex B start code (MPEG-TS framing of H.264), before each NAL unit.
_START_CODE = re.compile(rb"\x00\x00\x01")
# MPEG-4 Part 2 user data (start code 0x1B2) naming the encoder, as FFmpeg's decoder parses it.
MPEG4_ENCODER_DATA = re.compile(rb"\x00\x00\x01\xb2((?:DivX|XviD|FFmpe|Lavc|ffmpeg)[\x20-\x7e]*)")


class PastTheEndError(ValueError):
    """A second after the stream's last was asked for (found by reading when the header has no length)."""


class UnreadableStreamError(Exception):
    """The input cannot be analysed; the message names the file and the reason."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


# How far the video may run ahead of an audio stream that has stopped delivering before a second is
# emitted without waiting for it (bounds memory on streams whose audio dies).
AUDIO_WAIT_S = 2.0


@dataclass
class _DecodedAudio:
    start_s: float
    samples: np.ndarray  # float32 mono
    end_s: float


class _SecondsOfAudio:
    """The audio of each second decoded by a decoder of its own, fresh at the first packet at or after
    `AUDIO_PREROLL_S` before the second, and fed until a packet at or past the second's end.

    The sequential pass and random access then decode every second's sound from the same packets with a
    decoder in the same state, so they give the same samples. One decoder running on from the stream's
    start does not: AAC fills noise-like bands with pseudo-random noise (PNS) from a generator that
    random access restarts (measured: samples up to 0.17 apart, A/V offsets 0.4-0.6 ms apart between the
    Lambda path and the monolith). At most two decoders run at once (1.5x the audio decoding).
    `only` decodes one second (random access); otherwise every second from `first` (0: the stream's start).
    """

    def __init__(self, stream: av.stream.Stream, origin: float, only: int | None = None, first: int = 0
                 ) -> None:
        self.template = stream.codec_context
        self.origin = origin
        self.only = only
        self.next_second = first if only is None else only
        self.open: dict[int, tuple[av.codec.context.CodecContext, list[float | None]]] = {}
        self.first_packet_s: float | None = None
        self.last_s: float | None = None

    def _fresh(self) -> av.codec.context.CodecContext:
        ctx = av.CodecContext.create(self.template.name, "r")
        ctx.extradata = self.template.extradata
        ctx.sample_rate = self.template.sample_rate
        ctx.layout = self.template.layout
        # The packets' time base: without it the decoder does not move a frame's pts past the priming
        # samples it skips (an MP4 edit list), and chaplin's first sound landed 1105 samples early.
        ctx.pkt_timebase = self.template.pkt_timebase
        return ctx

    def feed(self, packet: av.Packet) -> Iterator[tuple[str, int, Any]]:
        """("audio", second, chunk) and ("audio_error", second, time_s) for one packet, in order."""
        stamp = packet.pts if packet.pts is not None else packet.dts
        at_s = float(stamp * packet.time_base) - self.origin if stamp is not None else self.last_s
        if at_s is None:
            at_s = 0.0
        self.last_s = at_s
        if self.first_packet_s is None:
            self.first_packet_s = at_s
        while (self.only is None or self.next_second == self.only) and (
            self.next_second - AUDIO_PREROLL_S <= at_s + 1e-9
        ):
            self.open[self.next_second] = (self._fresh(), [None])
            self.next_second += 1
        for second in sorted(self.open):
            ctx, last_end = self.open[second]
            yield from self._decode(second, ctx, last_end, packet, at_s)
            if at_s >= second + 1 - 1e-9:
                yield from self._decode(second, ctx, last_end, None, at_s)
                del self.open[second]

    def finish(self) -> Iterator[tuple[str, int, Any]]:
        """What the decoders still hold at the end of the stream."""
        for second in sorted(self.open):
            ctx, last_end = self.open.pop(second)
            yield from self._decode(second, ctx, last_end, None, self.last_s or 0.0)

    def _decode(
        self, second: int, ctx: av.codec.context.CodecContext, last_end: list[float | None],
        packet: av.Packet | None, at_s: float,
    ) -> Iterator[tuple[str, int, Any]]:
        try:
            decoded = ctx.decode(packet)
        except av.error.FFmpegError:
            if packet is not None:
                yield "audio_error", second, at_s if packet.pts is not None else -1.0
            return
        for frame in decoded:
            chunk = _audio_chunk(frame, self.origin, last_end[0])
            last_end[0] = chunk.end_s
            yield "audio", second, chunk


def probe(path: str | Path) -> StreamInfo:
    """Read the stream's header and check that its video really decodes."""
    source = str(path)
    with _open(source) as container:
        video = _video_stream(container, source)
        audio = container.streams.audio[0] if container.streams.audio else None
        ctx = video.codec_context
        width, height = int(ctx.width or 0), int(ctx.height or 0)
        if width <= 0 or height <= 0:
            raise UnreadableStreamError(source, "the video stream has no picture size")
        if width * height > MAX_PIXELS:
            raise UnreadableStreamError(source, f"picture size {width}x{height} is larger than 8K UHD")
        fps = float(video.average_rate or video.guessed_rate or 0) or 25.0
        duration_s = _duration_s(container, video)
        if duration_s is None and "matroska" in container.format.name:
            # No duration to check the data against: a cut file would pass as a shorter stream.
            cut = _matroska_cut(source)
            if cut:
                raise UnreadableStreamError(source, cut)
        _first_picture(container, video, source)
        options, restarts, reason = _stream_start_knowledge(source, ctx.name)
        return StreamInfo(
            source=source,
            duration_s=duration_s,
            width=width,
            height=height,
            fps=fps,
            video_codec=ctx.name,
            sample_rate=int(audio.codec_context.sample_rate) if audio else None,
            channels=int(audio.codec_context.channels) if audio else None,
            audio_codec=audio.codec_context.name if audio else None,
            decoder_options=options,
            restart_points=restarts,
            restart_reason=reason,
        )


def _stream_start_knowledge(source: str, codec: str) -> tuple[dict[str, str], list[float], str | None]:
    """(decoder options, restart points, why any): what a decode that starts at a keyframe mid-stream
    must be told, or where it must start instead, to decode as the sequential pass does."""
    if codec not in KEYFRAME_EXACT_CODECS:
        return {}, [0.0], f"random access into {codec} is not known to be exact at keyframes"
    if codec == "h264":
        return _x264_builds(source)
    if codec == "mpeg4":
        return _mpeg4_encoder_data(source)
    return {}, [], None


def _scan(source: str) -> Iterator[tuple[float, bytes]]:
    """(time from the stream's start, bytes) of every video keyframe packet, in decode order, without
    decoding: cheap next to decoding, and it finds what is announced again mid-stream (spliced encodes).
    Encoders announce themselves in the headers of keyframes (x264's SEI in its first IDR, MPEG-4 user
    data with the VOL before an I-VOP); the first packet is looked at even if not flagged."""
    with _open(source) as container:
        video = _video_stream(container, source)
        origin = _origin_s(container)
        first = True
        try:
            for packet in container.demux(video):
                stamp = packet.pts if packet.pts is not None else packet.dts
                if packet.size and (packet.is_keyframe or first):
                    first = False
                    # No timestamp: place it at the start, the safe side for a restart point.
                    at_s = float(stamp * packet.time_base) - origin if stamp is not None else 0.0
                    yield max(0.0, at_s), bytes(packet)
        except av.error.FFmpegError:
            return  # a damaged tail: what was read is what a decode can learn too


def _x264_builds(source: str) -> tuple[dict[str, str], list[float], str | None]:
    # FFmpeg keeps the last build an SEI announced (none before the first: x264_build -1). The first is
    # given to every decode; where a later one differs, decoding must start at that packet's keyframe.
    changes: list[tuple[float, int]] = []
    for at_s, data in _scan(source):
        for match in X264_VERSION.finditer(data):
            build = int(match.group(1))
            if build > 0 and (not changes or changes[-1][1] != build):
                changes.append((at_s, build))
    if not changes:
        return {}, [], None
    options = {"x264_build": str(changes[0][1])}
    if len(changes) == 1:
        return options, [], None
    builds = " then ".join(f"{build} at {at_s:.2f} s" for at_s, build in changes)
    return options, [at_s for at_s, _ in changes[1:]], f"x264 builds change mid-stream ({builds})"


def _mpeg4_encoder_data(source: str) -> tuple[dict[str, str], list[float], str | None]:
    # FFmpeg's MPEG-4 Part 2 decoder identifies the encoder (DivX, Xvid, libavcodec build) from user
    # data and chooses bug workarounds and even the IDCT from it. User data in the extradata reaches every
    # decode; user data that only the stream carries does not, and no decoder option can carry it.
    with _open(source) as container:
        extradata = bytes(_video_stream(container, source).codec_context.extradata or b"")
    known = set(MPEG4_ENCODER_DATA.findall(extradata))
    restarts: list[float] = []
    for at_s, data in _scan(source):
        found = set(MPEG4_ENCODER_DATA.findall(data))
        if found - known:
            restarts.append(at_s)
        known |= found
    if not restarts:
        return {}, [], None
    return {}, restarts, "MPEG-4 encoder identification (user data) sent in the stream, not in the extradata"


def iter_seconds(
    path: str | Path, info: StreamInfo | None = None, *, threads: int = DEFAULT_THREADS
) -> Iterator[StreamSecond]:
    """Yield every second of the stream in order, decoding it once from start to end.

    Without a duration in the header the stream is read to its end, and its last second is the one that
    holds the latest picture, sound or audio packet: what random access finds by looking past a second.
    (A live stream's segments are decoded by `lambdas.converter.segments`, through `window_seconds`.)
    """
    source = str(path)
    info = info or probe(source)
    known = info.seconds
    with _open(source) as container:
        last = known - 1 if known is not None else None
        yield from _seconds(container, info, _origin_s(container, info), threads=threads, first=0,
                            video_from_s=None, last=last, stop=None, to_end=known is None)


@dataclass(frozen=True)
class Window:
    """The part of a live stream one decode covers: consecutive segments of it, the first of which starts
    on a keyframe at or before `first_second` - AUDIO_PREROLL_S (lambdas/converter/segments.py).

    The seconds it gives out are those of `monolith analyze` on the whole published stream, given the
    stream's origin and decoder options (`StreamInfo.decoder_options`) learnt from its first segment:
    video decoding starts at a keyframe (the sequential pass resets its decoder at every IDR), and each
    second's sound comes from a decoder started `AUDIO_PREROLL_S` before it (`_SecondsOfAudio`), which the
    window must hold."""

    origin_s: float  # the stream's first timestamp (absolute): times are counted from it
    first_second: int  # the first second to give out
    # The keyframe video decoding starts at (stream seconds); None: the window's first one.
    video_from_s: float | None = None
    # Stop once every second before this one has been given out (None: read the whole window).
    stop_second: int | None = None
    # The stream's last second, when the window reaches the stream's end (then it is given out, partial,
    # with is_last); None: a second is given out only once the window holds what follows it.
    last_second: int | None = None
    # The data runs to the stream's end, whose last second is not known: the seconds still open at the end
    # of the data are given out up to the last one holding anything (as `iter_seconds` on a file without
    # a duration).
    to_end: bool = False


def window_seconds(
    container: av.container.InputContainer, info: StreamInfo, window: Window, *,
    threads: int = DEFAULT_THREADS,
) -> Iterator[StreamSecond]:
    """The complete seconds a window of a live stream holds (an opened MPEG-TS container over its
    segments), from `window.first_second` on, in order."""
    yield from _seconds(container, info, window.origin_s, threads=threads, first=window.first_second,
                        video_from_s=window.video_from_s, last=window.last_second, stop=window.stop_second,
                        to_end=window.to_end)


def _seconds(
    container: av.container.InputContainer, info: StreamInfo, origin: float, *, threads: int, first: int,
    video_from_s: float | None, last: int | None, stop: int | None, to_end: bool,
) -> Iterator[StreamSecond]:
    """Seconds `first`, `first + 1`, … as they complete; `last` (when known) is the stream's last second.
    At the end of the data the seconds not yet complete are given out up to `last`, or, with `to_end`, up
    to the last one holding anything (in either case not past `stop`); otherwise they are left for a
    later decode."""
    source = info.source
    video = _video_stream(container, source)
    _configure(video, threads, info.decoder_options)
    audio = container.streams.audio[0] if container.streams.audio else None
    frames: list[VideoFrame] = []
    # Each second's sound and failed audio packets, from that second's own decoder.
    chunks: dict[int, list[_DecodedAudio]] = {}
    audio_errors: dict[int, list[float]] = {}
    latest_s = 0.0
    next_second = first
    streams = [video, audio] if audio else [video]
    seconds_of_audio = _SecondsOfAudio(audio, origin, first=first) if audio else None
    dropped_s: list[float] = []  # when pictures the decoder dropped were due, from this second on
    for kind, item in _decode(container, streams, origin, seconds_of_audio, video_from_s):
        if kind == "video":
            frames.append(item)
            latest_s = max(latest_s, item.pts_s)
        elif kind == "dropped":
            # The picture they follow is still here: its second needs a later picture to be complete.
            _count_dropped(frames, item)
            dropped_s += item.times_s
        else:
            second, found = item
            if second >= next_second:  # a second already given out (audio starting late) takes none
                (chunks if kind == "audio" else audio_errors).setdefault(second, []).append(found)
            latest_s = max(latest_s, found if kind == "audio_error" else found.start_s)
        # A second is complete once both clocks have passed its end (then it is not the last one).
        while (last is None or next_second <= last) and _passed(
            frames, chunks.get(next_second, []), audio, next_second + 1
        ):
            is_last = last is not None and next_second >= last
            yield _assemble(next_second, info, frames, chunks.pop(next_second, []),
                            audio_errors.pop(next_second, []), is_last, dropped_s)
            frames = [f for f in frames if f.pts_s >= next_second + 1 - 1e-6]
            dropped_s = [t for t in dropped_s if t >= next_second + 1 - 1e-6]
            next_second += 1
        if stop is not None and next_second >= stop:
            return
    if last is not None:
        ends = last
    elif to_end:
        ends = max(next_second, math.floor(latest_s))
    else:
        return
    final = ends if stop is None else min(ends, stop - 1)
    while next_second <= final:
        yield _assemble(next_second, info, frames, chunks.pop(next_second, []),
                        audio_errors.pop(next_second, []), next_second == ends, dropped_s)
        frames = [f for f in frames if f.pts_s >= next_second + 1 - 1e-6]
        dropped_s = [t for t in dropped_s if t >= next_second + 1 - 1e-6]
        next_second += 1


def read_second(
    path: str | Path, index: int, info: StreamInfo | None = None, *, threads: int = DEFAULT_THREADS
) -> StreamSecond:
    """Decode only second `index`: seek the video to the keyframe before it, the audio just before it."""
    source = str(path)
    info = info or probe(source)
    known = info.seconds
    if index < 0 or (known is not None and index >= known):
        end = f"0..{known - 1}" if known is not None else "0.."
        raise ValueError(f"second {index} is outside the stream ({end})")
    restart = info.decode_from(index)
    if restart is not None and index > 0:
        log.warning("second %d of %s: video decoded from %.2f s, not the keyframe before it (%s)", index,
                    source, restart, info.restart_reason)
    frames, more, dropped_s = _collect_video(source, index, info, threads)
    chunks: list[_DecodedAudio] = []
    audio_errors: list[float] = []
    if info.sample_rate is not None:
        chunks, audio_errors, more_sound = _collect_audio(source, index, info)
        more = more or more_sound
    if known is not None:
        is_last = index >= known - 1
    else:
        # No duration: the last second is the one with nothing decoded after it, as the sequential pass
        # finds it by reading to the end. Nothing starting in it and nothing after: past the end.
        is_last = not more
        starts = [c.start_s for c in chunks] + audio_errors + [f.pts_s for f in frames]
        if is_last and not any(t >= index - 1e-6 for t in starts):
            raise PastTheEndError(f"second {index} is past the end of the stream")
    return _assemble(index, info, frames, chunks, audio_errors, is_last, dropped_s)


def _collect_video(
    source: str, index: int, info: StreamInfo, threads: int
) -> tuple[list[VideoFrame], bool, list[float]]:
    """The pictures of second `index`, after a seek that lands early enough, whether the video holds
    anything after the second, and when pictures the decoder dropped were due.

    Containers without a precise index (MPEG-TS) may seek past the target; then seek again further back
    until decoding starts at a keyframe at or before the second (so that the pictures are the same as
    when the stream is decoded from its start), or at or before the restart point the video must be
    decoded from.
    """
    back_s = 0.0
    restart = info.decode_from(index)
    start_by = index if restart is None else restart  # decoding must start at or before this time
    while True:
        from_start = start_by - back_s <= 0
        with _open(source) as container:
            stream = _video_stream(container, source)
            _configure(stream, threads, info.decoder_options)
            origin = _origin_s(container, info)
            if not from_start:  # from the very start, decode as the sequential path does: no seek
                _seek(container, stream, origin + start_by - back_s)
            items: list[VideoFrame] = []
            dropped_s: list[float] = []
            started_at: float | None = None
            more = False
            for item_kind, item in _decode(container, [stream], origin):
                if item_kind == "dropped":
                    if started_at is not None or from_start:  # as the sequential pass sees them
                        _count_dropped(items, item)
                        dropped_s += item.times_s
                    continue
                at_s = item.pts_s
                if started_at is None and not from_start:
                    if not item.key_frame:
                        continue  # landed between keyframes: these pictures would lack their references
                    started_at = at_s
                    if started_at > start_by + 1e-6:
                        break  # landed too late: seek further back
                if at_s >= index + 1:
                    more = True
                    break
                if at_s >= index - 1e-6:
                    items.append(item)
            # From the start, pictures are taken as the sequential pass takes them (those before a
            # stream's first keyframe too). After a seek that landed past the last keyframe (nothing
            # decoded) or after the second's start, seek further back.
            if from_start or (started_at is not None and started_at <= start_by + 1e-6):
                return items, more, dropped_s
        back_s = max(1.0, back_s * 2)


def _collect_audio(
    source: str, index: int, info: StreamInfo | None = None
) -> tuple[list[_DecodedAudio], list[float], bool]:
    """Second `index`'s sound and failed audio packets as the sequential pass decodes them (a decoder of its
    own from the first packet at or after `AUDIO_PREROLL_S` before the second), and whether the audio goes
    on after it. A seek must land at or before that packet: containers without a precise index (MPEG-TS)
    may land later, and then the seek goes further back."""
    back_s = AUDIO_PREROLL_S
    while True:
        from_start = index - back_s <= 0
        with _open(source) as container:
            stream = container.streams.audio[0]
            origin = _origin_s(container, info)
            if not from_start:
                _seek(container, stream, origin + index - back_s)
            audio = _SecondsOfAudio(stream, origin, only=index)
            chunks: list[_DecodedAudio] = []
            errors: list[float] = []
            more = False
            for kind, (_, item) in _decode(container, [stream], origin, audio):
                if kind == "audio_error":
                    errors.append(item)
                    continue
                chunks.append(item)
                if item.start_s >= index + 1:
                    more = True
                    break
            landed_s = audio.first_packet_s
            if from_start or landed_s is None or landed_s <= index - AUDIO_PREROLL_S + 1e-6:
                return chunks, errors, more
        back_s = max(1.0, back_s * 2)


# --- internals -------------------------------------------------------------------------------


def _open(source: str) -> av.container.InputContainer:
    if not Path(source).is_file():
        raise UnreadableStreamError(source, "no such file")
    if Path(source).stat().st_size == 0:
        raise UnreadableStreamError(source, "the file is empty")
    try:
        return av.open(source, "r")
    except av.error.FFmpegError as error:
        raise UnreadableStreamError(source, f"not a readable media file ({_reason(error)})") from None


def _reason(error: av.error.FFmpegError) -> str:
    return error.strerror or type(error).__name__


def _video_stream(container: av.container.InputContainer, source: str) -> av.video.stream.VideoStream:
    if not container.streams.video:
        raise UnreadableStreamError(source, "no video stream")
    video = container.streams.video[0]
    if video.codec_context is None or not video.codec_context.name:
        raise UnreadableStreamError(source, "the video codec is not supported")
    return video


def _configure(video: av.video.stream.VideoStream, threads: int, decoder_options: dict[str, str]) -> None:
    video.codec_context.thread_type = THREAD_TYPE
    video.codec_context.thread_count = threads
    # Every decode, sequential or not, gets the same stream-start knowledge: the same decoder.
    if decoder_options:
        video.codec_context.options = dict(decoder_options)


def decode_pictures(path: str | Path) -> Iterator[VideoFrame]:
    """Every picture of the stream's video as the converter's sequential pass decodes it (its threads,
    VP8's slice threads, VP9 by libvpx, its decoder restarts at keyframes, its stream-start knowledge),
    without `probe`'s checks: for what compares two streams picture by picture (the damage corpus's
    labels)."""
    source = str(path)
    with _open(source) as container:
        video = _video_stream(container, source)
        _configure(video, DEFAULT_THREADS, _stream_start_knowledge(source, video.codec_context.name)[0])
        for kind, item in _decode(container, [video], _origin_s(container)):
            if kind == "video":
                yield item


def _origin_s(container: av.container.InputContainer, info: StreamInfo | None = None) -> float:
    # Times are reported from the start of the stream: the earliest start of any of its streams, unless
    # the file is a window of a longer stream whose origin the info carries.
    if info is not None and info.origin_s is not None:
        return info.origin_s
    return container.start_time / av.time_base if container.start_time is not None else 0.0


def _duration_s(container: av.container.InputContainer, video: av.video.stream.VideoStream) -> float | None:
    """The header's duration, or None when it gives none (live WebM): then the stream is read to its end."""
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    if video.duration is not None and video.time_base is not None:
        return float(video.duration * video.time_base)
    if video.frames and video.average_rate:
        return video.frames / float(video.average_rate)
    return None


class _NotEbml(Exception):
    pass


def _matroska_cut(source: str) -> str | None:
    """Why a Matroska/WebM file is cut short (None if it is not): with no duration in the header, a
    truncated upload differs from a shorter stream only in ending inside an element, whose header
    declares more bytes than the file holds (libavformat just logs "File ended prematurely").

    Walks the element headers without reading their contents; a master element of unknown size (the
    Segment and Clusters of a live recording) is entered, since only its children say where it ends.
    """
    size = os.path.getsize(source)
    with open(source, "rb") as data:
        while True:
            at = data.tell()
            try:
                ident = _ebml_vint(data, keep_marker=True)
                if ident is None:
                    return None  # ends on an element boundary
                length = _ebml_vint(data, keep_marker=False)
            except _NotEbml:
                return None  # not well-formed EBML here: what the demuxer made of it stands
            except EOFError:
                return (f"the stream has no duration and its last element (at byte {at}) is cut off: "
                        "the file is truncated")
            if length is None:
                continue  # unknown size: its children follow
            end = data.tell() + length
            if end > size:
                return (f"the stream has no duration and ends inside an element that should run to byte "
                        f"{end} of a {size}-byte file: the file is truncated")
            data.seek(end)


def _ebml_vint(data: Any, *, keep_marker: bool) -> int | None:
    """An EBML variable-length integer: an element ID (marker kept) or a size (None: unknown size)."""
    first = data.read(1)
    if not first:
        if keep_marker:
            return None
        raise EOFError
    if first[0] == 0:
        raise _NotEbml
    length = 9 - first[0].bit_length()
    rest = data.read(length - 1)
    if len(rest) < length - 1:
        raise EOFError
    value = first[0] if keep_marker else first[0] & ((1 << (8 - length)) - 1)
    for byte in rest:
        value = (value << 8) | byte
    if not keep_marker and value == (1 << (7 * length)) - 1:
        return None
    return value


def _first_picture(
    container: av.container.InputContainer, video: av.video.stream.VideoStream, source: str
) -> None:
    try:
        for _ in container.decode(video):
            return
    except av.error.FFmpegError as error:
        raise UnreadableStreamError(source, f"the video does not decode ({_reason(error)})") from None
    raise UnreadableStreamError(source, "the video stream holds no decodable picture")


def _seek(container: av.container.InputContainer, stream: av.stream.Stream, at_s: float) -> None:
    target = max(0, math.floor(at_s / stream.time_base)) if stream.time_base else 0
    try:
        container.seek(target, stream=stream, backward=True, any_frame=False)
    except av.error.FFmpegError:
        container.seek(0, stream=stream)


@dataclass(frozen=True)
class _Dropped:
    """Pictures the decoder dropped (see `_DroppedPictures`), all after the picture at `after_s`."""

    after_s: float
    times_s: list[float]  # when each was due


class _DroppedPictures:
    """Pictures whose packets the decoder took without an error but never gave out.

    Pictures come out in presentation order, so once one comes out, every packet taken earlier with an
    earlier timestamp whose picture has not come out was dropped. Packets before the first picture that
    comes out are not judged: after a seek (or at a stream's start) a decoder rightly drops the leading
    pictures of an open GOP, whose references lie before it. Nor is a stream whose pictures come out
    without timestamps.
    """

    def __init__(self, time_base: Any, origin: float) -> None:
        self.time_base, self.origin = time_base, origin
        self.pending: list[int] = []  # timestamps of packets taken whose pictures have not come out
        self.first: int | None = None
        self.judged = time_base is not None

    def taken(self, pts: int | None) -> None:
        if pts is not None and self.judged:
            bisect.insort(self.pending, pts)

    def given_out(self, pts: int | None) -> list[float]:
        """A picture came out: the times of the pictures it shows were dropped before it."""
        if not self.judged:
            return []
        if pts is None:
            self.judged, self.pending = False, []
            return []
        if self.first is None:
            self.first = pts
            self.pending = [p for p in self.pending if p >= pts]
        before = bisect.bisect_left(self.pending, pts)
        lost, self.pending = self.pending[:before], self.pending[before:]
        if self.pending and self.pending[0] == pts:
            self.pending.pop(0)
        return self._seconds(lost)

    def at_end(self) -> list[float]:
        """After the decoder was flushed: what never came out was dropped."""
        lost, self.pending = (self.pending if self.judged and self.first is not None else []), []
        return self._seconds(lost)

    def _seconds(self, pts: list[int]) -> list[float]:
        return [round(float(p * self.time_base) - self.origin, 6) for p in pts]


def _decode(
    container: av.container.InputContainer,
    streams: list[av.stream.Stream],
    origin: float,
    audio: _SecondsOfAudio | None = None,
    video_from_s: float | None = None,
):
    """Yield ("video", VideoFrame), ("audio", (second, _DecodedAudio)) or ("audio_error", (second, time_s))
    in demux order; the audio through `audio`'s decoders, one per second; and ("dropped", _Dropped) just
    before the picture that shows that pictures before it were dropped (see `_DroppedPictures`).
    With `video_from_s`, video packets before the first keyframe at or after that time are not decoded."""
    video_errors = 0
    failed_s: list[float] = []  # when the pictures of the packets behind `video_errors` were due
    video_packets = 0
    last_video_s: float | None = None
    video = next((stream for stream in streams if stream.type == "video"), None)
    dropped = _DroppedPictures(video.time_base if video is not None else None, origin)
    # A decoder of the converter's own in place of the stream's: VP8's slice threads, VP9's reference decoder
    own = _SlicedVp8(video) if video is not None and video.codec_context.name == "vp8" \
        else _ReferenceDecoder.of(video)
    rejected: set[int] = set()  # pts of packets VP8's slice threads rejected, one thread decoded
    for packet in container.demux(streams):
        stream = packet.stream
        if stream.type != "video":
            if audio is not None and packet.size:
                for kind, second, item in audio.feed(packet):
                    yield kind, (second, item)
            continue
        if video_from_s is not None:
            if not (packet.is_keyframe and packet.pts is not None
                    and float(packet.pts * packet.time_base) - origin >= video_from_s - 1e-6):
                continue
            video_from_s = None  # from this keyframe on, every packet
        if packet.is_keyframe and video_errors:
            # Packets that failed since the last picture are not counted on the keyframe: random access
            # starts decoding at it and never sees them (damaged VP9 and AV1 ended an event at the
            # keyframe on the Lambda path and carried it on in the monolith). Their pictures never came
            # out: they count as dropped after the last picture, which both ways decode.
            if last_video_s is not None:
                yield "dropped", _Dropped(last_video_s, failed_s)
            video_errors, failed_s = 0, []
        flag_corrupt = False
        decoder = stream.codec_context
        try:
            if own is not None:
                decoded, flag_corrupt = own.decode(packet)
            # At a keyframe that closes what came before, decode on as random access would start here.
            elif video_packets and (_is_h264_idr(packet, decoder) or _is_low_delay_mpeg_key(packet, decoder)):
                decoded = _drain_and_reset(decoder)
                decoded += decoder.decode(packet)
            else:
                decoded = decoder.decode(packet)
            video_packets += 1
        except av.error.FFmpegError:
            video_errors += 1
            due_s = float(packet.pts * packet.time_base) - origin if packet.pts is not None else last_video_s
            failed_s.append(round(due_s or 0.0, 6))
            continue
        if packet.size:
            dropped.taken(packet.pts)
        if flag_corrupt and packet.pts is not None:
            rejected.add(packet.pts)
        for frame in decoded:
            lost = dropped.given_out(frame.pts)
            if lost and last_video_s is not None:
                yield "dropped", _Dropped(last_video_s, lost)
            item = _video_frame(frame, origin, last_video_s, stream, video_errors)
            if frame.pts in rejected:
                rejected.discard(frame.pts)
                item = replace(item, corrupt=True)
            video_errors, failed_s = 0, []
            last_video_s = item.pts_s
            yield "video", item
    lost = dropped.at_end()
    if lost and last_video_s is not None:
        yield "dropped", _Dropped(last_video_s, lost)
    if video_errors and last_video_s is not None:
        # Packets that failed after the last picture (damaged VP9 fails every picture up to the next
        # keyframe): no later picture carries them, so they count as dropped after the last one.
        yield "dropped", _Dropped(last_video_s, failed_s)
    if audio is not None:
        for kind, second, item in audio.finish():
            yield kind, (second, item)


class _SlicedVp8:
    """VP8 decoded with slice threads (see `VP8_SLICE_THREADS`), as random access decodes it.

    On clean data two slice threads give the pictures of one thread (measured on two corpus streams: the
    same bytes; converting at 1.02x-1.08x its CPU at 360p and 1080p, `scripts/decoder_cost.py`). After a
    packet they reject, though, their pictures depend on how far each thread had got, so from that packet
    to the next keyframe the pictures come from one thread, which decodes the GOP again from its keyframe
    (FFmpeg conceals the rejected picture); the slice threads go on decoding only to say which later
    packets they reject. A rejected packet's picture is flagged corrupt, as FFmpeg flags the H.264 pictures
    it conceals.

    FFmpeg's VP8 decoder also carries something across a keyframe that neither the keyframe nor a flush
    resets: on damaged corpus streams (bikes-vp8-low, synthetic-vp8-high) the pictures after a keyframe
    differed by up to 255 levels between the sequential pass and random access. So every keyframe starts
    new decoders; nothing after a VP8 keyframe refers to anything before it."""

    def __init__(self, stream: av.stream.Stream) -> None:
        self.stream = stream
        self.gop: list[av.Packet] = []  # since the last keyframe: what one thread decodes again
        self.sliced = self._decoder(sliced=True)
        self.steady: av.codec.context.CodecContext | None = None  # one thread, after a rejection

    def _decoder(self, *, sliced: bool) -> av.codec.context.CodecContext:
        ctx = av.CodecContext.create(self.stream.codec_context.name, "r")
        ctx.pkt_timebase = self.stream.time_base
        ctx.thread_type, ctx.thread_count = ("SLICE", VP8_SLICE_THREADS) if sliced else (THREAD_TYPE, 1)
        return ctx

    def decode(self, packet: av.Packet) -> tuple[list[av.VideoFrame], bool]:
        """(the packet's pictures, whether the slice threads rejected it); raises FFmpegError when one thread
        rejects it too (then it is a failed packet like any other)."""
        if packet.is_keyframe and packet.size:
            self.gop, self.sliced, self.steady = [], self._decoder(sliced=True), None
        self.gop.append(packet)
        try:
            frames, rejected = list(self.sliced.decode(packet)), False
        except av.error.FFmpegError:
            frames, rejected = [], True
        if self.steady is None and not rejected:
            return frames, False
        if self.steady is None:
            self.steady = self._decoder(sliced=False)
            for earlier in self.gop[:-1]:  # their pictures were given out already, the same
                try:
                    self.steady.decode(earlier)
                except av.error.FFmpegError:
                    continue
        return list(self.steady.decode(packet)), rejected


class _ReferenceDecoder:
    """The codec's reference decoder in place of FFmpeg's own (`REFERENCE_DECODERS`), afresh at every
    keyframe, as random access decodes from there. A packet it rejects is a failed packet like any other."""

    def __init__(self, stream: av.stream.Stream, decoder: str) -> None:
        self.stream, self.decoder = stream, decoder
        self.ctx = self._new()

    @classmethod
    def of(cls, video: av.stream.Stream | None) -> _ReferenceDecoder | None:
        if video is None or (name := REFERENCE_DECODERS.get(video.codec_context.name)) is None:
            return None
        return cls(video, name)

    def _new(self) -> av.codec.context.CodecContext:
        ctx = av.CodecContext.create(self.decoder, "r")
        ctx.pkt_timebase = self.stream.time_base
        ctx.thread_type, ctx.thread_count = THREAD_TYPE, self.stream.codec_context.thread_count
        return ctx

    def decode(self, packet: av.Packet) -> tuple[list[av.VideoFrame], bool]:
        """(the packet's pictures, False: what it rejects raises FFmpegError), as `_SlicedVp8.decode`."""
        if packet.is_keyframe and packet.size:
            self.ctx = self._new()
        frames = list(self.ctx.decode(packet))
        if packet.is_keyframe:
            # FFmpeg's libvpx wrapper marks no picture as a keyframe; a VP9 packet shows one picture, the
            # keyframe's own, and the detectors end damage at a keyframe.
            for frame in frames:
                frame.key_frame = True
        return frames, False


def _drain_and_reset(ctx: av.codec.context.CodecContext) -> list[av.VideoFrame]:
    """The pictures still held by the decoder, then a decoder as fresh as after a seek.

    H.264 error concealment borrows from the picture decoded last, even across an IDR, so a damaged
    picture after an IDR is concealed differently when decoding started at that IDR (the converter's
    random access) than when it ran on from the stream's start (measured: 0.02 levels mean difference,
    enough to move a detector's score). Both passes reset the decoder at every IDR, so both conceal from
    the same state. Lossless: nothing after an IDR in decode order refers to a picture before it.
    """
    frames = list(ctx.decode(None))
    ctx.flush_buffers()
    return frames


def _is_low_delay_mpeg_key(packet: av.Packet, ctx: av.codec.context.CodecContext) -> bool:
    """A keyframe of MPEG-4 Part 2 or MPEG-2 with no B-pictures: nothing after it refers to anything before
    it, yet FFmpeg conceals a damaged one from the picture decoded last, as it does H.264 (see
    `_drain_and_reset`; measured: the corpus's bikes-mpeg4-high, up to 142 levels apart both ways). With
    B-pictures the next ones may refer to the GOP before: those streams decode on."""
    return packet.is_keyframe and ctx.name in ("mpeg4", "mpeg2video") and not ctx.has_b_frames


def _is_h264_idr(packet: av.Packet, ctx: av.codec.context.CodecContext) -> bool:
    """Whether the packet holds an H.264 IDR slice (NAL unit type 5), in length-prefixed (MP4, Matroska:
    avcC extradata) or start-code (MPEG-TS) framing."""
    if not packet.is_keyframe or ctx.name != "h264" or not packet.size:
        return False
    data = bytes(packet)
    extradata = bytes(ctx.extradata or b"")
    if extradata[:1] == b"\x01" and len(extradata) > 4:  # avcC: NAL units prefixed by their length
        size = (extradata[4] & 0x03) + 1
        at = 0
        while at + size < len(data):
            length = int.from_bytes(data[at : at + size], "big")
            if data[at + size] & 0x1F == 5:
                return True
            at += size + length
        return False
    return any(data[m.end()] & 0x1F == 5 for m in _START_CODE.finditer(data) if m.end() < len(data))


def _video_frame(
    frame: av.VideoFrame, origin: float, last_s: float | None, stream: av.stream.Stream, errors: int
) -> VideoFrame:
    if frame.pts is not None and frame.time_base is not None:
        pts_s = float(frame.pts * frame.time_base) - origin
    else:  # no timestamp: assume the nominal frame rate
        pts_s = (last_s or 0.0) + 1.0 / float(stream.average_rate or 25)
    return VideoFrame(
        pts_s=round(pts_s, 6),
        luma=_luma(frame),
        key_frame=bool(frame.key_frame),
        corrupt=bool(frame.is_corrupt),
        decode_errors=errors,
    )


def _count_dropped(frames: list[VideoFrame], dropped: _Dropped) -> None:
    """Count the dropped pictures on the one they follow, if it is the last of `frames` (one picture of an
    earlier second, which random access does not keep, is not)."""
    if frames and frames[-1].pts_s == dropped.after_s:
        frames[-1] = replace(frames[-1], dropped_after=frames[-1].dropped_after + len(dropped.times_s))


def _luma(frame: av.VideoFrame) -> np.ndarray:
    name = frame.format.name
    if (name.startswith(("yuv", "yuvj", "nv")) or name == "gray") and not name.endswith(("le", "be")):
        plane = frame.planes[0]
        rows = np.frombuffer(plane, dtype=np.uint8).reshape(frame.height, plane.line_size)
        return rows[:, : frame.width].copy()
    return frame.to_ndarray(format="gray")


def _audio_chunk(frame: av.AudioFrame, origin: float, last_end: float | None) -> _DecodedAudio:
    data = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if not frame.format.is_planar:
        data = data.reshape(-1, channels).T
    if data.dtype.kind == "i":
        data = data.astype(np.float32) / float(np.iinfo(data.dtype).max)
    elif data.dtype.kind == "u":
        data = (data.astype(np.float32) - 128.0) / 128.0
    mono = data.astype(np.float32).mean(axis=0)
    if frame.pts is not None and frame.time_base is not None:
        start_s = float(frame.pts * frame.time_base) - origin
    else:
        start_s = last_end or 0.0
    return _DecodedAudio(start_s=start_s, samples=mono, end_s=start_s + len(mono) / frame.sample_rate)


def _passed(frames: list[VideoFrame], chunks: list[_DecodedAudio], audio: object, until_s: float) -> bool:
    video_done = bool(frames) and frames[-1].pts_s >= until_s
    if audio is None or not video_done:
        return video_done
    audio_done = bool(chunks) and chunks[-1].start_s >= until_s
    return audio_done or frames[-1].pts_s >= until_s + AUDIO_WAIT_S


def _assemble(
    index: int,
    info: StreamInfo,
    frames: list[VideoFrame],
    chunks: list[_DecodedAudio],
    audio_errors: list[float],
    is_last: bool,
    dropped_s: list[float],
) -> StreamSecond:
    in_second = [f for f in frames if index - 1e-6 <= f.pts_s < index + 1 - 1e-6]
    in_second.sort(key=lambda f: f.pts_s)
    heard = any(c.end_s > index and c.start_s < index + 1 for c in chunks)
    # Pictures the decoder dropped were there: damage (reported by block corruption), not missing data.
    dropped = any(index - 1e-6 <= t < index + 1 - 1e-6 for t in dropped_s)
    # Without a duration, every second up to the last one read must hold something.
    expected = info.duration_s is None or min(1.0, info.duration_s - index) >= MIN_EXPECTED_S
    if not in_second and not heard and not dropped and expected:
        # Nothing at all decodes where the header (or what follows) promises content: the data is missing
        # (a truncated upload whose index survived). Analysing on would report a healthy stream.
        promise = (f"the stream should last {info.duration_s:.2f} s" if info.duration_s is not None
                   else "the stream goes on after it")
        raise UnreadableStreamError(
            info.source, f"second {index} holds no picture and no sound although {promise}: "
            "the file is truncated or damaged")
    audio = None
    if info.sample_rate is not None:
        errors = sum(1 for t in audio_errors if index <= t < index + 1)
        audio = _place_audio(index, info, chunks, errors, is_last)
    return StreamSecond(index=index, frames=in_second, audio=audio, is_last=is_last)


def _place_audio(
    index: int, info: StreamInfo, chunks: list[_DecodedAudio], errors: int, is_last: bool
) -> AudioSecond:
    rate = int(info.sample_rate or 0)
    samples = np.zeros(rate, dtype=np.float32)
    covered = np.zeros(rate, dtype=bool)
    used: list[tuple[float, int]] = []
    for chunk in chunks:
        first = round((chunk.start_s - index) * rate)
        last = first + len(chunk.samples)
        if last <= 0 or first >= rate:
            continue
        used.append((round(chunk.start_s, 6), len(chunk.samples)))
        lo, hi = max(first, 0), min(last, rate)
        samples[lo:hi] = chunk.samples[lo - first : hi - first]
        covered[lo:hi] = True
    # The stream's last second is partial: samples past the end of the audio are not gaps.
    span = rate
    if is_last:
        covered_at = np.flatnonzero(covered)
        # No sound at all in it: the header's end, if any, says how much of it is missing.
        tail_s = min(info.duration_s - index, 1.0) if info.duration_s is not None else 0.0
        span = int(covered_at[-1]) + 1 if len(covered_at) else round(tail_s * rate)
    return AudioSecond(
        samples=samples,
        sample_rate=rate,
        filled_samples=int(span - covered[:span].sum()),
        decode_errors=errors,
        chunks=sorted(used),
    )
