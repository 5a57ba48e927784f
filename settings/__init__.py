"""The after's service settings: one side-effect-free module on the ground floor that the service
(`monolith serve`), the after stack (queue, task definition, environment) and the cost model all import.
It imports the standard library only, so the service's image carries it and nothing above it.

The service is a queue consumer: a job is the before's StartExecution input (`bucket`, `key`,
`stream_id`). Counts that the cost model prices follow from these settings and the stream's length:

- S3: one GET per stream (the stream is read once, in one request); results are written in batches of
  `results_batch_seconds` stream-seconds, one PUT per batch (key fixed by stream and first second, so a
  redelivered job overwrites instead of duplicating);
- SQS: one receive and one delete per job, plus one visibility extension every `heartbeat_seconds`
  stream-seconds (stream time, not wall time, so the count follows from the stream: for a live stream the
  two are the same); idle polling is billed per poller, not per stream;
- SNS: one publish per defect, as in the before.

A job that fails is made visible again after `retry_delay_s` (one more ChangeMessageVisibility); on its
`max_receives`-th receive the service publishes the "cannot be analysed" notification and SQS moves the
message to the dead-letter queue on the next receive. Failures are not priced by the cost model.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

# Environment variable names: the stack sets them on the container, `monolith serve` reads them.
ENV_PREFIX = "MONITOR_"
# The container's command, and what the local launcher (monolith/local_tasks.py) runs with the venv's
# interpreter in place of "python": the Dockerfile test compares the two.
SERVE_COMMAND = ("python", "-m", "monolith", "serve")
# SIGTERM → SIGKILL: the container's stop timeout (ECS's maximum), set by the stack (infra/service.py) and
# kept by the local launcher (monolith/local_tasks.py). A stopping worker finishes the second in hand and
# its long poll (at most receive_wait_s), then releases its job: well inside it.
STOP_TIMEOUT_S = 120
# Powertools names the service's logs and metrics with it (the before's functions use their role).
SERVICE_NAME = "monolith-service"
# Live streams (monolith/live.py): each followed stream's lease and checkpoint is one object under this
# prefix of the results bucket.
FOLLOWERS_PREFIX = "followers/"


@dataclass(frozen=True)
class ServiceSettings:
    job_queue_url: str = ""
    results_bucket: str = ""
    topic_arn: str = ""
    source_buckets: tuple[str, ...] = ()  # buckets jobs may name; empty = any (local use only)
    detectors: tuple[str, ...] = ("freeze", "block_corruption", "av_sync")
    concurrency: int = 1  # streams analysed at once per task
    results_batch_seconds: int = 60  # stream-seconds per results object
    heartbeat_seconds: int = 30  # stream-seconds between visibility extensions
    visibility_timeout_s: int = 300  # the queue's; each extension sets it again from now
    max_receives: int = 3  # receives before a job goes to the dead-letter queue
    receive_wait_s: int = 20  # SQS long polling
    retry_delay_s: int = 10  # a failed job is received again after this long (until max_receives)
    # Live streams (monolith/live.py)
    live_poll_s: float = 0.5  # playlist GETs at the live edge: one per poll
    stall_timeout_s: float = 30.0  # a playlist that has not grown for this long: stalled
    missing_timeout_s: float = 10.0  # a listed segment still absent from S3 after this long: failed
    lease_s: float = 180.0  # a follower not heard of (record not written) for this long is replaced

    def __post_init__(self) -> None:
        for name in ("concurrency", "results_batch_seconds", "heartbeat_seconds", "visibility_timeout_s",
                     "max_receives"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.receive_wait_s <= 20:
            raise ValueError(f"receive_wait_s must be within 0..20 (SQS), got {self.receive_wait_s}")
        if not 0 <= self.retry_delay_s <= 43_200:
            raise ValueError(f"retry_delay_s must be within 0..43200 (SQS), got {self.retry_delay_s}")
        if not 0 < self.live_poll_s <= self.stall_timeout_s:
            raise ValueError(f"need 0 < live_poll_s <= stall_timeout_s, got {self.live_poll_s} and "
                             f"{self.stall_timeout_s}")
        if self.missing_timeout_s < 0:
            raise ValueError(f"missing_timeout_s must be >= 0, got {self.missing_timeout_s}")
        if self.lease_s <= max(self.live_poll_s, 1):
            raise ValueError(f"lease_s must be longer than a poll and a second, got {self.lease_s}")
        if self.visibility_timeout_s > 43_200:
            raise ValueError(f"visibility_timeout_s must be at most 43200 (SQS), "
                             f"got {self.visibility_timeout_s}")

    def environment(self) -> dict[str, str]:
        """The container environment that `from_env` reads back (and the Powertools service name)."""
        out: dict[str, str] = {"POWERTOOLS_SERVICE_NAME": SERVICE_NAME}
        for field in fields(self):
            value = getattr(self, field.name)
            out[ENV_PREFIX + field.name.upper()] = ",".join(value) if isinstance(value, tuple) else str(value)
        return out

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServiceSettings:
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for field in fields(cls):
            raw = env.get(ENV_PREFIX + field.name.upper())
            if raw is None or raw == "":
                continue
            default = field.default
            if isinstance(default, tuple):
                values[field.name] = tuple(v.strip() for v in raw.split(",") if v.strip())
            elif isinstance(default, float):
                try:
                    values[field.name] = float(raw)
                except ValueError:
                    raise ValueError(f"{ENV_PREFIX}{field.name.upper()} must be a number, got {raw!r}"
                                     ) from None
            elif isinstance(default, int):
                try:
                    values[field.name] = int(raw)
                except ValueError:
                    raise ValueError(f"{ENV_PREFIX}{field.name.upper()} must be a whole number, got {raw!r}"
                                     ) from None
            else:
                values[field.name] = raw
        return cls(**values)  # type: ignore[arg-type]


def results_objects(stream_seconds: int, batch_seconds: int) -> int:
    """Results PUTs for a stream of `stream_seconds` seconds: one per started batch."""
    return -(-stream_seconds // batch_seconds)


def visibility_extensions(stream_seconds: int, heartbeat_seconds: int) -> int:
    """ChangeMessageVisibility calls for one job: one before each of seconds h, 2h, … that is analysed."""
    return max(0, (stream_seconds - 1) // heartbeat_seconds)
