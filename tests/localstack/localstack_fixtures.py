"""Pytest fixtures: a LocalStack (host mode, our ``process`` Lambda executor) for tests needing AWS services.

Session-scoped: one fresh instance per pytest session (per xdist worker) on a free port, data under tmp,
always stopped at the end; started only when a test asks for it. Fixtures:

- ``localstack``: the running server (``.url``, ``.port``, ``.pid``, ``.client_env()``);
- ``localstack_url``: its endpoint URL;
- ``localstack_env``: env vars for boto3 / AWS CLI / cdklocal subprocesses
  (``subprocess.run([...], env={**os.environ, **localstack_env})``);
- ``aws_client``: ``aws_client("s3")`` → a boto3 client for that LocalStack (no retries).

``tests/localstack/conftest.py`` imports them for the tests in this folder. A session-scoped fixture is
shared only by the tests below the conftest that defines it: put other LocalStack tests (e.g. CDK deploys)
in this folder, or import these fixtures from ``tests/conftest.py`` (then remove them from here) so that
one instance serves the whole session. ``launcher.start(dir)`` / ``launcher.stop(pid)`` (from
``scripts/localstack.py``) start extra instances.
"""

from __future__ import annotations

import fcntl
import hashlib
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from demo.deploy import load_launcher

ROOT = Path(__file__).resolve().parents[2]


launcher = load_launcher()


def require_localstack_venv() -> None:
    """Make sure the LocalStack venv is built and current; fail (never skip) when it cannot be: a test
    that cannot get LocalStack must not pass as skipped."""
    found = subprocess.run([ROOT / "scripts" / "find-python3.13"], capture_output=True, text=True)
    if found.returncode != 0:
        pytest.fail(f"LocalStack needs Python 3.13: {found.stderr.strip()}")
    lock_file = Path(tempfile.gettempdir(), f"venv-localstack-{hashlib.md5(bytes(ROOT)).hexdigest()}.lock")
    with open(lock_file, "w") as lock:  # xdist workers must not build it at the same time
        fcntl.flock(lock, fcntl.LOCK_EX)
        subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), "localstack-venv"], check=True)


@pytest.fixture(scope="session")
def localstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    require_localstack_venv()
    server = launcher.start(tmp_path_factory.mktemp("localstack"), keepalive_ms=60_000)
    try:
        yield server
    finally:
        launcher.stop(server.pid)


@pytest.fixture(scope="session")
def localstack_url(localstack: Any) -> str:
    return localstack.url


@pytest.fixture(scope="session")
def localstack_env(localstack: Any) -> dict[str, str]:
    return localstack.client_env()


@pytest.fixture(scope="session")
def aws_client(localstack: Any) -> Callable[[str], Any]:
    import boto3
    from botocore.config import Config

    config = Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=120)
    env = localstack.client_env()

    def client(service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=localstack.url,
            region_name=env["AWS_DEFAULT_REGION"],
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=config,
        )

    return client
