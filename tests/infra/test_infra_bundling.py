"""The real Lambda packages, built the way `cdk synth` builds them (pip for the target, no Docker).

Slow (downloads wheels the first time; later runs use the pip cache) and needs PyPI.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from infra.bundling import (
    CONVERTER,
    CORRECTIVE_ACTION,
    DETECTORS,
    MAX_UNZIPPED_BYTES,
    PackageSpec,
    build_package,
)

pytestmark = pytest.mark.slow


def top_level(package: Path) -> set[str]:
    return {p.name for p in package.iterdir()}


def imports_from_package(package: Path, modules: list[str]) -> None:
    """Import the handler modules with the package first on sys.path, as the runtime would (boto3 comes
    from the venv, as it comes from the runtime in Lambda)."""
    code = (f"import sys; sys.path.insert(0, {str(package)!r}); import importlib\n"
            f"for m in {modules!r}:\n"
            f"    mod = importlib.import_module(m)\n"
            f"    assert mod.__file__.startswith({str(package)!r}), (m, mod.__file__)\n")
    subprocess.run([sys.executable, "-c", code], check=True, env={"POWERTOOLS_TRACE_DISABLED": "true",
                                                               "AWS_DEFAULT_REGION": "us-east-1"})


@pytest.mark.parametrize("spec, expected, absent, modules", [
    (CONVERTER, {"av", "numpy", "aws_lambda_powertools", "lambdas"}, {"corrective_action", "detectors"},
     ["lambdas.converter.handler", "av", "numpy"]),
    (DETECTORS, {"numpy", "aws_lambda_powertools", "lambdas"}, {"converter", "corrective_action"},
     ["lambdas.detectors.handlers", "lambdas.detectors.freeze", "numpy"]),
    (CORRECTIVE_ACTION, {"aws_lambda_powertools", "lambdas"}, {"converter", "detectors"},
     ["lambdas.corrective_action.handler"]),
], ids=lambda v: v.name if isinstance(v, PackageSpec) else "")
def test_package_builds_for_x86_64_under_the_size_limit(
    tmp_path: Path, spec: PackageSpec, expected: set[str], absent: set[str], modules: list[str]
) -> None:
    # When the function's package is built for the Lambda runtime
    size = build_package(spec, "x86_64", tmp_path)
    # Then it holds its dependencies and only its own code, and fits Lambda's 250 MB unzipped limit
    assert expected <= top_level(tmp_path)
    assert "av" not in top_level(tmp_path) or spec is CONVERTER  # detectors stay small: no PyAV
    assert not absent & top_level(tmp_path / "lambdas")
    assert size < MAX_UNZIPPED_BYTES
    print(f"{spec.name}: {size / 2**20:.1f} MiB unzipped")
    # And its handler imports from the package (manylinux_2_28 x86_64 wheels run on this host)
    imports_from_package(tmp_path, modules)
