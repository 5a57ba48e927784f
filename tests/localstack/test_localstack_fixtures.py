"""The LocalStack fixtures fail, never skip, when LocalStack cannot be had: `make test` cannot pass with the
LocalStack tests left out."""

from __future__ import annotations

from pathlib import Path

import localstack_fixtures
import pytest


def test_no_python_3_13_fails_the_test_instead_of_skipping_it(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a checkout whose interpreter finder finds no Python 3.13
    finder = tmp_path / "scripts" / "find-python3.13"
    finder.parent.mkdir()
    finder.write_text("#!/bin/sh\necho 'error: Python 3.13 not found' >&2\nexit 1\n")
    finder.chmod(0o755)
    monkeypatch.setattr(localstack_fixtures, "ROOT", tmp_path)
    # When a LocalStack test asks for LocalStack
    try:
        localstack_fixtures.require_localstack_venv()
        outcome: BaseException | None = None
    except BaseException as raised:  # pytest's skip and fail outcomes are BaseExceptions
        outcome = raised
    # Then the test fails, naming why; it is not skipped
    assert isinstance(outcome, pytest.fail.Exception), repr(outcome)
    assert "LocalStack needs Python 3.13: error: Python 3.13 not found" in str(outcome)


@pytest.mark.parametrize("target, venv", [("venv", ".venv"), ("localstack-venv", ".venv-localstack")])
def test_a_venv_stamp_built_with_another_interpreter_rebuilds_the_venv(target: str, venv: str) -> None:
    import subprocess
    import sys

    # Given another interpreter than the one the venvs were built with (this venv's own python: its
    # sys.executable is not the base interpreter's)
    root = Path(localstack_fixtures.ROOT)
    other = sys.executable
    # When make plans the venv target with it (dry run)
    plan = subprocess.run(["make", "-n", "--no-print-directory", "-C", str(root), target,
                           f"PYTHON313={other}"], capture_output=True, text=True, timeout=120)
    # Then it recreates the venv unless that venv already runs on it, reinstalls, and records the
    # interpreter in the stamp
    assert plan.returncode == 0, plan.stderr
    version = ".".join(map(str, sys.version_info[:3]))
    assert f"{other} -m venv --clear {venv}" in plan.stdout
    assert f'echo "{version} {other}" > {venv}/.installed' in plan.stdout
