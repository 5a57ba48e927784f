"""The whole workflow file driven with the real Lambda handlers on moto S3: the results records it writes
hold the monolith's defects, continuation included, and DuckDB reads them back from a local copy."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import boto3
import pytest
from asl_sim import Execution, TaskError, aws_sdk_blob
from lambda_context import LambdaContext
from moto import mock_aws

os.environ.update({
    "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
    "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_NAMESPACE": "StreamQualityTest",
    "TEMP_BUCKET": "frames-bucket", "RESULTS_BUCKET": "results-bucket",
    # One stream cache per test process: the converter empties its cache folder before a download, and
    # xdist workers running handler tests side by side would otherwise delete each other's stream.
    "STREAM_CACHE_DIR": tempfile.mkdtemp(prefix="stream-cache-"),
})

from test_infra_workflow import definition

from lambdas.converter import handler as converter_module
from lambdas.converter.handler import handler as converter
from lambdas.detectors import handlers
from lambdas.shared.request_counting import counting_client
from lambdas.shared.results import query_defects, read_records
from monolith.pipeline import analyze

FUNCTIONS = {"arn:converter": converter, "arn:freeze": handlers.freeze_handler,
             "arn:block_corruption": handlers.block_corruption_handler,
             "arn:av_sync": handlers.av_sync_handler}


class RealAws:
    def __init__(self, s3: Any) -> None:
        self.s3, self.started, self.published = s3, [], []

    def __call__(self, resource: str, params: dict[str, Any]) -> Any:
        params = json.loads(json.dumps(params))
        if resource == "arn:aws:states:::lambda:invoke":
            try:
                payload = FUNCTIONS[params["FunctionName"]](params["Payload"], LambdaContext())
            except Exception as error:  # what lambda:invoke reports: errorType = the class name
                raise TaskError(type(error).__name__, json.dumps({"errorMessage": str(error)})) from None
            return {"Payload": json.loads(json.dumps(payload))}
        if resource == "arn:aws:states:::aws-sdk:s3:putObject":
            # The bytes Step Functions sends for the blob parameter Body
            self.s3.put_object(Bucket=params["Bucket"], Key=params["Key"], Body=aws_sdk_blob(params["Body"]))
            return {}
        if resource == "arn:aws:states:::sns:publish":
            self.published.append(json.loads(params["Message"]))
            return {}
        if resource == "arn:aws:states:::states:startExecution":
            self.started.append(params)
            return {}
        raise AssertionError(resource)


@pytest.fixture(params=["mp4", "live"])
def stream(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """The stream as a file (with a duration), and as written live (Matroska without a duration or Cues:
    the workflow's Last? choice then ends on the converter's `is_last`, found by reading)."""
    from sample_streams import Freeze, generate_stream
    from sample_streams.live import write_live

    path = tmp_path / "frozen.mp4"
    generate_stream(path, duration_s=5.0, width=320, height=180, fps=25, gop_s=5.0,
                    defects=[Freeze(1.2, 2.5)], seed=3)
    return path if request.param == "mp4" else write_live(path, tmp_path / "frozen-live.mkv")


@pytest.fixture
def mocked_aws(monkeypatch: pytest.MonkeyPatch) -> Any:
    """moto's S3, and the handlers' module clients made anew inside it: another test module may have
    imported the handlers first, before moto, and their clients would then call the real S3."""
    with mock_aws():
        for module in (converter_module, handlers):
            monkeypatch.setattr(module, "S3", counting_client(module.COUNTER, "s3"))
        yield


def test_workflow_with_real_handlers_records_the_monolith_defects(
        stream: Path, tmp_path: Path, mocked_aws: None) -> None:
    s3 = boto3.client("s3")
    for bucket in ("source-bucket", "frames-bucket", "results-bucket"):
        s3.create_bucket(Bucket=bucket)
    key = f"streams/cam-1{stream.suffix}"
    s3.upload_file(str(stream), "source-bucket", key)
    aws = RealAws(s3)
    # Given executions of 2 seconds each (so the 5 s stream needs three, continuing as new twice)
    machine = definition(2)
    Execution(machine, aws, name="run1").run(
        {"bucket": "source-bucket", "key": key, "stream_id": "cam-1"})
    runs = 1
    while len(aws.started) >= runs:
        request = aws.started[runs - 1]
        Execution(machine, aws, name=request["Name"]).run(request["Input"])
        runs += 1
    assert runs == 3
    # When the results bucket is copied locally
    for obj in s3.list_objects_v2(Bucket="results-bucket")["Contents"]:
        target = tmp_path / "results-copy" / obj["Key"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(s3.get_object(Bucket="results-bucket", Key=obj["Key"])["Body"].read())
    expected = analyze(stream)["defects"]
    records = read_records(tmp_path / "results-copy")
    # Then there is one record per second, and together they hold the monolith's defects
    assert [r["second"] for r in records] == [0, 1, 2, 3, 4]
    recorded = [d for r in records for d in r["defects"]]
    assert sorted(recorded, key=lambda d: (d["start_s"], d["type"], d["end_s"])) == expected
    # And one notification went out per defect
    assert [m["defect"] for m in aws.published] == [d for r in records for d in r["defects"]]
    # And DuckDB reads the same defects from the partitioned JSON lines
    rows = query_defects(tmp_path / "results-copy")
    assert [(r["type"], r["start_s"], r["end_s"]) for r in rows] == [
        (d["type"], d["start_s"], d["end_s"]) for d in expected]
    assert {r["stream_id"] for r in rows} == {"cam-1"}
