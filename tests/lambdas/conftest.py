"""Fixtures for the Lambda handler tests: moto S3 with a short stream holding a freeze."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws  # before any handler module creates its boto3 client

os.environ.update({
    "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
    "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_NAMESPACE": "StreamQualityTest",
    "POWERTOOLS_SERVICE_NAME": "test", "TEMP_BUCKET": "frames-bucket", "RESULTS_BUCKET": "results-bucket",
    # One stream cache per test process: the converter empties its cache folder before a download, and
    # xdist workers running handler tests side by side would otherwise delete each other's stream.
    "STREAM_CACHE_DIR": tempfile.mkdtemp(prefix="stream-cache-"),
})

from fn_helpers import SOURCE_BUCKET
from lambda_context import LambdaContext


@pytest.fixture
def context() -> LambdaContext:
    return LambdaContext()


@pytest.fixture(scope="session")
def frozen_stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5 s of 320x180 H.264/AAC with a 2.5 s freeze from 1.2 s (the freeze spans three seconds), one GOP
    for the whole clip (a keyframe inside the freeze would not split it either: 1.20-3.72 s with 1 s GOPs
    too, measured 2026-12-02)."""
    from sample_streams import Freeze, generate_stream

    path = tmp_path_factory.mktemp("streams") / "frozen.mp4"
    generate_stream(path, duration_s=5.0, width=320, height=180, fps=25, gop_s=5.0,
                    defects=[Freeze(1.2, 2.5)], seed=3)
    return path


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3")
        for bucket in (SOURCE_BUCKET, os.environ["TEMP_BUCKET"], os.environ["RESULTS_BUCKET"]):
            client.create_bucket(Bucket=bucket)
        yield client
