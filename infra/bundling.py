"""Lambda packages built without Docker: pip installs Linux wheels for the target, then the code is copied.

`pip install --platform manylinux_2_28_<arch> --implementation cp --python-version 3.13 --only-binary=:all:`
resolves exactly the wheels the Lambda runtime (Amazon Linux 2023, glibc 2.34) can load, from any host.
manylinux_2_28 rather than manylinux2014: the older tag makes pip fall back to old releases (av 14,
numpy 2.2). If this fails, CDK falls back to the Docker image with the same commands.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import jsii
from aws_cdk import BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

ROOT = Path(__file__).resolve().parent.parent
LAMBDAS = ROOT / "lambdas"
PYTHON_VERSION = "3.13"
MAX_UNZIPPED_BYTES = 250 * 1024 * 1024  # Lambda's limit for a function's code and layers, unzipped
# Versions the monolith is tested with (pyproject.toml); the Lambda path must decode and detect alike.
POWERTOOLS = "aws-lambda-powertools[tracer]==3.37.0"
AV = "av==19.0.2"
NUMPY = "numpy==2.5.5"
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "tests", "*.md")


class PackageTooLarge(RuntimeError):
    pass


@dataclass(frozen=True)
class PackageSpec:
    """What one function ships: pip requirements and the `lambdas` sub-packages it imports."""

    name: str
    requirements: tuple[str, ...]
    packages: tuple[str, ...]


CONVERTER = PackageSpec("converter", (AV, NUMPY, POWERTOOLS), ("converter", "shared"))
DETECTORS = PackageSpec("detectors", (NUMPY, POWERTOOLS), ("detectors", "shared"))
CORRECTIVE_ACTION = PackageSpec("corrective_action", (POWERTOOLS,), ("corrective_action", "shared"))


def pip_platform(architecture: str) -> str:
    return f"manylinux_2_28_{'aarch64' if architecture == 'arm64' else 'x86_64'}"


def pip_command(spec: PackageSpec, architecture: str, target: str) -> list[str]:
    return [
        "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
        "--target", target,
        "--platform", pip_platform(architecture),
        "--implementation", "cp",
        "--python-version", PYTHON_VERSION,
        "--only-binary=:all:",
        *spec.requirements,
    ]


def copy_code(spec: PackageSpec, output_dir: Path) -> None:
    """Copy `lambdas/__init__.py` and only the sub-packages this function imports."""
    dest = output_dir / "lambdas"
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(LAMBDAS / "__init__.py", dest / "__init__.py")
    for package in spec.packages:
        shutil.copytree(LAMBDAS / package, dest / package, ignore=IGNORE, dirs_exist_ok=True)


def tree_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def build_package(spec: PackageSpec, architecture: str, output_dir: Path) -> int:
    """Build the function's package into `output_dir`; return its unzipped size (raises if too large)."""
    env = {**os.environ, "PIP_CACHE_DIR": os.environ.get("PIP_CACHE_DIR", str(_cache_dir()))}
    if spec.requirements:
        command = [sys.executable, "-m", *pip_command(spec, architecture, str(output_dir))]
        subprocess.run(command, check=True, env=env)
    copy_code(spec, output_dir)
    size = tree_size(output_dir)
    if size >= MAX_UNZIPPED_BYTES:
        raise PackageTooLarge(f"{spec.name}: {size / 2**20:.1f} MiB unzipped exceeds Lambda's 250 MB limit")
    return size


def _cache_dir() -> Path:
    # Wheels are kept between synths, so only the first synth downloads (av alone is ~40 MB).
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "stream-quality-monitor" / "pip"


@jsii.implements(ILocalBundling)
class LocalPipBundling:
    def __init__(self, spec: PackageSpec, architecture: str) -> None:
        self.spec = spec
        self.architecture = architecture

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_: object) -> bool:
        build_package(self.spec, self.architecture, Path(output_dir))
        return True


def lambda_code(spec: PackageSpec, architecture: str, *, bundle: bool = True) -> lambda_.Code:
    """The function's code asset, from `lambdas/`. The requirements are in the Docker command, so they
    are part of the asset hash: a changed pin rebuilds the package, an unchanged one reuses the copy
    staged in cdk.out. `bundle=False` copies the code only (offline synth; not deployable)."""
    if not bundle:
        spec = replace(spec, requirements=())
    copy = " && ".join(f"cp -r /asset-input/{p} /asset-output/lambdas/" for p in spec.packages)
    pip = f"{shlex.join(pip_command(spec, architecture, '/asset-output'))} && " if spec.requirements else ""
    docker_command = (
        f"{pip}mkdir -p /asset-output/lambdas && cp /asset-input/__init__.py /asset-output/lambdas/ && {copy}"
    )
    return lambda_.Code.from_asset(
        str(LAMBDAS),
        exclude=["**/__pycache__", "**/*.pyc"],
        bundling=BundlingOptions(
            image=DockerImage.from_registry(f"public.ecr.aws/sam/build-python{PYTHON_VERSION}"),
            command=["bash", "-c", docker_command],
            local=LocalPipBundling(spec, architecture),
        ),
    )
