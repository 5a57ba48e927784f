"""Stack configuration from CDK context (cdk.json, or `-c key=value` on the command line).

Every knob has a default, so `cdk synth` works with no context at all. Values given with `-c` arrive
as strings; this module parses them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra.history import history_bound
from lambdas.shared.faults import FaultPlan
from statemachine import ASL_PATH, DETECTOR_PLACEHOLDERS
from statemachine.asl import drop_detector_branches

if TYPE_CHECKING:  # the config (and stack_name) stay importable without starting jsii
    from constructs import Node

# The detectors a stack may run: each has its branch in the workflow (statemachine.DETECTOR_PLACEHOLDERS).
DETECTORS = tuple(DETECTOR_PLACEHOLDERS)
# Days before the frames bucket's lifecycle rule expires a frame object (infra/storage.py applies it, the
# cost model prices the storage it implies).
TEMP_EXPIRY_DAYS = 1
# Defects notified per detector per stream-second (the workflow's Evaluate state keeps the first ones; the
# results record keeps all): a second's notifications, hence its history events, are bounded.
NOTIFICATIONS_PER_DETECTOR = 2


def max_seconds_per_execution(detectors: tuple[str, ...] = DETECTORS, path: Path = ASL_PATH) -> int:
    """The most stream-seconds one execution may analyse and stay under the 25,000-event history limit in
    the worst case (infra/history.py): every Retry at its MaxAttempts, every notification at its cap."""
    definition = drop_detector_branches(json.loads(path.read_text()), DETECTOR_PLACEHOLDERS, detectors)
    return history_bound(definition, map_items=NOTIFICATIONS_PER_DETECTOR * len(detectors)).max_seconds()


def stack_name(stage: str) -> str:
    return f"StreamQuality-{stage}"


@dataclass(frozen=True)
class MonitorConfig:
    stage: str = "dev"
    region: str | None = None  # None: the CLI's default region
    architecture: str = "x86_64"  # or "arm64"
    converter_memory_mb: int = 2048
    detector_memory_mb: int = 1024
    frames_per_second: int = 0  # frames shipped per stream-second; 0 = every frame (the original)
    detectors: tuple[str, ...] = DETECTORS
    # Stream-seconds per execution before it continues as new; at most max_seconds_per_execution() (68 with
    # the three detectors: a live stream may wait up to 30 times per second), checked at synth.
    seconds_per_execution: int = 60
    source_bucket_names: tuple[str, ...] = ()  # existing buckets to read streams from; empty = create one
    # KMS keys that encrypt those buckets' objects (SSE-KMS): the converter may decrypt with them.
    source_kms_key_arns: tuple[str, ...] = ()
    notification_email: str | None = None
    localstack: bool = False  # deploy target is LocalStack: no Node.js helper Lambdas, no Glue/Athena
    bundle: bool = True  # False: ship the source without dependencies (offline synth, template checks)
    log_retention_days: int = 30
    # Test-only (lambdas/shared/faults.py): functions fail and time out at given rates. Refused unless the
    # target is LocalStack, so no deployment to AWS can carry it.
    fault_injection: str | None = None

    def __post_init__(self) -> None:
        if self.architecture not in ("x86_64", "arm64"):
            raise ValueError(f"architecture must be x86_64 or arm64, got {self.architecture!r}")
        unknown = set(self.detectors) - set(DETECTORS)
        if unknown or not self.detectors:
            raise ValueError(f"detectors must be a non-empty subset of {DETECTORS}, got {self.detectors}")
        most = max_seconds_per_execution(self.detectors)
        if not 1 <= self.seconds_per_execution <= most:
            raise ValueError(
                f"seconds_per_execution must be within 1..{most}: more could exceed Step Functions' 25,000 "
                f"history events per execution in the worst case (retries, notifications), got "
                f"{self.seconds_per_execution}")
        for arn in self.source_kms_key_arns:
            if not arn.startswith("arn:") or ":kms:" not in arn or ":key/" not in arn:
                raise ValueError(f"source_kms_key_arns must hold KMS key ARNs (arn:…:kms:…:key/…): {arn!r}")
        if self.frames_per_second < 0:
            raise ValueError("frames_per_second must be >= 0")
        if self.fault_injection is not None:
            if not self.localstack:
                raise ValueError("fault_injection is a test setting: it needs localstack=true")
            FaultPlan.parse(self.fault_injection)  # refuse a bad spec at synth, not at the first invoke

    @property
    def sandbox(self) -> bool:
        """Any stage but prod: its data may be deleted with the stack."""
        return self.stage != "prod"

    @property
    def stack_name(self) -> str:
        return stack_name(self.stage)

    @property
    def fault_plan(self) -> FaultPlan | None:
        return FaultPlan.parse(self.fault_injection) if self.fault_injection else None

    @classmethod
    def from_node(cls, node: Node) -> MonitorConfig:
        def get(key: str, default: Any) -> Any:
            return context_value(node, key, default)

        def whole(key: str, default: int) -> int:
            return context_int(node, key, default)

        return cls(
            stage=str(get("stage", cls.stage)),
            region=get("region", None),
            architecture=str(get("architecture", cls.architecture)),
            converter_memory_mb=whole("converter_memory_mb", cls.converter_memory_mb),
            detector_memory_mb=whole("detector_memory_mb", cls.detector_memory_mb),
            frames_per_second=whole("frames_per_second", cls.frames_per_second),
            detectors=tuple(as_list(get("detectors", list(DETECTORS)))),
            seconds_per_execution=whole("seconds_per_execution", cls.seconds_per_execution),
            source_bucket_names=tuple(as_list(get("source_bucket_names", []))),
            source_kms_key_arns=tuple(as_list(get("source_kms_key_arns", []))),
            notification_email=get("notification_email", None) or None,
            localstack=_as_bool(get("localstack", False)),
            bundle=_as_bool(get("bundle", True)),
            log_retention_days=whole("log_retention_days", cls.log_retention_days),
            fault_injection=get("fault_injection", None) or None,
        )


def context_value(node: Node, key: str, default: Any) -> Any:
    """A CDK context value (cdk.json or `-c key=value`), or `default` when it is not set."""
    value = node.try_get_context(key)
    return default if value is None else value


def context_int(node: Node, key: str, default: int) -> int:
    """A whole-number context value; a clear error naming the key otherwise."""
    value = context_value(node, key, default)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key} must be a whole number, got {value!r}") from None


def as_list(value: Any) -> list[str]:
    """A list from context: a JSON list, or a comma-separated string from `-c detectors=freeze,av_sync`."""
    if isinstance(value, str):
        text = value.strip()
        value = json.loads(text) if text.startswith("[") else [v for v in text.split(",") if v.strip()]
    return [str(v).strip() for v in value]


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)
