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
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aws_lambda_powertools.metrics import single_metric
from botocore.exceptions import ClientError

from lambdas.converter.decode import UnreadableStreamError, iter_seconds, probe
from lambdas.converter.service import StreamUnreadable
from lambdas.shared.keys import InvalidRequest, check_key, check_segment, shown
from lambdas.shared.media import StreamSecond
from lambdas.shared.observability import MetricUnit, logger, metrics
from lambdas.shared.request_counting import RequestCounter, Requests
from lambdas.shared.results import make_record, result_key
from monolith.pipeline import run_detectors, select_detectors
from settings import ServiceSettings

JOB_FIELDS = ("bucket", "key", "stream_id")
FAILURE_SUBJECT = "Stream cannot be analysed"  # the before's NotifyFailure / NotifyRejected subject
CHUNK = 1 << 20
BILLED_SERVICES = ("s3", "sqs", "sns")  # every usage record names these, even with no requests
OUTCOMES = ("analysed", "failed", "released")


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
    return {
        "Message": json.dumps(message, separators=(",", ":")),
        "MessageAttributes": {"kind": _text("defect"), "defect_type": _text(str(defect["type"])),
                              "stream_id": _text(job.stream_id)},
    }


def failure_notification(request: dict[str, str], second: int, error: str, cause: str) -> dict[str, Any]:
    """The NotifyFailure state's message, to people (the corrective action's filter takes defects only)."""
    return {
        "Subject": FAILURE_SUBJECT,
        "Message": f"Stream {request['stream_id']} (s3://{request['bucket']}/{request['key']}) cannot be "
                   f"analysed at second {second}: {cause}",
        "MessageAttributes": {"kind": _text("stream_unreadable"), "stream_id": _text(request["stream_id"]),
                              "error": _text(error)},
    }


def rejected_notification(cause: str) -> dict[str, Any]:
    """The NotifyRejected state's message: the job names no stream, so only the cause."""
    return {"Subject": FAILURE_SUBJECT, "Message": cause,
            "MessageAttributes": {"kind": _text("stream_unreadable"), "error": _text("InvalidRequest")}}


def _text(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


def error_name(error: BaseException) -> str:
    """The before's error names where the meaning is the same; otherwise the exception's class."""
    if isinstance(error, InvalidRequest):
        return "InvalidRequest"
    if isinstance(error, StreamUnreadable):
        return "StreamUnreadable"
    return type(error).__name__


# --- results -------------------------------------------------------------------------------------
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
                 defects: int, requests: Requests, cpu_s: float, wall_s: float) -> dict[str, Any]:
    """What a job (or a worker's idle time) used: the `usage` key of its "job finished" log line."""
    return {"job_id": job_id, "stream_id": stream_id, "stream_seconds": stream_seconds, "outcome": outcome,
            "defects": defects, "requests": {s: dict(requests.get(s, {})) for s in BILLED_SERVICES},
            "cpu_s": round(cpu_s, 4), "wall_s": round(wall_s, 4)}


@dataclass
class _Progress:
    request: dict[str, str] | None = None
    second: int = 0  # the second being analysed (the next one once a second is done)
    defects: list[dict[str, Any]] = field(default_factory=list)
    writer: ResultsWriter | None = None
    gave_up: bool = False  # the failure was final: notified, and the message is left to the dead-letter queue


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
            stream_seconds=progress.second, outcome=outcome, defects=len(progress.defects),
            requests=self.counter.take(), cpu_s=cpu_s, wall_s=wall_s)
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
        elif outcome == "released":
            metrics.add_metric(name="JobsReleased", unit=MetricUnit.Count, value=1)
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
