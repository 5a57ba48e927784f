"""The real Lambda packages, built the way `cdk synth` builds them (pip for the target, no Docker).

Slow (downloads wheels the first time; later runs use the pip cache) and needs PyPI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import distributions
from pathlib import Path

import pytest
from locked_versions import installed_versions, locked_versions

from infra.bundling import (
    CONVERTER,
    CORRECTIVE_ACTION,
    DETECTORS,
    DOCKER_CONSTRAINTS,
    DOCKER_INPUT,
    DOCKER_OUTPUT,
    LAMBDAS,
    LIVE_STARTER,
    MAX_UNZIPPED_BYTES,
    BundlingError,
    LocalPipBundling,
    PackageSpec,
    build_package,
    docker_command,
)

ROOT = Path(__file__).resolve().parents[2]
# What the AWS runtime puts at the end of sys.path (/var/runtime). Its versions change with the runtime
# version and the Region (docs.aws.amazon.com/lambda/latest/dg/lambda-python.html, "Runtime-included SDK
# versions"); the ones here are those our process executor gives functions on LocalStack (LocalStack's
# venv: boto3/botocore 1.42.54), a pair other than the packages' own.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")
# The markers of the Lambda runtime the packages are built for (x86_64, CPython 3.13 on Linux).
LAMBDA_X86_64 = {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
                 "implementation_name": "cpython", "platform_python_implementation": "CPython",
                 "python_version": "3.13"}


def top_level(package: Path) -> set[str]:
    return {p.name for p in package.iterdir()}


def runtime_packages(tmp: Path) -> Path:
    """A folder like the runtime's /var/runtime: links to another boto3/botocore pair and their deps."""
    python = ROOT / ".venv-localstack" / "bin" / "python"
    assert python.exists(), "the runtime's SDK comes from LocalStack's venv: run make localstack-venv"
    code = (f"import importlib.util, json; print(json.dumps({{n: importlib.util.find_spec(n).origin "
            f"for n in {RUNTIME_PACKAGES!r}}}))")
    origins = json.loads(subprocess.run([str(python), "-c", code], check=True, capture_output=True,
                                        text=True).stdout)
    folder = tmp / "var-runtime"
    folder.mkdir()
    for origin in map(Path, origins.values()):
        source = origin.parent if origin.name == "__init__.py" else origin
        (folder / source.name).symlink_to(source)
    return folder


def imports_from_package(package: Path, runtime: Path, modules: list[str]) -> dict[str, str]:
    """Import the handler modules as the Lambda runtime does: the package first, the standard library,
    the runtime's own packages last, no site-packages. Returns where boto3 and botocore came from."""
    code = (f"import sys; sys.path[:] = [{str(package)!r}, *sys.path[1:], {str(runtime)!r}]\n"
            f"import importlib, json\n"
            f"for m in {modules!r}:\n"
            f"    mod = importlib.import_module(m)\n"
            f"    assert mod.__file__.startswith({str(package)!r}), (m, mod.__file__)\n"
            f"import boto3, botocore\n"
            f"print(json.dumps({{'boto3': boto3.__file__, 'boto3_version': boto3.__version__,\n"
            f"    'botocore': botocore.__file__, 'botocore_version': botocore.__version__}}))\n")
    python = getattr(sys, "_base_executable", sys.executable)
    done = subprocess.run([python, "-S", "-c", code], check=True, capture_output=True, text=True, env={
        "POWERTOOLS_TRACE_DISABLED": "true", "AWS_DEFAULT_REGION": "us-east-1", "PATH": os.environ["PATH"]})
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("spec, expected, absent, modules", [
    (CONVERTER, {"av", "numpy", "aws_lambda_powertools", "lambdas"}, {"corrective_action", "detectors"},
     ["lambdas.converter.handler", "av", "numpy"]),
    (DETECTORS, {"numpy", "aws_lambda_powertools", "lambdas"}, {"converter", "corrective_action"},
     ["lambdas.detectors.handlers", "lambdas.detectors.freeze", "numpy"]),
    (CORRECTIVE_ACTION, {"aws_lambda_powertools", "lambdas"}, {"converter", "detectors"},
     ["lambdas.corrective_action.handler"]),
    (LIVE_STARTER, {"m3u8", "aws_lambda_powertools", "lambdas"},
     {"converter", "detectors", "corrective_action"}, ["lambdas.live_starter.handler", "m3u8"]),
], ids=lambda v: v.name if isinstance(v, PackageSpec) else "")
def test_package_builds_for_x86_64_under_the_size_limit(
    tmp_path: Path, spec: PackageSpec, expected: set[str], absent: set[str], modules: list[str]
) -> None:
    # When the function's package is built for the Lambda runtime
    size = build_package(spec, "x86_64", tmp_path / "package")
    # Then it holds its dependencies and only its own code, and fits Lambda's 250 MB unzipped limit
    assert expected | {"boto3", "botocore"} <= top_level(tmp_path / "package")
    assert "av" not in top_level(tmp_path / "package") or spec is CONVERTER  # detectors stay small: no PyAV
    assert not absent & top_level(tmp_path / "package" / "lambdas")
    assert size < MAX_UNZIPPED_BYTES
    print(f"{spec.name}: {size / 2**20:.1f} MiB unzipped")
    # And its handler imports from the package (manylinux_2_28 x86_64 wheels run on this host), with the
    # package's own boto3 and the botocore that boto3 release requires, although the runtime's pair differs
    package = tmp_path / "package"
    found = imports_from_package(package, runtime_packages(tmp_path), modules)
    assert found["boto3"].startswith(str(package)) and found["botocore"].startswith(str(package)), found
    locked = locked_versions(LAMBDA_X86_64)
    assert (found["boto3_version"], found["botocore_version"]) == (locked["boto3"], locked["botocore"]), found
    # And every distribution pip put in the package is at the version of requirements.lock, the one the
    # dev venv and the after's image install
    bundled = installed_versions(list(distributions(path=[str(package)])))
    assert {"boto3", "botocore", "aws-lambda-powertools"} <= set(bundled), bundled
    assert bundled == {name: locked.get(name, "not in the lock") for name in bundled}


BROKEN = PackageSpec("broken", ("this is not a requirement!",), ("shared",))


def test_a_failed_local_build_without_docker_fails_the_synth_clearly(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a package pip cannot build, and no Docker on PATH
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    # When CDK asks for the local build
    # Then it fails naming the package and the missing fallback, instead of CDK trying Docker
    with pytest.raises(BundlingError, match=r"broken: building the package with pip failed.*Docker"):
        LocalPipBundling(BROKEN, "x86_64").try_bundle(str(tmp_path / "out"), image=None)  # type: ignore[arg-type]


def test_a_failed_local_build_with_docker_hands_over_to_cdks_docker_bundling(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a package pip cannot build, and a docker executable on PATH
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    out = tmp_path / "out"
    out.mkdir()
    (out / "left-over").write_text("x")
    # When CDK asks for the local build
    handled = LocalPipBundling(BROKEN, "x86_64").try_bundle(str(out), image=None)  # type: ignore[arg-type]
    # Then it declines, so that CDK runs the Docker command, into an empty output folder
    assert handled is False
    assert list(out.iterdir()) == []


def test_the_docker_fallback_command_installs_the_locked_versions(tmp_path: Path) -> None:
    # Given the command CDK runs in the SAM build image, with its mounts and scratch file moved into
    # tmp_path and the pip of this venv (the image's own pip is not at hand without Docker)
    output, scratch = tmp_path / "asset-output", tmp_path / "constraints.txt"
    command = (docker_command(CORRECTIVE_ACTION, "x86_64").replace(DOCKER_INPUT, str(LAMBDAS))
               .replace(DOCKER_OUTPUT, str(output)).replace(DOCKER_CONSTRAINTS, str(scratch)))
    # When bash runs it
    subprocess.run(["bash", "-c", command], check=True,
                   env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"})
    # Then the package holds the function's code and the lock's versions of its dependencies
    assert {"corrective_action", "shared"} <= top_level(output / "lambdas")
    bundled = installed_versions(list(distributions(path=[str(output)])))
    assert {"aws-lambda-powertools", "boto3", "botocore"} <= set(bundled), bundled
    assert bundled == {name: locked_versions(LAMBDA_X86_64).get(name, "not in the lock") for name in bundled}
