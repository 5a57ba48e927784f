"""The container and the local tasks run the same command: the Dockerfile's ENTRYPOINT + CMD is
`settings.SERVE_COMMAND`, which the local launcher runs with the venv's interpreter."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from monolith.local_tasks import task_command
from settings import SERVE_COMMAND

DOCKERFILE = Path(__file__).resolve().parents[1] / "Dockerfile"


def dockerfile_command(text: str) -> list[str]:
    """ENTRYPOINT + CMD of the final stage, both required in exec (JSON) form: the shell form runs the
    service under /bin/sh -c, which does not pass ECS's SIGTERM on, so a stopped task would lose its
    current stream's progress instead of releasing it."""
    text = re.sub(r"\\\r?\n", " ", text)  # line continuations
    stages = re.split(r"(?im)^\s*FROM\s", text)
    found: dict[str, list[str]] = {}
    for line in stages[-1].splitlines():
        match = re.match(r"\s*(ENTRYPOINT|CMD)\s+(.*)$", line, re.IGNORECASE)
        if not match:
            continue
        instruction, value = match[1].upper(), match[2].strip()
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        assert isinstance(parsed, list) and all(isinstance(v, str) for v in parsed), (
            f"{instruction} must use the exec form [\"…\", …] so that SIGTERM reaches the service: {value}")
        found[instruction] = parsed  # the last one counts, as in Docker
    return found.get("ENTRYPOINT", []) + found.get("CMD", [])


def test_the_dockerfile_runs_the_serve_command() -> None:
    assert DOCKERFILE.is_file(), f"{DOCKERFILE} is missing: the after's image is built from it"
    assert dockerfile_command(DOCKERFILE.read_text()) == list(SERVE_COMMAND)


def test_the_local_tasks_run_the_serve_command_with_this_interpreter() -> None:
    assert task_command() == [sys.executable, "-m", "monolith", "serve"]
    assert task_command()[1:] == list(SERVE_COMMAND[1:])


def test_the_command_parser_reads_exec_forms_and_refuses_the_shell_form() -> None:
    text = ('FROM python:3.13 AS build\nCMD ["wrong"]\nFROM python:3.13-slim\n'
            'ENTRYPOINT ["python", "-m", \\\n "monolith"]\nCMD ["serve"]\n')
    assert dockerfile_command(text) == ["python", "-m", "monolith", "serve"]
    try:
        dockerfile_command("FROM x\nCMD python -m monolith serve\n")
    except AssertionError as error:
        assert "exec form" in str(error)
    else:
        raise AssertionError("the shell form was accepted")
