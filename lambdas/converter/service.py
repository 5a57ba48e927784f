"""The converter Lambda's work, without Lambda: fetch the stream, decode one second, ship its frames.

The stream is downloaded once per warm environment and kept in /tmp keyed by bucket, key and ETag (a
re-uploaded stream gets a new ETag, hence a fresh download); each invocation then costs one HEAD.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from lambdas.converter.decode import PastTheEndError, UnreadableStreamError, probe, read_second
from lambdas.converter.live_source import LiveSegmentCache, LiveStreamUnreadable
from lambdas.shared.frame_store import put_second, second_prefix
from lambdas.shared.keys import InvalidRequest, check_key, check_segment, shown
from lambdas.shared.live import is_playlist
from lambdas.shared.media import StreamInfo
from lambdas.shared.results import result_key

CHUNK = 1 << 20
REQUEST_FIELDS = ("bucket", "key", "stream_id", "second", "execution", "started_at")
# Memory a stream-second needs where it is held whole (the converter decodes it at once, each detector
# GETs all its frames back): the runtime with its libraries, plus every picture's luma plane and, in the
# converter, the decoder's reference pictures. Measured 2026-12-02: 90 MB after the converter's imports,
# 151 MB more for one 1920x1080 60 fps second (118.7 MiB of luma planes), i.e. 1.27 bytes per pixel.
RUNTIME_MB = 100
BYTES_HELD_PER_PIXEL = 1.5
MiB = 1 << 20


class StreamUnreadable(Exception):
    """The stream cannot be analysed. The state machine catches this error name (the class name is the
    Lambda errorType), notifies, and fails the execution with this message as the cause."""


@dataclass(frozen=True)
class ConvertRequest:
    bucket: str
    key: str
    stream_id: str
    second: int
    execution: str  # the execution's name: part of the frame keys
    started_at: str  # ISO start time of the stream's first execution: the results partition date

    @classmethod
    def from_event(cls, event: Any, allowed_buckets: Collection[str] | None = None) -> ConvertRequest:
        """Validate the request before anything is read: the bucket must be one the stack reads streams
        from (None: any, for local use), the key a well-formed relative path, the names safe as key
        segments. Anything else raises InvalidRequest, which the workflow reports like an unreadable
        stream."""
        if not isinstance(event, dict):
            raise InvalidRequest(f"the request must be an object, got {shown(event)}")
        missing = [name for name in REQUEST_FIELDS if name not in event]
        if missing:
            raise InvalidRequest(f"the request has no {', '.join(missing)}")
        bucket = event["bucket"]
        if not isinstance(bucket, str) or (allowed_buckets is not None and bucket not in allowed_buckets):
            raise InvalidRequest(f"bucket {shown(bucket)} is not a source bucket of this stack")
        second = event["second"]
        if not isinstance(second, int) or isinstance(second, bool) or second < 0:
            raise InvalidRequest(f"second must be a non-negative integer, got {shown(second)}")
        return cls(
            bucket=bucket,
            key=check_key(event["key"]),
            stream_id=check_segment("stream_id", event["stream_id"]),
            second=second,
            execution=check_segment("execution", event["execution"]),
            started_at=_check_started_at(event["started_at"]),
        )


def _check_started_at(value: Any) -> str:
    # Its date becomes the results partition (date=YYYY-MM-DD/): it must be a real timestamp.
    try:
        datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise InvalidRequest(f"started_at must be an ISO timestamp, got {shown(value)}") from None
    return str(value)


@dataclass
class StreamCache:
    """The downloaded stream and its probe, kept across warm invocations."""

    directory: Path
    path: Path | None = None
    info: StreamInfo | None = None

    def fetch(self, s3: Any, bucket: str, key: str) -> tuple[Path, StreamInfo]:
        source = f"s3://{bucket}/{key}"
        try:
            etag = s3.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
        except ClientError as error:
            raise StreamUnreadable(f"{source}: cannot be read from S3 ({_code(error)})") from None
        name = hashlib.sha256(f"{bucket}/{key}/{etag}".encode()).hexdigest()[:32] + Path(key).suffix
        wanted = self.directory / name
        if self.path != wanted or self.info is None or not wanted.is_file():
            self._download(s3, bucket, key, etag, wanted)
            try:
                self.info = probe(wanted)
            except UnreadableStreamError as error:
                raise StreamUnreadable(f"{source}: {error.reason}") from None
            self.path = wanted
        return wanted, self.info

    def _download(self, s3: Any, bucket: str, key: str, etag: str, target: Path) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        # One stream at a time: /tmp is small (512 MB by default) and a warm environment serves one stream.
        for old in self.directory.iterdir():
            old.unlink(missing_ok=True)
        self.path, self.info = None, None
        partial = target.with_suffix(target.suffix + ".part")
        try:
            body = s3.get_object(Bucket=bucket, Key=key, IfMatch=etag)["Body"]
        except ClientError as error:
            raise StreamUnreadable(f"s3://{bucket}/{key}: cannot be read from S3 ({_code(error)})") from None
        with partial.open("wb") as out:
            for chunk in iter(lambda: body.read(CHUNK), b""):
                out.write(chunk)
        os.replace(partial, target)


def second_memory_mb(info: StreamInfo) -> float:
    """What holding one whole second of this stream takes, runtime included (see BYTES_HELD_PER_PIXEL)."""
    frames = max(1.0, info.fps)
    return RUNTIME_MB + info.width * info.height * frames * BYTES_HELD_PER_PIXEL / MiB


def check_fits(info: StreamInfo, source: str, memory_mb: dict[str, int]) -> None:
    """Refuse, before decoding, a stream whose second does not fit in the memory of a function that holds
    it whole (`memory_mb`: {"converter": MB, "detector": MB}); on AWS it would be killed instead."""
    need = second_memory_mb(info)
    for function, limit in memory_mb.items():
        if need > limit:
            raise StreamUnreadable(
                f"{source}: one second of {info.width}x{info.height} at {info.fps:g} fps needs about "
                f"{need:.0f} MB held at once, more than the {function}'s {limit} MB of memory "
                f"(raise {function}_memory_mb, or analyse a smaller picture or frame rate)")


def convert(
    request: ConvertRequest, *, s3: Any, temp_bucket: str, cache: StreamCache, frames_per_second: int = 0,
    memory_mb: dict[str, int] | None = None, live: LiveSegmentCache | None = None,
) -> dict[str, Any]:
    """Decode second `request.second` and PUT its frames and audio; return keys and small metadata.
    `memory_mb`: the memory sizes of the functions that hold a whole second (none: not checked).
    A key naming a playlist (`.m3u8`) is a live stream, read a few segments at a time through `live`;
    a second not published yet raises SecondNotPublishedYet (the workflow waits and retries)."""
    source = f"s3://{request.bucket}/{request.key}"
    live_edge: dict[str, Any] | None = None
    check = lambda info: check_fits(info, source, memory_mb or {})  # noqa: E731
    try:
        if is_playlist(request.key):
            if live is None:
                raise InvalidRequest(f"{source}: a live stream needs a segment cache")
            try:
                window = live.window(s3, request.bucket, request.key, request.second)
            except LiveStreamUnreadable as error:
                raise StreamUnreadable(str(error)) from None
            second, info = window.read_second(request.second, check)
            # The playlist knows the end; the window does not.
            second = replace(second, is_last=window.playlist.is_last(request.second))
            live_edge = {"edge_s": round(window.playlist.edge_s, 3), "ended": window.playlist.ended,
                         "segments_fetched": window.fetched}
        else:
            path, info = cache.fetch(s3, request.bucket, request.key)
            check(info)
            # Without a duration in the header (a live recording) the end is found by reading: `is_last`.
            if info.seconds is not None and request.second >= info.seconds:
                raise InvalidRequest(f"{source}: second {request.second} is past the end "
                                     f"({info.seconds} seconds)")
            second = read_second(path, request.second, info)
    except UnreadableStreamError as error:
        where = f"second {request.second}"
        reason = error.reason if error.reason.startswith(f"{where} ") else f"{where}: {error.reason}"
        raise StreamUnreadable(f"{source}: {reason}") from None
    except PastTheEndError as error:  # a second after the last, which a stream without a duration found
        raise InvalidRequest(f"{source}: {error}") from None
    prefix = second_prefix(request.stream_id, request.execution, request.second)
    frame_keys, audio_key = put_second(s3, temp_bucket, prefix, second, frames_per_second)
    result = {
        "frames": frame_keys,
        "audio": audio_key,
        "is_last": second.is_last,
        "frame_count": len(second.frames),
        "seconds": None if live_edge is not None and not live_edge["ended"] else info.seconds,
        "info": {**info.to_dict(), "source": source},
        "result_key": result_key(request.started_at, request.stream_id, request.second),
    }
    if live_edge is not None:
        result["live"] = live_edge
    return result


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "error"))
