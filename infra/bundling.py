"""Lambda packages built without Docker: pip installs Linux wheels for the target, then the code is copied.

`pip install --platform manylinux_2_28_<arch> --implementation cp --python-version 3.13 --only-binary=:all:`
resolves exactly the wheels the Lambda runtime (Amazon Linux 2023, glibc 2.34) can load, from any host.
manylinux_2_28 rather than manylinux2014: the older tag makes pip fall back to old releases (av 14,
numpy 2.2). If the local build fails and Docker is installed, CDK runs the same commands in the SAM build
image instead (`LocalPipBundling.try_bundle` returns False); without Docker the synth fails with pip's error.

The versions are requirements.lock's (`make lock`), the ones the dev venv and the after's image install:
the functions name their packages, the lock is the constraint, and `--require-hashes` checks every wheel
against the lock's hashes and refuses any package the lock does not pin. The Docker fallback gets the
lock's pins without their hashes in its command (with its hashes the lock nears Linux's 128 KiB limit on
one argument), so a changed pin also changes the asset hash and rebuilds the package.

Every package bundles boto3 with the botocore it requires: Powertools' tracer brings botocore (through
aws-xray-sdk), and a bundled botocore beside the runtime's boto3 would pair versions that were never
released together (the runtime's SDK changes with the runtime version and Region, see "Runtime-included
SDK versions" in docs.aws.amazon.com/lambda/latest/dg/lambda-python.html).
"""

from __future__ import annotations

import os
import re
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
# Every version comes from the lock, so the Lambda path decodes and detects with what the monolith runs.
LOCK = ROOT / "requirements.lock"
POWERTOOLS = "aws-lambda-powertools[tracer]"
AV = "av"
NUMPY = "numpy"
BOTO3 = "boto3"  # with the botocore it requires (boto3 pins botocore to its own minor); both are locked
M3U8 = "m3u8"  # live streams' playlists (lambdas/shared/live.py)
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "tests", "*.md")


class PackageTooLarge(RuntimeError):
    pass


class BundlingError(RuntimeError):
    """The local build failed and there is no Docker for CDK to fall back to."""


@dataclass(frozen=True)
class PackageSpec:
    """What one function ships: pip requirements and the `lambdas` sub-packages it imports."""

    name: str
    requirements: tuple[str, ...]
    packages: tuple[str, ...]


CONVERTER = PackageSpec("converter", (AV, NUMPY, M3U8, POWERTOOLS, BOTO3), ("converter", "shared"))
DETECTORS = PackageSpec("detectors", (NUMPY, POWERTOOLS, BOTO3), ("detectors", "shared"))
# The event-driven design's one function: the converter's decoder and the detectors in one package.
SEGMENT_ANALYZER = PackageSpec("segment_analyzer", (AV, NUMPY, M3U8, POWERTOOLS, BOTO3),
                               ("segment_analyzer", "converter", "detectors", "shared"))
CORRECTIVE_ACTION = PackageSpec("corrective_action", (POWERTOOLS, BOTO3), ("corrective_action", "shared"))
LIVE_STARTER = PackageSpec("live_starter", (M3U8, POWERTOOLS, BOTO3), ("live_starter", "shared"))


def pip_platform(architecture: str) -> str:
    return f"manylinux_2_28_{'aarch64' if architecture == 'arm64' else 'x86_64'}"


def pip_command(spec: PackageSpec, architecture: str, target: str, constraints: str,
                *, require_hashes: bool = True) -> list[str]:
    return [
        "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
        "--target", target,
        "--platform", pip_platform(architecture),
        "--implementation", "cp",
        "--python-version", PYTHON_VERSION,
        "--only-binary=:all:",
        *(["--require-hashes"] if require_hashes else []),
        "--constraint", constraints,
        *spec.requirements,
    ]


def locked_pins(lock: Path | None = None) -> list[str]:
    """The requirements of `lock` (default: the project's) without their hashes and comments:
    `numpy==2.5.5`, `colorama==0.4.6 ; sys_platform == 'win32'`."""
    text = (lock or LOCK).read_text().replace("\\\n", " ")  # one line per requirement
    lines = (re.sub(r"\s--hash=\S+", "", line.split("#", 1)[0]).strip() for line in text.splitlines())
    return [line for line in lines if line]


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
        command = [sys.executable, "-m", *pip_command(spec, architecture, str(output_dir), str(LOCK))]
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
        """True when built here; False hands the build to CDK's Docker bundling (same commands)."""
        try:
            build_package(self.spec, self.architecture, Path(output_dir))
        except subprocess.CalledProcessError as error:
            if shutil.which("docker") is None:
                raise BundlingError(f"{self.spec.name}: building the package with pip failed ({error}), and "
                                    "Docker, CDK's fallback, is not installed") from error
            print(f"warning: {self.spec.name}: local build failed ({error}); CDK builds it with Docker",
                  file=sys.stderr)
            for entry in Path(output_dir).iterdir():  # Docker starts from an empty output folder
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
            return False
        return True


# Where CDK's Docker bundling mounts the source and the output, and where the command writes the pins.
DOCKER_INPUT, DOCKER_OUTPUT, DOCKER_CONSTRAINTS = "/asset-input", "/asset-output", "/tmp/constraints.txt"


def docker_command(spec: PackageSpec, architecture: str) -> str:
    """The bash command that builds the package in the SAM build image: the lock's pins (a here-document)
    as the constraint of the same pip install, then the code."""
    lambdas = f"{DOCKER_OUTPUT}/lambdas"
    copy = " && ".join(f"cp -r {DOCKER_INPUT}/{p} {lambdas}/" for p in spec.packages)
    pip = ""
    if spec.requirements:
        install = pip_command(spec, architecture, DOCKER_OUTPUT, DOCKER_CONSTRAINTS, require_hashes=False)
        pins = "\n".join(locked_pins())
        pip = f"cat > {DOCKER_CONSTRAINTS} <<'LOCK'\n{pins}\nLOCK\n{shlex.join(install)} && "
    return f"{pip}mkdir -p {lambdas} && cp {DOCKER_INPUT}/__init__.py {lambdas}/ && {copy}"


def lambda_code(spec: PackageSpec, architecture: str, *, bundle: bool = True) -> lambda_.Code:
    """The function's code asset, from `lambdas/`. The requirements and the lock's pins are in the Docker
    command, so they are part of the asset hash: a changed pin rebuilds the package, an unchanged one
    reuses the copy staged in cdk.out. `bundle=False` copies the code only (offline synth; not
    deployable)."""
    if not bundle:
        spec = replace(spec, requirements=())
    return lambda_.Code.from_asset(
        str(LAMBDAS),
        exclude=["**/__pycache__", "**/*.pyc"],
        bundling=BundlingOptions(
            image=DockerImage.from_registry(f"public.ecr.aws/sam/build-python{PYTHON_VERSION}"),
            command=["bash", "-c", docker_command(spec, architecture)],
            local=LocalPipBundling(spec, architecture),
        ),
    )
