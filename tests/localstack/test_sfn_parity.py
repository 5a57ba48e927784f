"""The Step Functions parity patches LocalStack gets at start-up (localstack_process_executor/sfn_parity.py):
each on LocalStack's own objects in its venv, and on small definitions run by a patched LocalStack."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from localstack_fixtures import launcher, require_localstack_venv

ROLE = "arn:aws:iam::000000000000:role/sfn-role"

# Runs in LocalStack's venv: parse a lambda:invoke task, fail it with `error`, and print the error the task
# records without and with the patches.
SCRIPT = """
import json, sys
from types import SimpleNamespace
from botocore.exceptions import (ConnectionClosedError, EndpointConnectionError, ParamValidationError,
                                 ReadTimeoutError)
from localstack.services.stepfunctions.asl.parse.asl_parser import AmazonStateLanguageParser
from localstack_process_executor import sfn_parity

url = "http://127.0.0.1:4566/2015-03-31/functions/f/invocations"
errors = {"closed": ConnectionClosedError(endpoint_url=url),
          "refused": EndpointConnectionError(endpoint_url=url),
          "read_timeout": ReadTimeoutError(endpoint_url=url),
          "param_validation": ParamValidationError(report="Invalid type for parameter Payload")}
definition = {"StartAt": "Invoke", "States": {"Invoke": {
    "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
    "Parameters": {"FunctionName": "f", "Payload": {}}, "End": True}}}
program, _ = AmazonStateLanguageParser.parse(json.dumps(definition))
task = program.states.states["Invoke"]
env = SimpleNamespace(next_state_name="Invoke", event_history_context=SimpleNamespace(source_event_id=1))

def recorded(error):
    try:
        return task._from_error(env, error).event_details["taskFailedEventDetails"]["error"]
    except Exception as e:  # LocalStack's own handling of an error it does not map
        return "raised " + type(e).__name__

before = {name: recorded(e) for name, e in errors.items()}
sfn_parity.install()
sfn_parity.install()  # idempotent
print(json.dumps({"before": before, "after": {name: recorded(e) for name, e in errors.items()}}))
"""


def run_in_localstack_venv(script: str) -> subprocess.CompletedProcess[str]:
    require_localstack_venv()
    return subprocess.run([str(launcher.localstack_python()), "-c", script], capture_output=True, text=True,
                          timeout=120)


def test_only_connection_failures_become_the_retryable_sdk_client_exception() -> None:
    # Given a lambda:invoke task parsed by LocalStack 4.14.0
    # When its call to the Lambda API fails in four ways, before and after our start-up patches
    done = run_in_localstack_venv(SCRIPT)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # Then LocalStack alone records States.Runtime for all of them; patched, a connection that was refused
    # or closed before any response is what AWS reports, Lambda.SdkClientException (the workflow retries
    # it), while a request the client refused to send or a read timeout keep LocalStack's own error
    assert set(result["before"].values()) == {"States.Runtime"}, result
    assert result["after"] == {"closed": "Lambda.SdkClientException", "refused": "Lambda.SdkClientException",
                               "read_timeout": "States.Runtime", "param_validation": "States.Runtime"}


@pytest.mark.parametrize("breakage, message", [
    ("json_path._contains_slice_or_wildcard_array = None", "_contains_slice_or_wildcard_array is gone"),
    ("json_path.extract_json = lambda path, data: None",
     "extract_json no longer calls _contains_slice_or_wildcard_array"),
    ("lambda_task.StateTaskServiceLambda._from_error = lambda self, env, error: None",
     "_from_error no longer takes (self, env, ex)"),
    ("metadata.version = lambda name: '4.15.0'", "found localstack-core 4.15.0"),
])
def test_start_up_check_fails_loudly_on_other_internals(breakage: str, message: str) -> None:
    # Given LocalStack's modules changed the way a different release would change them
    script = f"""
import importlib
from importlib import metadata
from localstack_process_executor import sfn_parity
json_path = importlib.import_module(sfn_parity.JSON_PATH)
lambda_task = importlib.import_module(sfn_parity.LAMBDA_TASK)
{breakage}
sfn_parity.install()
"""
    # When the patches are installed
    done = run_in_localstack_venv(script)
    # Then they refuse, naming what is different
    assert done.returncode != 0
    assert "ParityPatchError" in done.stderr and message in done.stderr, done.stderr[-2000:]


def run_definition(aws_client: Callable[[str], Any], definition: dict[str, Any], payload: Any
                   ) -> dict[str, Any]:
    sfn = aws_client("stepfunctions")
    machine = sfn.create_state_machine(name=f"parity-{uuid.uuid4().hex[:8]}",
                                       definition=json.dumps(definition), roleArn=ROLE)["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine, input=json.dumps(payload))["executionArn"]
    deadline = time.monotonic() + 60
    while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return described


def test_an_indefinite_path_that_matches_nothing_is_an_empty_list(aws_client: Callable[[str], Any]) -> None:
    # Given the workflow's Evaluate paths in a one-state definition, and branch results with no defect
    definition = {"StartAt": "Evaluate", "States": {"Evaluate": {"Type": "Pass", "End": True, "Parameters": {
        "defects.$": "$.detect[*].defects[*]", "notices.$": "$.detect[*].defects[0:2]",
        "states.$": "$.detect[*].carry[*]"}}}}
    quiet = {"detect": [{"defects": [], "carry": [{"d": 1}]}, {"defects": [], "carry": [{"d": 2}]}]}
    busy = {"detect": [{"defects": [1, 2, 3], "carry": []}, {"defects": [4], "carry": []}]}
    # When patched LocalStack runs it
    outputs = [run_definition(aws_client, definition, data) for data in (quiet, busy)]
    # Then, as with Jayway JsonPath on AWS, no match is [] (stock 4.14.0 fails the execution), and the
    # slice keeps at most two per branch
    assert [o["status"] for o in outputs] == ["SUCCEEDED", "SUCCEEDED"], outputs
    assert json.loads(outputs[0]["output"]) == {"defects": [], "notices": [], "states": [{"d": 1}, {"d": 2}]}
    assert json.loads(outputs[1]["output"]) == {"defects": [1, 2, 3, 4], "notices": [1, 2, 4], "states": []}


def test_a_record_given_as_an_object_is_stored_as_its_json(aws_client: Callable[[str], Any]) -> None:
    # Given the workflow's Record task shape (Body as a JSON object, no blob patch in LocalStack)
    s3 = aws_client("s3")
    bucket = f"parity-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    record = {"stream_id": "cam-1", "second": 3, "defects": [{"type": "freeze", "start_s": 1.5}]}
    definition = {"StartAt": "Record", "States": {"Record": {
        "Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:putObject", "End": True,
        "Parameters": {"Bucket": bucket, "Key": "r.json", "Body.$": "$.record",
                       "ContentType": "application/json"}}}}
    # When it runs
    described = run_definition(aws_client, definition, {"record": record})
    # Then the object holds the JSON document itself, not a quoted string
    assert described["status"] == "SUCCEEDED", described
    assert json.loads(s3.get_object(Bucket=bucket, Key="r.json")["Body"].read()) == record
