"""The event-driven serverless design's one function: a live stream's segment in, its seconds analysed in
memory, defects out at once, the stream's detector state kept between segments (a conditional write).

A message names one segment that landed (`live/<stream_id>/segment-NNNNN.ts`, an S3 notification). Order
per stream is enforced against the stream's state, not by the queue: the state item holds the next
segment the stream expects, and is written conditionally on it, so a redelivered segment is acknowledged
without analysis and one that arrives before its predecessor is retried later (`NotYet`); neither is
analysed twice nor skipped.

What one segment M costs:
- S3: one GET of the playlist (which segments exist, where each starts, whether M is the last), one GET
  of each segment of the window (M and the one or two before it that hold the second in hand and the
  half-second of audio its decoder starts with), one PUT of the seconds' results;
- S3 again for the stream's state: one GET and one conditional PUT (`StateStore`);
- SNS: one publish per defect, as soon as the detectors close it.

Decoding, in memory, by the segment-window decoder every design uses (lambdas/converter/segments.py).
The seconds given out are those of `monolith analyze` on the published stream (the segments
concatenated): a window starts on a keyframe (the sequential pass resets its decoder at every IDR), each
second's sound comes from a decoder of its own started `AUDIO_PREROLL_S` before it, and the stream's
origin and decoder options, learnt from segment 0, are carried in the state. The window for segment M
gives out every second that starts before M (those need M's first pictures and sound to be complete),
so the content of segment M is analysed when M+1 lands (one segment of lag); the part of M up to the end
of a second that straddles M's start is decoded twice (less than a second of video per segment, none
when segments start on whole seconds). The last segment (EXT-X-ENDLIST) is analysed to the stream's end.
"""

from __future__ import annotations

import io
import json
import math
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from botocore.exceptions import ClientError

from lambdas.converter.decode import UnreadableStreamError
from lambdas.converter.segments import (
    SegmentWindow,
    StreamStart,
    check_segment_decodes,
    is_ts,
    stream_start,
    video_from,
    window_start,
)
from lambdas.detectors.pipeline import run_detectors, select_detectors
from lambdas.shared.keys import InvalidRequest, check_segment, shown
from lambdas.shared.live import (
    COVER_TOLERANCE_S,
    LivePlaylist,
    LiveSegment,
    PlaylistUnreadable,
    read_playlist,
    read_segment,
    stream_id_of,
)
from lambdas.shared.notifications import SERVERLESS, marked, stall_notification, text_attribute
from lambdas.shared.results import make_record, result_key

SEGMENT_NAME = re.compile(r"segment-(\d{1,9})\.ts$")
# The media playlist beside the segments (`sample_streams publish` and the stack's settings name it).
PLAYLIST_NAME = "index.m3u8"
# Audio packets of a segment's first moments may sit in the segment before it (MPEG-TS interleaves by
# decode time): the window reaches this much further back than the audio decoders need.
AUDIO_SLACK_S = 0.5
FAILURE_SUBJECT = "Stream cannot be analysed"  # the before's and the after's subject
STATE_PREFIX = "state/"  # the streams' states in the state bucket
# Every design may follow the same live stream into the same results partition: this design's objects
# are told apart by their part (`second=<n>.segments.json`), its notifications by their `design` mark.
RESULTS_PART = "segments"


class NotYet(Exception):
    """The segment cannot be analysed yet (its predecessor is not, or the playlist does not list it):
    the message is retried later."""


@dataclass
class StreamState:
    """What the stream's state object holds between segments (small, bounded: the detectors'
    states are bounded by construction, the rest is fixed-size)."""

    stream_id: str
    next_segment: int = 0
    next_second: int = 0
    origin_s: float | None = None  # the stream's first timestamp (absolute), from segment 0
    decoder_options: dict[str, str] = field(default_factory=dict)
    detectors: dict[str, Any] = field(default_factory=dict)
    started_at: str = ""  # ISO time segment 0 was analysed: the results' date partition
    ended: bool = False
    advanced_at: float = 0.0  # epoch seconds of the last segment analysed or given up: the stall clock
    stalled: bool = False  # reported stalled; cleared when the next segment is analysed

    def body(self) -> str:
        return json.dumps({"next_second": self.next_second, "origin_s": self.origin_s,
                           "decoder_options": self.decoder_options, "detectors": self.detectors,
                           "started_at": self.started_at, "ended": self.ended,
                           "advanced_at": self.advanced_at, "stalled": self.stalled}, separators=(",", ":"))

    @classmethod
    def from_body(cls, stream_id: str, next_segment: int, body: str) -> StreamState:
        data = json.loads(body)
        return cls(stream_id=stream_id, next_segment=next_segment, next_second=int(data["next_second"]),
                   origin_s=data["origin_s"], decoder_options=dict(data["decoder_options"]),
                   detectors=dict(data["detectors"]), started_at=str(data["started_at"]),
                   ended=bool(data["ended"]), advanced_at=float(data.get("advanced_at", 0.0)),
                   stalled=bool(data.get("stalled", False)))


class StateStore:
    """The streams' states in S3, one small JSON object per stream (`state/<stream_id>.json`), written
    with S3's conditional writes: If-None-Match for a stream's first state, If-Match on the ETag read
    otherwise. A write succeeds only if nobody wrote the state since it was read: the segment number in
    it is the one this delivery analysed, so a concurrent delivery of the same segment records it once.
    S3 rather than DynamoDB: the same guarantee (S3 reads are strongly consistent), cheaper for a
    ~9 KB item (a PUT is $5 per million, a DynamoDB write of 9 KB is 9 write units, $5.63 per million;
    a GET $0.40 against 3 strongly consistent read units, $0.375), and DynamoDB does not run on
    LocalStack's free edition without Docker (it needs the DynamoDB Local jar, downloaded at start)."""

    def __init__(self, s3: Any, bucket: str, prefix: str = STATE_PREFIX) -> None:
        self.s3, self.bucket, self.prefix = s3, bucket, prefix

    def key(self, stream_id: str) -> str:
        return f"{self.prefix}{stream_id}.json"

    def get(self, stream_id: str) -> tuple[StreamState, str | None]:
        """The stream's state and the ETag to write it back against (None: it has none yet)."""
        try:
            found = self.s3.get_object(Bucket=self.bucket, Key=self.key(stream_id))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return StreamState(stream_id), None
            raise
        data = json.loads(found["Body"].read())
        return StreamState.from_body(stream_id, int(data["next_segment"]), json.dumps(data)), found["ETag"]

    def advance(self, state: StreamState, etag: str | None) -> bool:
        """Write `state` if the stored one is still the one read (ETag `etag`, or none); False if another
        delivery wrote it first."""
        condition = {"IfMatch": etag} if etag is not None else {"IfNoneMatch": "*"}
        body = json.dumps({"next_segment": state.next_segment, **json.loads(state.body())},
                          separators=(",", ":"))
        try:
            self.s3.put_object(Bucket=self.bucket, Key=self.key(state.stream_id), Body=body.encode(),
                               ContentType="application/json", **condition)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412",
                                                                "ConditionalRequestConflict", "409"):
                return False
            raise
        return True


@dataclass(frozen=True)
class SegmentRef:
    """A segment named by a notification."""

    bucket: str
    key: str
    stream_id: str
    index: int

    @property
    def source(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def playlist_key(self) -> str:
        return posixpath.join(posixpath.dirname(self.key), PLAYLIST_NAME)

    @classmethod
    def parse(cls, bucket: str, key: str) -> SegmentRef:
        match = SEGMENT_NAME.search(posixpath.basename(key))
        if match is None:
            raise InvalidRequest(f"{shown(key)} is not a live segment (<stream_id>/segment-NNNNN.ts)")
        return cls(bucket=bucket, key=key, stream_id=check_segment("stream_id", stream_id_of(key)),
                   index=int(match.group(1)))


@dataclass(frozen=True)
class Outcome:
    status: str  # "analysed" or "duplicate"
    seconds: list[int]
    defects: list[dict[str, Any]]
    results_key: str | None = None
    recorded: bool = True  # False: a concurrent delivery of the same segment wrote the state first
    watch: StallWatch | None = None  # a stall watch to arm: the stream's first segment, or it resumed


@dataclass(frozen=True)
class StallWatch:
    """A delayed message that checks, `stall_timeout_s` after the stream last advanced, that it advanced
    again: the only way an event-driven design notices a segment that never lands. One per stream at a
    time: a check that finds progress arms the next one for the new stall deadline."""

    bucket: str
    playlist_key: str
    stream_id: str
    segment: int  # the segment the stream waited for when the watch was armed

    def body(self) -> str:
        return json.dumps({"stall_watch": {"bucket": self.bucket, "playlist_key": self.playlist_key,
                                           "stream_id": self.stream_id, "segment": self.segment}})


@dataclass
class Analyser:
    """What a segment's analysis needs: clients, where results and defects go, which detectors."""

    s3: Any
    state: StateStore
    publish: Callable[[dict[str, Any]], None]  # one SNS Publish request's arguments (without TopicArn)
    results_bucket: str
    detectors: tuple[str, ...] = ("freeze", "block_corruption", "av_sync")
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    stall_timeout_s: float = 30.0  # no segment analysed for this long, none listed: stalled
    # Test-only fault injection (lambdas/shared/faults.py mid_work_faults, set by the handler only when the
    # deployment has a fault plan): called with (stream, segment, attempt) once the segment's results are
    # written and its defects published, before the state's conditional write, the worst place to fail.
    before_state_write: Callable[[str, int, int], None] | None = None

    def analyse(self, ref: SegmentRef, attempt: int = 1) -> Outcome:
        """Segment `ref`'s seconds analysed and the state advanced past it; `attempt` is the delivery's
        SQS receive count."""
        state, etag = self.state.get(ref.stream_id)
        if state.ended or state.next_segment > ref.index:
            return Outcome("duplicate", [], [])
        if state.next_segment < ref.index:
            raise NotYet(f"{ref.stream_id}: segment {ref.index} waits for segment {state.next_segment}")
        playlist = read_playlist(self.s3, ref.bucket, ref.playlist_key)
        if ref.index >= len(playlist.segments):
            raise NotYet(f"{ref.stream_id}: segment {ref.index} is not listed in {ref.playlist_key} yet")
        seconds, defects, new_state, key = self._window(ref, playlist, state)
        if self.before_state_write is not None:
            self.before_state_write(ref.stream_id, ref.index, attempt)
        recorded = self.state.advance(new_state, etag)
        # A watch runs while the stream goes on: one from its first segment, one again once it resumes.
        watch = None
        if recorded and not new_state.ended and (etag is None or state.stalled):
            watch = StallWatch(ref.bucket, ref.playlist_key, ref.stream_id, new_state.next_segment)
        return Outcome("analysed", seconds, defects, key, recorded, watch)

    def check_stall(self, watch: StallWatch) -> tuple[StallWatch, float] | None:
        """A stall watch's check: the watch to arm next and its delay in seconds, or None when the stream
        ended or is reported stalled now. Stalled: nothing analysed for `stall_timeout_s` and the playlist
        lists nothing more (the after's rule: a playlist that has not grown). Then, as the after does, what
        was published is analysed as the stream's end (the last segment's seconds, which would otherwise
        wait for the next segment), people are told, and the state keeps its place from before that tail:
        if the stream resumes, the tail is analysed again with the segment after it."""
        state, etag = self.state.get(watch.stream_id)
        if state.ended or state.stalled or etag is None:
            return None
        now = self.now().timestamp()
        deadline = state.advanced_at + self.stall_timeout_s
        if state.next_segment != watch.segment or now < deadline - 0.5:  # it advanced since: watch on
            return replace(watch, segment=state.next_segment), max(1.0, deadline - now)
        playlist = read_playlist(self.s3, watch.bucket, watch.playlist_key)
        if len(playlist.segments) > state.next_segment or playlist.ended:
            # It grew: the next segment's own message (retried, or late) moves the stream on.
            return replace(watch, segment=state.next_segment), self.stall_timeout_s
        tail = [s for s in playlist.segments if s.index == state.next_segment - 1]
        stalled = replace(state, stalled=True)
        if not self.state.advance(stalled, etag):  # a segment was analysed meanwhile: watch on
            return replace(watch, segment=state.next_segment + 1), self.stall_timeout_s
        try:
            if tail:
                ref = SegmentRef(watch.bucket, tail[0].key, watch.stream_id, tail[0].index)
                self._window(ref, playlist, state, as_end=True)
        finally:  # told even if the tail cannot be analysed (its error is the invocation's)
            self.publish(stall_notification(watch.stream_id, f"s3://{watch.bucket}/{watch.playlist_key}",
                                            state.next_second, self.stall_timeout_s, SERVERLESS))
        return None

    def give_up(self, ref: SegmentRef, cause: str) -> None:
        """The segment will not be analysed: say so, and let the stream go on after it (its detectors
        start afresh after the gap). Only if the stream still waits for it."""
        state, etag = self.state.get(ref.stream_id)
        if state.next_segment != ref.index or state.ended:
            self.publish(failure_notification(ref, cause))
            return
        try:
            playlist = read_playlist(self.s3, ref.bucket, ref.playlist_key)
        except PlaylistUnreadable:
            playlist = None
        listed = playlist is not None and ref.index < len(playlist.segments)
        end_s = playlist.segments[ref.index].end_s if playlist and listed else float(state.next_second)
        resume = max(state.next_second, math.ceil(end_s - COVER_TOLERANCE_S))
        # The seconds still waiting for this segment (those starting before it, one segment of lag) are
        # lost with it.
        lost = resume > state.next_second
        gap = f"; seconds {state.next_second} to {resume - 1} are not analysed" if lost else ""
        self.publish(failure_notification(ref, cause + gap))
        skipped = replace(state, next_segment=ref.index + 1, detectors={}, next_second=resume,
                          ended=bool(playlist and listed and playlist.ended
                                     and ref.index == len(playlist.segments) - 1),
                          advanced_at=self.now().timestamp())
        self.state.advance(skipped, etag)

    def _window(self, ref: SegmentRef, playlist: LivePlaylist, state: StreamState, *, as_end: bool = False
                ) -> tuple[list[int], list[dict[str, Any]], StreamState, str | None]:
        """Segment `ref`'s seconds (with `as_end`: to the end of what it holds, as a stream's last), each
        segment of its window read with one GET, its results written in one object."""
        window = analyse_segment(
            playlist, ref.index, lambda part: read_segment(self.s3, ref.bucket, part), state,
            stream_id=ref.stream_id, source=ref.source, detectors=self.detectors, as_end=as_end, now=self.now,
            on_defect=lambda second, defect: self.publish(defect_notification(ref, second, defect)))
        records = window.records
        key = None
        if records:
            key = result_key(window.state.started_at, ref.stream_id, records[0]["second"], RESULTS_PART)
            body = "".join(json.dumps(r) + "\n" for r in records)
            self.s3.put_object(Bucket=self.results_bucket, Key=key, Body=body.encode(),
                               ContentType="application/json")
        return [r["second"] for r in records], window.found, window.state, key


@dataclass(frozen=True)
class SegmentAnalysis:
    records: list[dict[str, Any]]  # one per second given out, the before's record
    found: list[dict[str, Any]]  # the defects, each published as it was found
    state: StreamState  # the stream's state after the segment


def analyse_segment(playlist: LivePlaylist, index: int, read_part: Callable[[LiveSegment], bytes],
                    state: StreamState, *, stream_id: str, source: str, detectors: tuple[str, ...],
                    on_defect: Callable[[int, dict[str, Any]], None], as_end: bool = False,
                    now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> SegmentAnalysis:
    """Segment `index`'s seconds from its window (the segments since the keyframe the next second's decode
    starts at, each read with `read_part`), decoded and analysed in memory from the stream's `state`:
    the function's work without its requests (the bench measures its CPU with this too)."""
    segment = playlist.segments[index]
    is_end = as_end or (playlist.ended and index == len(playlist.segments) - 1)
    # The stream's first segment only learns its origin: its window is itself.
    first = index if state.origin_s is None else window_first(playlist, index, state.next_second)
    parts: list[bytes] = []
    for part in playlist.segments[first:index + 1]:
        data = read_part(part)  # SegmentAbsent: retried, then the DLQ
        if part.index == index:  # the segment itself must decode (a poison one stops here)
            check_segment_decodes(data, source)
        elif not is_ts(data):
            continue  # a poison segment before it, given up on when it landed
        parts.append(data)
    if state.origin_s is None:
        start = stream_start(parts[0], source)
        state = replace(state, origin_s=start.origin_s, decoder_options=dict(start.decoder_options),
                        started_at=now().isoformat())
    start = StreamStart(origin_s=float(state.origin_s or 0.0), decoder_options=state.decoder_options)
    window_bytes = b"".join(parts)
    video_from_s = video_from(window_bytes, start.origin_s, state.next_second)
    if video_from_s is None:
        raise UnreadableStreamError(source, "the segment holds no video keyframe")
    chosen = select_detectors(detectors)
    detector_states = {name: state.detectors.get(name) for name in chosen}
    records: list[dict[str, Any]] = []
    found: list[dict[str, Any]] = []
    with SegmentWindow(io.BytesIO(window_bytes), source, start) as window:
        last_second = None
        if is_end:
            end = window.end_s
            duration = (end - start.origin_s) if end is not None else segment.end_s
            window.info = replace(window.info, duration_s=duration)
            last_second = max(1, math.ceil(duration - 1e-6)) - 1
        stop = None if is_end else stop_second(segment)
        for second in window.seconds(state.next_second, video_from_s=video_from_s,
                                     stop_second=stop, last_second=last_second):
            defects = run_detectors(second, chosen, detector_states)
            for defect in defects:  # at once: a corrective action need not wait for the segment's end
                on_defect(second.index, defect)
            found += defects
            records.append(make_record(stream_id, source, second.index, defects, {}))
    next_second = records[-1]["second"] + 1 if records else state.next_second
    new_state = replace(state, next_segment=index + 1, next_second=next_second, detectors=detector_states,
                        ended=is_end, stalled=False, advanced_at=now().timestamp())
    return SegmentAnalysis(records, found, new_state)


def window_first(playlist: LivePlaylist, index: int, next_second: int) -> int:
    """The first segment of segment `index`'s window once the stream's origin is known: the one the
    decode giving out `next_second` starts at (the cost model counts the windows' GETs with this too)."""
    return min(window_start(playlist, next_second, slack_s=AUDIO_SLACK_S), index)


def stop_second(segment: LiveSegment) -> int:
    """The window of `segment` (not the stream's last) gives out the seconds that start before it."""
    return math.ceil(segment.start_s - COVER_TOLERANCE_S)


def defect_notification(ref: SegmentRef, second: int, defect: dict[str, Any]) -> dict[str, Any]:
    """The before's Notify message (what the corrective action reads); the segment stands for the
    execution."""
    message = {"stream_id": ref.stream_id, "source": ref.source, "second": second,
               "execution_id": f"{ref.stream_id}/segment-{ref.index:05d}", "defect": defect}
    return marked({
        "Message": json.dumps(message, separators=(",", ":")),
        "MessageAttributes": {"kind": text_attribute("defect"),
                              "defect_type": text_attribute(str(defect["type"])),
                              "stream_id": text_attribute(ref.stream_id)},
    }, SERVERLESS)


def failure_notification(ref: SegmentRef | None, cause: str) -> dict[str, Any]:
    """The before's NotifyFailure message, to people: which segment of which stream, and why."""
    what = f"Stream {ref.stream_id} ({ref.source}) cannot be analysed at segment {ref.index}: " if ref else ""
    attributes = {"kind": text_attribute("stream_unreadable"), "error": text_attribute("SegmentUnreadable")}
    if ref is not None:
        attributes["stream_id"] = text_attribute(ref.stream_id)
    return marked({"Subject": FAILURE_SUBJECT, "Message": f"{what}{cause}", "MessageAttributes": attributes},
                  SERVERLESS)


# --- the batch: SQS messages holding S3 notifications ------------------------------------------------
# Failures that another attempt cannot change: the segment is dead-lettered at once (and notified).
PERMANENT = (UnreadableStreamError, InvalidRequest, PlaylistUnreadable)


@dataclass(frozen=True)
class Message:
    message_id: str
    receipt_handle: str
    receive_count: int
    body: str
    segments: tuple[SegmentRef, ...]  # empty: nothing to analyse (S3's test event, a stall watch)
    watch: StallWatch | None = None


def parse_message(record: dict[str, Any]) -> Message:
    """An SQS record of the Lambda event: S3's notification of the segment in its body, as EventBridge
    delivers it (`detail`) or as S3 sends it to a queue (`Records`, keys URL-encoded); S3's test event
    names no segment."""
    body = record.get("body", "")
    refs: list[SegmentRef] = []
    try:
        event = json.loads(body)
    except ValueError:
        raise InvalidRequest(f"message {record.get('messageId')} is not an S3 notification") from None
    if not isinstance(event, dict):
        raise InvalidRequest(f"message {record.get('messageId')} is not an S3 notification")
    watch = None
    try:
        if "stall_watch" in event:  # this function's own delayed check (StallWatch.body)
            found = event["stall_watch"]
            watch = StallWatch(str(found["bucket"]), str(found["playlist_key"]),
                               check_segment("stream_id", str(found["stream_id"])), int(found["segment"]))
        if "detail" in event:  # S3's "Object Created" event through EventBridge (the stack's route)
            detail = event["detail"]
            refs.append(SegmentRef.parse(detail["bucket"]["name"], detail["object"]["key"]))
        for entry in event.get("Records", []):  # an S3 event notification (S3 -> SQS directly)
            s3 = entry["s3"]
            refs.append(SegmentRef.parse(s3["bucket"]["name"], unquote_plus(s3["object"]["key"])))
    except (KeyError, TypeError, ValueError):
        raise InvalidRequest(f"message {record.get('messageId')} does not name a bucket and key") from None
    return Message(message_id=record["messageId"], receipt_handle=record.get("receiptHandle", ""),
                   receive_count=int(record.get("attributes", {}).get("ApproximateReceiveCount", 1)),
                   body=body, segments=tuple(refs), watch=watch)


@dataclass
class Queues:
    """The SQS side of failures: a retry later (visibility), or the dead-letter queue now."""

    sqs: Any
    queue_url: str
    dead_letter_url: str
    max_receives: int
    retry_base_s: int = 2
    retry_cap_s: int = 60
    # Watches to arm once the batch's segments are done, when the handler counts them apart (None: now).
    deferred: list[tuple[StallWatch, float]] | None = None

    def retry_later(self, message: Message) -> None:
        # Exponential backoff by receive count: a predecessor late by a minute (S3 notifications can
        # be) is waited for within the receives the queue allows.
        delay = min(self.retry_cap_s, self.retry_base_s * 2 ** (message.receive_count - 1))
        if message.receipt_handle and self.queue_url:
            self.sqs.change_message_visibility(QueueUrl=self.queue_url, ReceiptHandle=message.receipt_handle,
                                               VisibilityTimeout=delay)

    def dead_letter(self, message: Message) -> None:
        self.sqs.send_message(QueueUrl=self.dead_letter_url, MessageBody=message.body)

    def arm(self, watch: StallWatch, delay_s: float) -> None:
        """The stall watch on this queue, delivered `delay_s` from now (SQS delays up to 15 minutes)."""
        if self.deferred is not None:
            self.deferred.append((watch, delay_s))
            return
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=watch.body(),
                              DelaySeconds=min(900, max(0, math.ceil(delay_s))))

    def arm_deferred(self) -> int:
        """Send the watches deferred so far; how many."""
        pending, self.deferred = self.deferred or [], None
        for watch, delay_s in pending:
            self.arm(watch, delay_s)
        return len(pending)


def is_stall_watch(record: dict[str, Any]) -> bool:
    """Whether an SQS record of the Lambda event is one of this function's stall watches."""
    try:
        return "stall_watch" in json.loads(record.get("body", ""))
    except (ValueError, TypeError):
        return False


# A segment is not started with less time than this left: the batch's remaining messages are retried
# (soon) instead of the whole batch timing out and waiting the queue's visibility timeout.
RESERVE_MS = 15_000
# ... or with less than this share of the invocation's time, when the invocation is short. A fixed 15 s
# would leave a 20 s invocation (a test deployment's timeout) 5 s for its whole batch, and one under 15 s
# none at all: every segment handed back at every receive until the dead-letter queue. A quarter leaves
# three quarters of any invocation to the segments; at the design's 60 s timeout it is the same 15 s.
RESERVE_SHARE = 0.25


def reserve_ms(invocation_ms: int) -> int:
    """The time left under which no segment is started, for an invocation of `invocation_ms`."""
    return min(RESERVE_MS, int(invocation_ms * RESERVE_SHARE))


def process_batch(records: list[dict[str, Any]], analyser: Analyser, queues: Queues,
                  log: Callable[[str, dict[str, Any]], None],
                  remaining_ms: Callable[[], int] | None = None) -> dict[str, Any]:
    """Analyse the batch's segments in (stream, segment) order; the partial batch response names the
    messages to retry. A stream whose segment failed has its later segments retried too, and so is every
    segment not started because the invocation's time (`remaining_ms`) was running out: under
    `reserve_ms` of the time the batch started with."""
    reserve = reserve_ms(remaining_ms()) if remaining_ms is not None else 0
    failures: list[str] = []
    parsed: list[tuple[Message, SegmentRef | None]] = []
    for record in records:
        try:
            message = parse_message(record)
        except InvalidRequest as error:
            log("message refused", {"reason": str(error), "message_id": record.get("messageId")})
            bad = Message(record.get("messageId", ""), record.get("receiptHandle", ""), 1,
                          record.get("body", ""), ())
            analyser.publish(failure_notification(None, str(error)))
            queues.dead_letter(bad)
            continue
        parsed += [(message, ref) for ref in message.segments] or [(message, None)]
    parsed.sort(key=lambda item: (item[1].stream_id, item[1].index) if item[1] else ("", -1))
    blocked: set[str] = set()
    for message, ref in parsed:
        if message.watch is not None:
            _check_stall(message, analyser, queues, log, failures)
            continue
        if ref is None or message.message_id in failures:
            continue
        if ref.stream_id in blocked or (remaining_ms is not None and remaining_ms() < reserve):
            failures.append(message.message_id)
            queues.retry_later(message)
            continue
        try:
            outcome = analyser.analyse(ref, message.receive_count)
            log(f"segment {outcome.status}", {"stream_id": ref.stream_id, "segment": ref.index,
                                              "seconds": outcome.seconds, "defects": len(outcome.defects),
                                              "recorded": outcome.recorded,
                                              "receive_count": message.receive_count})
            if outcome.watch is not None:
                queues.arm(outcome.watch, analyser.stall_timeout_s)
                log("stall watch armed", {"stream_id": ref.stream_id, "segment": outcome.watch.segment,
                                          "delay_s": analyser.stall_timeout_s})
        except PERMANENT as error:
            # Another attempt would fail alike: notify, let the stream go on past it, dead-letter it now.
            log("segment cannot be analysed", {"stream_id": ref.stream_id, "segment": ref.index,
                                               "reason": str(error)})
            analyser.give_up(ref, str(error))
            queues.dead_letter(message)
        except Exception as error:  # NotYet, a segment not in S3 yet, a throttled call: try again later
            log("segment retried later", {"stream_id": ref.stream_id, "segment": ref.index,
                                          "reason": f"{type(error).__name__}: {error}",
                                          "receive_count": message.receive_count})
            blocked.add(ref.stream_id)
            failures.append(message.message_id)
            if message.receive_count >= queues.max_receives:
                # The last receive the queue allows: SQS moves the message to the dead-letter queue on
                # the next one; the stream goes on past the segment, as after a poison segment.
                analyser.give_up(ref, f"not analysed after {message.receive_count} attempts ({error})")
            else:
                queues.retry_later(message)
    return {"batchItemFailures": [{"itemIdentifier": m} for m in dict.fromkeys(failures)]}


def _check_stall(message: Message, analyser: Analyser, queues: Queues,
                 log: Callable[[str, dict[str, Any]], None], failures: list[str]) -> None:
    """A stall watch's check; the next watch armed, or the stream told stalled; retried on an error."""
    watch = message.watch
    assert watch is not None
    log("stall watch checked", {"stream_id": watch.stream_id, "segment": watch.segment})
    try:
        following = analyser.check_stall(watch)
    except Exception as error:  # a throttled call, a playlist unreadable for now: check again later
        log("stall watch retried later", {"stream_id": watch.stream_id,
                                          "reason": f"{type(error).__name__}: {error}"})
        failures.append(message.message_id)
        queues.retry_later(message)
        return
    if following is None:
        log("stall watch ended", {"stream_id": watch.stream_id, "segment": watch.segment})
        return
    queues.arm(*following)
    log("stall watch armed", {"stream_id": watch.stream_id, "segment": following[0].segment,
                              "delay_s": round(following[1], 3)})
