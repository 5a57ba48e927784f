"""requirements.lock read as {distribution: version}, for the tests that check what each runtime installed."""

from __future__ import annotations

from importlib.metadata import Distribution
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from infra.bundling import locked_pins


def locked_versions(environment: dict[str, str] | None = None, lock: Path | None = None) -> dict[str, str]:
    """The pinned version of every locked distribution whose marker holds in `environment` (default: this
    interpreter's), by canonical name."""
    versions: dict[str, str] = {}
    for pin in locked_pins(lock):
        requirement = Requirement(pin)
        if requirement.marker is not None and not requirement.marker.evaluate(environment):
            continue
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", f"not a pin: {pin}"
        name = canonicalize_name(requirement.name)
        assert name not in versions, f"{name} is locked twice for this platform"
        versions[name] = specifier.version
    return versions


def installed_versions(distributions: list[Distribution]) -> dict[str, str]:
    return {canonicalize_name(d.metadata["Name"]): d.version for d in distributions}
