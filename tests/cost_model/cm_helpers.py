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
