"""Fixtures for the stack tests (helpers live in infra_helpers.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from infra_helpers import Synth, synth

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def synthesized() -> Synth:
    return synth()


@pytest.fixture(scope="session")
def cli_synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`scripts/cdk synth -c bundle=false` into a folder of its own, with a `docker` first on PATH that
    records any call: the container image must only be staged at synth, never built."""
    base = tmp_path_factory.mktemp("cli-synth")
    bin_dir, marker, outdir = base / "bin", base / "docker-called", base / "cdk.out"
    bin_dir.mkdir()
    fake = bin_dir / "docker"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {marker}\nexit 1\n')
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    command = [str(ROOT / "scripts" / "cdk"), "synth", "-q", "-c", "bundle=false", "-o", str(outdir)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert not marker.exists(), f"synth called docker: {marker.read_text()}"
    return outdir
