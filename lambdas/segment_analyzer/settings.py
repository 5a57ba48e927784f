"""The event-driven serverless design's settings: one side-effect-free module that the function (through
the environment the stack sets), the stack (infra/serverless_stack.py) and the cost model import.

What a stream costs follows from these and the stream's segments (see service.py for the counts): one
message, one invocation share (`batch_size` messages per invocation at most), a playlist GET, the
window's segment GETs, one results PUT, one state read and one conditional state write per segment; per
stream, a stall watch every `stall_timeout_s` of its life (one SendMessage with a delay, one state read
when it fires, plus the message's own invocation share), and one when the stream ends.
"""

from __future__ import annotations

from dataclasses import dataclass

from lambdas.shared.live import LIVE_PREFIX

# What the EventBridge rule lets through: the segments, not the playlist rewrites.
SEGMENT_PATTERN = f"{LIVE_PREFIX}*.ts"
# The function's name in a test deployment's fault plan (lambdas/shared/faults.py): the draw for a segment is
# FaultPlan.decide(FAULT_FUNCTION, stream, segment index, SQS receive count).
FAULT_FUNCTION = "segment_analyzer"
# Lambda gives a function a full vCPU at 1,769 MB and a CPU share proportional to memory below it
# (Lambda developer guide, "Configuring Lambda function memory").
FULL_VCPU_MB = 1769


@dataclass(frozen=True)
class SegmentSettings:
    # One vCPU: the work is single-threaded decoding and detection (CPU-bound), so its GB-seconds are the
    # same at any size up to here, and this size gives the shortest lag; above it the GB-s grow for
    # nothing. The peak memory of a 1080p window is well under it (README, "The critics' design").
    memory_mb: int = FULL_VCPU_MB
    timeout_s: int = 60  # a 6 s 1080p segment's window at one vCPU takes a few seconds
    reserved_concurrency: int = 20  # per stage; one environment per live stream at most (order)
    batch_size: int = 10  # messages per invocation (SQS event source)
    max_receives: int = 8  # receives before SQS dead-letters a message (waits: 2+4+...+60 s ≈ 3 min)
    retry_base_s: int = 2  # a segment that waits for its predecessor is retried after 2, 4, 8... s
    retry_cap_s: int = 60
    # A stream none of whose segments was analysed for this long, with none more listed, is stalled: the
    # before's (30 waits of 1 s) and the after's (ServiceSettings.stall_timeout_s) rule. Checked by one
    # delayed message per stream at a time (service.StallWatch), so at most 900 s (SQS's longest delay).
    stall_timeout_s: int = 30
    detectors: tuple[str, ...] = ("freeze", "block_corruption", "av_sync")

    def __post_init__(self) -> None:
        if not 128 <= self.memory_mb <= 10240:
            raise ValueError(f"memory_mb must be within Lambda's 128..10240, got {self.memory_mb}")
        if not 1 <= self.timeout_s <= 900:
            raise ValueError(f"timeout_s must be within 1..900, got {self.timeout_s}")
        if not 1 <= self.batch_size <= 10:
            raise ValueError(f"batch_size must be within 1..10 (SQS), got {self.batch_size}")
        for name in ("reserved_concurrency", "max_receives", "retry_base_s", "retry_cap_s"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 1 <= self.stall_timeout_s <= 900:
            raise ValueError(f"stall_timeout_s must be within 1..900 (SQS's delays), "
                             f"got {self.stall_timeout_s}")

    @property
    def visibility_timeout_s(self) -> int:
        """Six times the function's timeout, as the Lambda developer guide asks of an SQS event source."""
        return 6 * self.timeout_s

    def environment(self) -> dict[str, str]:
        return {"DETECTORS": ",".join(self.detectors), "MAX_RECEIVES": str(self.max_receives),
                "RETRY_BASE_S": str(self.retry_base_s), "RETRY_CAP_S": str(self.retry_cap_s),
                "STALL_TIMEOUT_S": str(self.stall_timeout_s)}
