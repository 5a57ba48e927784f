"""What the model reads from the project: the stack's configuration (cdk.json context through
`infra.config.MonitorConfig`), what each detector reads (`lambdas.detectors.NEEDS`), the frames bucket's
lifecycle (`infra.config.TEMP_EXPIRY_DAYS`), the after's settings (`settings`), and the measured
figures (`calibration/calibration.json`). All of them are side-effect-free modules or data files: nothing
is parsed out of source code."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from calibration import Calibration, CalibrationError, Profile
from calibration import load as load_calibration
from infra.after_config import AfterConfig
from infra.config import DETECTORS, TEMP_EXPIRY_DAYS, MonitorConfig
from lambdas.detectors import NEEDS

REPO = Path(__file__).resolve().parents[1]
CDK_JSON = REPO / "cdk.json"
SUMMARY_JSON = REPO / "demo-output" / "summary.json"

__all__ = ["NEEDS", "Calibration", "Profile"]


class InputError(ValueError):
    """An input file exists but cannot be used (unreadable, wrong shape)."""


@dataclass
class Provenance:
    """Where each input came from, printed with the results."""

    notes: list[str] = field(default_factory=list)

    def add(self, text: str) -> None:
        self.notes.append(text)


_DEFAULTS = MonitorConfig()


@dataclass(frozen=True)
class StackConfig:
    """The before stack's settings the model prices (defaults: `infra.config.MonitorConfig`'s)."""

    converter_memory_mb: int = _DEFAULTS.converter_memory_mb
    detector_memory_mb: int = _DEFAULTS.detector_memory_mb
    frames_per_second: int = _DEFAULTS.frames_per_second  # 0 = every frame
    detectors: tuple[str, ...] = DETECTORS
    seconds_per_execution: int = _DEFAULTS.seconds_per_execution
    architecture: str = _DEFAULTS.architecture
    temp_expiry_days: int = TEMP_EXPIRY_DAYS


class _Context:
    """cdk.json's context as `MonitorConfig.from_node` reads a construct node's."""

    def __init__(self, context: dict[str, Any]) -> None:
        self.context = context

    def try_get_context(self, key: str) -> Any:
        return self.context.get(key)


def _from_cdk_json[T](from_node: Callable[[Any], T], cdk_json: Path) -> T:
    """`from_node` over cdk.json's context, as the stack reads it; the stack's refusal as an InputError."""
    try:
        context = _Context(json.loads(cdk_json.read_text()).get("context", {}))
    except (OSError, ValueError, AttributeError) as error:
        raise InputError(f"{cdk_json}: cannot read the stack's context ({error})") from None
    try:
        return from_node(context)
    except (ValueError, TypeError) as error:
        raise InputError(f"{cdk_json}: {error}") from None


def read_after_config(prov: Provenance, cdk_json: Path = CDK_JSON) -> AfterConfig:
    """The after stack's CDK context defaults (cdk.json), parsed and checked by its own AfterConfig: the
    streams per task, instance type and network the stack deploys."""
    config = _from_cdk_json(AfterConfig.from_node, cdk_json)
    prov.add(f"after stack configuration: {cdk_json.name} context (infra.after_config.AfterConfig)")
    return config


def read_stack_config(prov: Provenance, cdk_json: Path = CDK_JSON) -> StackConfig:
    """The CDK context defaults (cdk.json), parsed and checked by the stack's own MonitorConfig."""
    config = _from_cdk_json(MonitorConfig.from_node, cdk_json)
    prov.add(f"stack configuration: {cdk_json.name} context (infra.config.MonitorConfig)")
    return StackConfig(
        converter_memory_mb=config.converter_memory_mb,
        detector_memory_mb=config.detector_memory_mb,
        frames_per_second=config.frames_per_second,
        detectors=config.detectors,
        seconds_per_execution=config.seconds_per_execution,
        architecture=config.architecture,
    )


def read_calibration(prov: Provenance, path: Path | None = None) -> Calibration:
    try:
        calibration = load_calibration(path)
    except CalibrationError as error:
        raise InputError(str(error)) from None
    prov.add(f"measured figures: {calibration.describe()}")
    return calibration


def profile(calibration: Calibration, resolution: str) -> Profile:
    try:
        return calibration.profile(resolution)
    except CalibrationError as error:
        raise InputError(str(error)) from None
