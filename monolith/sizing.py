"""How big one after task is: CPU and memory reservations from measured figures, for the stack's task
definition and the cost model's bin-packing of tasks onto instances (side-effect free).

CPU: the monolith's measured CPU-seconds per stream-second × the streams the task analyses at once.
Memory: the measured peak of the whole task at that concurrency (`monolith serve --concurrency N`: the
supervisor and N worker interpreters, each with PyAV, numpy and boto3 loaded, each analysing a stream),
summed over its processes, the largest of the runs. The memory is a hard limit in the stack: a task that
goes over it is killed, so nothing of the task is left uncounted and the headroom comes on top of it all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from calibration import Calibration

# ECS counts CPU in units of 1/1024 vCPU.
CPU_UNITS_PER_VCPU = 1024
HEADROOM = 0.5  # reserve 50% above what was measured: the spread between runs, and bursts of motion
MEMORY_STEP_MIB = 128  # the task's memory is reserved in these steps


@dataclass(frozen=True)
class TaskSize:
    cpu_units: int
    memory_mib: int


def task_size(calibration: Calibration, resolution: str, concurrency: int,
              headroom: float = HEADROOM) -> TaskSize:
    """Reservations for a task analysing `concurrency` live streams at `resolution` in real time."""
    cpu = calibration.monolith_cpu(resolution).median * concurrency * (1 + headroom)
    memory = calibration.task_peak_mib(resolution, concurrency).max * (1 + headroom)
    return TaskSize(cpu_units=max(128, math.ceil(cpu * CPU_UNITS_PER_VCPU)),
                    memory_mib=math.ceil(memory / MEMORY_STEP_MIB) * MEMORY_STEP_MIB)
