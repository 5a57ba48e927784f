"""The event-driven serverless design on LocalStack: streams published as live segments into the before's
source bucket reach the segment analyser through the deployed route (S3 -> EventBridge rule -> SQS ->
Lambda), which notifies the before's topic and writes the before's results.

Defects equal `monolith analyze` on the published stream, published at once or followed live (its lag
measured); a publisher that dies is reported stalled as the after reports it; segments landing out of
order and twice are analysed once each; a poison segment ends in the dead-letter queue with a "cannot be
analysed" notification, and the stream goes on after it; 20 streams at once each give the monolith's
defects.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from demo.deploy import ServerlessStack, Stack
from demo.live import Publisher
from demo.run import Aws, DesignRun, Observer
from demo.serverless import follow_serverless
from lambdas.converter.decode import probe
from lambdas.shared.notifications import SERVERLESS, design_of
from lambdas.shared.results import ACTIONS_PREFIX, RESULTS_PREFIX
from monolith.pipeline import analyze, sort_defects
from sample_streams import AvOffset, BlockCorruption, Freeze, generate_stream
from sample_streams.publish import PublishFaults, cut_segments, playlist_text, publish, write_published

pytestmark = pytest.mark.slow


# The whole deployment, as `make demo` drives it (this module's `stack` is the serverless design's).
DEPLOYED: dict[str, Stack] = {}


@pytest.fixture(scope="module")
def stack(stack: Stack) -> ServerlessStack:
    """This module's stack is the serverless design's, deployed beside the before (tests/e2e/conftest.py)."""
    assert stack.serverless is not None, "demo.deploy returned no serverless stack"
    DEPLOYED["all"] = stack
    return stack.serverless


@pytest.fixture(scope="module")
def deployed(stack: ServerlessStack) -> Stack:
    return DEPLOYED["all"]


@pytest.fixture(scope="module")
def observer(aws: Aws, stack: ServerlessStack) -> Iterator[Observer]:
    watcher = Observer(aws, stack.topic_arn)
    yield watcher
    watcher.close()


def wait_for(what: str, check: Callable[[], Any], timeout_s: float, poll_s: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def state(aws: Aws, stack: ServerlessStack, stream_id: str) -> dict[str, Any] | None:
    try:
        body = aws.s3.get_object(Bucket=stack.state_bucket, Key=f"state/{stream_id}.json")["Body"].read()
    except aws.s3.exceptions.NoSuchKey:
        return None
    return json.loads(body)


def wait_ended(aws: Aws, stack: ServerlessStack, stream_id: str, timeout_s: float = 180) -> dict[str, Any]:
    return wait_for(f"stream {stream_id} to be analysed to its end",
                    lambda: (s := state(aws, stack, stream_id)) and s["ended"] and s, timeout_s)


def records(aws: Aws, stack: ServerlessStack, stream_id: str) -> list[dict[str, Any]]:
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    prefix = f"{RESULTS_PREFIX}date={date}/stream={stream_id}/"
    # The before writes its own records of the same live stream beside these (second=<n>.json).
    keys = [o["Key"] for o in aws.s3.list_objects_v2(Bucket=stack.results_bucket, Prefix=prefix)
            .get("Contents", []) if o["Key"].endswith(".segments.json")]
    return [json.loads(line) for key in keys
            for line in aws.s3.get_object(Bucket=stack.results_bucket, Key=key)["Body"].read().decode()
            .splitlines()]


def notified(observer: Observer, stream_id: str, kind: str = "defect") -> list[dict[str, Any]]:
    # The before follows the same live streams (its own live input) and notifies the same topic: this
    # design's messages carry design=serverless.
    return [n for n in observer.received
            if n["attributes"].get("stream_id") == stream_id and n["attributes"].get("kind") == kind
            and design_of(n["attributes"]) == SERVERLESS]


def duplicates(notifications: list[dict[str, Any]]) -> int:
    events = Counter((n["message"]["defect"]["type"], n["message"]["defect"]["start_s"])
                     for n in notifications)
    return sum(n - 1 for n in events.values())


def distinct_defects(notifications: list[dict[str, Any]]) -> list[dict[str, Any]]:
    unique = {json.dumps(n["message"]["defect"], sort_keys=True): n["message"]["defect"]
              for n in notifications}
    return sort_defects(list(unique.values()))


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Keyframes every 1.6 s, segments of >= 2 s: segments start at 0, 3.2 and 6.4 s, seconds 3 and 6
    # straddle two segments; a freeze, block damage and audio 200 ms late from 3 s.
    path = tmp_path_factory.mktemp("serverless") / "source.mp4"
    generate_stream(path, duration_s=9, width=320, height=180, gop_s=1.6, seed=3,
                    defects=(Freeze(1.3, 2.5), BlockCorruption(5.2), AvOffset(3.0, 200.0)))
    return path


def test_defects_equal_the_monolith_on_a_stream_published_as_segments(
        aws: Aws, stack: ServerlessStack, observer: Observer, source: Path, tmp_path: Path) -> None:
    stream_id = f"live-{uuid.uuid4().hex[:6]}"
    report = publish(source, s3=aws.s3, bucket=stack.source_bucket, stream_id=stream_id, segment_seconds=2.0,
                     speed=float("inf"))
    published = write_published(report, aws.s3, tmp_path / "published.ts")
    expected = analyze(published)["defects"]
    assert {d["type"] for d in expected} == {"freeze", "block_corruption", "av_sync"}
    wait_ended(aws, stack, stream_id)
    observer.drain(until=lambda _: len(notified(observer, stream_id)) >= len(expected))
    # Then the defects notified are the monolith's, each once, in the before's message shape
    notes = notified(observer, stream_id)
    assert distinct_defects(notes) == expected and duplicates(notes) == 0
    assert {n["message"]["source"] for n in notes} <= {f"s3://{stack.source_bucket}/{s.key}"
                                                       for s in report.segments}
    # And every second the monolith iterates over is recorded once (the published TS lasts a little
    # over 9 s: its audio runs on past the last picture)
    seconds = sorted(r["second"] for r in records(aws, stack, stream_id))
    assert seconds == list(range(probe(published).seconds or 0)) and len(seconds) >= 9
    # And the before's corrective action acted on each defect (an action's key is its stream, type and
    # start: the before, following the same stream, acts on the same keys)
    prefix = f"{ACTIONS_PREFIX}{stream_id}/"
    wait_for("the corrective actions", lambda: len(aws.s3.list_objects_v2(
        Bucket=stack.results_bucket, Prefix=prefix).get("Contents", [])) >= len(expected), 60)


def test_the_cost_models_counts_equal_the_runs_bill(
        aws: Aws, deployed: Stack, observer: Observer, source: Path) -> None:
    # Given the stream run as `make demo` runs it (published as 2 s segments at full speed, followed to its
    # end, its bill metered from the function's REPORT and request lines)
    from cost_model.segments import check_run
    from demo.serverless import run_serverless
    from lambdas.segment_analyzer.settings import SegmentSettings

    result = run_serverless(aws, deployed, source, observer=observer, timeout_s=300)
    assert result.status == "SUCCEEDED", result.error
    # When the cost model counts the same segments and defects from the design's code and settings
    rows = check_run(result.summary(), settings=SegmentSettings(), cpu_s=None, cpu_source="")
    # Then every count timing does not enter equals the run's, and the rest are within their bounds
    checked = {r["quantity"]: r for r in rows}
    assert {"serverless S3 PUT", "serverless EventBridge events", "serverless SQS SendMessage",
            "serverless SNS publishes", "serverless corrective actions"} <= set(checked)
    assert [r for r in rows if r["equal"] is False] == []
    assert all(checked[name]["equal"] for name in ("serverless S3 PUT", "serverless SNS publishes",
                                                   "serverless corrective actions")), rows


def follow_published(aws: Aws, stack: Stack, observer: Observer, source: Path, stream_id: str, *,
                     speed: float, faults: PublishFaults | None = None) -> DesignRun:
    """Publish `source` live (a real-time pace divided by `speed`) and follow it through the design."""
    since_ms, started = int(time.time() * 1000), time.monotonic()
    publisher = Publisher(aws, stack.source_bucket, source, stream_id, segment_seconds=2.0, speed=speed,
                          faults=faults)
    publisher.start()
    return follow_serverless(aws, stack, publisher.finish(120), observer=observer, since_ms=since_ms,
                             started=started, timeout_s=300)


def test_it_follows_a_live_stream_to_the_monoliths_defects_and_its_lag_is_measured(
        aws: Aws, deployed: Stack, observer: Observer, source: Path, tmp_path: Path) -> None:
    # Given a stream published live at 4x real time (a segment every 0.5-0.8 s)
    run = follow_published(aws, deployed, observer, source, f"follow-{uuid.uuid4().hex[:6]}", speed=4.0)
    assert run.published is not None
    expected = analyze(write_published(run.published, aws.s3, tmp_path / "published.ts"))["defects"]
    # Then it ends with the monolith's defects on the stream as published, every second once
    assert (run.status, run.error) == ("SUCCEEDED", None)
    assert run.defects == expected and len(expected) == 3
    seconds = sorted(r["second"] for r in run.records)
    assert seconds == list(range(len(seconds))) and len(seconds) >= 9
    # And every second and every defect has a lag: from its segment landing to its analysis / notice
    lag = run.lag
    assert lag is not None and lag["seconds"]["count"] == len(seconds) and lag["defects"]["count"] == 3
    assert all(0 < v < 120 for v in lag["per_second_s"].values())
    # And its bill counts the route's one message per segment and, apart, its stall watch: the function's
    # own SendMessage (segment 0 arms it; it fires after the end, or moves on while the stream goes on)
    # and the state GET of each check
    bill = run.bill.as_dict()
    assert bill["sqs_requests"]["SendMessage"] == len(run.published.segments)
    assert bill["sqs_requests"]["stall_watch_SendMessage"] >= 1
    assert bill["s3_requests"]["by_source"]["stall-watch"]["GetObject"] >= 1


def test_a_dead_publisher_is_reported_stalled_by_the_afters_rule(
        aws: Aws, deployed: Stack, observer: Observer, source: Path, tmp_path: Path) -> None:
    # Given a publisher that stops after two of its segments without EXT-X-ENDLIST
    stream_id = f"dead-{uuid.uuid4().hex[:6]}"
    run = follow_published(aws, deployed, observer, source, stream_id, speed=4.0,
                           faults=PublishFaults(die_after=2))
    assert run.published is not None and len(run.published.segments) == 2
    # Then, 30 s without a segment, the stream is reported stalled as the after reports it
    assert (run.status, run.error) == ("FAILED", "stalled")
    (stall,) = [n for n in run.notifications if n["attributes"]["kind"] == "stream_stalled"]
    assert stall["subject"] == "Stream stalled" and "has not grown for 30 s" in stall["message"]
    assert stall["attributes"]["design"] == "serverless"
    # And what was published is analysed to its end first: the monolith's defects on it, every second once
    published = write_published(run.published, aws.s3, tmp_path / "published.ts")
    assert run.defects == analyze(published)["defects"]
    assert sorted(r["second"] for r in run.records) == list(range(probe(published).seconds or 0))


def put_segments(aws: Aws, stack: ServerlessStack, source: Path, stream_id: str, order: list[int],
                 replace: dict[int, bytes] | None = None) -> list[bytes]:
    """Write the stream's complete playlist, then its segments in `order` (repeats: landed twice)."""
    from sample_streams.publish import PublishedSegment

    segments = cut_segments(source, 2.0)
    base = f"live/{stream_id}"
    listed = [PublishedSegment(index=s.index, key=f"{base}/segment-{s.index:05d}.ts", start_s=s.start_s,
                               duration_s=s.duration_s) for s in segments]
    aws.s3.put_object(Bucket=stack.source_bucket, Key=f"{base}/index.m3u8",
                      Body=playlist_text(listed, datetime.now(UTC), ended=True).encode())
    data = [(replace or {}).get(s.index, s.data) for s in segments]
    for index in order:
        aws.s3.put_object(Bucket=stack.source_bucket, Key=listed[index].key, Body=data[index])
        time.sleep(0.5)  # land as separate events, in this order
    return data


def test_segments_out_of_order_and_twice_are_analysed_once_each(
        aws: Aws, stack: ServerlessStack, observer: Observer, source: Path, tmp_path: Path) -> None:
    stream_id = f"shuffled-{uuid.uuid4().hex[:6]}"
    # Segment 2 lands first, then 0, then 1 twice (S3 notifies at least once), then 0 again
    data = put_segments(aws, stack, source, stream_id, [2, 0, 1, 1, 0])
    published = tmp_path / "published.ts"
    published.write_bytes(b"".join(data))
    expected = analyze(published)["defects"]
    wait_ended(aws, stack, stream_id)
    observer.drain(until=lambda _: len(notified(observer, stream_id)) >= len(expected))
    time.sleep(3)  # late duplicates, if any, would arrive now
    observer.drain(until=lambda _: False, timeout_s=2)
    notes = notified(observer, stream_id)
    assert distinct_defects(notes) == expected
    # Each second analysed and recorded once
    seconds = [r["second"] for r in records(aws, stack, stream_id)]
    assert sorted(seconds) == list(range(probe(published).seconds or 0))
    # Notifications are at least once: a segment delivered twice at the same moment may notify its
    # defects twice (bound: one extra per extra delivery; here 2 extra deliveries). Sequential ones do not.
    assert duplicates(notes) <= 2


def test_a_poison_segment_goes_to_the_dead_letter_queue_with_a_notification(
        aws: Aws, stack: ServerlessStack, observer: Observer, source: Path) -> None:
    stream_id = f"poison-{uuid.uuid4().hex[:6]}"
    garbage = b"\x47" + b"this is not a transport stream" * 60
    put_segments(aws, stack, source, stream_id, [0, 1, 2], replace={1: garbage})
    final = wait_ended(aws, stack, stream_id)
    assert final["next_segment"] == 3
    failures = observer.drain(until=lambda _: bool(notified(observer, stream_id, "stream_unreadable")))
    (failure,) = [n for n in failures if n["attributes"].get("stream_id") == stream_id
                  and n["attributes"].get("kind") == "stream_unreadable"
                  and design_of(n["attributes"]) == SERVERLESS]
    assert failure["subject"] == "Stream cannot be analysed" and "segment 1" in failure["message"]

    def dead_letters() -> list[str]:
        messages = aws.sqs.receive_message(QueueUrl=stack.dead_letter_queue_url, MaxNumberOfMessages=10,
                                           WaitTimeSeconds=1).get("Messages", [])
        keys = []
        for message in messages:
            aws.sqs.change_message_visibility(QueueUrl=stack.dead_letter_queue_url,
                                              ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
            keys.append(json.loads(message["Body"])["detail"]["object"]["key"])
        return [k for k in keys if stream_id in k]

    assert wait_for("the poison segment in the dead-letter queue", dead_letters, 30) == [
        f"live/{stream_id}/segment-00001.ts"]
    # The stream went on after the gap: seconds 7 on were analysed. The gap runs from the first second
    # still waiting (0: segment 0's seconds wait for segment 1's first pictures) to segment 1's end (6.4 s)
    assert "seconds 0 to 6 are not analysed" in failure["message"]
    seconds = sorted(r["second"] for r in records(aws, stack, stream_id))
    assert seconds[:2] == [7, 8]


# With the before and the after also following every live stream on the same LocalStack, 20 at once take
# minutes on two cores: `make test-load`, beside the before's 20 streams.
@pytest.mark.load
def test_twenty_streams_at_once_each_give_the_monoliths_defects(
        aws: Aws, stack: ServerlessStack, observer: Observer, tmp_path: Path) -> None:
    streams = []
    for i in range(20):
        path = tmp_path / f"s{i}.mp4"
        generate_stream(path, duration_s=4, width=160, height=90, gop_s=1.0, seed=10 + i,
                        defects=(Freeze(1.0, 2.0),))
        streams.append((f"many-{i:02d}-{uuid.uuid4().hex[:4]}", path))

    def one(item: tuple[str, Path]) -> list[dict[str, Any]]:
        stream_id, path = item
        report = publish(path, s3=aws.s3, bucket=stack.source_bucket, stream_id=stream_id,
                         segment_seconds=1.0, speed=float("inf"))
        return analyze(write_published(report, aws.s3, tmp_path / f"{stream_id}.ts"))["defects"]

    with ThreadPoolExecutor(max_workers=20) as pool:
        expected = dict(zip([s for s, _ in streams], pool.map(one, streams), strict=True))
    for stream_id, _ in streams:
        wait_ended(aws, stack, stream_id, timeout_s=600)  # the before follows the same 20 streams
    total = sum(len(e) for e in expected.values())
    observer.drain(until=lambda r: sum(len(notified(observer, s)) for s in expected) >= total, timeout_s=60)
    for stream_id, defects in expected.items():
        assert defects, stream_id
        assert distinct_defects(notified(observer, stream_id)) == defects, stream_id
        seconds = sorted(r["second"] for r in records(aws, stack, stream_id))
        assert seconds == list(range(probe(tmp_path / f"{stream_id}.ts").seconds or 0)), stream_id
