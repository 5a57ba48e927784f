"""The local launcher runs the container's command as a real process and stops it as ECS does."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from monolith.local_tasks import LocalTasks
from settings import ServiceSettings


def test_a_local_task_keeps_polling_an_unreachable_queue_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    # Given an endpoint where nothing listens (a port just freed)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{probe.getsockname()[1]}"
    aws_env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
               "AWS_DEFAULT_REGION": "us-east-1"}
    settings = ServiceSettings(job_queue_url=f"{endpoint}/000000000000/jobs", results_bucket="results",
                               topic_arn="arn:aws:sns:us-east-1:000000000000:defects", receive_wait_s=1)
    tasks = LocalTasks(settings, aws_env, tmp_path)
    [task] = tasks.start(1)
    # When it has tried the queue and is waiting to try again
    def retrying() -> bool:
        return any("receive failed, retrying" in line for line in task.lines())

    deadline = time.monotonic() + 60
    while not retrying() and time.monotonic() < deadline:
        assert task.process.poll() is None, "\n".join(task.lines())
        time.sleep(0.2)
    assert retrying(), "\n".join(task.lines())
    # Then SIGTERM stops it with exit code 0, and its last line bills the failed attempts to no job
    assert tasks.stop() == {0: 0}
    [idle] = tasks.usage()
    assert idle["outcome"] == "idle" and idle["jobs"] == 0
    assert idle["requests"]["sqs"]["ReceiveMessage"] >= 1  # every attempt (botocore retries included)
