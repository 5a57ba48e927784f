"""`monolith serve` without LocalStack: the job checks, the before's message shapes, results batching, and
whole jobs on moto's S3, SQS and SNS — requests counted, defects equal `monolith analyze`, a bad stream
retried to the dead-letter queue with one notification, SIGTERM giving the message back."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from demo.run import Aws, Observer
from infra.workflow import load_definition
from lambdas.shared.keys import InvalidRequest
from lambdas.shared.results import make_record, query_defects, read_records
from monolith.cli import main as cli_main
from monolith.pipeline import analyze
from monolith.serve import StopSignal, make_worker, read_usage, run_worker
from monolith.service import (
    Delivery,
    Rejected,
    ResultsWriter,
    StreamJob,
    check_job,
    defect_notification,
    failure_notification,
    job_request,
    rejected_notification,
    results_part,
)
from settings import ServiceSettings, results_objects, visibility_extensions

SOURCE, RESULTS = "streams-bucket", "results-bucket"
DURATION_S = 5


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing", "POWERTOOLS_TRACE_DISABLED": "true"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


@pytest.fixture
def service_log() -> Iterator[io.StringIO]:
    """The service's log lines as the container would print them (the logger's own JSON formatter)."""
    from lambdas.shared.observability import logger

    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logger.registered_formatter)
    logger.addHandler(handler)
    yield buffer
    logger.removeHandler(handler)


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5 s of 160x90 with a 2.5 s freeze from 1.2 s: the defect closes at second 3, mid-stream."""
    from sample_streams import Freeze, generate_stream

    path = tmp_path_factory.mktemp("serve") / "cam.mp4"
    generate_stream(path, duration_s=DURATION_S, width=160, height=90, fps=25, gop_s=DURATION_S,
                    defects=[Freeze(1.2, 2.5)], seed=3)
    return path


@dataclass
class Env:
    s3: Any
    sqs: Any
    queue_url: str
    dlq_url: str
    observer: Observer
    settings: ServiceSettings

    def send(self, body: dict[str, Any] | str) -> str:
        text = body if isinstance(body, str) else json.dumps(body)
        return self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=text)["MessageId"]

    def notifications(self, count: int) -> list[dict[str, Any]]:
        return self.observer.drain(until=lambda got: len(got) >= count, timeout_s=5)


@pytest.fixture
def env() -> Iterator[Env]:
    with mock_aws():
        s3, sqs, sns = boto3.client("s3"), boto3.client("sqs"), boto3.client("sns")
        for bucket in (SOURCE, RESULTS):
            s3.create_bucket(Bucket=bucket)
        topic = sns.create_topic(Name="defects")["TopicArn"]
        dlq = sqs.create_queue(QueueName="jobs-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"]
                                           )["Attributes"]["QueueArn"]
        settings = ServiceSettings(results_bucket=RESULTS, topic_arn=topic, source_buckets=(SOURCE,),
                                   results_batch_seconds=2, heartbeat_seconds=2, visibility_timeout_s=60,
                                   max_receives=3, receive_wait_s=0, retry_delay_s=0)
        queue = sqs.create_queue(QueueName="jobs", Attributes={
            "VisibilityTimeout": str(settings.visibility_timeout_s),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn,
                                         "maxReceiveCount": settings.max_receives})})["QueueUrl"]
        observer = Observer(Aws(None), topic)
        yield Env(s3, sqs, queue, dlq, observer, replace(settings, job_queue_url=queue))


def _job(env: Env, path: Path, stream_id: str = "cam-1") -> dict[str, str]:
    key = f"streams/{stream_id}{path.suffix}"
    env.s3.upload_file(str(path), SOURCE, key)
    return {"bucket": SOURCE, "key": key, "stream_id": stream_id}


def _run_one(env: Env, settings: ServiceSettings | None = None, stop: StopSignal | None = None) -> dict:
    worker = make_worker(settings or env.settings, stop or StopSignal())
    deliveries = worker.receive()
    assert len(deliveries) == 1
    return worker.handle(deliveries[0])


def _visible(env: Env, queue_url: str | None = None) -> list[dict[str, Any]]:
    return env.sqs.receive_message(
        QueueUrl=queue_url or env.queue_url, MaxNumberOfMessages=10,
        MessageSystemAttributeNames=["ApproximateReceiveCount"]).get("Messages", [])


# --- jobs ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("body", [
    "not json", "[]", "{}", json.dumps({"bucket": SOURCE, "key": "a.mp4"}),
    json.dumps({"bucket": SOURCE, "key": "", "stream_id": "x"}),
    json.dumps({"bucket": SOURCE, "key": 7, "stream_id": "x"}),
])
def test_a_body_that_names_no_stream_is_rejected_before_anything_is_read(body: str) -> None:
    with pytest.raises(Rejected, match=r"Job m-1 was rejected: its body must be a JSON object with the "
                                       r"non-empty strings bucket, key, stream_id"):
        job_request(body, "m-1")


@pytest.mark.parametrize(("request_", "reason"), [
    ({"bucket": "other-bucket", "key": "a.mp4", "stream_id": "x"}, "not a source bucket"),
    ({"bucket": SOURCE, "key": "../etc/passwd", "stream_id": "x"}, "relative path"),
    ({"bucket": SOURCE, "key": "/streams/x.mp4", "stream_id": "x"}, "relative path"),
    ({"bucket": SOURCE, "key": "k" * 1100, "stream_id": "x"}, "1100 bytes"),
    ({"bucket": SOURCE, "key": "a.mp4", "stream_id": "../x"}, "stream_id must match"),
])
def test_the_before_s_checks_refuse_bad_contents(request_: dict[str, str], reason: str) -> None:
    with pytest.raises(InvalidRequest, match=reason):
        check_job(request_, (SOURCE,))


def test_a_good_job_is_a_stream_without_a_length() -> None:
    body = json.dumps({"bucket": SOURCE, "key": "streams/a.mp4", "stream_id": "cam-1", "extra": 1})
    job = check_job(job_request(body, "m"), (SOURCE,))
    assert job == StreamJob(SOURCE, "streams/a.mp4", "cam-1")
    assert job.source == f"s3://{SOURCE}/streams/a.mp4"
    # Without source buckets configured (a local run) any bucket is accepted; IAM alone decides.
    assert check_job({"bucket": "b", "key": "k.mp4", "stream_id": "s"}, ()).bucket == "b"


def test_delivery_reads_the_receive_count_and_the_sent_date() -> None:
    delivery = Delivery.from_sqs({"MessageId": "m", "ReceiptHandle": "r", "Body": "{}", "Attributes": {
        "ApproximateReceiveCount": "3", "SentTimestamp": "1767225599000"}})  # 2025-12-31T23:59:59Z
    assert (delivery.receive_count, delivery.sent_at.date().isoformat()) == (3, "2025-12-31")


# --- the before's message shapes -------------------------------------------------------------------
def _states() -> dict[str, Any]:
    return json.loads(load_definition(["freeze", "block_corruption", "av_sync"]))["States"]


def test_a_defect_message_has_the_notify_state_s_shape() -> None:
    notify = _states()["Notify"]
    publish = notify["ItemProcessor"]["States"]["Publish"]["Parameters"]
    defect = {"type": "freeze", "start_s": 1.2, "end_s": 3.7, "confidence": 0.9}
    out = defect_notification(StreamJob(SOURCE, "s/a.mp4", "cam-1"), 3, "job-9", defect)
    # The message holds the Map item's fields, in its order, with the job id where the execution id was
    assert list(json.loads(out["Message"])) == [k.removesuffix(".$") for k in notify["ItemSelector"]]
    assert json.loads(out["Message"]) == {"stream_id": "cam-1", "source": f"s3://{SOURCE}/s/a.mp4",
                                          "second": 3, "execution_id": "job-9", "defect": defect}
    # And the attributes the subscriptions filter on
    assert out["MessageAttributes"].keys() == publish["MessageAttributes"].keys()
    assert {k: v["StringValue"] for k, v in out["MessageAttributes"].items()} == {
        "kind": "defect", "defect_type": "freeze", "stream_id": "cam-1", "design": "after"}
    # And each design marks its own: the workflow's Publish says "before"
    assert publish["MessageAttributes"]["design"] == {"DataType": "String", "StringValue": "before"}


def test_failure_and_rejection_messages_have_the_before_s_shape() -> None:
    states = _states()
    failure = states["NotifyFailure"]["Parameters"]
    out = failure_notification({"bucket": "b", "key": "k.mp4", "stream_id": "cam"}, 2, "StreamUnreadable",
                               "s3://b/k.mp4: second 2 holds no picture")
    assert out["Subject"] == failure["Subject"] == "Stream cannot be analysed"
    # The workflow's States.Format template, filled in by hand
    assert "'Stream {} (s3://{}/{}) cannot be analysed at second {}: {}'" in failure["Message.$"]
    assert out["Message"] == "Stream cam (s3://b/k.mp4) cannot be analysed at second 2: " \
                             "s3://b/k.mp4: second 2 holds no picture"
    assert out["MessageAttributes"].keys() == failure["MessageAttributes"].keys()
    assert out["MessageAttributes"]["error"]["StringValue"] == "StreamUnreadable"
    assert failure["MessageAttributes"]["design"]["StringValue"] == "before"
    assert out["MessageAttributes"]["design"]["StringValue"] == "after"
    rejected = rejected_notification("Job m was rejected: …")
    before = states["NotifyRejected"]["Parameters"]
    assert rejected["MessageAttributes"].keys() == before["MessageAttributes"].keys()
    assert rejected["Subject"] == "Stream cannot be analysed"
    assert rejected["MessageAttributes"]["error"]["StringValue"] == "InvalidRequest"
    assert before["MessageAttributes"]["design"]["StringValue"] == "before"


# --- results -------------------------------------------------------------------------------------
def test_results_go_out_in_batches_that_duckdb_reads_like_the_before_s(tmp_path: Path) -> None:
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=RESULTS)
        writer = ResultsWriter(s3, RESULTS, "2026-12-02", "cam-1", batch_seconds=60)
        defect = {"type": "freeze", "start_s": 70.0, "end_s": 75.5, "confidence": 0.9, "duration_s": 5.5}
        # When 130 seconds are recorded, one defect closing at second 75
        for second in range(130):
            writer.add(make_record("cam-1", "s3://b/k.mp4", second, [defect] if second == 75 else [], {}))
            if second == 59:  # a full batch is written as soon as it is complete
                assert writer.written == ["results/date=2026-12-02/stream=cam-1/second=000000.json"]
        writer.flush()
        # Then three objects (60 + 60 + 10 seconds), keyed by their first second
        assert writer.written == [f"results/date=2026-12-02/stream=cam-1/second={n:06d}.json"
                                  for n in (0, 60, 120)]
        assert len(writer.written) == results_objects(130, 60) == 3
        for key in writer.written:
            body = s3.get_object(Bucket=RESULTS, Key=key)["Body"].read().decode()
            (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / key).write_text(body)
        # And each line is the before's record; the readers of the before read them unchanged
        records = read_records(tmp_path)
        assert [r["second"] for r in records] == list(range(130))
        assert records[75] == make_record("cam-1", "s3://b/k.mp4", 75, [defect], {})
        rows = query_defects(tmp_path)
        assert [(r["stream_id"], r["date"], r["second"], r["type"], r["start_s"]) for r in rows] == [
            ("cam-1", "2026-12-02", 75, "freeze", 70.0)]


def test_a_detector_subset_writes_objects_of_its_own() -> None:
    assert results_part(["freeze", "block_corruption", "av_sync"]) == ""
    assert results_part(["av_sync", "freeze"]) == "freeze-av_sync"  # the registry's order


# --- whole jobs on moto ----------------------------------------------------------------------------
def test_a_job_is_analysed_like_monolith_analyze_and_costs_what_the_settings_count(
        env: Env, stream: Path, service_log: io.StringIO) -> None:
    expected = analyze(stream)["defects"]
    assert [d["type"] for d in expected] == ["freeze"]
    job_id = env.send(_job(env, stream))
    # When one worker takes the job
    usage = _run_one(env)
    # Then it analysed all 5 seconds and found what `monolith analyze` finds
    assert usage["outcome"] == "analysed" and usage["job_id"] == job_id and usage["stream_id"] == "cam-1"
    assert usage["stream_seconds"] == DURATION_S and usage["defects"] == len(expected)
    # And it made exactly the requests the settings count: 1 GET; 2-second batches: seconds 0-1, 2-3, 4;
    # extensions before seconds 2 and 4; one receive, one delete; one publish per defect
    assert usage["requests"] == {
        "s3": {"GetObject": 1, "PutObject": 3},
        "sqs": {"ReceiveMessage": 1, "ChangeMessageVisibility": 2, "DeleteMessage": 1},
        "sns": {"Publish": 1},
    }
    assert results_objects(DURATION_S, 2) == 3 and visibility_extensions(DURATION_S, 2) == 2
    assert usage["cpu_s"] > 0 and usage["wall_s"] > 0
    # And the results hold one record per second, the defects those of `monolith analyze`
    keys = [o["Key"] for o in env.s3.list_objects_v2(Bucket=RESULTS)["Contents"]]
    assert [k.rsplit("/", 1)[1] for k in sorted(keys)] == ["second=000000.json", "second=000002.json",
                                                          "second=000004.json"]
    lines = [json.loads(line) for k in sorted(keys)
             for line in env.s3.get_object(Bucket=RESULTS, Key=k)["Body"].read().decode().splitlines()]
    assert [r["second"] for r in lines] == list(range(DURATION_S))
    assert [d for r in lines for d in r["defects"]] == expected
    # And the defect went out when it closed, in the before's shape, and the job is gone from the queue
    sent = env.notifications(1)
    assert [n["message"]["defect"] for n in sent] == expected
    assert sent[0]["message"]["second"] == next(r["second"] for r in lines if r["defects"])
    assert sent[0]["attributes"] == {"kind": "defect", "defect_type": "freeze", "stream_id": "cam-1",
                                     "design": "after"}
    assert _visible(env) == []
    # And the log line metering reads carries the same usage
    assert read_usage(service_log.getvalue().splitlines()) == [usage]


def test_a_detector_subset_finds_only_its_defects(env: Env, stream: Path) -> None:
    env.send(_job(env, stream))
    usage = _run_one(env, replace(env.settings, detectors=("block_corruption", "av_sync")))
    assert usage["outcome"] == "analysed" and usage["defects"] == 0
    keys = sorted(o["Key"] for o in env.s3.list_objects_v2(Bucket=RESULTS)["Contents"])
    assert keys[0].endswith("/second=000000.block_corruption-av_sync.json")


def test_a_bad_stream_is_retried_then_notified_once_and_left_to_the_dead_letter_queue(
        env: Env, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video\n" * 100)
    env.send(_job(env, garbage, "cam-bad"))
    # When workers take it max_receives (3) times
    outcomes = [_run_one(env) for _ in range(3)]
    # Then each attempt failed; the first two were made visible again (retry delay), the last one notified
    assert [u["outcome"] for u in outcomes] == ["failed"] * 3
    assert [u["requests"]["sns"] for u in outcomes] == [{}, {}, {"Publish": 1}]
    assert all(u["requests"]["sqs"] == {"ReceiveMessage": 1, "ChangeMessageVisibility": 1} for u in outcomes)
    sent = env.notifications(1)
    assert len(sent) == 1
    assert sent[0]["subject"] == "Stream cannot be analysed"
    assert sent[0]["attributes"] == {"kind": "stream_unreadable", "stream_id": "cam-bad",
                                     "error": "StreamUnreadable", "design": "after"}
    assert sent[0]["message"].startswith(f"Stream cam-bad (s3://{SOURCE}/streams/cam-bad.mp4) cannot be "
                                         f"analysed at second 0: s3://{SOURCE}/streams/cam-bad.mp4: ")
    # And the next receive moves it to the dead-letter queue; nothing was written
    assert _visible(env) == []
    assert [m["Body"] for m in _visible(env, env.dlq_url)] == [json.dumps(_job(env, garbage, "cam-bad"))]
    assert "Contents" not in env.s3.list_objects_v2(Bucket=RESULTS)


def test_a_malformed_job_gets_the_rejection_notice(env: Env) -> None:
    message_id = env.send("{\"bucket\": 1}")
    usages = [_run_one(env) for _ in range(3)]
    assert [u["outcome"] for u in usages] == ["failed"] * 3 and usages[-1]["stream_id"] is None
    sent = env.notifications(1)
    assert [(n["subject"], n["attributes"]) for n in sent] == [
        ("Stream cannot be analysed", {"kind": "stream_unreadable", "error": "InvalidRequest",
                                       "design": "after"})]
    assert sent[0]["message"].startswith(f"Job {message_id} was rejected")


def test_sigterm_finishes_the_second_then_gives_the_message_back(env: Env, stream: Path) -> None:
    env.send(_job(env, stream))
    stop = StopSignal()
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    stop.install()
    try:
        worker = make_worker(env.settings, stop)
        seen: list[int] = []
        freeze = worker.detectors["freeze"]

        def freeze_then_sigterm(second: Any, state: Any) -> Any:  # the real detector; a signal at second 1
            seen.append(second.index)
            if second.index == 1:
                os.kill(os.getpid(), signal.SIGTERM)
            return freeze(second, state)

        worker.detectors["freeze"] = freeze_then_sigterm
        usage = worker.handle(worker.receive()[0])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    # Then the worker finished second 1, wrote nothing more, and released the message
    assert stop.requested
    assert seen == [0, 1]
    assert usage["outcome"] == "released" and usage["stream_seconds"] == 2
    assert usage["requests"]["sqs"] == {"ReceiveMessage": 1, "ChangeMessageVisibility": 1}
    # The first batch (seconds 0-1) was complete and written; the next worker overwrites it
    assert usage["requests"]["s3"] == {"GetObject": 1, "PutObject": 1}
    # And the job is visible again at once, for its second receive
    again = _visible(env)
    assert [m["Attributes"]["ApproximateReceiveCount"] for m in again] == ["2"]


def test_a_worker_stops_on_sigterm_after_its_poll_and_logs_its_idle_usage(
        env: Env, stream: Path, service_log: io.StringIO) -> None:
    env.send(_job(env, stream))
    settings = replace(env.settings, receive_wait_s=1)
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    done = threading.Event()

    def sigterm_once_analysed() -> None:
        # After the job's usage line (however slow the machine) and at least one empty long poll (1 s)
        while not done.is_set() and not any(
                u["outcome"] == "analysed" for u in read_usage(service_log.getvalue().splitlines())):
            time.sleep(0.1)
        if not done.wait(1.5):
            os.kill(os.getpid(), signal.SIGTERM)

    killer = threading.Thread(target=sigterm_once_analysed, daemon=True)
    killer.start()
    try:
        code = run_worker(settings)
    finally:
        done.set()
        killer.join(5)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    assert code == 0
    usages = read_usage(service_log.getvalue().splitlines())
    # One job, then empty long polls until the signal: those are billed to the worker, not to the job
    assert [u["outcome"] for u in usages] == ["analysed", "idle"]
    job, idle = usages
    assert job["requests"]["sqs"]["ReceiveMessage"] == 1
    assert idle["requests"]["sqs"]["ReceiveMessage"] >= 1 and idle["requests"]["s3"] == {}
    assert idle["jobs"] == 1 and idle["job_id"] is None


def test_a_worker_without_its_queue_exits_with_a_clear_line(env: Env, service_log: io.StringIO) -> None:
    code = run_worker(replace(env.settings, job_queue_url=env.queue_url + "-missing"))
    assert code == 2
    lines = [json.loads(line) for line in service_log.getvalue().splitlines()]
    assert [line["message"] for line in lines] == ["worker started", "cannot read the job queue",
                                                   "worker stopped"]
    assert "does not exist" in lines[1]["reason"]


def test_a_worker_without_a_region_exits_2_with_a_clear_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                             service_log: io.StringIO) -> None:
    # Given no region anywhere boto3 looks (a restart would fail the same way: the supervisor must stop)
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "absent"))
    settings = ServiceSettings(job_queue_url="https://sqs.example/000000000000/jobs", results_bucket="r",
                               topic_arn="arn:aws:sns:us-east-1:000000000000:t")
    # Then the worker exits 2 (EXIT_CONFIG) with one error line, not a traceback
    assert run_worker(settings) == 2
    lines = [json.loads(line) for line in service_log.getvalue().splitlines()]
    assert [(line["level"], line["message"]) for line in lines] == [
        ("ERROR", "cannot create the AWS clients")]
    assert "region" in lines[0]["reason"]


def test_a_job_received_after_sigterm_is_given_back_unstarted(env: Env, stream: Path) -> None:
    # The last long poll of a stopping worker may bring a job: it goes back at once, nothing read
    env.send(_job(env, stream))
    stop = StopSignal()
    stop.requested = True
    usage = _run_one(env, stop=stop)
    assert usage["outcome"] == "released" and usage["stream_seconds"] == 0
    assert usage["requests"] == {"s3": {}, "sqs": {"ReceiveMessage": 1, "ChangeMessageVisibility": 1},
                                 "sns": {}}
    assert [m["Attributes"]["ApproximateReceiveCount"] for m in _visible(env)] == ["2"]


def test_stop_signal_wakes_a_pause_early() -> None:
    stop = StopSignal()
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    stop.install()
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM))
    started = time.monotonic()
    timer.start()
    try:
        stop.sleep(30)
    finally:
        timer.cancel()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    assert stop.requested and time.monotonic() - started < 5


def test_read_usage_skips_everything_but_usage_lines() -> None:
    lines = ["plain text", '{"message": "results written", "key": "k"}', "{broken",
             '{"message": "job finished", "usage": {"job_id": "a"}}',
             '{"_aws": {"Timestamp": 1}, "Defects": [0.0]}',
             '{"message": "worker stopped", "usage": {"job_id": null}}']
    assert read_usage(lines) == [{"job_id": "a"}, {"job_id": None}]


# --- the command line ----------------------------------------------------------------------------
def test_serve_without_a_queue_says_what_to_set(monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    for name in ServiceSettings().environment():
        monkeypatch.delenv(name, raising=False)
    assert cli_main(["serve"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: set MONITOR_JOB_QUEUE_URL, MONITOR_RESULTS_BUCKET, MONITOR_TOPIC_ARN "
        "(the job queue, results bucket and defects topic)")


@pytest.mark.parametrize(("args", "variables", "message"), [
    (["--detectors", "freeze,blur"], {}, "error: unknown detector(s) blur; known: freeze, block_corruption, "
                                         "av_sync"),
    (["--detectors", ","], {}, "error: no detector chosen (--detectors or MONITOR_DETECTORS)"),
    ([], {"MONITOR_RESULTS_BATCH_SECONDS": "sixty"}, "error: MONITOR_RESULTS_BATCH_SECONDS must be a whole "
                                                     "number, got 'sixty'"),
    ([], {"MONITOR_HEARTBEAT_SECONDS": "0"}, "error: heartbeat_seconds must be at least 1, got 0"),
])
def test_serve_refuses_bad_settings_in_one_line(args: list[str], variables: dict[str, str], message: str,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert cli_main(["serve", *args]) == 2
    assert capsys.readouterr().err.strip() == message


def test_the_container_environment_reads_back_to_the_same_settings() -> None:
    settings = ServiceSettings(job_queue_url="https://sqs/q", results_bucket="r", topic_arn="arn:t",
                               source_buckets=("a", "b"), detectors=("freeze",), concurrency=4,
                               results_batch_seconds=30, heartbeat_seconds=15, visibility_timeout_s=120,
                               max_receives=5, receive_wait_s=10, retry_delay_s=3)
    env = settings.environment()
    assert env["MONITOR_SOURCE_BUCKETS"] == "a,b" and env["MONITOR_RETRY_DELAY_S"] == "3"
    assert env["POWERTOOLS_SERVICE_NAME"] == "monolith-service"
    assert ServiceSettings.from_env(env) == settings
