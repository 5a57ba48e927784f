"""A live source: any stream published into S3 as live HLS, the way a packager such as MediaLive writes it.

The stream is cut into MPEG-TS segments on keyframes (PyAV's `mpegts` muxer: the same packets, H.264/HEVC
put in Annex B form with their parameter sets by the muxer's automatic bitstream filter, AAC framed as
ADTS), each segment PUT once it is complete, then the media playlist rewritten (PyPI `m3u8`) with
`EXT-X-PROGRAM-DATE-TIME` on every segment and `EXT-X-ENDLIST` after the last. Paced in real time:
segment k lands when its last picture would have been produced (`speed` > 1 runs faster).

Faults a real packager has, on request (`PublishFaults`): a publisher that dies (no `EXT-X-ENDLIST`,
no more segments), a stall before a segment (nothing written for N seconds), a late segment (listed on
time, its object PUT N seconds later), a missing segment (listed, never written: readers get 404) and a
damaged segment (bytes flipped inside its TS payloads, never in the 4-byte TS headers, so that the damage
reaches the decoder as transport errors do).
"""

from __future__ import annotations

import bisect
import io
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import av
import m3u8
import numpy as np

from lambdas.shared.live import LIVE_PREFIX

PLAYLIST_NAME = "index.m3u8"
TS_PACKET = 188
# What MPEG-TS carries (FFmpeg's mpegts muxer): a stream in another codec cannot be published as HLS/TS.
TS_VIDEO_CODECS = frozenset({"h264", "hevc", "mpeg2video", "mpeg4"})
TS_AUDIO_CODECS = frozenset({"aac", "mp3", "mp2", "ac3", "eac3", "opus"})


class PublishError(ValueError):
    """The stream cannot be published as live HLS (the reason is the message)."""


@dataclass(frozen=True)
class PublishFaults:
    """Faults by segment index. `die_after`: the publisher stops after that many segments, without
    EXT-X-ENDLIST; `stall_s`: seconds of silence before a segment; `late_s`: seconds its object lands
    after the playlist lists it; `missing`: listed, never written; `damaged`: bytes flipped in it."""

    die_after: int | None = None
    stall_s: dict[int, float] = field(default_factory=dict)
    late_s: dict[int, float] = field(default_factory=dict)
    missing: frozenset[int] = frozenset()
    damaged: frozenset[int] = frozenset()
    damage_bytes: int = 24
    seed: int = 0


@dataclass(frozen=True)
class Segment:
    index: int
    start_s: float  # from the stream's origin (its first timestamp), as the decoder reports times
    duration_s: float
    data: bytes


@dataclass
class PublishedSegment:
    index: int
    key: str
    start_s: float
    duration_s: float
    listed_at: float | None = None  # wall clock (time.time()) when a playlist naming it was written
    landed_at: float | None = None  # when its PUT completed (None: never written)
    damaged: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "key": self.key, "start_s": self.start_s, "duration_s": self.duration_s,
                "listed_at": self.listed_at, "landed_at": self.landed_at, "damaged": self.damaged}


@dataclass
class PublishReport:
    bucket: str
    playlist_key: str
    stream_id: str
    segments: list[PublishedSegment]
    ended: bool  # EXT-X-ENDLIST written
    started_at: float
    finished_at: float

    @property
    def duration_s(self) -> float:
        return sum(s.duration_s for s in self.segments)

    @property
    def seconds(self) -> int:
        """Stream-seconds a reader of the playlist iterates over (the last may be partial)."""
        return max(1, math.ceil(self.duration_s - 1e-3))

    @property
    def playlist_writes(self) -> int:
        """The playlist is rewritten once per segment listed."""
        return len(self.segments)

    @property
    def objects_written(self) -> int:
        """Objects PUT to the bucket (each an S3 event): the segments that landed and the playlist writes."""
        return sum(1 for s in self.segments if s.landed_at is not None) + self.playlist_writes

    def landed_at(self, second: int) -> float | None:
        """When stream-second `second` became readable: the landing of the last segment it overlaps."""
        return second_landed_at(self.segments, second)

    def to_dict(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "playlist_key": self.playlist_key, "stream_id": self.stream_id,
                "ended": self.ended, "started_at": self.started_at, "finished_at": self.finished_at,
                "duration_s": self.duration_s, "segments": [s.to_dict() for s in self.segments]}


def second_landed_at(segments: list[PublishedSegment], second: int) -> float | None:
    """When stream-second `second` became readable from `segments` (those published so far, or all): the
    landing of the last segment it overlaps; None while one of them has not landed or none is listed."""
    times = [s.landed_at for s in segments
             if s.start_s < second + 1 - 1e-6 and s.start_s + s.duration_s > second + 1e-6]
    if not times or any(t is None for t in times):
        return None
    return max(t for t in times if t is not None)


def cut_segments(source: str | Path, segment_seconds: float) -> list[Segment]:
    """The stream as MPEG-TS segments, each starting on a video keyframe at least `segment_seconds` after
    the previous segment's start."""
    if segment_seconds <= 0:
        raise PublishError(f"segment length must be > 0 s, got {segment_seconds}")
    source = str(source)
    try:
        container = av.open(source)
    except (av.error.FFmpegError, FileNotFoundError, IsADirectoryError) as error:
        raise PublishError(f"{source}: not a readable media file ({_reason(error)})") from None
    with container:
        if not container.streams.video:
            raise PublishError(f"{source}: no video stream")
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        if video.codec_context.name not in TS_VIDEO_CODECS:
            raise PublishError(f"{source}: MPEG-TS cannot carry {video.codec_context.name} video "
                               f"(HLS/TS carries {', '.join(sorted(TS_VIDEO_CODECS))}); re-encode it first")
        if audio is not None and audio.codec_context.name not in TS_AUDIO_CODECS:
            raise PublishError(f"{source}: MPEG-TS cannot carry {audio.codec_context.name} audio "
                               f"(HLS/TS carries {', '.join(sorted(TS_AUDIO_CODECS))}); re-encode it first")
        origin = container.start_time / av.time_base if container.start_time is not None else 0.0
        kept = [s for s in (video, audio) if s is not None]
        cuts: list[tuple[float, list[av.Packet]]] = []
        sound: list[tuple[float, av.Packet]] = []
        last_end = 0.0
        try:
            for packet in container.demux(kept):
                if packet.dts is None:  # the demuxer's end-of-stream flush packets
                    continue
                at = float(packet.pts * packet.time_base) - origin if packet.pts is not None else None
                if packet.stream is not video:
                    sound.append((at if at is not None else math.inf, packet))
                    continue
                if at is not None:
                    step = float(packet.duration * packet.time_base) if packet.duration else 0.0
                    last_end = max(last_end, at + step)
                    if packet.is_keyframe and (not cuts or at - cuts[-1][0] >= segment_seconds - 1e-6):
                        cuts.append((max(at, 0.0), []))
                if cuts:  # pictures before the first keyframe cannot be decoded: a packager drops them too
                    cuts[-1][1].append(packet)
        except av.error.FFmpegError as error:
            raise PublishError(f"{source}: cannot be read to its end ({_reason(error)})") from None
        if not cuts:
            raise PublishError(f"{source}: no video keyframe to start a segment on")
        # Sound goes into the segment of its time, not of where the file interleaved it: a segment then
        # holds all the sound of its span, so a reader that has the segments up to second n+1 has all of
        # second n (a packager writes each segment from the media of its span).
        # Sound before the first picture (an encoder's priming packet) is dropped with the pictures before
        # the first keyframe: a TS has no edit list to hide it, and it would move the stream's origin.
        starts = [start for start, _ in cuts]
        rate = audio.codec_context.sample_rate if audio is not None else 0
        frame_s = (audio.codec_context.frame_size or 0) / rate if audio is not None and rate else 0.0
        for at, packet in sound:
            if at >= starts[0] - 1e-6:
                cuts[bisect.bisect_right(starts, at) - 1][1].append(packet)
                # The last segment lasts until its last sound ends too, as a TS reader decodes it: a whole
                # codec frame (an MP4's edit list may have trimmed the last one; TS has no edit list).
                step = float(packet.duration * packet.time_base) if packet.duration else 0.0
                last_end = max(last_end, at + max(step, frame_s))
        ends = [*starts[1:], max(last_end, cuts[-1][0])]
        return [Segment(index=i, start_s=start, duration_s=max(end - start, 0.0),
                        data=_mux_ts(kept, sorted(packets, key=_dts_s)))
                for i, ((start, packets), end) in enumerate(zip(cuts, ends, strict=True))]


def _dts_s(packet: av.Packet) -> float:
    return float(packet.dts * packet.time_base)


def _mux_ts(streams: list[av.stream.Stream], packets: list[av.Packet]) -> bytes:
    sink = io.BytesIO()
    out = av.open(sink, "w", format="mpegts")
    try:
        mapped = {s.index: out.add_stream_from_template(s) for s in streams}
        for packet in packets:
            packet.stream = mapped[packet.stream.index]
            out.mux(packet)
    finally:
        out.close()
    return sink.getvalue()


def damage(data: bytes, count: int, seed: int) -> bytes:
    """Flip `count` bytes at random places in the payloads of the segment's TS packets (past the first
    two packets, PAT and PMT, and never in a 4-byte packet header), as a transport error does."""
    packets = len(data) // TS_PACKET
    if packets < 3:
        return data
    rng = np.random.default_rng(seed)
    damaged = bytearray(data)
    for _ in range(count):
        packet = int(rng.integers(2, packets))
        offset = packet * TS_PACKET + int(rng.integers(4, TS_PACKET))
        damaged[offset] ^= int(rng.integers(1, 256))
    return bytes(damaged)


def playlist_text(segments: list[PublishedSegment], programme_start: datetime, *, ended: bool) -> str:
    """The media playlist naming `segments`, as a live packager rewrites it after each one."""
    playlist = m3u8.M3U8()
    playlist.version = 3
    playlist.media_sequence = 0
    playlist.playlist_type = "event"  # segments are only appended: readers can count time from the first
    playlist.target_duration = max(1, math.ceil(max((s.duration_s for s in segments), default=1.0)))
    for segment in segments:
        playlist.segments.append(m3u8.Segment(
            uri=segment.key.rsplit("/", 1)[-1], duration=round(segment.duration_s, 6),
            program_date_time=programme_start + timedelta(seconds=segment.start_s)))
    playlist.is_endlist = ended
    return playlist.dumps()


def publish(
    source: str | Path, *, s3: Any, bucket: str, stream_id: str, prefix: str = LIVE_PREFIX,
    segment_seconds: float = 2.0, speed: float = 1.0, faults: PublishFaults | None = None,
    on_segment: Callable[[PublishedSegment], None] | None = None,
    before_segment: Callable[[int], None] | None = None,
    sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time,
) -> PublishReport:
    """Publish `source` as the live stream `stream_id` under s3://bucket/prefix/stream_id/, paced at
    `speed` times real time (float('inf'): as fast as S3 takes it). `before_segment(k)` runs before
    segment k is written (a stall that lasts until something has happened, for tests)."""
    if speed <= 0:
        raise PublishError(f"speed must be > 0, got {speed}")
    faults = faults or PublishFaults()
    segments = cut_segments(source, segment_seconds)
    base = f"{prefix.strip('/')}/{stream_id}" if prefix.strip("/") else stream_id
    playlist_key = f"{base}/{PLAYLIST_NAME}"
    started = clock()
    programme_start = datetime.fromtimestamp(started, UTC)
    listed: list[PublishedSegment] = []
    late: list[tuple[float, PublishedSegment, bytes]] = []  # (due, segment, data) PUT after listing
    count = len(segments) if faults.die_after is None else min(faults.die_after, len(segments))
    stall = 0.0
    for segment in segments[:count]:
        if before_segment is not None:
            held = clock()
            before_segment(segment.index)
            stall += clock() - held  # the pace resumes from where it was held
        stall += faults.stall_s.get(segment.index, 0.0)
        # A packager writes a segment once its last picture has been produced.
        due = started + stall + (segment.start_s + segment.duration_s) / speed
        _land_due(late, s3, bucket, due, sleep, clock)
        wait = due - clock()
        if wait > 0:
            sleep(wait)
        record = PublishedSegment(index=segment.index, key=f"{base}/segment-{segment.index:05d}.ts",
                                  start_s=segment.start_s, duration_s=segment.duration_s,
                                  damaged=segment.index in faults.damaged)
        data = damage(segment.data, faults.damage_bytes, faults.seed + segment.index) \
            if record.damaged else segment.data
        if segment.index in faults.late_s:
            late.append((clock() + faults.late_s[segment.index], record, data))
        elif segment.index not in faults.missing:
            _put_segment(s3, bucket, record, data, clock)
        listed.append(record)
        ended = faults.die_after is None and segment.index == count - 1
        text = playlist_text(listed, programme_start, ended=ended)
        s3.put_object(Bucket=bucket, Key=playlist_key, Body=text, ContentType="application/vnd.apple.mpegurl")
        record.listed_at = clock()
        if on_segment is not None:
            on_segment(record)
    _land_due(late, s3, bucket, math.inf, sleep, clock)
    return PublishReport(bucket=bucket, playlist_key=playlist_key, stream_id=stream_id, segments=listed,
                         ended=faults.die_after is None, started_at=started, finished_at=clock())


def _put_segment(
    s3: Any, bucket: str, record: PublishedSegment, data: bytes, clock: Callable[[], float]
) -> None:
    s3.put_object(Bucket=bucket, Key=record.key, Body=data, ContentType="video/mp2t")
    record.landed_at = clock()


def _land_due(late: list[tuple[float, PublishedSegment, bytes]], s3: Any, bucket: str, until: float,
              sleep: Callable[[float], None], clock: Callable[[], float]) -> None:
    """PUT the late segments due before `until` (all of them when it is infinite), each at its time."""
    for entry in sorted(late, key=lambda e: e[0]):
        due, record, data = entry
        if due > until:
            break
        if due > clock():
            sleep(due - clock())
        _put_segment(s3, bucket, record, data, clock)
        late.remove(entry)


def write_published(report: PublishReport, s3: Any, target: str | Path) -> Path:
    """The stream as published (its segments that exist, concatenated, as a TS reader sees them): what
    `monolith analyze` is compared against."""
    target = Path(target)
    with target.open("wb") as out:
        for segment in report.segments:
            if segment.landed_at is not None:
                out.write(s3.get_object(Bucket=report.bucket, Key=segment.key)["Body"].read())
    return target


def _reason(error: BaseException) -> str:
    return getattr(error, "strerror", None) or type(error).__name__
