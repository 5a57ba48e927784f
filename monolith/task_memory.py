"""What a whole task of the after holds in memory: `monolith serve --concurrency N` (the supervisor, N worker
interpreters and multiprocessing's resource tracker), each worker analysing a stream, measured from outside.

The task is the container's own command (`monolith.local_tasks`), talking to real SQS and S3 (LocalStack
here). Once every worker has started and polls the queue, the tree's memory is read (`idle_mib`); then N
jobs are sent at once, one per worker, and the tree is sampled (`/proc/<pid>/status`, every process below
the task's) until the N jobs have finished. Two figures:
- `sampled_peak_mib`: the largest sum of resident memory over the tree seen in one sample;
- `peak_mib`: the sum of each process's own peak (VmHWM, kept by the kernel, so no sample can miss it),
  over every process seen while the jobs ran.
  The streams' peaks can coincide, so this is what a task can reach at once, and what sizes the task
  (`monolith.sizing`).
Resident memory counts the shared libraries once per process, as the sum of the processes' RSS does.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from monolith.local_tasks import LocalTask, LocalTasks
from monolith.serve import read_usage
from settings import ServiceSettings

SAMPLE_S = 0.05
START_TIMEOUT_S = 120  # N interpreters importing PyAV, numpy and boto3 on a busy machine
KEY_PREFIX = "streams/"


class TaskMemoryError(RuntimeError):
    """The task did not run as measured: a worker failed to start, a job failed, or it took too long."""


@dataclass(frozen=True)
class TaskMemory:
    concurrency: int
    processes: int  # seen in the task's tree while it analysed
    idle_mib: float  # the tree with every worker started and polling, before any job
    sampled_peak_mib: float  # the largest sum of RSS over the tree in one sample
    peak_mib: float  # the sum of each process's own peak RSS (VmHWM)
    jobs_per_worker: tuple[int, ...]  # 1 each: the N streams were analysed at once
    wall_s: float  # from sending the jobs to the last one finished


@dataclass(frozen=True)
class ServiceAws:
    """A source bucket, a results bucket, a topic and a job queue for the task, on the AWS of `env`."""

    env: dict[str, str]
    source_bucket: str
    settings: ServiceSettings

    def client(self, service: str) -> Any:
        import boto3

        env = self.env
        return boto3.client(service, endpoint_url=env.get("AWS_ENDPOINT_URL"),
                            region_name=env["AWS_DEFAULT_REGION"], aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])


def service_aws(env: Mapping[str, str], name: str = "task-memory") -> ServiceAws:
    """Create the buckets, topic and queue a task needs (names made unique with `name` and a random tag)."""
    tag = f"{name}-{uuid.uuid4().hex[:8]}"
    bare = ServiceAws(dict(env), f"{tag}-streams", ServiceSettings())
    s3, sqs, sns = (bare.client(service) for service in ("s3", "sqs", "sns"))
    for bucket in (bare.source_bucket, f"{tag}-results"):
        s3.create_bucket(Bucket=bucket)
    topic = sns.create_topic(Name=f"{tag}-defects")["TopicArn"]
    settings = ServiceSettings(job_queue_url=sqs.create_queue(QueueName=f"{tag}-jobs")["QueueUrl"],
                               results_bucket=f"{tag}-results", topic_arn=topic,
                               source_buckets=(bare.source_bucket,), receive_wait_s=1)
    return replace(bare, settings=settings)


# --- the process tree, from /proc ---------------------------------------------------------------------
def process_tree(root: int) -> list[int]:
    """`root` and every process below it (each thread's children: /proc/<pid>/task/<tid>/children)."""
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        try:
            threads = list(Path(f"/proc/{pid}/task").iterdir())
        except OSError:
            continue
        for thread in threads:
            try:
                todo += [int(child) for child in (thread / "children").read_text().split()]
            except OSError:
                continue
    return found


def memory_kib(pid: int) -> tuple[int, int]:
    """(resident now, resident at its peak) of a process, in KiB; (0, 0) once it is gone."""
    values = {"VmRSS:": 0, "VmHWM:": 0}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key = line.split(maxsplit=1)[0] if line else ""
            if key in values:
                values[key] = int(line.split()[1])
    except OSError:
        pass
    return values["VmRSS:"], values["VmHWM:"]


def tree_kib(root: int) -> dict[int, tuple[int, int]]:
    """{pid: (resident now, resident at its peak)} in KiB for `root` and every process below it."""
    return {pid: memory_kib(pid) for pid in process_tree(root)}


# --- one measurement ------------------------------------------------------------------------------------
def _messages(task: LocalTask, message: str) -> list[dict[str, Any]]:
    out = []
    for line in task.lines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("message") == message:
            out.append(entry)
    return out


def _failed(task: LocalTask, what: str) -> TaskMemoryError:
    tail = "\n".join(task.lines()[-20:])
    return TaskMemoryError(f"{what}; the task's log ({task.log}) ends:\n{tail}")


def measure_task(stream: Path, concurrency: int, aws: ServiceAws, log_dir: Path, *,
                 timeout_s: float = 900) -> TaskMemory:
    """Run `monolith serve --concurrency N` with N jobs of `stream` at once; its tree's memory."""
    s3, sqs = aws.client("s3"), aws.client("sqs")
    key = f"{KEY_PREFIX}{stream.name}"
    s3.upload_file(str(stream), aws.source_bucket, key)
    settings = replace(aws.settings, concurrency=concurrency)
    with LocalTasks(settings, aws.env, log_dir) as tasks:
        [task] = tasks.start(1)
        deadline = time.monotonic() + START_TIMEOUT_S
        while len(_messages(task, "worker started")) < concurrency:
            if task.process.poll() is not None:
                raise _failed(task, f"the task exited ({task.process.returncode}) before its workers started")
            if time.monotonic() > deadline:
                raise _failed(task, f"{concurrency} workers did not start within {START_TIMEOUT_S} s")
            time.sleep(0.2)
        time.sleep(1.0)  # every worker past its first poll
        idle_kib = sum(rss for rss, _ in tree_kib(task.pid).values())
        for index in range(concurrency):
            sqs.send_message(QueueUrl=settings.job_queue_url, MessageBody=json.dumps(
                {"bucket": aws.source_bucket, "key": key, "stream_id": f"{stream.stem}-{index}"}))
        started = time.monotonic()
        sampled_kib, peaks = 0, {}  # each process's peak as last read: one that exited keeps its last
        while True:
            tree = tree_kib(task.pid)
            sampled_kib = max(sampled_kib, sum(rss for rss, _ in tree.values()))
            peaks.update({pid: max(peak, peaks.get(pid, 0)) for pid, (_, peak) in tree.items() if peak})
            finished = [u for u in read_usage(task.lines()) if u["outcome"] != "idle"]
            if len(finished) >= concurrency:
                break
            if task.process.poll() is not None:
                raise _failed(task, f"the task exited ({task.process.returncode}) while analysing")
            if time.monotonic() - started > timeout_s:
                raise _failed(task, f"{concurrency} jobs did not finish within {timeout_s:g} s")
            time.sleep(SAMPLE_S)
        wall = time.monotonic() - started
        failed = [u for u in finished if u["outcome"] != "analysed"]
        if failed:
            raise _failed(task, f"{len(failed)} job(s) ended {failed[0]['outcome']}, not analysed")
        tasks.stop()
        jobs = tuple(sorted(u["jobs"] for u in read_usage(task.lines()) if u["outcome"] == "idle"))
    if jobs != (1,) * concurrency:
        raise TaskMemoryError(f"the {concurrency} streams were not analysed at once, one per worker "
                              f"(jobs per worker: {list(jobs)}); measure again")
    # The kernel batches its RSS counters: the sum of peaks can read a hair under a sampled sum.
    peak_kib = max(sum(peaks.values()), sampled_kib)
    return TaskMemory(concurrency, len(peaks), round(idle_kib / 1024, 1), round(sampled_kib / 1024, 1),
                      round(peak_kib / 1024, 1), jobs, round(wall, 1))
