"""The after's work on one job: a stream from S3 through the converter and the detectors in one process,
frames in memory, with the before's notifications and results.

A job is the before's StartExecution input (`bucket`, `key`, `stream_id`) in an SQS message, checked
with the before's validation code. It names a stream, not a file of known length: the analysis loop
asks `read_stream` for seconds until there are no more, so a live stream (seconds arriving as they are
written) needs another reader, not another job model.

What one job costs, as `settings` counts it: 1 S3 GET (the stream, one request streamed to a
temporary file), 1 results PUT per batch of `results_batch_seconds` stream-seconds, 1 SQS receive and
1 delete, 1 visibility extension before each of stream-seconds h, 2h, … (h = `heartbeat_seconds`), and
1 SNS publish per defect, sent as soon as the detector closes it.
"""

from __future__ import annotations

import json
import resource
import tempfile
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import closing, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aws_lambda_powertools.metrics import single_metric
from botocore.exceptions import ClientError

from lambdas.converter.decode import UnreadableStreamError, iter_seconds, probe
from lambdas.converter.segments import SegmentWindow, StreamStart, stream_start
from lambdas.converter.service import StreamUnreadable
from lambdas.shared.keys import InvalidRequest, check_key, check_segment, shown
from lambdas.shared.media import StreamSecond
from lambdas.shared.notifications import AFTER, marked, stall_notification, text_attribute
from lambdas.shared.observability import MetricUnit, logger, metrics
from lambdas.shared.request_counting import RequestCounter, Requests
from lambdas.shared.results import make_record, result_key
from monolith.live import (
    ENDED,
    FAILED,
    FOLLOWING,
    STALLED,
    Checkpoint,
    FollowerStore,
    LeaseLost,
    LiveInput,
    LiveJob,
    LiveTimings,
    StopFollowing,
    is_s3_event,
    live_jobs,
    new_owner,
)
from monolith.pipeline import run_detectors, select_detectors
from settings import ServiceSettings

JOB_FIELDS = ("bucket", "key", "stream_id")
FAILURE_SUBJECT = "Stream cannot be analysed"  # the before's NotifyFailure / NotifyRejected subject
CHUNK = 1 << 20
BILLED_SERVICES = ("s3", "sqs", "sns")  # every usage record names these, even with no requests
# analysed: to its end (a live stream: to EXT-X-ENDLIST); stalled: a live stream stopped growing;
# duplicate: a live stream another worker follows (or has finished); ignored: an S3 event naming no
# playlist to follow; superseded: another worker took the live stream over.
OUTCOMES = ("analysed", "failed", "released", "stalled", "duplicate", "ignored", "superseded")


class Rejected(InvalidRequest):
    """The message does not name a stream (the before's Rejected state: nothing is read)."""


# --- jobs ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StreamJob:
    """What a job asks for: a stream. No length: a live stream's end is not known when it starts."""

    bucket: str
    key: str
    stream_id: str

    @property
    def source(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def _json_or_none(body: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def job_request(body: str, message_id: str) -> dict[str, str]:
    """The job's fields, if the body has the before's input shape: a JSON object with the non-empty
    strings bucket, key and stream_id (as the workflow's NewStream? choice checks); else Rejected."""
    try:
        event = json.loads(body)
    except ValueError:
        event = None
    if not isinstance(event, dict) or not all(isinstance(event.get(f), str) and event[f] for f in JOB_FIELDS):
        raise Rejected(f"Job {message_id} was rejected: its body must be a JSON object with the non-empty "
                       f"strings {', '.join(JOB_FIELDS)}")
    return {f: event[f] for f in JOB_FIELDS}


def check_job(request: dict[str, str], allowed_buckets: Collection[str] | None) -> StreamJob:
    """The converter's checks, before anything is read: a source bucket of the stack (None or empty:
    any, for local use), a well-formed relative key, a stream id safe as a key segment."""
    if allowed_buckets and request["bucket"] not in allowed_buckets:
        raise InvalidRequest(f"bucket {shown(request['bucket'])} is not a source bucket of this stack")
    return StreamJob(bucket=request["bucket"], key=check_key(request["key"]),
                     stream_id=check_segment("stream_id", request["stream_id"]))


@dataclass(frozen=True)
class Delivery:
    """One SQS delivery of a job message."""

    message_id: str  # the job id: the same on every redelivery
    receipt_handle: str
    body: str
    receive_count: int
    sent_at: datetime  # when the job was queued: its date is the results partition, fixed across redeliveries

    @classmethod
    def from_sqs(cls, message: dict[str, Any]) -> Delivery:
        attributes = message.get("Attributes", {})
        sent_ms = int(attributes.get("SentTimestamp", time.time() * 1000))
        return cls(message_id=message["MessageId"], receipt_handle=message["ReceiptHandle"],
                   body=message.get("Body", ""),
                   receive_count=int(attributes.get("ApproximateReceiveCount", 1)),
                   sent_at=datetime.fromtimestamp(sent_ms / 1000, UTC))


# --- notifications: the before's message shapes --------------------------------------------------
def defect_notification(job: StreamJob, second: int, job_id: str, defect: dict[str, Any]) -> dict[str, Any]:
    """The Notify state's message: what the corrective-action function reads (job id for execution id)."""
    message = {"stream_id": job.stream_id, "source": job.source, "second": second, "execution_id": job_id,
               "defect": defect}
    return marked({
        "Message": json.dumps(message, separators=(",", ":")),
        "MessageAttributes": {"kind": text_attribute("defect"),
                              "defect_type": text_attribute(str(defect["type"])),
                              "stream_id": text_attribute(job.stream_id)},
    }, AFTER)


def failure_notification(request: dict[str, str], second: int, error: str, cause: str) -> dict[str, Any]:
    """The NotifyFailure state's message, to people (the corrective action's filter takes defects only)."""
    return marked({
        "Subject": FAILURE_SUBJECT,
        "Message": f"Stream {request['stream_id']} (s3://{request['bucket']}/{request['key']}) cannot be "
                   f"analysed at second {second}: {cause}",
        "MessageAttributes": {"kind": text_attribute("stream_unreadable"),
                              "stream_id": text_attribute(request["stream_id"]),
                              "error": text_attribute(error)},
    }, AFTER)


def rejected_notification(cause: str) -> dict[str, Any]:
    """The NotifyRejected state's message: the job names no stream, so only the cause."""
    return marked({"Subject": FAILURE_SUBJECT, "Message": cause,
                   "MessageAttributes": {"kind": text_attribute("stream_unreadable"),
                                         "error": text_attribute("InvalidRequest")}}, AFTER)


def error_name(error: BaseException) -> str:
    """The before's error names where the meaning is the same; otherwise the exception's class."""
    if isinstance(error, InvalidRequest):
        return "InvalidRequest"
    if isinstance(error, StreamUnreadable):
        return "StreamUnreadable"
    return type(error).__name__


# --- results -------------------------------------------------------------------------------------
def live_results_part(part: str) -> str:
    """A live stream is followed by both architectures at once under the same stream id (its playlist's
    folder): the after's objects are named apart (`second=<n>.after.json`) so that neither overwrites the
    other's; file jobs keep the plain key."""
    return f"{AFTER}-{part}" if part else AFTER


def results_part(detectors: Collection[str]) -> str:
    """Copies of the service that run a subset of the detectors write objects of their own (named by the
    subset), so that they do not overwrite each other's findings; the full set writes the plain key."""
    names = [name for name in select_detectors() if name in detectors]
    return "" if len(names) == len(select_detectors()) else "-".join(names)


@dataclass
class ResultsWriter:
    """Second records in batches: one object per `batch_seconds` stream-seconds, one JSON line per second
    (the before's record), keyed by the batch's first second, so a redelivered job overwrites its objects."""

    s3: Any
    bucket: str
    date: str  # YYYY-MM-DD: the partition
    stream_id: str
    batch_seconds: int
    part: str = ""
    pending: list[dict[str, Any]] = field(default_factory=list)
    written: list[str] = field(default_factory=list)

    def add(self, record: dict[str, Any]) -> None:
        self.pending.append(record)
        if (record["second"] + 1) % self.batch_seconds == 0:  # the batch is complete: write it now
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        first = self.pending[0]["second"]
        key = result_key(self.date, self.stream_id, first, self.part)
        body = "".join(json.dumps(r) + "\n" for r in self.pending)
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body.encode(), ContentType="application/json")
        self.pending = []
        self.written.append(key)
        logger.info("results written", extra={"key": key, "first_second": first})


# --- the stream ----------------------------------------------------------------------------------
def read_stream(s3: Any, job: StreamJob, workdir: Path) -> Iterator[StreamSecond]:
    """The stream's seconds, in order: one GetObject streamed to a file in `workdir` (not download_file,
    which adds a HEAD and ranged GETs), then the decoder of `monolith analyze`."""
    path = workdir / f"stream{Path(job.key).suffix}"
    try:
        body = s3.get_object(Bucket=job.bucket, Key=job.key)["Body"]
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "error")
        raise StreamUnreadable(f"{job.source}: cannot be read from S3 ({code})") from None
    with path.open("wb") as out:
        for chunk in body.iter_chunks(CHUNK):
            out.write(chunk)
    try:
        info = probe(path)
        yield from iter_seconds(path, info)  # the converter's decoder settings, as the Lambda path
    except UnreadableStreamError as error:
        raise StreamUnreadable(f"{job.source}: {error.reason}") from None


# --- one job -------------------------------------------------------------------------------------
def cpu_seconds() -> float:
    """CPU time of this process (every thread, the decoder's included); one job at a time per process, so
    the difference over a job is the job's."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def usage_record(*, job_id: str | None, stream_id: str | None, stream_seconds: int, outcome: str,
                 defects: int, requests: Requests, cpu_s: float, wall_s: float,
                 live: dict[str, int] | None = None) -> dict[str, Any]:
    """What a job (or a worker's idle time) used: the `usage` key of its "job finished" log line. A live
    job adds `live`: of its S3 requests, how many were playlist reads and follower-record writes
    (checkpoints), which the cost model counts apart (cost_model/after.py)."""
    return {"job_id": job_id, "stream_id": stream_id, "stream_seconds": stream_seconds, "outcome": outcome,
            "defects": defects, "requests": {s: dict(requests.get(s, {})) for s in BILLED_SERVICES},
            "cpu_s": round(cpu_s, 4), "wall_s": round(wall_s, 4), **({"live": live} if live else {})}


@dataclass
class _Progress:
    request: dict[str, str] | None = None
    second: int = 0  # the second being analysed (the next one once a second is done)
    first_second: int = 0  # where this job started (a live stream taken over from a checkpoint: later)
    defects: list[dict[str, Any]] = field(default_factory=list)
    writer: ResultsWriter | None = None
    gave_up: bool = False  # the failure was final: notified, and the message is left to the dead-letter queue
    live: dict[str, int] | None = None  # a live job's playlist reads and checkpoints (usage_record)


class Worker:
    """Takes jobs from the queue one at a time and analyses them (one worker per process)."""

    def __init__(self, settings: ServiceSettings, *, s3: Any, sqs: Any, sns: Any, counter: RequestCounter,
                 should_stop: Callable[[], bool] = lambda: False) -> None:
        self.settings = settings
        self.detectors = select_detectors(settings.detectors)
        self.part = results_part(self.detectors)
        self.s3, self.sqs, self.sns = s3, sqs, sns
        self.counter = counter  # attached to the three clients
        self.should_stop = should_stop
        self.idle: dict[str, dict[str, int]] = {}  # requests made between jobs (empty receives)
        self.jobs = 0
        self.job_cpu_s = 0.0
        self.job_wall_s = 0.0

    # The queue ---------------------------------------------------------------------------------
    def receive(self) -> list[Delivery]:
        """One long poll for one job. Its ReceiveMessage is billed to the job it brings, if any."""
        self._add_idle(self.counter.take())
        messages = self.sqs.receive_message(
            QueueUrl=self.settings.job_queue_url, MaxNumberOfMessages=1,
            WaitTimeSeconds=self.settings.receive_wait_s,
            MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
        ).get("Messages", [])
        return [Delivery.from_sqs(m) for m in messages]

    def idle_usage(self, process_cpu_s: float, process_wall_s: float) -> dict[str, Any]:
        """Requests, CPU and wall time not spent on a job (for the "worker stopped" line)."""
        self._add_idle(self.counter.take())
        return {**usage_record(job_id=None, stream_id=None, stream_seconds=0, outcome="idle", defects=0,
                               requests=self.idle, cpu_s=max(0.0, process_cpu_s - self.job_cpu_s),
                               wall_s=max(0.0, process_wall_s - self.job_wall_s)), "jobs": self.jobs}

    def _add_idle(self, requests: Requests) -> None:
        for service, operations in requests.items():
            for operation, n in operations.items():
                mine = self.idle.setdefault(service, {})
                mine[operation] = mine.get(operation, 0) + n

    # One job -----------------------------------------------------------------------------------
    def handle(self, delivery: Delivery) -> dict[str, Any]:
        """Analyse one job to its end (or to a stop); log and return its usage."""
        wall0, cpu0 = time.monotonic(), cpu_seconds()
        progress = _Progress()
        logger.append_keys(job_id=delivery.message_id, receive_count=delivery.receive_count)
        try:
            if self.should_stop():  # received while stopping (the last long poll): give it back untouched
                self._set_visibility(delivery, 0)
                outcome = "released"
            elif is_s3_event(_json_or_none(delivery.body)):
                outcome = self._live(json.loads(delivery.body), delivery, progress)
            else:
                progress.request = job_request(delivery.body, delivery.message_id)
                logger.append_keys(stream_id=progress.request["stream_id"])
                job = check_job(progress.request, self.settings.source_buckets)
                outcome = self._analyse(job, delivery, progress)
        except Exception as error:  # any failure ends here, as every error in the before's workflow does
            outcome = "failed"
            self._fail(delivery, progress, error)
        cpu_s, wall_s = cpu_seconds() - cpu0, time.monotonic() - wall0
        self.jobs += 1
        self.job_cpu_s += cpu_s
        self.job_wall_s += wall_s
        usage = usage_record(
            job_id=delivery.message_id, stream_id=(progress.request or {}).get("stream_id"),
            stream_seconds=progress.second - progress.first_second, outcome=outcome,
            defects=len(progress.defects), requests=self.counter.take(), cpu_s=cpu_s, wall_s=wall_s,
            live=progress.live)
        logger.info("job finished", extra={"usage": usage})
        self._metrics(usage, progress)
        logger.remove_keys(["job_id", "receive_count", "stream_id"])
        return usage

    def _analyse(self, job: StreamJob, delivery: Delivery, progress: _Progress) -> str:
        settings = self.settings
        writer = progress.writer = ResultsWriter(
            self.s3, settings.results_bucket, delivery.sent_at.date().isoformat(), job.stream_id,
            settings.results_batch_seconds, self.part)
        states: dict[str, Any] = dict.fromkeys(self.detectors)
        with tempfile.TemporaryDirectory(prefix="stream-") as workdir, \
                closing(read_stream(self.s3, job, Path(workdir))) as seconds:
            for second in seconds:
                progress.second = second.index
                if second.index and second.index % settings.heartbeat_seconds == 0:
                    # Stream time: h stream-seconds take at most h seconds live, far less from a file.
                    self._set_visibility(delivery, settings.visibility_timeout_s)
                found = run_detectors(second, self.detectors, states)
                for defect in found:  # known now: tell the corrective action at once
                    self.sns.publish(TopicArn=settings.topic_arn,
                                     **defect_notification(job, second.index, delivery.message_id, defect))
                    logger.info("defect found", extra={"defect": defect, "second": second.index})
                progress.defects += found
                writer.add(make_record(job.stream_id, job.source, second.index, found, {}))
                progress.second = second.index + 1
                if self.should_stop() and not second.is_last:
                    # Stopping (SIGTERM): the message goes back now; the next worker starts the stream again
                    # and overwrites the same result keys.
                    self._set_visibility(delivery, 0)
                    logger.info("job released", extra={"seconds_done": progress.second})
                    return "released"
        writer.flush()
        self._delete(delivery)  # only now: everything is written
        return "analysed"

    # A live stream (monolith/live.py) ---------------------------------------------------------------
    def _live(self, event: dict[str, Any], delivery: Delivery, progress: _Progress) -> str:
        """Follow the stream whose playlist the S3 event names, unless another worker does."""
        settings = self.settings
        jobs = live_jobs(event)
        if not jobs:  # a segment, another prefix, S3's test event: nothing to follow
            self._delete(delivery)
            return "ignored"
        job = jobs[0]  # EventBridge sends one object per event; S3 one record per notification
        progress.request = {"bucket": job.bucket, "key": job.playlist_key, "stream_id": job.stream_id}
        logger.append_keys(stream_id=job.stream_id)
        if settings.source_buckets and job.bucket not in settings.source_buckets:
            raise InvalidRequest(f"bucket {shown(job.bucket)} is not a source bucket of this stack")
        progress.live = {"playlist_reads": 0, "checkpoints": 0}
        store = FollowerStore(self.s3, settings.results_bucket)
        try:
            return self._take(job, delivery, progress, store)
        finally:
            progress.live["checkpoints"] = store.writes

    def _take(self, job: LiveJob, delivery: Delivery, progress: _Progress, store: FollowerStore) -> str:
        """Take the stream over from its follower record, unless it is followed or finished, and follow it."""
        settings = self.settings
        assert progress.live is not None
        checkpoint, etag = store.read(job.stream_id)
        if checkpoint is None:
            checkpoint = Checkpoint(job.stream_id, job.bucket, job.playlist_key,
                                    date=delivery.sent_at.date().isoformat())
        elif checkpoint.status in (ENDED, FAILED) or checkpoint.held(time.time(), settings.lease_s):
            self._delete(delivery)  # a rewrite of a playlist someone follows, or of a finished stream
            return "duplicate"
        elif checkpoint.status == STALLED and not self._grew(job, checkpoint, progress.live):
            self._delete(delivery)  # a late copy of a notification from before the stall
            return "duplicate"
        else:
            checkpoint.takeovers += 1  # its follower died, stopped or reported a stall: go on from it
        checkpoint.owner, checkpoint.status, checkpoint.reason = new_owner(), FOLLOWING, None
        try:
            etag = store.write(checkpoint, etag)
        except LeaseLost:  # another worker took it between our read and our write
            self._delete(delivery)
            return "duplicate"
        logger.info("following", extra={"from_second": checkpoint.next_second,
                                        "from_segment": checkpoint.resume_segment,
                                        "takeovers": checkpoint.takeovers})
        follow = _Follow(self, job, delivery, progress, store, checkpoint, etag)
        try:
            return follow.run()
        except (StreamUnreadable, UnreadableStreamError) as error:
            return follow.failed(error)
        except StopFollowing:
            return follow.release()
        except LeaseLost:
            logger.warning("another worker took the stream over", extra={"second": progress.second})
            self._delete(delivery)
            return "superseded"
        except Exception:
            follow.release(visible_in=settings.retry_delay_s)  # let the retry (or anyone) take it at once
            raise
        finally:
            if follow.reader is not None:
                progress.live["playlist_reads"] += follow.reader.playlist_reads

    def _grew(self, job: LiveJob, checkpoint: Checkpoint, live: dict[str, int]) -> bool:
        """Whether a stalled stream's playlist lists more than it did at the stall (one GET)."""
        from lambdas.shared.live import PlaylistUnreadable, read_playlist

        live["playlist_reads"] += 1
        try:
            playlist = read_playlist(self.s3, job.bucket, job.playlist_key)
        except PlaylistUnreadable:
            return True  # let the follower report why
        return len(playlist.segments) > checkpoint.segments_listed or playlist.ended

    def _fail(self, delivery: Delivery, progress: _Progress, error: Exception) -> None:
        """Retry after `retry_delay_s`; on the last receive, write what was analysed, notify once, and let
        SQS move the message to the dead-letter queue (visible at once, so the next receive moves it)."""
        settings = self.settings
        final = delivery.receive_count >= settings.max_receives
        name, cause = error_name(error), str(error)
        known = isinstance(error, InvalidRequest | StreamUnreadable)
        log = logger.warning if known else logger.exception
        log("job failed", extra={"error": name, "reason": cause, "second": progress.second, "final": final})
        try:
            if final:
                progress.gave_up = True
                if progress.writer:
                    progress.writer.flush()
                notice = (rejected_notification(cause) if progress.request is None else
                          failure_notification(progress.request, progress.second, name, cause))
                self.sns.publish(TopicArn=settings.topic_arn, **notice)
            if delivery.receive_count > settings.max_receives:
                # SQS did not move it after max_receives: the queue has no (or a looser) redrive policy.
                # Drop it rather than fail it forever; the notification has gone out.
                logger.error("job dropped: the queue did not move it to a dead-letter queue",
                             extra={"max_receives": settings.max_receives})
                self._delete(delivery)
            else:
                self._set_visibility(delivery, 0 if final else settings.retry_delay_s)
        except Exception:  # the message comes back after its visibility timeout; nothing is lost
            logger.exception("could not report the failed job")

    def _delete(self, delivery: Delivery) -> None:
        self.sqs.delete_message(QueueUrl=self.settings.job_queue_url, ReceiptHandle=delivery.receipt_handle)

    def _set_visibility(self, delivery: Delivery, seconds: int) -> None:
        self.sqs.change_message_visibility(QueueUrl=self.settings.job_queue_url,
                                           ReceiptHandle=delivery.receipt_handle, VisibilityTimeout=seconds)

    def _metrics(self, usage: dict[str, Any], progress: _Progress) -> None:
        """The before's metric names where they mean the same (Defects by detector, StreamsRejected)."""
        outcome = usage["outcome"]
        metrics.add_metric(name="StreamSeconds", unit=MetricUnit.Count, value=usage["stream_seconds"])
        metrics.add_metric(name="ObjectsWritten", unit=MetricUnit.Count,
                           value=usage["requests"]["s3"].get("PutObject", 0))
        metrics.add_metric(name="JobCpuSeconds", unit=MetricUnit.Seconds, value=usage["cpu_s"])
        if outcome == "analysed":
            metrics.add_metric(name="StreamsAnalysed", unit=MetricUnit.Count, value=1)
        elif outcome in ("released", "superseded"):
            metrics.add_metric(name="JobsReleased", unit=MetricUnit.Count, value=1)
        elif outcome == "stalled":
            metrics.add_metric(name="StreamsStalled", unit=MetricUnit.Count, value=1)
        elif outcome in ("duplicate", "ignored"):  # a playlist rewrite of a stream someone follows
            metrics.add_metric(name="DuplicateJobs", unit=MetricUnit.Count, value=1)
        else:
            metrics.add_metric(name="JobsFailed", unit=MetricUnit.Count, value=1)
            if progress.gave_up:
                metrics.add_metric(name="StreamsRejected", unit=MetricUnit.Count, value=1)
        metrics.flush_metrics()
        for name in self.detectors:  # one metric per detector, as the before's detector functions emit it
            found = sum(1 for d in progress.defects if d["type"] == name)
            with single_metric(name="Defects", unit=MetricUnit.Count, value=found,
                               namespace=metrics.namespace) as metric:
                metric.add_dimension(name="detector", value=name)


# --- following a live stream ---------------------------------------------------------------------
class _Follow:
    """One worker following one live stream from its checkpoint: the loop of `_analyse` over seconds that
    arrive, with the checkpoint written after each results batch and each defect notification."""

    def __init__(self, worker: Worker, job: LiveJob, delivery: Delivery, progress: _Progress,
                 store: FollowerStore, checkpoint: Checkpoint, etag: str) -> None:
        self.worker, self.job, self.delivery, self.progress = worker, job, delivery, progress
        self.settings = worker.settings
        self.store, self.checkpoint, self.etag = store, checkpoint, etag
        self.states: dict[str, Any] = {name: checkpoint.states.get(name) for name in worker.detectors}
        self.writer = progress.writer = ResultsWriter(
            worker.s3, self.settings.results_bucket, checkpoint.date, job.stream_id,
            self.settings.results_batch_seconds, live_results_part(worker.part),
            pending=list(checkpoint.pending))
        self.timings = LiveTimings()
        self.reported_second = checkpoint.next_second  # seconds from here on are not in a progress line yet
        self.reported_reads = 0
        self.reader: LiveInput | None = None
        self.extended_at = time.monotonic()
        progress.second = progress.first_second = checkpoint.next_second

    def run(self) -> str:
        settings, checkpoint = self.settings, self.checkpoint
        reader = self.reader = LiveInput(
            self.worker.s3, self.job, start_segment=checkpoint.resume_segment, poll_s=settings.live_poll_s,
            stall_timeout_s=settings.stall_timeout_s, missing_timeout_s=settings.missing_timeout_s,
            on_wait=self.keep_alive, timings=self.timings)
        # The message stays invisible for the service's visibility timeout from now (not the queue's),
        # extended every heartbeat_seconds of wall time: if this worker dies, it comes back that soon.
        self.worker._set_visibility(self.delivery, settings.visibility_timeout_s)
        if checkpoint.resume_segment == 0:  # from the start: the first segment tells the stream's start
            reader.buffer = reader.next_bytes()
            if reader.buffer:
                start = stream_start(reader.buffer, self.job.source)
                checkpoint.origin_s, checkpoint.decoder_options = start.origin_s, start.decoder_options
        # The stream's clock and decoder options, whatever segment we start at.
        start = StreamStart(origin_s=checkpoint.origin_s or 0.0, decoder_options=checkpoint.decoder_options)
        stall: dict[str, Any] | None = None  # the checkpoint before the seconds analysed after a stall
        worker = self.worker
        with SegmentWindow(reader, self.job.source, start) as window:
            for second in window.seconds(checkpoint.next_second, to_end=True):
                if reader.ended_by == STALLED and stall is None:
                    stall = self.snapshot()
                self.progress.second = second.index
                found = run_detectors(second, worker.detectors, self.states)
                for defect in found:  # known now: tell the corrective action at once
                    worker.sns.publish(TopicArn=settings.topic_arn, **defect_notification(
                        self.job, second.index, self.delivery.message_id, defect))
                    checkpoint.notified += 1
                    logger.info("defect found", extra={"defect": defect, "second": second.index,
                                                       "published_at": time.time()})
                self.progress.defects += found
                self.writer.add(make_record(self.job.stream_id, self.job.source, second.index, found, {}))
                self.timings.second_done_at[second.index] = time.time()
                self.progress.second = second.index + 1
                if found or not self.writer.pending:  # a defect published or a batch written: checkpoint
                    self.save()
                self.keep_alive()  # catching up from behind the live edge: no waits, the same heartbeats
        self.writer.flush()
        if reader.ended_by == STALLED:
            return self.stalled(stall or self.snapshot())
        checkpoint.status = ENDED
        self.save()
        worker._delete(self.delivery)
        return "analysed"

    # checkpoints ---------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """What a taker-over needs to go on after the seconds analysed so far."""
        next_second = self.progress.second
        resume = self.reader.resume_segment(next_second) if self.reader else self.checkpoint.resume_segment
        return {"next_second": next_second, "resume_segment": resume,
                "states": json.loads(json.dumps(self.states)), "pending": list(self.writer.pending)}

    def save(self, snapshot: dict[str, Any] | None = None) -> None:
        """Write the checkpoint (renewing the lease); log the lag figures of the seconds done since."""
        checkpoint = self.checkpoint
        for name, value in (snapshot or self.snapshot()).items():
            setattr(checkpoint, name, value)
        if self.reader is not None:
            checkpoint.segments_listed = len(self.reader.playlist.segments)
        self.etag = self.store.write(checkpoint, self.etag)
        self.report_progress()

    def report_progress(self) -> None:
        """One "live progress" line per checkpoint: when each second since the last line was done and
        each segment read (epoch seconds), for the lag to the live edge (monolith/serve.py read_live)."""
        done = {n: t for n, t in self.timings.second_done_at.items() if n >= self.reported_second}
        reads = self.reader.playlist_reads - self.reported_reads if self.reader else 0
        if not done and not self.timings.segment_read_at and not reads:
            return
        self.reported_reads += reads
        logger.info("live progress", extra={"live": {
            "playlist_reads": reads,
            "seconds_done_at": {str(n): round(t, 3) for n, t in sorted(done.items())},
            "segments_read_at": {str(n): round(t, 3)
                                 for n, t in sorted(self.timings.segment_read_at.items())},
        }})
        self.reported_second = max(done, default=self.reported_second - 1) + 1
        self.timings.segment_read_at.clear()

    def keep_alive(self) -> None:
        """Called while waiting at the live edge: the message stays ours (wall-clock heartbeats: live,
        stream time is wall time), the lease stays ours, and a stop request is heard."""
        settings = self.settings
        if time.monotonic() - self.extended_at >= settings.heartbeat_seconds:
            self.worker._set_visibility(self.delivery, settings.visibility_timeout_s)
            self.extended_at = time.monotonic()
        if time.time() - self.checkpoint.written_at >= settings.lease_s / 3:
            self.save()
        if self.worker.should_stop():
            raise StopFollowing

    # endings -------------------------------------------------------------------------------------
    def stalled(self, before_tail: dict[str, Any]) -> str:
        """The playlist stopped growing: what was published is analysed (results written), the checkpoint
        goes back to before the seconds analysed as the stream's end, so that if the stream grows again a
        worker goes on from there; people are told."""
        self.checkpoint.status = STALLED
        self.checkpoint.reason = f"no new segment for {self.settings.stall_timeout_s:g} s"
        self.checkpoint.owner = ""
        self.save(before_tail)
        self.worker.sns.publish(TopicArn=self.settings.topic_arn, **stall_notification(
            self.job.stream_id, self.job.source, self.progress.second, self.settings.stall_timeout_s, AFTER))
        logger.warning("stream stalled", extra={"seconds_done": self.progress.second,
                                                "segments_listed": self.checkpoint.segments_listed})
        self.worker._delete(self.delivery)
        return "stalled"

    def failed(self, error: Exception) -> str:
        """A live stream cannot wait for retries: the reason is final (notified once, recorded in the
        follower record so that later playlist notifications are dropped), the message deleted."""
        name = error_name(error)
        cause = error.reason if isinstance(error, UnreadableStreamError) else str(error)
        logger.warning("job failed", extra={"error": name, "reason": cause, "second": self.progress.second,
                                            "final": True})
        self.writer.flush()
        self.checkpoint.status, self.checkpoint.reason = FAILED, f"{name}: {cause}"
        with suppress(LeaseLost):
            self.save()
        assert self.progress.request is not None
        self.worker.sns.publish(TopicArn=self.settings.topic_arn, **failure_notification(
            self.progress.request, self.progress.second, name, cause))
        self.progress.gave_up = True
        self.worker._delete(self.delivery)
        return "failed"

    def release(self, visible_in: int = 0) -> str:
        """Stopping: checkpoint, give the lease up (owner "") and the message back, so that another worker
        goes on at once."""
        self.checkpoint.owner = ""
        with suppress(LeaseLost, ClientError):
            self.save()
        self.worker._set_visibility(self.delivery, visible_in)
        logger.info("job released", extra={"seconds_done": self.progress.second})
        return "released"
