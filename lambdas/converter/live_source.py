"""The converter's view of a live stream: second n from the few segments that hold it.

Each invocation GETs the playlist (the live edge), then GETs only the segments second n needs that this
warm environment does not hold yet: from the one `segments.window_start` names (its sound starts
`AUDIO_PREROLL_S` before it) to the one holding its end. Segments start on keyframes, so that window
decodes on its own (`segments.SegmentWindow`, the decoder every design uses); the first segment is read
once for what the decoder must know from the stream's start (`segments.StreamStart`: its origin, since
every window keeps the stream's clock, and its decoder options).

When second n is not published yet the converter raises `SecondNotPublishedYet`: the workflow's Retry on
that error is its wait at the live edge (see statemachine/), so no Lambda is ever paid to wait.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambdas.converter.decode import UnreadableStreamError
from lambdas.converter.segments import (
    SegmentWindow,
    StreamStart,
    check_ts,
    stream_start,
    video_from,
    window_start,
)
from lambdas.shared.keys import InvalidRequest
from lambdas.shared.live import LivePlaylist, PlaylistUnreadable, SegmentAbsent, read_playlist, read_segment
from lambdas.shared.media import StreamInfo, StreamSecond

# A listed segment still absent from S3 once the playlist lists this much stream after it is missing, not
# late: the stream fails with that reason instead of waiting for it until the stall timeout.
MISSING_AFTER_S = 8.0


class SecondNotPublishedYet(Exception):
    """Second n of a live stream is not in S3 yet (the workflow waits and asks again)."""


class LiveStreamUnreadable(Exception):
    """The live stream cannot be analysed: not a playlist, a segment missing or not MPEG-TS."""


@dataclass
class LiveWindow:
    source: str
    paths: list[Path]  # the segments second n needs, in order
    start: StreamStart
    playlist: LivePlaylist
    fetched: list[int]  # segments GET in this invocation

    def read_second(self, index: int, check: Callable[[StreamInfo], None]) -> tuple[StreamSecond, StreamInfo]:
        """Decode second `index` (what the window is for) and the stream's info, with the live edge as its
        duration; `check` sees the info before anything is decoded."""
        data = b"".join(path.read_bytes() for path in self.paths)
        edge_s = self.playlist.edge_s
        with SegmentWindow(io.BytesIO(data), self.source, self.start, duration_s=edge_s) as window:
            check(window.info)
            last = (window.info.seconds or index + 1) - 1  # the live edge's second, as a file's last
            second = next(window.seconds(index, video_from_s=video_from(data, self.start.origin_s, index),
                                         stop_second=index + 1, last_second=last), None)
        if second is None:
            raise UnreadableStreamError(self.source, f"second {index} is not in the segments that hold it")
        return second, window.info


@dataclass
class LiveSegmentCache:
    """Segments of one live stream kept in /tmp across warm invocations; the oldest are dropped."""

    directory: Path
    stream: tuple[str, str] | None = None  # (bucket, playlist key) the segments belong to
    start: StreamStart | None = None
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
        if self.start is None:
            first = self._fetch(s3, bucket, playlist, playlist.segments[0].index, fetched)
            try:
                self.start = stream_start(first.read_bytes(), source)
            except UnreadableStreamError as error:
                raise LiveStreamUnreadable(f"{source}: segment {first.name}: {error.reason}") from None
        first_index = window_start(playlist, second)
        last_index = playlist.covering(second, second + 1)[-1].index
        paths = [self._fetch(s3, bucket, playlist, index, fetched)
                 for index in range(first_index, last_index + 1)]
        self._drop_before(first_index)
        return LiveWindow(source=source, paths=paths, start=self.start, playlist=playlist, fetched=fetched)

    def _reset(self, bucket: str, key: str) -> None:
        # One stream per warm environment: /tmp is small (512 MB by default).
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.stream, self.start, self.segments = (bucket, key), None, {}

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
        try:
            check_ts(data, f"s3://{bucket}/{segment.key}")
        except UnreadableStreamError as error:
            raise LiveStreamUnreadable(str(error)) from None
        path = self.directory / f"segment-{index:06d}.ts"
        path.write_bytes(data)
        self.segments[index] = path
        fetched.append(index)
        return path

    def _drop_before(self, index: int) -> None:
        for old in [i for i in self.segments if i < index]:
            self.segments.pop(old).unlink(missing_ok=True)
