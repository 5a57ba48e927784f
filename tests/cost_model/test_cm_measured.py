"""Measured counts (run summary, execution history) and the analytic-equals-measured check."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cm_helpers import SMALL_LOOP, live_after_run, run

from cost_model.inputs import NEEDS, InputError
from cost_model.measured import check, count_execution, history, read_summary
from statemachine.asl import LoopModel


def write(tmp_path: Path, data: Any, name: str = "summary.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def test_read_summary_accepts_counts_or_lists(tmp_path: Path) -> None:
    # Given a demo summary with defects/notifications as lists
    path = write(
        tmp_path,
        {
            "stream_seconds": 20,
            "defects": [{"type": "freeze"}],
            "notifications": [{}, {}],
            "corrective_actions": 2,
            "state_transitions": 210,
            "s3_requests": {"put": 542, "get": 1540, "list": 0},
            "lambda_invocations": 82,
            "lambda_gb_seconds": 12.5,
        },
    )
    m = read_summary(path)
    assert (m.stream_seconds, m.notifications, m.corrective_actions, m.state_transitions) == (20, 2, 2, 210)
    assert m.s3_requests["put"] == 542 and m.lambda_gb_seconds == 12.5


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[]",
        json.dumps({"stream_seconds": 3}),
        json.dumps({"stream_seconds": -1, "state_transitions": 3}),
        json.dumps({"stream_seconds": 3, "state_transitions": "many"}),
    ],
)
def test_read_summary_rejects_bad_files_with_one_reason(tmp_path: Path, content: str) -> None:
    with pytest.raises(InputError):
        read_summary(write(tmp_path, content))


def test_read_summary_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        read_summary(tmp_path / "absent.json")


def test_check_real_definition_against_a_consistent_summary(tmp_path: Path) -> None:
    # Given the project's workflow and a 20 s run with 2 notifications on 2 seconds, one execution
    from statemachine import ASL_PATH
    from statemachine.asl import load

    loop = LoopModel(load(ASL_PATH))
    # By hand: 20 x 10 + fresh prefix 3 + done tail 0 + 2 Notify + 2 Publish = 207
    m = read_summary(
        write(
            tmp_path,
            {
                "stream_seconds": 20,
                "state_transitions": 207,
                "notifications": 2,
                "executions": 1,
                "lambda_invocations": 82,
                # frames + audio, Record PUTs, 2 corrective-action records; detector GETs + 1 stream download
                "s3_requests": {"put": 20 * 26 + 20 + 2, "get": 20 * 76 + 1, "head": 20},
            },
        )
    )
    rows = {
        r["quantity"]: r
        for r in check(
            loop,
            m,
            seconds_per_execution=300,
            frames_shipped=25,
            needs=dict(NEEDS),
            detectors=("freeze", "block_corruption", "av_sync"),
        )
    }
    assert rows["state transitions"]["equal"], rows
    assert rows["executions"]["equal"]
    assert rows["Lambda invocations"]["analytic"] == 80 + 2  # 4 per second + 2 corrective actions
    assert rows["S3 PUT"]["equal"] and rows["S3 GET/HEAD"]["equal"]
    # When the run did one transition more than the definition implies, Then the check says so
    m.state_transitions += 1
    assert not check(
        loop,
        m,
        seconds_per_execution=300,
        frames_shipped=25,
        needs=dict(NEEDS),
        detectors=("freeze",),
    )[0]["equal"]


# --- execution history ---------------------------------------------------------------------------
class FakeHistory:
    """Builds events like GetExecutionHistory returns, serves them 3 per page."""

    def __init__(self) -> None:
        self.executions: dict[str, list[dict[str, Any]]] = {}
        self.calls: list[dict[str, Any]] = []
        self._t = datetime(2026, 11, 26, tzinfo=UTC)

    def build(self, arn: str, steps: list[tuple[str, ...]]) -> None:
        events: list[dict[str, Any]] = []

        def add(kind: str, **details: Any) -> dict[str, Any]:
            self._t += timedelta(milliseconds=500)
            event = {
                "id": len(events) + 1,
                "previousEventId": len(events),
                "type": kind,
                "timestamp": self._t,
                **details,
            }
            events.append(event)
            return event

        add("ExecutionStarted")
        for step in steps:
            kind, name, *rest = step
            add(f"{kind}StateEntered", stateEnteredEventDetails={"name": name})
            if kind == "Task":
                resource_type, resource, output, attempts = rest[0], rest[1], rest[2], int(rest[3])
                for attempt in range(attempts):
                    add(
                        "TaskScheduled",
                        taskScheduledEventDetails={
                            "resourceType": resource_type,
                            "resource": resource,
                            "parameters": json.dumps(
                                {"FunctionName": "arn:aws:lambda:us-east-1:1:function:f"}
                            ),
                        },
                    )
                    add("TaskStarted", taskStartedEventDetails={})
                    if attempt < attempts - 1:
                        add("TaskFailed", taskFailedEventDetails={"error": "Lambda.TooManyRequestsException"})
                    else:
                        add(
                            "TaskSucceeded",
                            taskSucceededEventDetails={
                                "resourceType": resource_type,
                                "resource": resource,
                                "output": output,
                            },
                        )
        add("ExecutionSucceeded")
        self.executions[arn] = events

    def get_execution_history(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(kw)
        events = self.executions[kw["executionArn"]]
        start = int(kw.get("nextToken", 0))
        page = {"events": events[start : start + 3]}
        if start + 3 < len(events):
            page["nextToken"] = str(start + 3)
        return page


def work(puts: int) -> tuple[str, ...]:
    return (
        "Task",
        "Work",
        "lambda",
        "invoke",
        json.dumps({"Payload": {"s3_requests": {"PutObject": puts, "HeadObject": 1}}}),
        "1",
    )


SAVE = ("Task", "Save", "aws-sdk:s3", "putObject", "{}", "1")


def test_history_follows_next_tokens() -> None:
    fake = FakeHistory()
    fake.build("arn:1", [("Pass", "Init")])
    events = history(fake, "arn:1")
    assert [e["type"] for e in events] == ["ExecutionStarted", "PassStateEntered", "ExecutionSucceeded"]
    fake.build("arn:2", [("Pass", "A"), ("Pass", "B"), ("Pass", "C")])
    assert len(history(fake, "arn:2")) == 5 and len(fake.calls) == 1 + 2


def test_count_execution_with_retries_notifications_and_continue_as_new() -> None:
    # Given the small loop run over 3 seconds in two executions: second 0 with a retried Work and one
    # defect notified, second 1 continuing as new, second 2 in the continued execution, last
    fake = FakeHistory()
    fake.build(
        "arn:first",
        [
            ("Choice", "Fresh?"),
            ("Pass", "Begin"),
            ("Pass", "Init"),
            (
                "Task",
                "Work",
                "lambda",
                "invoke",
                json.dumps({"Payload": {"s3_requests": {"PutObject": 3}}}),
                "2",
            ),
            ("Choice", "Any?"),
            ("Map", "Tell"),
            ("Task", "Pub", "sns", "publish", "{}", "1"),
            SAVE,
            ("Choice", "Last?"),
            ("Pass", "Next"),
            work(3),
            ("Choice", "Any?"),
            SAVE,
            ("Choice", "Last?"),
            ("Task", "Again", "states", "startExecution", json.dumps({"ExecutionArn": "arn:second"}), "1"),
            ("Succeed", "Gone"),
        ],
    )
    fake.build(
        "arn:second",
        [
            ("Choice", "Fresh?"),
            ("Pass", "Init"),
            work(3),
            ("Choice", "Any?"),
            SAVE,
            ("Choice", "Last?"),
            ("Succeed", "Done"),
        ],
    )
    loop = LoopModel(SMALL_LOOP)
    m = count_execution(fake, "arn:first", loop=loop, memory_mb={"*": 1024})
    # Then by hand: 16 states entered in the first, 7 in the second, + 1 retry = 24
    assert m.executions == 2 and m.retries == 1
    assert m.state_transitions == 16 + 7 + 1
    assert (m.stream_seconds, m.defect_seconds, m.notifications) == (3, 1, 1)
    assert m.s3_requests["put"] == 3 + 3 + 3 + 3  # the Lambdas' PutObjects + 3 Save (putObject) states
    assert m.s3_requests["get"] == 2  # HeadObject reported by the 2 later Work calls
    assert m.lambda_invocations == 3
    assert m.lambda_gb_seconds == pytest.approx(3 * 0.5 * 1.0)  # 3 successes x 0.5 s x 1 GB
    # And the definition predicts the same: replaying 3 seconds, 2 per execution, one notification
    rows = check(loop, m, seconds_per_execution=2, frames_shipped=25, needs={}, detectors=())
    assert rows[0]["quantity"] == "state transitions" and rows[0]["equal"], rows
    assert rows[1]["quantity"] == "executions" and rows[1]["equal"]


def test_count_execution_without_following() -> None:
    fake = FakeHistory()
    fake.build(
        "arn:a",
        [
            ("Pass", "Init"),
            work(1),
            ("Task", "Again", "states", "startExecution", json.dumps({"ExecutionArn": "arn:b"}), "1"),
        ],
    )
    m = count_execution(fake, "arn:a", loop=LoopModel(SMALL_LOOP), follow=False)
    assert m.executions == 1 and m.lambda_gb_seconds is None


def test_check_a_live_run_by_hand(tmp_path: Path) -> None:
    # Given a 20 s live run: 10 segments (so 10 starter invocations), 3 waits at the live edge, the loop
    # busy 0.5 s per stream-second (converter 6 s + the slowest detector 4 s over 20 s), 2 notifications
    from statemachine import ASL_PATH
    from statemachine.asl import load

    loop = LoopModel(load(ASL_PATH))
    m = read_summary(write(tmp_path, {
        "stream_seconds": 20, "executions": 1, "notifications": 2, "live_edge_waits": 3,
        # 207 as for a file (20 x 10 + 3 + 2 + 2), + 3 Convert retries
        "state_transitions": 210,
        # 80 workflow + 3 waits + 2 corrective actions + 10 starters
        "lambda_invocations": 95,
        # detector reads 20 x 76 + 20 playlist GETs + 3 at waits + 10 segments + 10 starter playlist GETs
        "s3_requests": {"put": 20 * 26 + 20 + 2, "get": 1520 + 20 + 3 + 10 + 10},
        "lambda_functions": {"converter": {"duration_s": 6.0}, "detector-freeze": {"duration_s": 4.0},
                             "detector-av_sync": {"duration_s": 3.0}},
        "live": {"published": {"segments": [{}] * 10}},
    }))
    rows = {r["quantity"]: r for r in check(loop, m, seconds_per_execution=300, frames_shipped=25,
                                             needs=dict(NEEDS), detectors=("freeze", "block_corruption",
                                                                           "av_sync"))}
    for quantity in ("state transitions", "executions", "Lambda invocations", "S3 PUT", "S3 GET/HEAD"):
        assert rows[quantity]["equal"], rows[quantity]
    # The waits are timing: shown beside the model's 20 x (1 - 0.5) / 1 s = 10, never checked
    waits = rows["waits at the live edge"]
    assert (waits["analytic"], waits["measured"], waits["equal"]) == (10.0, 3, None)
    # When the starters are not counted, Then the invocations differ
    m.lambda_invocations = 85
    assert not {r["quantity"]: r for r in check(loop, m, seconds_per_execution=300, frames_shipped=25,
                                                needs=dict(NEEDS), detectors=("freeze", "block_corruption",
                                                                              "av_sync"))
                }["Lambda invocations"]["equal"]


def test_count_checks_the_afters_run_of_a_live_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    # Given a live run's summary (make demo-live): the before at the top, the after's run of the same
    # stream under `live` (10 segments, 20 s, 3 defects) and the serverless design that failed to follow it
    before = {"stream_seconds": 20, "executions": 1, "notifications": 3, "state_transitions": 210,
              "live": {"published": {"segments": [{}] * 10},
                       "after": live_after_run(), "serverless": {"status": "FAILED", "error": "boom"}}}
    path = write(tmp_path, before)
    # When counted
    code, out, _ = run(capsys, "count", "--summary", str(path), "--json")
    found = json.loads(out)
    rows = {r["quantity"]: r for r in found["check"]}
    # Then the after's live rows are there, equal where timing does not enter
    assert code == 0 and rows["after live jobs (playlist events)"]["equal"] is True
    assert rows["after S3 GET"]["analytic"] == 45 and rows["after S3 GET"]["equal"] is True
    # And the design that did not follow the stream is named, not checked
    assert "serverless: did not follow the live stream (boom): nothing to check" in found["measured"]["notes"]
    assert not any(q.startswith("serverless") for q in rows)
