"""A whole task of the after (`monolith serve --concurrency 4`, the container's command) on real SQS and S3:
its measured peak memory, summed over its process tree, fits the memory the stack reserves for it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from infra.after_config import AfterConfig
from monolith.bench import generate_bench_stream
from monolith.task_memory import measure_task, process_tree, service_aws, tree_kib


def test_the_tree_is_the_process_and_everything_below_it() -> None:
    # Given a process whose child holds 200 MiB it has written to (resident)
    code = ("import subprocess, sys; subprocess.Popen([sys.executable, '-c', "
            "'import time; held = b\"x\" * (200 << 20); time.sleep(60)']).wait()")
    parent = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            tree = tree_kib(parent.pid)
            if len(tree) == 2 and sum(rss for rss, _ in tree.values()) > 200 * 1024:
                break
            time.sleep(0.1)
        # Then the tree holds both, the child's 200 MiB counted in the sum and in its peak
        assert process_tree(parent.pid)[0] == parent.pid and len(tree) == 2
        assert sum(rss for rss, _ in tree.values()) > 200 * 1024
        assert all(peak >= rss > 0 for rss, peak in tree.values())
    finally:
        parent.kill()
        parent.wait()


@pytest.mark.slow
def test_a_task_of_four_streams_peaks_within_the_memory_the_stack_reserves(
        localstack: Any, tmp_path: Path) -> None:
    # Given the stack's default task (4 streams at a time, sized at its resolution from the committed
    # calibration), and four streams of that resolution as long as the calibration's
    config = AfterConfig()
    calibration = config.calibration
    seconds = float(calibration.data["task"]["stream_seconds"])
    stream = generate_bench_stream(tmp_path, config.resolution, seconds, lambda _: None)
    aws = service_aws(localstack.client_env(), "task-size-test")
    # When `monolith serve --concurrency 4` analyses them at once, its process tree sampled from outside
    task = measure_task(stream, config.concurrency, aws, tmp_path / "tasks")
    # Then the supervisor, multiprocessing's resource tracker and four workers ran, one job each
    assert task.jobs_per_worker == (1, 1, 1, 1)
    assert task.processes == config.concurrency + 2
    # and analysing took memory above the idle tree
    assert task.idle_mib < task.sampled_peak_mib <= task.peak_mib
    # and the whole tree's peak fits what the task definition reserves (a hard limit: over it, ECS kills)
    reserved = config.task_size.memory_mib
    assert task.peak_mib <= reserved, (task, reserved)
