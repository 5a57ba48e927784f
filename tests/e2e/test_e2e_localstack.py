"""The deployed system, end to end: the unchanged CDK app on LocalStack (cdklocal), real streams through the
real workflow and Lambda packages, and what came out of it checked against the monolith and the workflow
definition.

One deployment per session (executions continue as new every 3 seconds, so a 6 s stream takes two);
each stream runs once per module and the tests look at different parts of the result.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from demo.deploy import Stack
from demo.run import Aws, RunResult, download_prefix, run_stream
from infra.config import DETECTORS
from infra.workflow import load_definition
from lambdas.corrective_action.service import action_for
from lambdas.shared.results import RESULTS_PREFIX, action_key, query_defects
from monolith.pipeline import analyze
from statemachine.asl import LoopModel

pytestmark = pytest.mark.slow
DURATION_S = 6
FPS = 25


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sample_streams import BlockCorruption, Freeze, generate_stream

    # One GOP for the whole stream (the freeze is repeated pictures, no keyframe re-codes it); the freeze
    # runs across the continue-as-new boundary at second 3 (detector state carried over).
    path = tmp_path_factory.mktemp("e2e") / "cam-e2e.mp4"
    generate_stream(path, duration_s=DURATION_S, width=320, height=180, fps=FPS, gop_s=DURATION_S,
                    defects=[Freeze(1.2, 2.5), BlockCorruption(4.3)], seed=5)
    return path


@pytest.fixture(scope="module")
def run(aws: Aws, stack: Stack, stream: Path, no_other_executions: int) -> RunResult:
    # The bill counts the functions' REPORT lines by time: nothing else of the before may be running
    # (no_other_executions stopped what was)
    return run_stream(aws, stack, stream, timeout_s=180)


@pytest.fixture(scope="module")
def monolith_defects(stream: Path) -> list[dict[str, Any]]:
    return analyze(stream)["defects"]


def test_defects_equal_the_monolith(run: RunResult, monolith_defects: list[dict[str, Any]]) -> None:
    # Then the run succeeded over two executions, one results record per second
    assert run.status == "SUCCEEDED", run.cause
    assert len(run.executions) == 2
    assert [r["second"] for r in sorted(run.records, key=lambda r: r["second"])] == list(range(DURATION_S))
    # And the defects it recorded are exactly the monolith's on the same file
    assert {d["type"] for d in monolith_defects} >= {"freeze", "block_corruption"}
    assert run.defects == monolith_defects


def test_notifications_delivered_and_corrective_actions_recorded(run: RunResult) -> None:
    # Then SQS received one SNS notification per defect, with the defect and its stream
    defect_messages = [n for n in run.notifications if n["attributes"]["kind"] == "defect"]
    assert len(defect_messages) == len(run.notifications) == len(run.defects)
    sent = sorted((n["message"]["defect"] for n in defect_messages), key=lambda d: (d["start_s"], d["type"]))
    assert sent == run.defects
    assert {n["attributes"]["defect_type"] for n in defect_messages} == {d["type"] for d in run.defects}
    # And the corrective-action Lambda recorded one action per defect under actions/<stream>/
    assert sorted(a["key"] for a in run.corrective_actions) == sorted(
        action_key(run.stream_id, d) for d in run.defects)
    assert {(a["defect"]["type"], a["action"]) for a in run.corrective_actions} == {
        (d["type"], action_for(d["type"])) for d in run.defects}


def test_results_in_the_bucket_are_queryable_with_duckdb(run: RunResult, aws: Aws, stack: Stack,
                                                         tmp_path: Path) -> None:
    # When the results bucket's records are copied locally
    copied = download_prefix(aws, stack.results_bucket, RESULTS_PREFIX, tmp_path)
    assert copied >= DURATION_S
    # Then DuckDB over the partitioned JSON lines returns this stream's defects
    rows = [r for r in query_defects(tmp_path) if r["stream_id"] == run.stream_id]
    assert [(r["type"], r["start_s"], r["end_s"]) for r in rows] == [
        (d["type"], d["start_s"], d["end_s"]) for d in run.defects]
    assert [json.loads(r["defect_json"]) for r in rows] == run.defects


def test_frames_bucket_got_every_frame_and_the_detectors_read_them(run: RunResult) -> None:
    frames = DURATION_S * FPS
    objects = frames + DURATION_S  # every frame, plus one audio object per second
    reported = run.bill()["s3_requests"]["by_source"]
    # Then the converter PUT one object per frame and per second of audio, and the bucket holds them
    assert reported["converter"]["PutObject"] == objects
    assert run.frame_objects == objects
    # And each detector read back what it looks at: the pictures (and A/V sync the audio too)
    assert reported["detector-freeze"]["GetObject"] == frames
    assert reported["detector-block_corruption"]["GetObject"] == frames
    assert reported["detector-av_sync"]["GetObject"] == objects
    # And the stream itself was fetched once per warm converter, checked (HEAD) once per second
    assert reported["converter"]["HeadObject"] == DURATION_S
    assert reported["workflow"]["PutObject"] == DURATION_S


def test_state_transitions_match_the_workflow_definition(run: RunResult, seconds_per_execution: int) -> None:
    # Given what the definition implies for this stream: its seconds, executions of 3 seconds, and the
    # notifications of each second
    model = LoopModel(json.loads(load_definition(DETECTORS)))
    by_second = {r["second"]: len(r["defects"]) for r in run.records}
    expected, executions = model.run(DURATION_S, seconds_per_execution=seconds_per_execution,
                                     defect_items=[by_second[s] for s in range(DURATION_S)])
    # Then the execution histories bill exactly that many transitions, state by state
    bill = run.bill()
    entered = Counter(e["stateEnteredEventDetails"]["name"] for e in run.events
                      if e["type"].endswith("StateEntered"))
    assert dict(entered) == dict(expected.entered)
    assert bill["state_transitions"] == expected.transitions
    assert bill["state_transitions_detail"]["executions"] == executions == 2
    assert bill["state_transitions_detail"]["retries"] == 0
    # And the service calls: a converter and three detector invocations per second, a publish per defect
    invoked = bill["lambda_invocations_by_workflow"]
    assert invoked == expected.calls_matching("lambda:invoke") == 4 * DURATION_S
    assert bill["sns_publishes"] == expected.calls["sns:publish"] == len(run.defects)
    # And every invocation, the corrective actions included, left a REPORT line with its duration
    assert bill["lambda_invocations"] == 4 * DURATION_S + len(run.defects)
    assert bill["lambda_gb_seconds"] > 0
    # And the process executor added each invocation's CPU time to its REPORT line
    assert all(f["cpu_s"] is not None and f["cpu_s"] > 0 for f in bill["lambda_functions"].values())


def test_unreadable_stream_fails_with_a_clear_cause_and_a_notification(
        aws: Aws, stack: Stack, tmp_path: Path) -> None:
    # Given a file that is not media
    path = tmp_path / "garbage.mp4"
    path.write_bytes(b"this is not a video stream\n" * 200)
    # When it runs through the workflow
    run = run_stream(aws, stack, path, timeout_s=120)
    # Then the execution fails with StreamUnreadable and a cause naming the object and the reason
    assert run.status == "FAILED"
    assert run.error == "StreamUnreadable"
    cause = json.loads(run.cause or "{}")
    assert cause["errorType"] == "StreamUnreadable"
    assert run.source in cause["errorMessage"]
    # And one failure notification went out (to people, not to the corrective action)
    assert [n["attributes"]["kind"] for n in run.notifications] == ["stream_unreadable"]
    assert run.notifications[0]["subject"] == "Stream cannot be analysed"
    assert run.stream_id in run.notifications[0]["message"]
    assert run.corrective_actions == [] and run.records == []
