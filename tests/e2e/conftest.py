"""The LocalStack fixtures (tests/localstack/localstack_fixtures.py): one instance per session (per xdist
worker) serves these tests; the stack is deployed once on it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "localstack"))

from localstack_fixtures import aws_client, localstack, localstack_env, localstack_url

from demo.run import Aws

__all__ = ["aws", "aws_client", "localstack", "localstack_env", "localstack_url"]


@pytest.fixture(scope="session")
def aws(localstack: Any) -> Aws:
    """The demo's boto3 clients, pointed at this session's LocalStack."""
    return Aws(localstack.url)
