"""The workflow definition (statemachine/stream_quality.asl.json) checked as a graph and by walking it.

The walk runs the real file in a small interpreter (asl_sim.py) with stand-ins for the Lambda functions
and AWS services, so these tests need neither AWS nor LocalStack.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from asl_sim import Execution, ExecutionFailed, TaskError, aws_sdk_blob
from infra_helpers import Synth

from infra.config import (
    DETECTORS,
    NOTIFICATIONS_PER_DETECTOR,
    MonitorConfig,
    max_seconds_per_execution,
)
from infra.history import HISTORY_LIMIT
from infra.workflow import load_definition, placeholders
from statemachine import ASL_PATH, DETECTOR_PLACEHOLDERS

SUBSTITUTIONS = {
    "ConverterFunctionArn": "arn:converter",
    "FreezeFunctionArn": "arn:freeze",
    "BlockCorruptionFunctionArn": "arn:block_corruption",
    "AvSyncFunctionArn": "arn:av_sync",
    "TopicArn": "arn:topic",
    "ResultsBucketName": "results-bucket",
    "NotificationsPerDetector": str(NOTIFICATIONS_PER_DETECTOR),
}


def definition(seconds_per_execution: int, detectors: tuple[str, ...] = DETECTORS) -> dict[str, Any]:
    text = load_definition(detectors)
    for key, value in {**SUBSTITUTIONS, "SecondsPerExecution": str(seconds_per_execution)}.items():
        text = text.replace("${" + key + "}", value)
    assert "${" not in text
    return json.loads(text)


def inner_machines(state: dict[str, Any]) -> list[dict[str, Any]]:
    return [*state.get("Branches", []), *([state["ItemProcessor"]] if "ItemProcessor" in state else [])]


def all_states(machine: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every state, nested ones (Parallel branches, Map processors) included."""
    out = {}
    for name, state in machine["States"].items():
        out[name] = state
        for inner in inner_machines(state):
            out.update(all_states(inner))
    return out


def targets(state: dict[str, Any]) -> list[str]:
    out = [state[k] for k in ("Next", "Default") if k in state]
    out += [c["Next"] for c in state.get("Choices", [])] + [c["Next"] for c in state.get("Catch", [])]
    return out


def reachable(machine: dict[str, Any]) -> set[str]:
    seen, todo = set(), [machine["StartAt"]]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        state = machine["States"][name]
        todo += targets(state)
        for inner in inner_machines(state):
            seen |= reachable(inner)
    return seen


def test_placeholders_match_the_stacks_substitutions_exactly(synthesized: Synth) -> None:
    # Given the definition file and the substitutions the Workflow construct passes
    workflow = synthesized.stack.node.find_child("Workflow")
    # Then each placeholder has a value and each value a placeholder
    assert placeholders(ASL_PATH.read_text()) == set(workflow.substitutions)
    assert set(SUBSTITUTIONS) | {"SecondsPerExecution"} == set(workflow.substitutions)


@pytest.mark.parametrize("detectors", [DETECTORS, ("freeze",), ("freeze", "av_sync")])
def test_disabled_detectors_leave_no_placeholder_behind(detectors: tuple[str, ...]) -> None:
    text = load_definition(detectors)
    expected = set(SUBSTITUTIONS) - {DETECTOR_PLACEHOLDERS[d] for d in DETECTORS if d not in detectors}
    assert placeholders(text) == expected | {"SecondsPerExecution"}
    assert len(json.loads(text)["States"]["Detect"]["Branches"]) == len(detectors)


def test_every_state_is_reachable_and_every_transition_lands() -> None:
    machine = json.loads(ASL_PATH.read_text())
    states = all_states(machine)
    # Then all targets exist, and nothing is unreachable from StartAt
    for name, state in states.items():
        for target in targets(state):
            assert target in states, (name, target)
    assert reachable(machine) == set(states)


def test_transient_lambda_errors_are_retried_with_backoff_and_jitter() -> None:
    for name, state in all_states(json.loads(ASL_PATH.read_text())).items():
        if state.get("Resource") == "arn:aws:states:::lambda:invoke":
            # Then the Lambda service's errors are retried, and so are the function's own transient
            # failures and timeouts (what fault injection raises: TransientError, Sandbox.Timedout)
            retries = state["Retry"]
            if name == "Convert":  # first, the wait at a live stream's edge: every second, no jitter
                live_edge, *retries = retries
                assert live_edge["ErrorEquals"] == ["SecondNotPublishedYet"]
                assert (live_edge["IntervalSeconds"], live_edge["BackoffRate"]) == (1, 1)
                assert live_edge.get("JitterStrategy", "NONE") == "NONE"
            service, function = retries
            assert {"Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
                    "Lambda.TooManyRequestsException"} <= set(service["ErrorEquals"]), name
            assert set(function["ErrorEquals"]) == {"TransientError", "Sandbox.Timedout", "States.Timeout"}
            for retry in (service, function):
                assert retry["BackoffRate"] == 2 and retry["JitterStrategy"] == "FULL", name
                assert retry["MaxAttempts"] >= 4, name
            # And the task passes its retry count, so that a function can tell a retry (logs, faults)
            assert state["Parameters"]["Payload"]["attempt.$"] == "$$.State.RetryCount", name


class FakeAws:
    """Stand-ins: a converter over `seconds` seconds, detectors counting seconds in their state, and
    recorders for SNS, S3 and StartExecution. `defect_at` makes the freeze detector report there."""

    def __init__(self, seconds: int, defect_at: int | None = None, unreadable: bool = False) -> None:
        self.seconds, self.defect_at, self.unreadable = seconds, defect_at, unreadable
        self.converted: list[int] = []
        self.published: list[dict[str, Any]] = []
        self.records: dict[str, dict[str, Any]] = {}
        self.started: list[dict[str, Any]] = []

    def __call__(self, resource: str, params: dict[str, Any]) -> Any:
        if resource == "arn:aws:states:::lambda:invoke":
            return {"Payload": self._lambda(params["FunctionName"], params["Payload"])}
        if resource == "arn:aws:states:::sns:publish":
            self.published.append(params)
            return {"MessageId": str(len(self.published))}
        if resource == "arn:aws:states:::aws-sdk:s3:putObject":
            stored = json.loads(aws_sdk_blob(params["Body"]))  # what S3 holds, as Step Functions sends it
            assert isinstance(stored, dict), f"the results object holds {stored!r}, not a JSON document"
            self.records[params["Key"]] = stored
            return {}
        if resource == "arn:aws:states:::states:startExecution":
            self.started.append(params)
            return {}
        raise AssertionError(resource)

    def _lambda(self, arn: str, event: dict[str, Any]) -> dict[str, Any]:
        n = event["second"]
        if arn == "arn:converter":
            if self.unreadable:
                raise TaskError("StreamUnreadable", json.dumps({"errorMessage": "s3://b/k: no video stream"}))
            self.converted.append(n)
            return {"frames": [f"frames/x/{n:06d}/frame-000.bin"], "audio": None,
                    "is_last": n == self.seconds - 1,
                    "result_key": f"results/date=2026-11-26/stream={event['stream_id']}/second={n:06d}.json",
                    "s3_requests": {"HeadObject": 1, "PutObject": 1}}
        name = arn.removeprefix("arn:")
        previous = next((e["state"] for e in event["states"] if e["detector"] == name), None)
        seen = (previous or {"seen": []})["seen"] + [n]
        defects = [{"type": name, "start_s": n, "end_s": n + 1, "confidence": 1.0}] \
            if name == "freeze" and n == self.defect_at else []
        return {"defects": defects, "carry": [{"detector": name, "state": {"seen": seen}}],
                "usage": [{"function": name, "s3_requests": {"GetObject": 1}}]}


def run_stream(aws: FakeAws, seconds_per_execution: int,
               detectors: tuple[str, ...] = DETECTORS) -> list[Execution]:
    """Run executions until the stream is done, starting each continuation the workflow asked for."""
    machine = definition(seconds_per_execution, detectors)
    executions = [Execution(machine, aws, name="run1")]
    executions[0].run({"bucket": "b", "key": "k.mp4", "stream_id": "cam-1"})
    while len(aws.started) >= len(executions):
        request = aws.started[len(executions) - 1]
        execution = Execution(machine, aws, name=request["Name"])
        executions.append(execution)
        execution.run(json.loads(json.dumps(request["Input"])))
    return executions


@pytest.mark.parametrize("seconds, per_execution", [(1, 300), (7, 300), (7, 3), (6, 3), (5, 1)])
def test_loop_body_runs_once_per_stream_second_across_continuations(seconds: int, per_execution: int) -> None:
    # Given a stream of `seconds` seconds and executions limited to `per_execution` seconds each
    aws = FakeAws(seconds)
    # When the workflow runs it to the end, continuing as new where it must
    executions = run_stream(aws, per_execution)
    # Then every second was converted exactly once, in order, and each loop state ran once per second
    assert aws.converted == list(range(seconds))
    entered = [name for e in executions for name in e.entered]
    for state in ("Convert", "Detect", "Freeze", "AvSync", "Evaluate", "Record", "Last?"):
        assert entered.count(state) == seconds, state
    assert entered.count("NextSecond") == seconds - len(executions)
    # And the executions were as many as needed, named by run and second (idempotent restarts)
    assert len(executions) == -(-seconds // per_execution)
    run = hashlib.md5(b"run1").hexdigest()
    names = [f"{run}-{i * per_execution}" for i in range(1, len(executions))]
    assert [e.name for e in executions[1:]] == names
    # And detector state flowed through every second and every continuation
    last_record = aws.records[max(aws.records)]
    assert last_record["second"] == seconds - 1
    assert len(aws.records) == seconds


def test_detector_state_survives_continue_as_new() -> None:
    aws = FakeAws(5)
    machine = definition(2, ("freeze",))
    seen: list[int] = []

    def spy(resource: str, params: dict[str, Any]) -> Any:
        if params.get("FunctionName") == "arn:freeze":
            entry = next((e for e in params["Payload"]["states"] if e["detector"] == "freeze"), None)
            seen.append(len(entry["state"]["seen"]) if entry else 0)
        return aws(resource, params)

    Execution(machine, spy, name="r").run({"bucket": "b", "key": "k", "stream_id": "s"})
    runs = 1
    while len(aws.started) >= runs:
        request = aws.started[runs - 1]
        Execution(machine, spy, name=request["Name"]).run(request["Input"])
        runs += 1
    assert runs == 3  # executions: seconds 0-1, 2-3, 4
    # Then the detector saw 0, 1, 2, 3, 4 earlier seconds in its state: nothing lost at the boundaries
    assert seen == [0, 1, 2, 3, 4]


def test_defects_are_published_one_message_each_and_recorded() -> None:
    aws = FakeAws(4, defect_at=2)
    run_stream(aws, 300)
    # Then one SNS message for the one defect, with the stream, second and defect in it
    (message,) = aws.published
    body = json.loads(message["Message"])
    assert body["stream_id"] == "cam-1" and body["second"] == 2 and body["defect"]["type"] == "freeze"
    assert message["MessageAttributes"]["kind"]["StringValue"] == "defect"
    assert message["MessageAttributes"]["defect_type"]["StringValue"] == "freeze"
    # And the second's record holds it, in the monolith's defect shape; other seconds hold none
    record = aws.records["results/date=2026-11-26/stream=cam-1/second=000002.json"]
    assert record["defects"] == [{"type": "freeze", "start_s": 2, "end_s": 3, "confidence": 1.0}]
    assert record["source"] == "s3://b/k.mp4"
    assert record["s3_requests"]["converter"] == {"HeadObject": 1, "PutObject": 1}
    assert len(record["s3_requests"]["detectors"]) == 3
    assert sum(len(r["defects"]) for r in aws.records.values()) == 1


def test_unreadable_stream_notifies_and_fails_with_a_clear_cause() -> None:
    aws = FakeAws(3, unreadable=True)
    execution = Execution(definition(300), aws)
    # When the converter reports StreamUnreadable
    with pytest.raises(ExecutionFailed) as failure:
        execution.run({"bucket": "b", "key": "k.mp4", "stream_id": "cam-1"})
    # Then the execution fails with that error and the converter's message as the cause
    assert failure.value.error == "StreamUnreadable"
    assert "no video stream" in failure.value.cause
    # And one notification says which stream could not be analysed
    (message,) = aws.published
    assert "cam-1" in message["Message"] and "no video stream" in message["Message"]
    assert message["MessageAttributes"]["kind"]["StringValue"] == "stream_unreadable"
    assert "Record" not in execution.entered


@pytest.mark.parametrize("payload", [
    {}, {"bucket": "b", "key": "k.mp4"}, {"bucket": "b", "key": 42, "stream_id": "s"},
    {"bucket": ["b"], "key": "k", "stream_id": "s"}, {"bucket": "b", "key": "k", "stream_id": ""},
    {"stream": {"bucket": "b"}},  # a cursor without its second and states is no continuation
])
def test_malformed_input_is_rejected_with_a_notice_before_anything_runs(payload: dict[str, Any]) -> None:
    aws = FakeAws(3)
    execution = Execution(definition(300), aws, name="bad-input")
    # When an execution starts with an input that does not name a stream
    with pytest.raises(ExecutionFailed) as failure:
        execution.run(payload)
    # Then it fails with InvalidRequest, saying what the input must hold, and nothing was invoked
    assert failure.value.error == "InvalidRequest"
    assert "bucket, key and stream_id" in failure.value.cause and "bad-input" in failure.value.cause
    assert aws.converted == [] and "Convert" not in execution.entered
    # And one notice says so
    (message,) = aws.published
    assert message["Message"] == failure.value.cause
    assert message["MessageAttributes"]["error"]["StringValue"] == "InvalidRequest"


@pytest.mark.parametrize("where, error", [
    ("arn:converter", "InvalidRequest"),  # the converter's request checks
    ("arn:converter", "Sandbox.Timedout"),  # retries exhausted
    ("arn:av_sync", "TransientError"),
    ("arn:freeze", "MemoryError"),
    ("arn:av_sync", "States.Timeout"),  # a reserved name: the execution fails as WorkflowError
])
def test_every_failure_after_the_input_is_accepted_is_notified(where: str, error: str) -> None:
    class Failing(FakeAws):
        def _lambda(self, arn: str, event: dict[str, Any]) -> dict[str, Any]:
            if arn == where and event["second"] == 1:
                raise TaskError(error, json.dumps({"errorMessage": f"{error} at second 1"}))
            return super()._lambda(arn, event)

    aws = Failing(3)
    execution = Execution(definition(300), aws)
    # When a function fails for good at second 1
    with pytest.raises(ExecutionFailed) as failure:
        execution.run({"bucket": "b", "key": "k.mp4", "stream_id": "cam-1"})
    # Then the execution fails with that error and cause, after one notice naming the stream and second
    assert failure.value.error == (error if not error.startswith("States.") else "WorkflowError")
    assert f"{error} at second 1" in failure.value.cause
    (message,) = aws.published
    assert "cam-1" in message["Message"] and "at second 1" in message["Message"]
    assert message["MessageAttributes"]["error"]["StringValue"] == error
    # And the second before it was recorded, the failed one was not
    assert sorted(aws.records) == ["results/date=2026-11-26/stream=cam-1/second=000000.json"]


class WorstCase(FakeAws):
    """Every task fails as often as its Retry blocks allow (errors alternating between the blocks, so each
    one is used up) before it succeeds, and every detector reports three defects every second."""

    def __call__(self, resource: str, params: dict[str, Any]) -> Any:
        key = (resource, params.get("FunctionName"), json.dumps(params.get("Payload", {}).get("second")),
               params.get("Message"), params.get("Key"), params.get("Name"))
        failures = self.failures.setdefault(key, list(self.plan(resource, params.get("FunctionName"))))
        if failures:
            raise TaskError(failures.pop(0), "injected")
        return super().__call__(resource, params)

    def __init__(self, seconds: int) -> None:
        super().__init__(seconds)
        self.failures: dict[Any, list[str]] = {}

    @staticmethod
    def plan(resource: str, function: str | None) -> list[str]:
        if resource == "arn:aws:states:::lambda:invoke":  # 5 service errors, 4 function errors
            # and the converter waits 30 times at a live stream's edge
            waits = ["SecondNotPublishedYet"] * 30 if function == "arn:converter" else []
            return waits + ["Lambda.ServiceException"] * 5 + ["TransientError"] * 4
        if resource == "arn:aws:states:::sns:publish":
            return ["SNS.ThrottledException"] * 4
        if resource == "arn:aws:states:::aws-sdk:s3:putObject":
            return ["S3.SdkClientException"] * 4
        return ["StepFunctions.SdkClientException"] * 4

    def _lambda(self, arn: str, event: dict[str, Any]) -> dict[str, Any]:
        out = super()._lambda(arn, event)
        if arn != "arn:converter":
            name = arn.removeprefix("arn:")
            out["defects"] = [{"type": name, "start_s": i, "end_s": i + 0.1, "confidence": 1}
                              for i in range(3)]
        return out


def test_history_bound_is_derived_from_the_definition() -> None:
    # Worked out by hand from the file (events per state: Pass/Choice 2, Task 5 + 3 per retry,
    # Parallel/Map 4, Map item 2): a worst-case second is
    #   Convert 5 + 3 x (30 live-edge waits + 5 + 4) = 122, Detect 4 + 3 x 32 = 100, Evaluate 2,
    #   AnyDefects? 2, Notify 4 + 6 x (2 + Publish 5 + 3 x 4) = 118, Record 5 + 3 x 4 = 17, Last? 2,
    #   NextSecond 2 = 365;
    # before the loop ExecutionStarted 1 + NewStream? 2 + Begin 2 + Init 2 = 7; the longest way out is
    # ContinueAsNew 17 failing into NotifyFailure 17, Failed 2, AnalysisFailed 1, ExecutionFailed 1 = 38.
    # (25,000 - 7 - 38) // 365 = 68; with the freeze detector alone a second is 225 and the bound 110.
    assert max_seconds_per_execution() == 68
    assert max_seconds_per_execution(("freeze",)) == 110
    MonitorConfig(seconds_per_execution=68)
    MonitorConfig(seconds_per_execution=110, detectors=("freeze",))
    with pytest.raises(ValueError, match=r"1\.\.68:"):
        MonitorConfig(seconds_per_execution=69)
    with pytest.raises(ValueError, match=r"1\.\.110:"):
        MonitorConfig(seconds_per_execution=111, detectors=("freeze",))
    assert 1 <= MonitorConfig().seconds_per_execution <= 68


@pytest.mark.parametrize("per_execution", [68, 69])
def test_worst_case_execution_history_around_the_bound(per_execution: int) -> None:
    # Given every task retried to the end of its Retry blocks and three defects per detector per second
    aws = WorstCase(per_execution + 2)
    # When an execution analyses `per_execution` seconds in the simulator, which counts events its own way
    execution = run_stream(aws, per_execution)[0]
    assert execution.entered.count("Convert") == per_execution
    # Then notifications are capped per detector and second (the record keeps all nine defects)
    assert len(aws.published) == (per_execution + 2) * NOTIFICATIONS_PER_DETECTOR * 3
    assert all(len(r["defects"]) == 9 for r in aws.records.values())
    # And the bound the config enforces (68) is tight: 68 seconds fit in the history, 69 would not
    # (hand count: 7 + 67 x 365 + (365 - NextSecond 2 + ContinueAsNew 17 + ContinuedAsNew 2) + 1 = 24,845)
    if per_execution == 68:
        assert execution.events == 24_845 <= HISTORY_LIMIT
    else:
        assert execution.events == 24_845 + 365 > HISTORY_LIMIT


@pytest.mark.parametrize("first_name", ["run1", "r" * 80])
def test_continuation_names_stay_within_80_characters_and_are_fixed_per_run_and_second(first_name: str
                                                                                         ) -> None:
    # Given a run whose first execution has the longest name Step Functions allows, continuing every second
    aws = FakeAws(3)
    machine = definition(1, ("freeze",))
    Execution(machine, aws, name=first_name).run({"bucket": "b", "key": "k.mp4", "stream_id": "cam-1"})
    # When it continues as new at a second with many digits, twice (a retried ContinueAsNew)
    request = aws.started[0]
    continued = {**request["Input"], "second": 9_999_999_998}
    for _ in range(2):
        Execution(machine, aws, name=request["Name"]).run(json.loads(json.dumps(continued)))
    # Then every continuation name is at most 80 characters, the same for the same run and second, and
    # different for another run
    started = [s["Name"] for s in aws.started]
    assert all(len(name) <= 80 for name in started), started
    assert started[1] == started[2] == f"{hashlib.md5(first_name.encode()).hexdigest()}-9999999999"
    assert started[0] == f"{hashlib.md5(first_name.encode()).hexdigest()}-1"
