"""Reliability of the deployed "before" stack on LocalStack: bad inputs, injected faults, parallel load, long
streams; and of the event-driven design deployed beside it: its function killed by a timeout in the
middle of a segment. One deployment for the module (stage "rel", executions of 3 seconds, test-only fault
injection for streams named "faulty-..."); the figures each test produced are printed and written to
cdk.out/localstack/e2e-reliability.json for the README.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/bad_media.py

from bad_media import make_bad_files, video_only

from demo.deploy import ROOT, Stack, deploy
from demo.run import (
    Aws,
    Execution,
    Observer,
    RunResult,
    continued_as,
    defects_in,
    follow,
    history,
    read_json_objects,
    result_keys,
    run_stream,
)
from lambdas.converter.decode import probe
from lambdas.segment_analyzer.settings import FAULT_FUNCTION
from lambdas.shared.faults import FaultPlan
from lambdas.shared.frame_store import FRAMES_PREFIX
from lambdas.shared.results import ACTIONS_PREFIX, RESULTS_PREFIX
from monolith.pipeline import analyze

pytestmark = pytest.mark.slow
STAGE = "rel"
SECONDS_PER_EXECUTION = 3
FPS = 25
# 20% transient errors and 5% timeouts for streams named faulty-*; seed 10 gives, on the 8 s stream below,
# 13 errors and one converter timeout (on second 3, the first of a continuation), none beyond the retries.
FAULTS = FaultPlan(error_rate=0.2, timeout_rate=0.05, seed=10, streams="faulty-", function_timeout_s=20)
FAULTY_STREAM = "faulty-long"
LONG_S = 8
LOAD_STREAMS = 20
FIGURES = ROOT / "cdk.out" / "localstack" / "e2e-reliability.json"
_figures_lock = threading.Lock()


def report(section: str, figures: dict[str, Any]) -> None:
    """Print a test's figures and merge them into the JSON file (the README quotes them)."""
    print(f"\n[{section}] {json.dumps(figures, indent=1)}")
    with _figures_lock:
        FIGURES.parent.mkdir(parents=True, exist_ok=True)
        current = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
        FIGURES.write_text(json.dumps({**current, section: figures}, indent=2) + "\n")


@pytest.fixture(scope="module")
def stack(localstack: Any) -> Stack:
    context = {"seconds_per_execution": str(SECONDS_PER_EXECUTION),
               "fault_injection": ",".join(f"{k}={v}" for k, v in vars(FAULTS).items())}
    return deploy(localstack.url, stage=STAGE, context=context)


def in_parallel(jobs: list[Callable[[], Any]], workers: int | None = None) -> list[Any]:
    with ThreadPoolExecutor(max_workers=workers or len(jobs)) as pool:
        return [f.result() for f in [pool.submit(job) for job in jobs]]


def start(aws: Aws, stack: Stack, payload: Any, name: str) -> str:
    raw = payload if isinstance(payload, str) else json.dumps(payload)
    started = aws.sfn.start_execution(stateMachineArn=stack.state_machine_arn, name=name, input=raw)
    return str(started["executionArn"])


def wait_all(endpoint: str | None, stack: Stack, arns: list[str], timeout_s: float) -> list[list[Execution]]:
    """Wait for many executions (and what they continue as) with one LIST per second: one poller per
    execution would add dozens of requests a second to the LocalStack under test."""
    aws = Aws(endpoint)
    started, pending = time.monotonic(), set(arns)
    finished_s: dict[str, float] = {}
    while pending:
        running = {e["executionArn"] for page in aws.sfn.get_paginator("list_executions").paginate(
            stateMachineArn=stack.state_machine_arn, statusFilter="RUNNING") for e in page["executions"]}
        for arn in pending - running:
            finished_s[arn] = round(time.monotonic() - started, 1)
        pending &= running
        if pending and time.monotonic() - started > timeout_s:
            raise AssertionError(f"{len(pending)} executions still running after {timeout_s} s")
        time.sleep(0 if not pending else 1.0)
    out = []
    for arn in arns:
        described = aws.sfn.describe_execution(executionArn=arn)
        events = history(aws.sfn, arn)
        chain = [Execution(arn, described["status"], described.get("error"), described.get("cause"), events,
                           finished_s[arn])]
        nxt = continued_as(events) if described["status"] == "SUCCEEDED" else None
        if nxt:  # a continuation: follow it to the end
            chain += follow(aws, nxt, total=None, timeout_s=timeout_s)
        out.append(chain)
    return out


# --- bad inputs ----------------------------------------------------------------------------------


def test_bad_inputs_fail_clearly_with_a_notification_and_other_streams_are_unaffected(
        aws: Aws, stack: Stack, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:6]
    source = stack.source_bucket
    # Given every kind of bad file, uploaded under its own stream id ...
    cases: dict[str, dict[str, Any]] = {}
    for name, (path, reason) in make_bad_files(tmp_path / "bad").items():
        key = f"streams/bad-{name}-{tag}{path.suffix}"
        aws.s3.upload_file(str(path), source, key)
        cases[f"file:{name}"] = {"input": {"bucket": source, "key": key, "stream_id": f"bad-{name}-{tag}"},
                                 "error": "StreamUnreadable", "cause": reason}
    # ... a key that does not exist, and a valid stream in a bucket the stack does not read from ...
    cases["missing-key"] = {"input": {"bucket": source, "key": f"streams/nothing-{tag}.mp4",
                                      "stream_id": f"missing-{tag}"},
                            "error": "StreamUnreadable", "cause": "cannot be read from S3"}
    other = f"not-a-source-{tag}"
    aws.s3.create_bucket(Bucket=other)
    aws.s3.upload_file(str(video_only(tmp_path)), other, "streams/fine.mp4")
    cases["foreign-bucket"] = {
        "input": {"bucket": other, "key": "streams/fine.mp4", "stream_id": f"fb-{tag}"},
        "error": "InvalidRequest", "cause": "is not a source bucket of this stack"}
    # ... and malformed execution inputs: fields missing, wrong types, traversal, absurd lengths
    rejected = "must be a JSON object with the non-empty strings bucket, key and stream_id"
    malformed: dict[str, tuple[Any, str]] = {
        "empty-object": ({}, rejected),
        "no-stream-id": ({"bucket": source, "key": "streams/x.mp4"}, rejected),
        "key-not-a-string": ({"bucket": source, "key": 42, "stream_id": f"t-{tag}"}, rejected),
        "bucket-a-list": ({"bucket": [source], "key": "streams/x.mp4", "stream_id": f"t-{tag}"}, rejected),
        "empty-stream-id": ({"bucket": source, "key": "streams/x.mp4", "stream_id": ""}, rejected),
        "not-an-object": ('["streams/x.mp4"]', rejected),
        "key-traversal": ({"bucket": source, "key": "../etc/passwd", "stream_id": f"tr-{tag}"},
                          "'..' segments"),
        "key-inner-traversal": ({"bucket": source, "key": "streams/../../x.mp4", "stream_id": f"ti-{tag}"},
                                "'..' segments"),
        "key-absolute": ({"bucket": source, "key": "/streams/x.mp4", "stream_id": f"ka-{tag}"},
                         "relative path"),
        "key-too-long": ({"bucket": source, "key": "streams/" + "k" * 5000, "stream_id": f"kl-{tag}"},
                         "more than S3's 1024"),
        "stream-id-traversal": ({"bucket": source, "key": "streams/x.mp4", "stream_id": "../x"},
                                "stream_id must match"),
        "stream-id-too-long": ({"bucket": source, "key": "streams/x.mp4", "stream_id": "s" * 2000},
                               "stream_id must match"),
    }
    for name, (payload, cause) in malformed.items():
        cases[f"input:{name}"] = {"input": payload, "cause": cause, "error": "InvalidRequest"}
    # ... started all at once, next to a good stream and a stream without audio
    good_path = tmp_path / "good.mp4"
    from sample_streams import Freeze, generate_stream
    generate_stream(good_path, duration_s=3, width=160, height=90, fps=FPS, gop_s=3,
                    defects=[Freeze(0.3, 2.4)], seed=10)
    good = {"good": good_path, "video-only": video_only(tmp_path)}
    for name, path in good.items():
        key = f"streams/{name}-{tag}.mp4"
        aws.s3.upload_file(str(path), source, key)
        cases[f"ok:{name}"] = {"input": {"bucket": source, "key": key, "stream_id": f"{name}-{tag}"}}
    observer = Observer(aws, stack.topic_arn)
    try:
        names = {case: f"{case.replace(':', '-')}-{tag}" for case in cases}
        started = time.monotonic()
        arns = {case: start(aws, stack, c["input"], names[case]) for case, c in cases.items()}
        runs = dict(zip(arns, wait_all(aws.endpoint_url, stack, list(arns.values()), 120), strict=True))
        wall_s = round(time.monotonic() - started, 1)
        failed = sum(1 for case in cases if "error" in cases[case])
        notices = observer.drain(until=lambda got: len(got) >= failed, timeout_s=30)
    finally:
        observer.close()

    outcomes: dict[str, dict[str, Any]] = {}
    for case, spec in cases.items():
        last = runs[case][-1]
        outcomes[case] = {"status": last.status, "error": last.error, "cause": _cause_text(last.cause)}
        if "error" not in spec:
            continue
        # Then each bad input ends FAILED with the error that names the problem and a cause saying why
        assert (last.status, last.error) == ("FAILED", spec["error"]), (case, last.status, last.cause)
        assert spec["cause"] in (last.cause or ""), (case, last.cause)
        # And exactly one notice went out for it, carrying the same error and reason
        stream_id = _stream_id(spec["input"])
        mine = [n for n in notices if names[case] in str(n["message"])
                or (stream_id and n["attributes"].get("stream_id") == stream_id)]
        assert len(mine) == 1, (case, mine)
        (notice,) = mine
        assert notice["subject"] == "Stream cannot be analysed"
        assert notice["attributes"]["kind"] == "stream_unreadable"
        assert notice["attributes"]["error"] == spec["error"]
        assert spec["cause"] in notice["message"], (case, notice["message"])
        outcomes[case]["notice"] = notice["message"][:300]
    # And nothing was recorded for a stream refused before its first second
    for case in ("missing-key", "foreign-bucket", "input:key-traversal"):
        assert result_keys(aws, stack, _stream_id(cases[case]["input"])) == []
    # And the good stream next to them gave the monolith's answer; the one without audio succeeded too
    # (no audio is not an error: A/V sync stays "unknown" and reports nothing)
    for name, path in good.items():
        run = runs[f"ok:{name}"]
        assert run[-1].status == "SUCCEEDED", (name, run[-1].cause)
        stream_id = f"{name}-{tag}"
        records = read_json_objects(aws, stack.results_bucket, result_keys(aws, stack, stream_id))
        assert sorted(r["second"] for r in records) == [0, 1, 2]
        defects = sorted((d for r in records for d in r["defects"]),
                         key=lambda d: (d["start_s"], d["type"], d["end_s"]))
        assert defects == analyze(path)["defects"], name
    assert _last_av_sync_status(runs["ok:video-only"]) == "unknown"
    assert not [n for n in notices if n["attributes"].get("kind") == "defect"
                and n["attributes"].get("stream_id") == f"video-only-{tag}"]
    report("bad_inputs", {"inputs": len(cases), "wall_s": wall_s, "outcomes": outcomes})


def _stream_id(payload: Any) -> str | None:
    value = payload.get("stream_id") if isinstance(payload, dict) else None
    return value if isinstance(value, str) and value else None


def _cause_text(cause: str | None) -> str | None:
    """A Lambda's cause is its error JSON: keep the message."""
    try:
        return json.loads(cause or "")["errorMessage"]
    except (ValueError, KeyError, TypeError):
        return cause


def _last_av_sync_status(executions: list[Execution]) -> str:
    outputs = [json.loads(e["taskSucceededEventDetails"]["output"])["Payload"]
               for ex in executions for e in ex.events if e["type"] == "TaskSucceeded"
               and e["taskSucceededEventDetails"].get("resourceType") == "lambda"]
    states = [c["state"] for p in outputs for c in p.get("carry", []) if c["detector"] == "av_sync"]
    return states[-1]["status"]


# --- faults and long streams ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def long_stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sample_streams import BlockCorruption, Freeze, generate_stream

    # One GOP, a freeze across the continue-as-new boundary at second 3, block damage in the third execution.
    path = tmp_path_factory.mktemp("long") / "long.mp4"
    generate_stream(path, duration_s=LONG_S, width=160, height=90, fps=FPS, gop_s=LONG_S,
                    defects=[Freeze(1.2, 2.5), BlockCorruption(5.3)], seed=5)
    return path


@pytest.fixture(scope="module")
def long_runs(aws: Aws, stack: Stack, long_stream: Path) -> dict[str, RunResult]:
    """The same 8 s stream twice at once: clean, and with injected faults."""
    clean_id = f"long-{uuid.uuid4().hex[:6]}"
    jobs = {"clean": lambda: run_stream(Aws(aws.endpoint_url), stack, long_stream, stream_id=clean_id,
                                        timeout_s=300),
            "faulty": lambda: run_stream(Aws(aws.endpoint_url), stack, long_stream, stream_id=FAULTY_STREAM,
                                         timeout_s=300)}
    return dict(zip(jobs, in_parallel(list(jobs.values())), strict=True))


def _seconds_in_keys(keys: list[str]) -> list[int]:
    return [int(k.rsplit("second=", 1)[1].removesuffix(".json")) for k in keys]


def test_long_stream_continues_as_new_without_losing_or_repeating_a_second(
        long_runs: dict[str, RunResult], aws: Aws, stack: Stack, long_stream: Path) -> None:
    run = long_runs["clean"]
    # Then the 8 s stream took three executions of at most 3 seconds, each continuing where the last stopped
    assert run.status == "SUCCEEDED", run.cause
    assert [e.status for e in run.executions] == ["SUCCEEDED"] * 3
    # named by the run (the MD5 of its first execution's name, so at most 80 characters) and the second
    run_key = hashlib.md5(run.executions[0].arn.rsplit(":", 1)[1].encode()).hexdigest()
    assert [e.arn.rsplit(":", 1)[1] for e in run.executions[1:]] == [f"{run_key}-3", f"{run_key}-6"]
    # And the results bucket holds seconds 0..7, each exactly once (a LIST of the stream's keys)
    keys = result_keys(aws, stack, run.stream_id)
    assert _seconds_in_keys(keys) == list(range(LONG_S))
    # And each execution recorded its own seconds only
    recorded = [e for ex in run.executions for e in ex.events if e["type"] == "TaskStateExited"
                and e["stateExitedEventDetails"]["name"] == "Record"]
    assert len(recorded) == LONG_S
    # And the defects, the freeze across the boundary included, are the monolith's
    assert run.defects == analyze(long_stream)["defects"]
    report("long_stream", {"stream_seconds": LONG_S, "seconds_per_execution": SECONDS_PER_EXECUTION,
                           "executions": len(run.executions), "wall_s": run.wall_s,
                           "result_keys": len(keys)})


def _attempts(run: RunResult, functions: dict[str, str]) -> list[tuple[str, int, int, str | None]]:
    """(function, second, attempt, error or None) for every Lambda invocation the workflow made."""
    out = []
    for execution in run.executions:  # event ids restart in every execution
        by_id = {e["id"]: e for e in execution.events}
        outcome: dict[int, str | None] = {}
        for event in execution.events:
            if event["type"] in ("TaskSucceeded", "TaskFailed", "TaskTimedOut"):
                started = by_id[event["previousEventId"]]
                details = event.get("taskFailedEventDetails") or event.get("taskTimedOutEventDetails") or {}
                outcome[started["previousEventId"]] = None if event["type"] == "TaskSucceeded" \
                    else details.get("error")
        for event in execution.events:
            details = event.get("taskScheduledEventDetails")
            if event["type"] == "TaskScheduled" and details["resourceType"] == "lambda":
                params = json.loads(details["parameters"])
                function = functions[params["FunctionName"].rsplit(":", 1)[1]].removeprefix("detector-")
                payload = params["Payload"]
                error = outcome.get(event["id"], "missing")
                out.append((function, payload["second"], payload["attempt"], error))
    return sorted(out)


def test_injected_faults_are_retried_to_the_fault_free_result_exactly_once_per_second(
        long_runs: dict[str, RunResult], aws: Aws, stack: Stack) -> None:
    from demo.run import stack_functions

    clean, faulty = long_runs["clean"], long_runs["faulty"]
    # Then the faulty run succeeded through its retries, over the same three executions
    assert faulty.status == "SUCCEEDED", faulty.cause
    assert len(faulty.executions) == 3
    # And every invocation failed or succeeded exactly as the seeded plan says, attempt by attempt:
    # TransientError for an injected error, Sandbox.Timedout for an injected timeout
    attempts = _attempts(faulty, stack_functions(aws, stack.name))
    expected_error = {"error": "TransientError", "timeout": "Sandbox.Timedout", None: None}
    predicted = sorted((fn, s, a, expected_error[FAULTS.decide(fn, FAULTY_STREAM, s, a)])
                       for fn, s, a, _ in attempts)
    assert attempts == predicted
    # And each (function, second) ran attempts 0..k with only the last one succeeding
    by_task: dict[tuple[str, int], list[tuple[int, str | None]]] = {}
    for fn, s, a, error in attempts:
        by_task.setdefault((fn, s), []).append((a, error))
    assert len(by_task) == 4 * LONG_S
    for task, tries in by_task.items():
        assert [a for a, _ in tries] == list(range(len(tries))), task
        assert [e is None for _, e in tries] == [False] * (len(tries) - 1) + [True], task
    errors = Counter(e for *_, e in attempts if e)
    assert errors["TransientError"] >= 5 and errors["Sandbox.Timedout"] >= 1
    # And every second was recorded exactly once: the LIST shows seconds 0..7, each once
    keys = result_keys(aws, stack, FAULTY_STREAM)
    assert _seconds_in_keys(keys) == list(range(LONG_S))
    # And the defects equal the fault-free run's
    assert clean.status == "SUCCEEDED"
    assert faulty.defects == clean.defects and len(clean.defects) == 2
    # And a retried converter wrote the same frame keys again rather than new ones
    assert faulty.frame_objects == clean.frame_objects == LONG_S * (FPS + 1)
    report("faults", {
        "plan": vars(FAULTS), "invocations": len(attempts), "first_attempts": len(by_task),
        "retries": len(attempts) - len(by_task), "errors": dict(errors),
        "failed_share": round(sum(errors.values()) / len(attempts), 3),
        "max_attempts_for_one_task": max(len(t) for t in by_task.values()),
        "wall_s": {"faulty": faulty.wall_s, "clean": clean.wall_s},
        "defects": len(faulty.defects),
    })


def test_no_temporary_object_outlives_the_frames_expiry(
        long_runs: dict[str, RunResult], aws: Aws, stack: Stack) -> None:
    # Given the frames bucket's lifecycle rules as deployed. LocalStack's CloudFormation (4.14) does not
    # pass LifecycleConfiguration on to its S3, so they are read from the stack's deployed template.
    body = aws.cloudformation.get_template(StackName=stack.name)["TemplateBody"]
    template = json.loads(body) if isinstance(body, str) else body
    resources = aws.cloudformation.describe_stack_resources(StackName=stack.name)["StackResources"]
    (frames,) = [r["LogicalResourceId"] for r in resources if r["PhysicalResourceId"] == stack.frames_bucket]
    rules = template["Resources"][frames]["Properties"]["LifecycleConfiguration"]["Rules"]
    expiring = [r for r in rules if r["Status"] == "Enabled" and r.get("ExpirationInDays", 99) <= 1]
    assert expiring
    prefixes = [r.get("Prefix") or (r.get("Filter") or {}).get("Prefix") or "" for r in expiring]
    # Then the rule expires exactly the frames prefix (an empty prefix would expire the whole bucket and
    # make the check below pass whatever the keys), and every object in the bucket (retried writes
    # included) lies under it
    assert prefixes == [FRAMES_PREFIX]
    keys = [o["Key"] for page in aws.s3.get_paginator("list_objects_v2").paginate(Bucket=stack.frames_bucket)
            for o in page.get("Contents", [])]
    assert keys and all(k.startswith(FRAMES_PREFIX) for k in keys)
    report("frames_expiry", {"objects": len(keys), "rule_prefixes": prefixes,
                             "expiration_days": [r["ExpirationInDays"] for r in expiring]})


# --- the event-driven serverless design: a function timeout in the middle of a segment ---------------


def stream_timed_out_at_its_end(segments: int, tag: str) -> tuple[str, int]:
    """A stream id under the plan's prefix (with `tag`) on which the segment analyser's only fault, over
    the first two receives of each of its `segments`, is a timeout of the last segment's first receive:
    the draws are the plan's (FaultPlan.decide), searched, not picked by hand. The last one, so that no
    segment waits behind it with backoff (the retry comes a visibility timeout later either way)."""
    last = segments - 1
    for n in range(10_000):
        stream_id = f"{FAULTS.streams}mid-{tag}-{n}"
        draws = {(index, receive): FAULTS.decide(FAULT_FUNCTION, stream_id, index, receive)
                 for index in range(segments) for receive in (1, 2)}
        if draws.pop((last, 1)) == "timeout" and set(draws.values()) == {None}:
            return stream_id, last
    raise AssertionError(f"no stream id gives one timeout on segment {last} with {FAULTS}")


def test_a_segment_analyser_timeout_mid_segment_is_retried_to_the_same_result(
        aws: Aws, stack: Stack, tmp_path: Path) -> None:
    from test_e2e_serverless import distinct_defects, duplicates, notified

    from demo.serverless import stream_records, stream_state
    from sample_streams import AvOffset, BlockCorruption, Freeze, generate_stream
    from sample_streams.publish import cut_segments, publish, write_published

    design = stack.serverless
    assert design is not None
    # Given a 9 s stream cut into segments at 0, 3.2 and 6.4 s, and a stream id on which the plan times
    # out the analysis of its last segment on the first receive, after its results are written and its
    # defects published and before the state's conditional write
    source = tmp_path / "source.mp4"
    generate_stream(source, duration_s=9, width=320, height=180, gop_s=1.6, seed=3,
                    defects=(Freeze(1.3, 2.5), BlockCorruption(5.2), AvOffset(3.0, 200.0)))
    count = len(cut_segments(source, 2.0))
    stream_id, k = stream_timed_out_at_its_end(count, uuid.uuid4().hex[:6])

    def hold(index: int) -> None:
        # Segment k lands once its predecessor is analysed, so that its first receive analyses it (one
        # that arrived early would be retried without analysis, and its analysis be a later receive's).
        if index == k:
            deadline = time.monotonic() + 120
            while ((stream_state(aws, design, stream_id) or {}).get("next_segment", 0) < k
                   and time.monotonic() < deadline):
                time.sleep(0.5)

    observer = Observer(aws, design.topic_arn)
    try:
        since_ms, started = int(time.time() * 1000), time.monotonic()
        # When it is published (the segment analyser is killed at its 20 s timeout, and SQS delivers the
        # segment again once the queue's visibility timeout, 6 x 20 s, has passed since that receive)
        published = publish(source, s3=aws.s3, bucket=design.source_bucket, stream_id=stream_id,
                            segment_seconds=2.0, speed=float("inf"), before_segment=hold)
        deadline = time.monotonic() + 6 * FAULTS.function_timeout_s + 120
        while not (stream_state(aws, design, stream_id) or {}).get("ended"):
            assert time.monotonic() < deadline, f"{stream_id} not analysed to its end"
            time.sleep(1.0)
        wall_s = round(time.monotonic() - started, 1)
        expected = analyze(write_published(published, aws.s3, tmp_path / "published.ts"))["defects"]
        records = stream_records(aws, design, stream_id)
        lines = _analyser_lines(aws, design.function_name, since_ms, stream_id, k)
        assert lines["analysed"], f"no 'segment analysed' line for segment {k} of {stream_id}"
        mid = set(lines["analysed"]["seconds"])  # segment k's seconds
        mid_defects = [d for r in records if r["second"] in mid for d in r["defects"]]
        observer.drain(until=lambda _: len(notified(observer, stream_id)) >= len(expected) + len(mid_defects),
                       timeout_s=60)
        observer.drain(until=lambda _: False, timeout_s=3)  # a late duplicate beyond the bound would show
        notes = notified(observer, stream_id)
    finally:
        observer.close()
    # Then the plan struck once, on segment k's first receive, and the runtime killed that invocation at
    # its timeout (its log says so and its REPORT line lasts the timeout)
    assert lines["faults"] == [{"fault": "timeout", "unit": k, "attempt": 1}]
    assert lines["timed_out"], lines
    assert lines["report_ms"] >= FAULTS.function_timeout_s * 1000
    # And the segment was analysed on its second receive, recorded then
    assert (lines["analysed"]["receive_count"], lines["analysed"]["recorded"]) == (2, True)
    # And every second of the published stream is recorded exactly once (segment k's results object was
    # written by both attempts, the same key), with the monolith's defects
    seconds = sorted(r["second"] for r in records)
    assert seconds == list(range(probe(tmp_path / "published.ts").seconds or 0)) and len(seconds) >= 9
    assert defects_in(records) == expected
    # And the notified defects are the monolith's; the only ones notified twice are segment k's, once each
    # more (the bound: a segment killed after its defects went out notifies them again on its retry)
    assert distinct_defects(notes) == expected and mid_defects
    assert duplicates(notes) == len(mid_defects)
    twice = Counter((n["message"]["defect"]["type"], n["message"]["defect"]["start_s"]) for n in notes)
    assert sorted(key for key, n in twice.items() if n > 1) == sorted(
        (d["type"], d["start_s"]) for d in mid_defects)
    report("segment_timeout", {"plan": vars(FAULTS), "stream_id": stream_id, "segments": count,
                               "timed_out_segment": k, "wall_s": wall_s,
                               "timed_out_invocation_ms": lines["report_ms"],
                               "defects": len(expected), "notified_twice": duplicates(notes)})


def _analyser_lines(aws: Aws, function_name: str, since_ms: int, stream_id: str, k: int) -> dict[str, Any]:
    """From the analyser's log: the faults injected on the stream, segment k's "segment analysed" line,
    whether the invocation the fault struck logged "Task timed out" and its REPORT duration (CloudWatch Logs
    gets a killed invocation's lines a little later: waited for)."""
    from metering.lambda_logs import log_messages, parse_reports

    deadline = time.monotonic() + 60
    while True:
        messages = log_messages(aws.logs, function_name, since_ms)
        lines = [json.loads(m) for m in messages if m.lstrip().startswith("{")]
        faults = [line for line in lines if line.get("message") == "fault injected"
                  and line.get("stream_id") == stream_id]
        analysed = [line for line in lines if line.get("message") == "segment analysed"
                    and line.get("stream_id") == stream_id and line.get("segment") == k]
        struck = {str(line.get("function_request_id")) for line in faults}
        timed_out = [m for m in messages if "Task timed out" in m and any(r in m for r in struck)]
        reports = [r for r in parse_reports(messages) if r.request_id in struck]
        if (faults and analysed and timed_out and reports) or time.monotonic() > deadline:
            return {"faults": [{key: line[key] for key in ("fault", "unit", "attempt")} for line in faults],
                    "analysed": analysed[-1] if analysed else {}, "timed_out": timed_out,
                    "report_ms": max((r.duration_ms for r in reports), default=0.0)}
        time.sleep(1.0)


# --- load ----------------------------------------------------------------------------------------


# --- a corrective action that keeps failing ----------------------------------------------------------


def _publish_defect(aws: Aws, stack: Stack, stream_id: str, start_s: float) -> str:
    """A defect message as the workflow's Notify state publishes it (the same attributes)."""
    message = {"stream_id": stream_id, "source": "test", "second": 1, "execution_id": "published-by-test",
               "defect": {"type": "freeze", "start_s": start_s, "end_s": start_s + 1.0}}
    return str(aws.sns.publish(TopicArn=stack.topic_arn, Message=json.dumps(message), MessageAttributes={
        "kind": {"DataType": "String", "StringValue": "defect"},
        "defect_type": {"DataType": "String", "StringValue": "freeze"},
        "stream_id": {"DataType": "String", "StringValue": stream_id}})["MessageId"])


def test_a_corrective_action_that_keeps_failing_ends_in_the_failures_queue_and_raises_the_alarm(
        aws: Aws, stack: Stack) -> None:
    tag = uuid.uuid4().hex[:6]
    alarms = Observer(aws, stack.alarms_topic_arn)  # what an operator subscribed to the alarms would get
    try:
        # Given a defect message the corrective action refuses on every attempt (a stream id that cannot
        # be a key segment), and a good one published beside it
        poison_id = _publish_defect(aws, stack, f"bad/../{tag}", 1.0)
        good_stream = f"action-ok-{tag}"
        _publish_defect(aws, stack, good_stream, 2.0)
        # When Lambda has tried it three times (the first attempt and its 2 asynchronous retries), the
        # alarm on the failures queue fires (LocalStack reports queue depths every 5 s, alarms each minute)
        started = time.monotonic()
        notified = alarms.drain(until=lambda got: any(n["message"].get("NewStateValue") == "ALARM"
                                                      for n in got if isinstance(n["message"], dict)),
                                timeout_s=180)
        alarm_s = round(time.monotonic() - started, 1)
    finally:
        alarms.close()
    # Then the alarms topic said so, naming the queue's depth
    (alarm,) = [n["message"] for n in notified if n["message"].get("NewStateValue") == "ALARM"]
    assert alarm["Trigger"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Trigger"]["Dimensions"] == [
        {"name": "QueueName", "value": stack.failed_invocations_url.rsplit("/", 1)[1]}]
    # And the failures queue holds its on-failure record: the SNS event, the error, the attempts; it is the
    # only record there (no other asynchronous invocation of this module failed)
    records = [json.loads(m["Body"]) for m in aws.sqs.receive_message(
        QueueUrl=stack.failed_invocations_url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
        VisibilityTimeout=0).get("Messages", [])]
    assert len(records) == 1, records
    (record,) = records
    (sns_record,) = record["requestPayload"]["Records"]
    assert sns_record["Sns"]["MessageId"] == poison_id
    assert json.loads(sns_record["Sns"]["Message"])["stream_id"] == f"bad/../{tag}"
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert f":function:{stack.name}-FunctionsCorrectiveActio" in record["requestContext"]["functionArn"]
    assert record["responsePayload"]["errorType"] == "InvalidRequest"
    assert "stream_id must match" in record["responsePayload"]["errorMessage"]
    # And the good message beside it was acted on as usual (the queue is not a catch-all)
    good_prefix = f"{ACTIONS_PREFIX}{good_stream}/"
    listed = aws.s3.list_objects_v2(Bucket=stack.results_bucket, Prefix=good_prefix)
    assert [o["Key"] for o in listed.get("Contents", [])] == [f"{good_prefix}freeze-0000002000.json"]
    report("corrective_action_failure", {"attempts": record["requestContext"]["approximateInvokeCount"],
                                         "condition": record["requestContext"]["condition"],
                                         "error": record["responsePayload"]["errorType"],
                                         "alarm_after_s": alarm_s})


@pytest.mark.load
def test_twenty_streams_at_once_all_finish_with_the_monolith_results(
        aws: Aws, stack: Stack, tmp_path: Path) -> None:
    from sample_streams import AvOffset, BlockCorruption, Freeze, generate_stream

    # Given four kinds of 3 s stream (a freeze, block damage, an A/V offset, nothing), five of each
    kinds = {"freeze": [Freeze(0.3, 2.4)], "blocks": [BlockCorruption(1.3)], "offset": [AvOffset(0.0, 300.0)],
             "clean": []}
    files, expected = {}, {}
    for i, (kind, defects) in enumerate(kinds.items()):
        files[kind] = tmp_path / f"{kind}.mp4"
        generate_stream(files[kind], duration_s=3, width=160, height=90, fps=FPS, gop_s=3,
                        defects=defects, seed=10 + i)
        expected[kind] = analyze(files[kind])["defects"]
    tag = uuid.uuid4().hex[:6]
    streams = {f"load-{kind}-{n}-{tag}": kind for n in range(LOAD_STREAMS // len(kinds)) for kind in kinds}
    for stream_id, kind in streams.items():
        aws.s3.upload_file(str(files[kind]), stack.source_bucket, f"streams/{stream_id}.mp4")
    # When all twenty start together
    started = time.monotonic()
    arns = [start(aws, stack, {"bucket": stack.source_bucket, "key": f"streams/{stream_id}.mp4",
                               "stream_id": stream_id}, stream_id) for stream_id in streams]
    runs = wait_all(aws.endpoint_url, stack, arns, timeout_s=240)
    wall_s = round(time.monotonic() - started, 1)
    # Then every one succeeded with one record per second and the monolith's defects for its file
    for (stream_id, kind), executions in zip(streams.items(), runs, strict=True):
        assert executions[-1].status == "SUCCEEDED", (stream_id, executions[-1].cause)
        keys = result_keys(aws, stack, stream_id)
        assert _seconds_in_keys(keys) == [0, 1, 2], stream_id
        records = read_json_objects(aws, stack.results_bucket, keys)
        defects = sorted((d for r in records for d in r["defects"]),
                         key=lambda d: (d["start_s"], d["type"], d["end_s"]))
        assert defects == expected[kind], stream_id
    per_stream = sorted(sum(ex.wall_s for ex in executions) for executions in runs)
    events = [e["type"] for executions in runs for ex in executions for e in ex.events]
    retries = events.count("TaskScheduled") - events.count("TaskStateEntered")
    report("load", {"streams": len(streams), "stream_s": 3, "size": "160x90", "wall_s": wall_s,
                    "slowest_stream_s": round(per_stream[-1], 1), "fastest_stream_s": round(per_stream[0], 1),
                    "retries": retries, "results_prefix": RESULTS_PREFIX})
