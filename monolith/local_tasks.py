"""The after's tasks as local processes: what ECS runs in containers, run here against LocalStack.

Each "task" is the container's command (`settings.SERVE_COMMAND`, with this venv's interpreter
for "python") in the environment the stack gives the container (`ServiceSettings.environment()`) plus
the endpoint and credentials of the AWS it talks to. `stop()` sends SIGTERM, as ECS does on scale-in;
`kill()` sends SIGKILL, as a lost instance would. Each task's output (the service's JSON log lines) goes
to a file, which `usage()` reads with `monolith.serve.read_usage`.

    with LocalTasks(settings, aws_env, log_dir) as tasks:
        tasks.start(3)
        ...
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monolith.serve import read_usage
from settings import SERVE_COMMAND, STOP_TIMEOUT_S, ServiceSettings

ROOT = Path(__file__).resolve().parent.parent
_PR_SET_PDEATHSIG = 1


def task_command(python: str = sys.executable) -> list[str]:
    """The container's command with this interpreter in place of `python`."""
    assert SERVE_COMMAND[0] == "python"
    return [python, *SERVE_COMMAND[1:]]


def load_launcher() -> Any:
    """scripts/localstack.py (standard library only, it runs in LocalStack's own venv), imported by path:
    `start(dir)` / `stop(pid)` a LocalStack for the tasks to talk to."""
    spec = importlib.util.spec_from_file_location("localstack_launcher", ROOT / "scripts" / "localstack.py")
    assert spec and spec.loader
    if spec.name in sys.modules:
        return sys.modules[spec.name]
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _die_with_launcher() -> None:
    # Linux: the kernel sends the task SIGTERM if the launcher dies without stopping it, so no worker is
    # left polling a queue behind a crashed test or demo.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class LocalTask:
    index: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines() if self.log.exists() else []


class LocalTasks:
    """Start, stop and kill local tasks of the service; read what they logged."""

    def __init__(self, settings: ServiceSettings, aws_env: Mapping[str, str], log_dir: Path) -> None:
        self.settings = settings
        self.env = {**os.environ, **aws_env, **settings.environment(), "PYTHONUNBUFFERED": "1"}
        self.log_dir = Path(log_dir)
        self.tasks: list[LocalTask] = []

    def start(self, count: int = 1) -> list[LocalTask]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        started = []
        for _ in range(count):
            index = len(self.tasks)
            log = self.log_dir / f"task-{index}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    task_command(), cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=out,
                    stderr=subprocess.STDOUT, preexec_fn=_die_with_launcher)
            task = LocalTask(index, process, log)
            self.tasks.append(task)
            started.append(task)
        return started

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> dict[int, int]:
        """SIGTERM every running task, wait for them (SIGKILL after `timeout_s`, the stack's stop timeout,
        as ECS would); return
        {task index: exit code}."""
        running = [t for t in self.tasks if t.process.poll() is None]
        for task in running:
            task.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for task in running:
            try:
                task.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                task.process.kill()
                task.process.wait()
        return {t.index: t.process.returncode for t in self.tasks}

    def kill(self, task: LocalTask) -> None:
        """SIGKILL: the task loses everything in flight, as when its instance disappears."""
        task.process.send_signal(signal.SIGKILL)
        task.process.wait()

    def usage(self) -> list[dict[str, Any]]:
        return [u for task in self.tasks for u in read_usage(task.lines())]

    def __enter__(self) -> LocalTasks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
