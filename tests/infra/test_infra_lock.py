"""One set of versions everywhere: the dev venv and the after's container image install requirements.lock's
versions (the Lambda packages' are checked where they are built, in test_infra_bundling.py).

The image test needs PyPI (or pip's cache): it runs the Dockerfile's install step in a fresh venv.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from importlib.metadata import distributions, version
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_
from locked_versions import installed_versions, locked_versions
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import infra.bundling
from infra.bundling import CORRECTIVE_ACTION, LOCK, lambda_code, locked_pins

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
PROJECT = "prime-video-monitor-before"


def final_stage(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile's last stage, line continuations joined."""
    text = re.sub(r"\\\r?\n", " ", text)
    stage = re.split(r"(?im)^\s*FROM\s", text)[-1]
    found = (re.match(r"\s*([A-Za-z]+)\s+(.*)$", line) for line in stage.splitlines()[1:])
    return [(m[1].upper(), m[2].strip()) for m in found if m]


def pip_installs(text: str) -> list[str]:
    """Every `pip install` command of the last stage's RUN steps, as the shell gets it."""
    parts = [part.strip() for instruction, args in final_stage(text) if instruction == "RUN"
             for part in args.split("&&")]
    return [part for part in parts if part.startswith("pip install ")]


def build_context(text: str, into: Path) -> None:
    """What the Dockerfile's COPY steps put in its WORKDIR, taken from this checkout."""
    for instruction, args in final_stage(text):
        if instruction == "COPY":
            *sources, destination = shlex.split(args)
            for source in sources:
                target = into / destination / Path(source).name if destination.endswith("/") else \
                    into / destination
                if (ROOT / source).is_dir():
                    shutil.copytree(ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(ROOT / source, target)


def test_the_dockerfile_parser_finds_the_install_steps_and_the_copies(tmp_path: Path) -> None:
    text = ("FROM python:3.13 AS build\nRUN pip install wrong\nFROM python:3.13-slim\n"
            "COPY pyproject.toml requirements.lock ./\nCOPY lambdas ./lambdas\n"
            "RUN pip install --no-deps . \\\n    && pip install -c requirements.lock 'x[y]' && useradd m\n")
    assert pip_installs(text) == ["pip install --no-deps .", "pip install -c requirements.lock 'x[y]'"]
    build_context(text, tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"pyproject.toml", "requirements.lock", "lambdas"}
    assert (tmp_path / "lambdas" / "shared").is_dir()


@pytest.mark.slow
def test_the_image_installs_the_locked_versions(tmp_path: Path) -> None:
    # Given the image's build context and a fresh Python 3.13 with the pip it ships (older than the lock's,
    # as python:3.13-slim's may be)
    text = DOCKERFILE.read_text()
    context = tmp_path / "app"
    build_context(text, context)
    venv = tmp_path / "venv"
    subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    # When the Dockerfile's install steps run there, in a shell whose `pip` is that interpreter's
    installs = pip_installs(text)
    assert installs, "the Dockerfile installs nothing with pip"
    environment = {**os.environ, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}",
                   "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_QUIET": "1"}
    for command in installs:
        done = subprocess.run(["bash", "-c", command], cwd=context, env=environment, capture_output=True,
                              text=True)
        assert done.returncode == 0, f"{command}:\n{done.stderr}"
    # Then every distribution in it but the project, pip included, is at the version of requirements.lock
    listed = subprocess.run([python, "-c", "import importlib.metadata as m, json; print(json.dumps("
                             "{d.metadata['Name']: d.version for d in m.distributions()}))"],
                            check=True, capture_output=True, text=True).stdout
    image = {canonicalize_name(name): v for name, v in json.loads(listed).items()}
    assert image.pop(PROJECT, None), image
    assert {"pip", "av", "numpy", "boto3", "botocore", "aws-lambda-powertools", "rich"} <= set(image), image
    locked = locked_versions()
    assert image == {name: locked.get(name, "not in the lock") for name in image}


def test_the_dev_venv_has_the_locked_versions() -> None:
    # Every locked distribution whose marker holds here is installed (make venv) at its locked version
    locked = locked_versions()
    assert {"av", "numpy", "boto3", "uv"} <= set(locked)
    here = installed_versions(list(distributions()))
    assert {name: here.get(name, "not installed") for name in locked} == locked
    assert version("boto3") == locked["boto3"]


def test_the_lock_pins_a_version_of_every_requirement_of_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(r) for r in
              [*project["dependencies"], *(r for extra in project["optional-dependencies"].values()
                                           for r in extra)]]
    locked = locked_versions()
    unmet = {str(r): locked.get(name) for r in wanted if (name := canonicalize_name(r.name)) not in locked
             or not r.specifier.contains(locked[name], prereleases=True)}
    assert unmet == {}, "requirements.lock is older than pyproject.toml: run make lock"


def test_the_lock_reader_drops_hashes_and_comments_and_keeps_markers(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text("# This file was autogenerated by uv via the following command:\n#    make lock\n"
                    "av==19.0.2 \\\n    --hash=sha256:04c8 \\\n    --hash=sha256:0e42\n    # via\n"
                    "    #   prime-video-monitor-before (pyproject.toml)\n"
                    "colorama==0.4.6 ; sys_platform == 'win32' \\\n    --hash=sha256:08695f5c\n"
                    "    # via pytest\n")
    assert locked_pins(lock) == ["av==19.0.2", "colorama==0.4.6 ; sys_platform == 'win32'"]
    assert locked_versions({"sys_platform": "linux"}, lock) == {"av": "19.0.2"}
    assert locked_versions({"sys_platform": "win32"}, lock) == {"av": "19.0.2", "colorama": "0.4.6"}


def staged_key(monkeypatch: pytest.MonkeyPatch, lock: Path) -> str:
    """The S3 key (= asset hash) of the corrective action's package with `lock` as the project's lock;
    bundling skipped, as the hash is computed before the package is built."""
    monkeypatch.setattr(infra.bundling, "LOCK", lock)
    stack = cdk.Stack(cdk.App(context={"aws:cdk:bundling-stacks": []}), "Stack")
    code = lambda_code(CORRECTIVE_ACTION, "x86_64")
    lambda_.Function(stack, "Function", runtime=lambda_.Runtime.PYTHON_3_13, handler="h.h", code=code)
    location = code.bind(stack).s3_location
    assert location is not None
    return location.object_key


def test_a_changed_pin_gives_the_lambda_package_a_new_asset_hash(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the lock, and a copy of it in which boto3 has another version
    boto3 = locked_versions()["boto3"]
    other = tmp_path / "requirements.lock"
    other.write_text(LOCK.read_text().replace(f"\nboto3=={boto3} ", "\nboto3==1.0.0 "))
    assert locked_versions(lock=other)["boto3"] == "1.0.0"
    # When the function's code asset is staged with each
    # Then the hashes differ (`cdk synth` rebuilds the package instead of reusing the one in cdk.out), and
    # the same lock gives the same hash
    keys = [staged_key(monkeypatch, lock) for lock in (LOCK, other, LOCK)]
    assert keys[0] != keys[1] and keys[0] == keys[2], keys
