"""Reading a live HLS stream in S3: its media playlist, and which segments hold a stream-second.

Every architecture that follows a live stream reads it through this module: one GET of the playlist to
learn the live edge, one GET per segment. The playlist is an EVENT playlist (segments only appended, as
`sample_streams publish` and a packager keeping the whole event write it), so a segment's start is the
sum of the EXTINF durations before it.
"""

from __future__ import annotations

import math
import posixpath
from dataclasses import dataclass
from typing import Any

import m3u8
from botocore.exceptions import ClientError

PLAYLIST_SUFFIX = ".m3u8"
LIVE_PREFIX = "live/"  # where live streams are written: live/<stream_id>/index.m3u8 and its segments
# EXTINF durations are written with a few decimals: a second is "covered" within this tolerance.
COVER_TOLERANCE_S = 1e-3


class PlaylistUnreadable(Exception):
    """The playlist cannot be read or is not an HLS media playlist (the reason is the message)."""


class SegmentAbsent(Exception):
    """A segment the playlist lists is not in S3 (yet): 404 (the key is the message)."""


def is_playlist(key: str) -> bool:
    return key.endswith(PLAYLIST_SUFFIX)


def stream_id_of(playlist_key: str) -> str:
    """The stream a playlist belongs to: the folder holding it (live/<stream_id>/index.m3u8)."""
    folder = posixpath.dirname(playlist_key)
    return posixpath.basename(folder) if folder else posixpath.splitext(playlist_key)[0]


@dataclass(frozen=True)
class LiveSegment:
    index: int  # media sequence number
    key: str
    start_s: float
    duration_s: float

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


@dataclass(frozen=True)
class LivePlaylist:
    key: str
    segments: tuple[LiveSegment, ...]
    ended: bool  # EXT-X-ENDLIST: nothing more will be added
    # The first segment's EXT-X-PROGRAM-DATE-TIME, ISO 8601 ("" without one): when the event started, the
    # same in every rewrite of its playlist (what tells one event from a later one under the same name).
    first_programme_time: str = ""

    @property
    def edge_s(self) -> float:
        """The live edge: where the listed segments end."""
        return self.segments[-1].end_s if self.segments else 0.0

    @property
    def seconds(self) -> int | None:
        """How many stream-seconds the stream has (the last may be partial): known once it has ended."""
        if not self.ended:
            return None
        return max(1, math.ceil(self.edge_s - COVER_TOLERANCE_S))

    def published(self, second: int) -> bool:
        """Whether every segment second `second` needs is listed (its end is behind the live edge, or the
        stream has ended after it started)."""
        if self.ended:
            return second < (self.seconds or 0)
        return self.edge_s >= second + 1 - COVER_TOLERANCE_S

    def is_last(self, second: int) -> bool:
        return self.ended and second == (self.seconds or 0) - 1

    def covering(self, start_s: float, end_s: float) -> list[LiveSegment]:
        """The segments that hold any part of [start_s, end_s)."""
        return [s for s in self.segments
                if s.start_s < end_s - COVER_TOLERANCE_S and s.end_s > start_s + COVER_TOLERANCE_S]

    def segment_at(self, at_s: float) -> LiveSegment | None:
        found = self.covering(at_s, at_s + 2 * COVER_TOLERANCE_S)
        return found[0] if found else None


def parse_playlist(text: str, key: str) -> LivePlaylist:
    """The media playlist's segments with their start times; anything else is PlaylistUnreadable."""
    if not text.lstrip("\ufeff").startswith("#EXTM3U"):
        raise PlaylistUnreadable(f"{key}: not an HLS playlist (it does not start with #EXTM3U)")
    try:
        playlist = m3u8.loads(text)
    except Exception as error:  # the library raises plain ValueErrors and others on malformed tags
        raise PlaylistUnreadable(f"{key}: not a valid HLS playlist ({error})") from None
    if playlist.is_variant:
        raise PlaylistUnreadable(f"{key}: a multivariant playlist; name one of its media playlists")
    folder = posixpath.dirname(key)
    sequence = int(playlist.media_sequence or 0)
    if sequence != 0:
        raise PlaylistUnreadable(f"{key}: starts at media sequence {sequence}; only playlists keeping every "
                                 "segment from the stream's start (EVENT) can be followed")
    segments: list[LiveSegment] = []
    start = 0.0
    for offset, segment in enumerate(playlist.segments):
        if segment.duration is None or segment.duration < 0 or not segment.uri:
            raise PlaylistUnreadable(f"{key}: segment {offset} has no duration or URI")
        uri = str(segment.uri)
        if "://" in uri or uri.startswith("/") or ".." in uri.split("/"):
            raise PlaylistUnreadable(f"{key}: segment URI {uri!r} is not a path beside the playlist")
        segments.append(LiveSegment(index=offset, key=posixpath.join(folder, uri), start_s=start,
                                    duration_s=float(segment.duration)))
        start += float(segment.duration)
    stamp = playlist.segments[0].program_date_time if playlist.segments else None
    return LivePlaylist(key=key, segments=tuple(segments), ended=bool(playlist.is_endlist),
                        first_programme_time=stamp.isoformat() if stamp else "")


def read_playlist(s3: Any, bucket: str, key: str) -> LivePlaylist:
    """One GET of the playlist."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        raise PlaylistUnreadable(f"s3://{bucket}/{key}: cannot be read ({_code(error)})") from None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise PlaylistUnreadable(f"s3://{bucket}/{key}: not an HLS playlist (not UTF-8 text)") from None
    return parse_playlist(text, key)


def read_segment(s3: Any, bucket: str, segment: LiveSegment) -> bytes:
    """One GET of a segment; SegmentAbsent when it is not (yet) in S3."""
    try:
        return s3.get_object(Bucket=bucket, Key=segment.key)["Body"].read()
    except ClientError as error:
        if _code(error) in ("NoSuchKey", "404", "NotFound"):
            raise SegmentAbsent(f"s3://{bucket}/{segment.key}") from None
        raise


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "error"))
