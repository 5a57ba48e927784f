"""The after stack's configuration from CDK context (`-c after_instance_type=c7g.2xlarge`, ...).

Kept apart from MonitorConfig (the before's knobs): the stage, region, detectors default, log retention
and LocalStack target are read from there; everything that only the ECS service has is here. Side-effect
free (no jsii), so the demo and the cost model can import the stack name, the network's shape and the
packing of tasks onto instances.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from calibration import Calibration
from calibration import load as load_calibration
from infra.config import DETECTORS, as_list, context_int, context_value
from monolith.sizing import CPU_UNITS_PER_VCPU, TaskSize, task_size

if TYPE_CHECKING:
    from constructs import Node

# Prefix of the stream objects the service may read: the demo uploads under it (demo/run.py).
STREAMS_PREFIX = "streams/"
EBS_GIB = 30  # each instance's root volume (gp3), the size of the ECS-optimised AMI's
AZS = 2  # availability zones the service spans (NAT gateways and interface endpoints are per AZ)
# The interface endpoints of `endpoints` (construct id -> AWS service name): what an instance in an isolated
# subnet calls besides S3: the ECS agent (ecs, ecs-agent, ecs-telemetry), the image pull (ecr.api, ecr.dkr;
# layers come from S3), the log driver, and the service (sqs, sns).
INTERFACE_ENDPOINTS = {"Ecs": "ecs", "EcsAgent": "ecs-agent", "EcsTelemetry": "ecs-telemetry",
                       "EcrApi": "ecr.api", "EcrDocker": "ecr.dkr", "Logs": "logs",
                       "Sqs": "sqs", "Sns": "sns"}
# How the tasks reach SQS, SNS, ECR, ECS and CloudWatch Logs (S3 always through a gateway endpoint), what
# the stack builds and the cost model prices (name -> what it is).
NETWORKS = {
    "public": "public subnets, S3 gateway endpoint (free), a public IPv4 address per instance, no NAT",
    "nat": f"private subnets, S3 gateway endpoint, one NAT gateway per AZ ({AZS} AZs)",
    "endpoints": f"isolated subnets, S3 gateway endpoint, {len(INTERFACE_ENDPOINTS)} interface endpoints x "
    f"{AZS} AZs, no NAT",
}

# vCPUs per instance size (the same in every current EC2 family) and GiB of memory per vCPU per family
# letter: compute-optimised c 2, general-purpose m 4, memory-optimised r 8 (EC2 instance-type pages).
_SIZE_VCPUS = {"large": 2, "xlarge": 4, "2xlarge": 8, "4xlarge": 16, "8xlarge": 32, "9xlarge": 36,
               "12xlarge": 48, "16xlarge": 64, "18xlarge": 72, "24xlarge": 96}
_GIB_PER_VCPU = {"c": 2, "m": 4, "r": 8}
# ECS registers the memory the kernel reports, a few per cent under the nominal size, and the agent and
# the OS need some: plan with 90% of nominal so that a task sized to "fit" really places.
USABLE_MEMORY_SHARE = 0.9
_INSTANCE_TYPE = re.compile(
    r"^(?P<family>[cmr])(?P<generation>[5-8])(?P<attrs>[a-z]*)\.(?P<size>[0-9]*x?large)$")


def after_stack_name(stage: str) -> str:
    return f"StreamQuality-after-{stage}"


@dataclass(frozen=True)
class InstanceCapacity:
    instance_type: str
    vcpus: int
    memory_mib: int
    arm64: bool  # Graviton: the family attributes carry a "g" (c6g, c7g, m7gd, ...)

    @property
    def cpu_units(self) -> int:
        return self.vcpus * CPU_UNITS_PER_VCPU

    @property
    def architecture(self) -> str:
        return "arm64" if self.arm64 else "x86_64"

    @property
    def usable_memory_mib(self) -> int:
        return int(self.memory_mib * USABLE_MEMORY_SHARE)

    def tasks_per_instance(self, task: TaskSize) -> int:
        """How many tasks of `task`'s size one instance holds, by CPU and by usable memory (0: none)."""
        return min(self.cpu_units // task.cpu_units, self.usable_memory_mib // task.memory_mib)

    def memory_bound(self, task: TaskSize) -> bool:
        """Whether memory, not CPU, fills the instance first with tasks of `task`'s size."""
        return task.memory_mib / self.usable_memory_mib >= task.cpu_units / self.cpu_units


def instance_capacity(instance_type: str) -> InstanceCapacity:
    """vCPUs, memory and architecture of a c/m/r instance type, e.g. `c6i.2xlarge` → 8 vCPU, 16 GiB, x86."""
    match = _INSTANCE_TYPE.match(instance_type)
    if not match or match["size"] not in _SIZE_VCPUS:
        raise ValueError(
            f"after_instance_type must be a c, m or r instance of generation 5-8 in a size from large to "
            f"24xlarge (e.g. c6i.2xlarge, c7g.2xlarge), got {instance_type!r}")
    vcpus = _SIZE_VCPUS[match["size"]]
    return InstanceCapacity(instance_type, vcpus, vcpus * _GIB_PER_VCPU[match["family"]] * 1024,
                            arm64="g" in match["attrs"])


@dataclass(frozen=True)
class AfterConfig:
    instance_type: str = "c6i.2xlarge"
    resolution: str = "720p"  # the calibration row that sizes a task (calibration/calibration.json)
    concurrency: int = 4  # streams analysed at once by one task (`monolith serve --concurrency`)
    detectors: tuple[str, ...] = DETECTORS  # the subset this copy of the service runs
    min_tasks: int = 1
    max_tasks: int = 10
    network: str = "public"
    # The measured figures that size a task: the committed calibration/calibration.json unless another
    # file is given (e.g. `make calibrate` run on the instance type the fleet uses).
    calibration_path: str | None = None

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"after_concurrency must be at least 1, got {self.concurrency}")
        unknown = set(self.detectors) - set(DETECTORS)
        if unknown or not self.detectors:
            raise ValueError(
                f"after_detectors must be a non-empty subset of {DETECTORS}, got {self.detectors}")
        if self.network not in NETWORKS:
            raise ValueError(f"after_network must be one of {', '.join(NETWORKS)}, got {self.network!r}")
        if not 0 <= self.min_tasks <= self.max_tasks or self.max_tasks < 1:
            raise ValueError(f"need 0 <= after_min_tasks <= after_max_tasks and after_max_tasks >= 1, got "
                             f"{self.min_tasks}..{self.max_tasks}")
        instance = self.instance
        size = self.task_size
        if size.cpu_units > instance.cpu_units or size.memory_mib > instance.usable_memory_mib:
            raise ValueError(
                f"a task of {self.concurrency} {self.resolution} streams needs {size.cpu_units} CPU units "
                f"and {size.memory_mib} MiB; {instance.instance_type} offers {instance.cpu_units} units and "
                f"{instance.usable_memory_mib} MiB: lower after_concurrency or choose a larger instance")

    @property
    def instance(self) -> InstanceCapacity:
        return instance_capacity(self.instance_type)

    @property
    def calibration(self) -> Calibration:
        return load_calibration(Path(self.calibration_path) if self.calibration_path else None)

    @property
    def task_size(self) -> TaskSize:
        """CPU units and memory of one task: the calibrated CPU × concurrency, and the calibrated peak of a
        whole task of `concurrency` streams (a concurrency not calibrated is refused with what to run)."""
        return task_size(self.calibration, self.resolution, self.concurrency)

    @property
    def full_task_cpu_percent(self) -> int:
        """CPU utilisation, as a share of its reservation, of a task running `concurrency` streams at the
        measured rate: 1/(1 + headroom), rounded by the reservation's whole units."""
        per_stream = self.calibration.monolith_cpu(self.resolution).median
        measured = per_stream * self.concurrency * CPU_UNITS_PER_VCPU
        return max(10, min(90, round(100 * measured / self.task_size.cpu_units)))

    @property
    def tasks_per_instance(self) -> int:
        return self.instance.tasks_per_instance(self.task_size)

    @property
    def max_instances(self) -> int:
        """Instances the fleet needs at most: every task placed, bin-packed."""
        return math.ceil(self.max_tasks / self.tasks_per_instance)

    @property
    def memory_bound(self) -> bool:
        """Whether memory, not CPU, limits the tasks per instance (decides the placement's bin-packing)."""
        return self.instance.memory_bound(self.task_size)

    @classmethod
    def from_node(cls, node: Node) -> AfterConfig:
        def get(key: str, default: Any) -> Any:
            return context_value(node, key, default)

        def whole(key: str, default: int) -> int:
            return context_int(node, key, default)

        return cls(
            instance_type=str(get("after_instance_type", cls.instance_type)),
            resolution=str(get("after_resolution", cls.resolution)),
            concurrency=whole("after_concurrency", cls.concurrency),
            detectors=tuple(as_list(get("after_detectors", list(DETECTORS)))),
            min_tasks=whole("after_min_tasks", cls.min_tasks),
            max_tasks=whole("after_max_tasks", cls.max_tasks),
            network=str(get("after_network", cls.network)),
            calibration_path=get("after_calibration", None) or None,
        )
