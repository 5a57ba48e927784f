"""The converter's view of a live stream: second n from the few segments that hold it.

Each invocation GETs the playlist (the live edge), then GETs only the segments second n needs that this
warm environment does not hold yet: the one holding its pictures and sound, and the one before when the
second starts within the audio preroll of a segment's start. Segments start on keyframes, so the window
of segments decodes on its own; the first segment is probed once for what the decoder must know from
the stream's start (and its origin: every window keeps the stream's clock).

When second n is not published yet the converter raises `SecondNotPublishedYet`: the workflow's Retry on
that error is its wait at the live edge (see statemachine/), so no Lambda is ever paid to wait.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lambdas.converter.decode import AUDIO_PREROLL_S, UnreadableStreamError, probe, stream_origin_s
from lambdas.shared.keys import InvalidRequest
from lambdas.shared.live import LivePlaylist, PlaylistUnreadable, SegmentAbsent, read_playlist, read_segment
from lambdas.shared.media import StreamInfo

# A listed segment still absent from S3 once the playlist lists this much stream after it is missing, not
# late: the stream fails with that reason instead of waiting for it until the stall timeout.
MISSING_AFTER_S = 8.0


class SecondNotPublishedYet(Exception):
    """Second n of a live stream is not in S3 yet (the workflow waits and asks again)."""


class LiveStreamUnreadable(Exception):
    """The live stream cannot be analysed: not a playlist, a segment missing or not MPEG-TS."""


@dataclass
class LiveWindow:
    path: Path  # the segments second n needs, concatenated
    info: StreamInfo  # the stream's, with its origin, and the live edge as its duration
    playlist: LivePlaylist
    fetched: list[int]  # segments GET in this invocation


@dataclass
class LiveSegmentCache:
    """Segments of one live stream kept in /tmp across warm invocations; the oldest are dropped."""

    directory: Path
    stream: tuple[str, str] | None = None  # (bucket, playlist key) the segments belong to
    info: StreamInfo | None = None
    segments: dict[int, Path] = field(default_factory=dict)

    def window(self, s3: Any, bucket: str, key: str, second: int) -> LiveWindow:
        source = f"s3://{bucket}/{key}"
        try:
            playlist = read_playlist(s3, bucket, key)
        except PlaylistUnreadable as error:
            raise LiveStreamUnreadable(str(error)) from None
        if not playlist.published(second):
            if playlist.ended:
                raise InvalidRequest(f"{source}: second {second} is past the end "
                                     f"({playlist.seconds} seconds)")
            raise SecondNotPublishedYet(
                f"{source}: second {second} is not published yet (live edge {playlist.edge_s:.2f} s, "
                f"{len(playlist.segments)} segments, no EXT-X-ENDLIST)")
        if (bucket, key) != self.stream:
            self._reset(bucket, key)
        fetched: list[int] = []
        if self.info is None:
            first = self._fetch(s3, bucket, playlist, playlist.segments[0].index, fetched)
            try:
                info = probe(first)
                origin = stream_origin_s(first)
            except UnreadableStreamError as error:
                raise LiveStreamUnreadable(f"{source}: segment {first.name}: {error.reason}") from None
            # Segments start on keyframes and the first one was probed: no restart points apply.
            self.info = replace(info, source=source, origin_s=origin, restart_points=[], restart_reason=None)
        needed = playlist.covering(max(0.0, second - AUDIO_PREROLL_S), second + 1)
        paths = [self._fetch(s3, bucket, playlist, segment.index, fetched) for segment in needed]
        self._drop_before(needed[0].index)
        window = self.directory / f"window-{needed[0].index}-{needed[-1].index}.ts"
        with window.open("wb") as out:
            for path in paths:
                with path.open("rb") as part:
                    shutil.copyfileobj(part, out)
        return LiveWindow(path=window, info=replace(self.info, duration_s=playlist.edge_s),
                          playlist=playlist, fetched=fetched)

    def _reset(self, bucket: str, key: str) -> None:
        # One stream per warm environment: /tmp is small (512 MB by default).
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.stream, self.info, self.segments = (bucket, key), None, {}

    def _fetch(self, s3: Any, bucket: str, playlist: LivePlaylist, index: int, fetched: list[int]) -> Path:
        if index in self.segments:
            return self.segments[index]
        segment = playlist.segments[index]
        try:
            data = read_segment(s3, bucket, segment)
        except SegmentAbsent:
            behind = playlist.edge_s - segment.end_s
            if behind >= MISSING_AFTER_S:
                raise LiveStreamUnreadable(
                    f"s3://{bucket}/{segment.key}: segment {index} "
                    f"({segment.start_s:.2f}-{segment.end_s:.2f} s) is listed in the playlist but missing "
                    f"from S3 (404 while the playlist goes on {behind:.1f} s after it)") from None
            raise SecondNotPublishedYet(
                f"s3://{bucket}/{segment.key}: segment {index} is listed but not in S3 yet") from None
        if data[:1] != b"\x47":
            raise LiveStreamUnreadable(f"s3://{bucket}/{segment.key}: segment {index} is not MPEG-TS "
                                       "(no 0x47 sync byte)")
        path = self.directory / f"segment-{index:06d}.ts"
        path.write_bytes(data)
        self.segments[index] = path
        fetched.append(index)
        return path

    def _drop_before(self, index: int) -> None:
        for old in [i for i in self.segments if i < index]:
            self.segments.pop(old).unlink(missing_ok=True)
