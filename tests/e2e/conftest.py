"""The LocalStack fixtures (tests/localstack/localstack_fixtures.py): one instance per session (per xdist
worker) serves these tests; the stacks are deployed once on it (`stack`), except the reliability module's
stage of its own."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "localstack"))

from localstack_fixtures import aws_client, localstack, localstack_env, localstack_url

from demo.deploy import Stack, deploy
from demo.run import Aws

# Executions continue as new every 3 seconds, so every stream of a few seconds continues mid-stream.
SECONDS_PER_EXECUTION = 3

__all__ = ["aws", "aws_client", "localstack", "localstack_env", "localstack_url"]


@pytest.fixture(scope="session")
def aws(localstack: Any) -> Aws:
    """The demo's boto3 clients, pointed at this session's LocalStack."""
    return Aws(localstack.url)


@pytest.fixture(scope="session")
def seconds_per_execution() -> int:
    """How many stream-seconds one execution of the deployed `stack` handles."""
    return SECONDS_PER_EXECUTION


@pytest.fixture(scope="session")
def stack(localstack: Any, seconds_per_execution: int) -> Stack:
    """The before deployed once for every e2e module (its outputs name the after and the serverless
    design, which demo.deploy deploys beside it on their shared storage and topic)."""
    return deploy(localstack.url, context={"seconds_per_execution": str(seconds_per_execution)})


@pytest.fixture(scope="module")
def no_other_executions(aws: Aws, stack: Stack) -> int:
    """Stops the before's executions still running when a module that bills by time starts: every live
    stream an earlier module on this LocalStack published also started the before (its playlist's event),
    and their converter and detector invocations would land in this module's time window. How many were
    stopped."""
    settle_s = 3.0
    paginator = aws.sfn.get_paginator("list_executions")
    running = [e["executionArn"] for page in paginator.paginate(stateMachineArn=stack.state_machine_arn,
                                                              statusFilter="RUNNING")
               for e in page["executions"]]
    for arn in running:
        aws.sfn.stop_execution(executionArn=arn, error="TestIsolation",
                               cause="stopped so that a later test's bill holds only its own invocations")
    if running:
        time.sleep(settle_s)  # invocations already under way end and log their REPORT lines first
    return len(running)
