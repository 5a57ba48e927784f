"""The after follows a live stream: a job is "follow this stream", started by an S3 notification of its
playlist, and one worker reads each new segment once and decodes it continuously in one container.

- The job: an S3 `Object Created` event (EventBridge's shape, or S3's own notification shape) of a
  `*.m3u8` key under `LIVE_PREFIX` names the stream (`live/<stream_id>/index.m3u8`). Every playlist
  rewrite sends one, and S3 delivers each at least once, so many messages name the same stream.
- One follower per stream: a follower record in S3 (`FOLLOWERS_PREFIX<stream_id>.json`, in the results
  bucket) is the lease and the checkpoint at once. It is only ever written conditionally (If-None-Match
  to create, If-Match on the ETag read or last written to update), so of two workers taking the same
  stream at the same time exactly one wins; the other gets 412 and drops its message as a duplicate. A
  message for a stream whose lease is held (written less than `lease_s` ago) or whose stream has ended or
  failed is deleted at once. A message queue cannot do this alone: S3 cannot notify a FIFO queue, and
  FIFO deduplication lasts 5 minutes while a live stream lasts for days.
- The checkpoint, written after each results batch (the batch's PUT, then the record's), after each
  defect notification and at least every `lease_s`/3 while waiting: the next second to analyse, the
  segment to read from (the one holding `AUDIO_PREROLL_S` before it: it starts on a keyframe, so the
  pictures and sound of that second decode as in one pass from the start), each detector's state, the
  result records not yet written, the stream's first timestamp and its decoder options. A worker killed
  mid-stream loses its lease `lease_s` after its last write; its message comes back after the visibility
  timeout (or the next playlist notification comes first) and another worker goes on from the checkpoint.
  Repeated: at most `results_batch_seconds` stream-seconds of analysis and the segments holding them (one
  more GET each); at most one defect notification per kill (published, checkpoint not yet written).
- Reading: one GET of the playlist per poll (every `live_poll_s` at the live edge), one GET per segment.
  The decoder (lambdas/converter/segments.py, every design's) reads through `LiveInput`, a
  `SegmentReader` that hands the next segment's bytes to the MPEG-TS demuxer and, when none is listed
  yet, waits at the live edge (polling the playlist, keeping the
  job's message and lease alive) until it is, or the playlist ends (EXT-X-ENDLIST: end of stream), or it
  has not grown for `stall_timeout_s` (stalled: end of what can be analysed now). A segment listed but
  absent from S3 is retried for `missing_timeout_s`, then the stream fails with that reason; a playlist
  that is not one, or a segment that is not MPEG-TS, fails at once.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from lambdas.converter.decode import UnreadableStreamError
from lambdas.converter.segments import SegmentReader, check_ts, window_start
from lambdas.converter.service import StreamUnreadable
from lambdas.shared.keys import check_segment
from lambdas.shared.live import (
    LIVE_PREFIX,
    LivePlaylist,
    LiveSegment,
    PlaylistUnreadable,
    SegmentAbsent,
    is_playlist,
    read_playlist,
    read_segment,
    stream_id_of,
)
from settings import FOLLOWERS_PREFIX

# Follower statuses: ENDED and FAILED are final; STALLED is taken up again once the playlist grows.
FOLLOWING, ENDED, STALLED, FAILED = "following", "ended", "stalled", "failed"


class LeaseLost(Exception):
    """Another worker wrote the follower record since this one read or wrote it."""


class SegmentMissing(StreamUnreadable):
    """A segment the playlist lists is not in S3 after `missing_timeout_s`."""


class StopFollowing(Exception):
    """The worker is stopping (SIGTERM): raised out of the wait at the live edge or between seconds."""


# --- jobs ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LiveJob:
    bucket: str
    playlist_key: str
    stream_id: str

    @property
    def source(self) -> str:
        return f"s3://{self.bucket}/{self.playlist_key}"


def is_s3_event(event: Any) -> bool:
    """An S3 Object Created event as EventBridge delivers it, or S3's own notification (or its test
    event): these are live jobs, never the before's input."""
    return isinstance(event, dict) and (event.get("source") == "aws.s3" or "Records" in event
                                        or event.get("Event") == "s3:TestEvent")


def live_jobs(event: dict[str, Any]) -> list[LiveJob]:
    """The playlists an S3 event names under `LIVE_PREFIX` (an event for anything else names none)."""
    objects: list[tuple[str, str]] = []
    if event.get("source") == "aws.s3" and event.get("detail-type") == "Object Created":
        detail = event.get("detail") or {}
        objects.append((str((detail.get("bucket") or {}).get("name", "")),
                        str((detail.get("object") or {}).get("key", ""))))
    for record in event.get("Records") or []:
        if str(record.get("eventName", "")).startswith("ObjectCreated"):
            s3 = record.get("s3") or {}
            from urllib.parse import unquote_plus  # S3 notifications URL-encode keys

            objects.append((str((s3.get("bucket") or {}).get("name", "")),
                            unquote_plus(str((s3.get("object") or {}).get("key", "")))))
    jobs = []
    for bucket, key in objects:
        if bucket and key.startswith(LIVE_PREFIX) and is_playlist(key):
            jobs.append(LiveJob(bucket, key, check_segment("stream_id", stream_id_of(key))))
    return jobs


# --- the follower record: lease and checkpoint ---------------------------------------------------
@dataclass
class Checkpoint:
    stream_id: str
    bucket: str
    playlist_key: str
    date: str = ""  # the results partition, fixed at the stream's first job across takeovers
    owner: str = ""  # "" once released: anyone may take over at once
    written_at: float = 0.0  # wall clock of the last write: the lease runs `lease_s` from it
    status: str = FOLLOWING
    reason: str | None = None
    next_second: int = 0
    resume_segment: int = 0
    segments_listed: int = 0  # the playlist's length when this was written (a stall resumes on growth)
    origin_s: float | None = None
    decoder_options: dict[str, str] = field(default_factory=dict)
    states: dict[str, Any] = field(default_factory=dict)
    pending: list[dict[str, Any]] = field(default_factory=list)  # second records not yet in results
    notified: int = 0  # defect notifications published so far
    takeovers: int = 0  # how many times a worker went on from a checkpoint another one wrote

    def held(self, now: float, lease_s: float) -> bool:
        return self.status == FOLLOWING and bool(self.owner) and now - self.written_at < lease_s

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Checkpoint:
        return cls(**json.loads(data))


def follower_key(stream_id: str) -> str:
    return f"{FOLLOWERS_PREFIX}{stream_id}.json"


@dataclass
class FollowerStore:
    """The follower records, read with GET and written only conditionally."""

    s3: Any
    bucket: str
    writes: int = 0  # conditional PUTs of records, refused ones too (billed alike): the checkpoints counted

    def read(self, stream_id: str) -> tuple[Checkpoint | None, str | None]:
        try:
            response = self.s3.get_object(Bucket=self.bucket, Key=follower_key(stream_id))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None, None
            raise
        return Checkpoint.from_json(response["Body"].read()), response["ETag"]

    def write(self, checkpoint: Checkpoint, etag: str | None) -> str:
        """Write `checkpoint` if the record is still the one with `etag` (None: if there is none yet);
        return the new ETag, or raise LeaseLost."""
        condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        checkpoint.written_at = time.time()
        self.writes += 1
        try:
            etag = self.s3.put_object(Bucket=self.bucket, Key=follower_key(checkpoint.stream_id),
                                      Body=checkpoint.to_json(), ContentType="application/json",
                                      **condition)["ETag"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412",
                                                                 "ConditionalRequestConflict"):
                raise LeaseLost(checkpoint.stream_id) from None
            raise
        return str(etag)


def new_owner() -> str:
    return uuid.uuid4().hex[:12]


# --- reading the stream --------------------------------------------------------------------------
@dataclass
class LiveTimings:
    """Wall-clock times the service reports for lag: when each segment was read, each second done."""

    segment_read_at: dict[int, float] = field(default_factory=dict)
    second_done_at: dict[int, float] = field(default_factory=dict)


class LiveInput(SegmentReader):
    """The stream's segments in order from `start_segment`, each read with one GET, waiting at the live
    edge. `ended_by` says why it gave end-of-file: "ended" or "stalled"."""

    def __init__(self, s3: Any, job: LiveJob, *, start_segment: int, poll_s: float, stall_timeout_s: float,
                 missing_timeout_s: float, on_wait: Callable[[], None],
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 timings: LiveTimings | None = None) -> None:
        self.s3, self.job = s3, job
        self.next_segment = start_segment
        self.poll_s, self.stall_timeout_s, self.missing_timeout_s = poll_s, stall_timeout_s, missing_timeout_s
        self.on_wait = on_wait  # heartbeats, lease renewal, stop requests: called between polls
        self.clock, self.sleep = clock, sleep
        self.timings = timings or LiveTimings()
        self.playlist: LivePlaylist = self._read_playlist()
        self.grew_at = clock()
        self.ended_by: str | None = None
        self.playlist_reads = 1
        super().__init__(self.next_bytes)

    def next_bytes(self) -> bytes:
        """The next segment's bytes, once it is listed and in S3; b"" at the end or at a stall."""
        if self.ended_by is not None:
            return b""
        segment = self.wait_for_segment()
        if segment is None:
            return b""
        data = self.read_listed(segment)
        self.next_segment += 1
        return data

    def wait_for_segment(self) -> LiveSegment | None:
        fresh = False  # whether the playlist in hand was read since the last segment was taken
        while True:
            if self.next_segment < len(self.playlist.segments):
                return self.playlist.segments[self.next_segment]
            if self.playlist.ended:
                self.ended_by = ENDED
                return None
            # A stall is judged on a playlist read since the last segment was taken: the one in hand may
            # be older than the time the pipeline spent on what it listed (a slow machine, a late segment).
            quiet = self.clock() - self.grew_at >= self.stall_timeout_s
            if quiet and fresh:
                self.ended_by = STALLED
                return None
            if not quiet:
                self.wait()
            listed = len(self.playlist.segments)
            self.playlist = self._read_playlist()
            self.playlist_reads += 1
            fresh = True
            if len(self.playlist.segments) > listed or self.playlist.ended:
                self.grew_at = self.clock()

    def read_listed(self, segment: LiveSegment) -> bytes:
        """One GET (more while a listed segment is not in S3 yet: a late segment), checked to be MPEG-TS."""
        first_try = self.clock()
        while True:
            try:
                data = read_segment(self.s3, self.job.bucket, segment)
                break
            except SegmentAbsent:
                if self.clock() - first_try >= self.missing_timeout_s:
                    raise SegmentMissing(
                        f"s3://{self.job.bucket}/{segment.key}: segment {segment.index} is listed in the "
                        f"playlist but not in S3 after {self.missing_timeout_s:g} s") from None
                self.wait()
        self.timings.segment_read_at[segment.index] = time.time()
        # The stall clock runs from the last progress: time spent waiting for a late segment is not a
        # playlist that stopped growing (the cached playlist is older than that wait).
        self.grew_at = self.clock()
        try:
            check_ts(data, f"s3://{self.job.bucket}/{segment.key}")
        except UnreadableStreamError as error:
            raise StreamUnreadable(str(error)) from None  # the segment's name with the reason
        return data

    def wait(self) -> None:
        self.on_wait()
        self.sleep(self.poll_s)

    def _read_playlist(self) -> LivePlaylist:
        try:
            return read_playlist(self.s3, self.job.bucket, self.job.playlist_key)
        except PlaylistUnreadable as error:
            raise StreamUnreadable(str(error)) from None

    def resume_segment(self, next_second: int) -> int:
        """The segment a taker-over reads from to analyse `next_second` on."""
        return window_start(self.playlist, next_second)
