"""`python -m monolith serve`: the after as a service, the container's entry point.

Worker processes take stream jobs from the SQS queue, one job at a time each (`--concurrency N` starts
N of them, so each job's CPU time is its process's), and analyse them with `monolith.service.Worker`.
Settings come from the environment (`settings.ServiceSettings`, MONITOR_*), as the stack sets
them on the container.

Stopping: SIGTERM (or SIGINT) lets a worker finish the second it is on, then give its message back
(visibility 0) so that another worker starts the stream at once. A worker waiting on the queue finishes
its long poll (at most `receive_wait_s`, well inside the stop timeout, `settings.STOP_TIMEOUT_S`)
and gives back what it brought: cutting the poll short would not stop SQS from handing a message to the
abandoned request, and that message would stay invisible for the whole visibility timeout. SIGKILL loses
nothing either: the message reappears after the visibility timeout and another worker analyses the stream
again, overwriting the same result keys; defects already published are published again (notifications
are at least once).

Metering: every S3/SQS/SNS request is counted by a botocore hook. Each job ends with one log line,
message "job finished", whose `usage` key holds the job's requests, CPU and wall time; a worker's
requests outside jobs (empty receives) are in the `usage` of its "worker stopped" line. `read_usage`
reads them back from the log lines.
"""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.connection
import os
import signal
import time
from collections.abc import Iterable
from typing import Any

from settings import ServiceSettings

EXIT_CONFIG = 2  # bad settings or an unreachable queue: exit, do not restart
USAGE_MESSAGES = ("job finished", "worker stopped")
RECEIVE_ERROR_PAUSE_S = 5.0


class StopSignal:
    """SIGTERM/SIGINT set `requested`; the worker looks at it between seconds and between polls."""

    def __init__(self) -> None:
        self.requested = False

    def install(self) -> StopSignal:
        signal.signal(signal.SIGTERM, self._handle)
        signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True

    def sleep(self, seconds: float) -> None:
        """Sleep, but wake up soon after a stop is requested."""
        deadline = time.monotonic() + seconds
        while not self.requested and time.monotonic() < deadline:
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))


def read_usage(lines: Iterable[str]) -> list[dict[str, Any]]:
    """The `usage` of every "job finished" and "worker stopped" line in a service log, in order (a worker's
    idle usage has outcome "idle"). Other lines — other logs, metrics, text — are skipped."""
    return [entry["usage"] for entry in _json_lines(lines)
            if entry.get("message") in USAGE_MESSAGES and "usage" in entry]


def read_live(lines: Iterable[str]) -> dict[str, dict[str, Any]]:
    """What the service logged of the live streams it followed, per stream id: when each stream-second's
    analysis was complete and each segment read ({index: epoch seconds}; a second analysed twice, after a
    stall, keeps its first time), how many playlist GETs each job made, and each defect notification with
    the second that made it known and when it was published."""
    out: dict[str, dict[str, Any]] = {}
    for entry in _json_lines(lines):
        stream_id = entry.get("stream_id")
        if not isinstance(stream_id, str):
            continue
        mine = out.setdefault(stream_id, {"seconds_done_at": {}, "segments_read_at": {}, "defects": [],
                                          "playlist_reads": 0})
        if entry.get("message") == "live progress" and isinstance(entry.get("live"), dict):
            live = entry["live"]
            for name in ("seconds_done_at", "segments_read_at"):
                for index, at in live.get(name, {}).items():
                    mine[name].setdefault(int(index), float(at))
            mine["playlist_reads"] += int(live.get("playlist_reads", 0))
        elif entry.get("message") == "defect found" and "published_at" in entry:
            mine["defects"].append({"defect": entry["defect"], "second": int(entry["second"]),
                                    "published_at": float(entry["published_at"])})
    return {k: v for k, v in out.items() if v["seconds_done_at"] or v["defects"]}


def _json_lines(lines: Iterable[str]) -> Iterable[dict[str, Any]]:
    for line in lines:
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            yield entry


def make_worker(settings: ServiceSettings, stop: StopSignal) -> Any:
    """A Worker with counted S3, SQS and SNS clients (endpoint, region and credentials from the
    environment, as boto3 reads them: the task role on ECS, LocalStack's AWS_ENDPOINT_URL locally)."""
    import boto3
    from botocore.config import Config

    from lambdas.shared.request_counting import RequestCounter
    from monolith.service import Worker

    counter = RequestCounter()
    config = Config(retries={"max_attempts": 5, "mode": "standard"},
                    read_timeout=settings.receive_wait_s + 10)  # above the long poll's wait
    clients = {name: counter.attach(boto3.client(name, config=config)) for name in ("s3", "sqs", "sns")}
    return Worker(settings, counter=counter, should_stop=lambda: stop.requested, **clients)


def run_worker(settings: ServiceSettings, parent_pid: int | None = None) -> int:
    """One worker process: jobs until SIGTERM (or until its parent is gone). Returns the exit code."""
    from botocore.exceptions import BotoCoreError, ClientError

    from lambdas.shared.observability import logger
    from monolith.service import cpu_seconds

    stop = StopSignal().install()
    wall0, cpu0 = time.monotonic(), cpu_seconds()
    try:
        worker = make_worker(settings, stop)
    except BotoCoreError as error:  # no region, a bad endpoint URL: nothing a restart would change
        logger.error("cannot create the AWS clients", extra={"reason": str(error)})
        return EXIT_CONFIG
    logger.info("worker started", extra={"pid": os.getpid(), "queue": settings.job_queue_url,
                                         "detectors": list(worker.detectors)})
    code = 0
    while not stop.requested and (parent_pid is None or os.getppid() == parent_pid):
        try:
            deliveries = worker.receive()
        except ClientError as error:
            code_name = error.response.get("Error", {}).get("Code", "")
            if "NonExistentQueue" in code_name or code_name in ("QueueDoesNotExist", "AccessDenied",
                                                                "InvalidAddress"):
                logger.error("cannot read the job queue", extra={"reason": str(error)})
                code = EXIT_CONFIG
                break
            logger.warning("receive failed, retrying", extra={"reason": str(error)})
            stop.sleep(RECEIVE_ERROR_PAUSE_S)
            continue
        except BotoCoreError as error:  # endpoint unreachable and the like: wait, then try again
            logger.warning("receive failed, retrying", extra={"reason": str(error)})
            stop.sleep(RECEIVE_ERROR_PAUSE_S)
            continue
        for delivery in deliveries:
            worker.handle(delivery)  # after a stop request: given back unstarted
    usage = worker.idle_usage(cpu_seconds() - cpu0, time.monotonic() - wall0)
    logger.info("worker stopped", extra={"usage": usage, "pid": os.getpid()})
    return code


def _child(settings: ServiceSettings, parent_pid: int) -> None:
    raise SystemExit(run_worker(settings, parent_pid))


def supervise(settings: ServiceSettings) -> int:
    """`concurrency` worker processes; a worker that dies is replaced; SIGTERM is passed on to all and
    waited for."""
    from lambdas.shared.observability import logger

    context = multiprocessing.get_context("spawn")  # fresh interpreters: no forked boto3 or decoder state
    stop = StopSignal().install()

    def start() -> multiprocessing.process.BaseProcess:
        process = context.Process(target=_child, args=(settings, os.getpid()), daemon=False)
        process.start()
        return process

    workers = [start() for _ in range(settings.concurrency)]
    code = 0
    while not stop.requested:
        multiprocessing.connection.wait([w.sentinel for w in workers], timeout=1.0)
        for i, process in enumerate(workers):
            if process.is_alive() or stop.requested:
                continue
            if process.exitcode == EXIT_CONFIG:
                logger.error("a worker could not start; stopping", extra={"exit_code": process.exitcode})
                stop.requested, code = True, EXIT_CONFIG
                break
            logger.warning("worker exited; starting another", extra={"exit_code": process.exitcode})
            workers[i] = start()
    for process in workers:
        if process.is_alive() and process.pid:
            os.kill(process.pid, signal.SIGTERM)
    for process in workers:
        process.join()
    return code


def serve(settings: ServiceSettings) -> int:
    """One worker in this process, or a supervisor of `concurrency` worker processes."""
    return run_worker(settings) if settings.concurrency == 1 else supervise(settings)
