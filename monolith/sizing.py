"""How big one after task is: CPU and memory reservations from measured figures, for the stack's task
definition and the cost model's bin-packing of tasks onto instances (side-effect free)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from calibration import Calibration

# ECS counts CPU in units of 1/1024 vCPU.
CPU_UNITS_PER_VCPU = 1024
HEADROOM = 0.5  # reserve 50% above the measured median: the spread between runs, and bursts of motion
PROCESS_BASE_MIB = 256  # the Python process with PyAV, numpy and boto3 loaded, before any stream


@dataclass(frozen=True)
class TaskSize:
    cpu_units: int
    memory_mib: int


def task_size(calibration: Calibration, resolution: str, concurrency: int,
              headroom: float = HEADROOM) -> TaskSize:
    """Reservations for a task analysing `concurrency` live streams at `resolution` in real time."""
    cpu = calibration.monolith_cpu(resolution).median * concurrency * (1 + headroom)
    memory = PROCESS_BASE_MIB + calibration.monolith_peak_rss_mib(resolution) * concurrency * (1 + headroom)
    return TaskSize(cpu_units=max(128, math.ceil(cpu * CPU_UNITS_PER_VCPU)),
                    memory_mib=math.ceil(memory / 128) * 128)
