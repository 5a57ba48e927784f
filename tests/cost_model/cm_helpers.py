"""Shared pieces of the cost-model tests: a tiny looping workflow like the project's, and the CLI run as a
user runs it."""

from __future__ import annotations

from typing import Any

import pytest

from cost_model import cli


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`python -m cost_model ARGV`: (exit code, stdout, stderr)."""
    try:
        code = cli.main(list(argv))
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def task(
    next_: str | None = None, resource: str = "arn:aws:states:::lambda:invoke", fn: str = "${F}", **extra: Any
) -> dict[str, Any]:
    state: dict[str, Any] = {
        "Type": "Task",
        "Resource": resource,
        "Parameters": {"FunctionName": fn},
        **extra,
    }
    state.update({"Next": next_} if next_ else {"End": True})
    return state


# A stream loop in miniature: fresh/continued start, one worker, notifications, continue-as-new.
SMALL_LOOP = {
    "StartAt": "Fresh?",
    "States": {
        "Fresh?": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.cursor", "IsPresent": True, "Next": "Init"}],
            "Default": "Begin",
        },
        "Begin": {"Type": "Pass", "Next": "Init"},
        "Init": {"Type": "Pass", "Next": "Work"},
        "Work": task("Any?", fn="${Worker}"),
        "Any?": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.d[0]", "IsPresent": True, "Next": "Tell"}],
            "Default": "Save",
        },
        "Tell": {
            "Type": "Map",
            "Next": "Save",
            "ItemProcessor": {
                "StartAt": "Pub",
                "States": {"Pub": task(resource="arn:aws:states:::sns:publish")},
            },
        },
        "Save": task("Last?", resource="arn:aws:states:::aws-sdk:s3:putObject"),
        "Last?": {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.last", "BooleanEquals": True, "Next": "Done"},
                {"Variable": "$.left", "NumericLessThanEquals": 1, "Next": "Again"},
            ],
            "Default": "Next",
        },
        "Next": {"Type": "Pass", "Next": "Work"},
        "Again": task("Gone", resource="arn:aws:states:::states:startExecution"),
        "Gone": {"Type": "Succeed"},
        "Done": {"Type": "Succeed"},
    },
}


def live_after_run(**changes: Any) -> dict[str, Any]:
    """A live run's `after` by hand: 20 s in 10 segments, 3 defects, 1 followed job and 9 duplicates; 25
    playlist reads; the record written 2 + 0 + 3 = 5 times; batches of 60 s: 1 results object."""
    jobs = [{"outcome": "analysed", "stream_seconds": 20, "wall_s": 12.0,
             "live": {"playlist_reads": 25, "checkpoints": 5}}]
    jobs += [{"outcome": "duplicate", "stream_seconds": 0, "wall_s": 0.03,
              "live": {"playlist_reads": 0, "checkpoints": 0}}] * 9
    run = {"stream_seconds": 20, "defects": 3, "jobs": jobs, "service_cpu_s": 2.0, "sns_publishes": 3,
           # GETs: 10 segments + 10 follower records + 25 playlist reads; PUTs: 1 results + 5 records
           "s3_requests": {"by_source": {"service": {"GetObject": 45, "PutObject": 6}}},
           "sqs_requests": {"ReceiveMessage": 10, "DeleteMessage": 10, "ChangeMessageVisibility": 1}}
    return {**run, **changes}
