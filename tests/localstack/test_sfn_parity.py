"""The Step Functions parity patches LocalStack gets at start-up, checked on its own state objects."""

from __future__ import annotations

import json
import subprocess

from localstack_fixtures import launcher, require_localstack_venv

# Runs in LocalStack's venv: parse a lambda:invoke task, fail it with a connection closed before any HTTP
# response, and print the error the task records without and with the patches.
SCRIPT = """
import json
from types import SimpleNamespace
from botocore.exceptions import ConnectionClosedError
from localstack.services.stepfunctions.asl.parse.asl_parser import AmazonStateLanguageParser
from localstack_process_executor.__main__ import _step_functions_parity

definition = {"StartAt": "Invoke", "States": {"Invoke": {
    "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
    "Parameters": {"FunctionName": "f", "Payload": {}}, "End": True}}}
program, _ = AmazonStateLanguageParser.parse(json.dumps(definition))
task = program.states.states["Invoke"]
env = SimpleNamespace(next_state_name="Invoke", event_history_context=SimpleNamespace(source_event_id=1))
closed = ConnectionClosedError(endpoint_url="http://127.0.0.1:4566/2015-03-31/functions/f/invocations")

def error():
    return task._from_error(env, closed).event_details["taskFailedEventDetails"]["error"]

before = error()
_step_functions_parity()
print(json.dumps({"before": before, "after": error()}))
"""


def test_a_broken_connection_to_lambda_is_the_retryable_sdk_client_exception() -> None:
    # Given a lambda:invoke task parsed by LocalStack 4.14.0
    require_localstack_venv()
    # When its call to the Lambda API fails without any response, before and after our start-up patches
    done = subprocess.run([str(launcher.localstack_python()), "-c", SCRIPT], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # Then LocalStack alone records States.Runtime (never retried), and patched it records what AWS does:
    # Lambda.SdkClientException, which every Lambda task's Retry in the workflow covers
    assert result == {"before": "States.Runtime", "after": "Lambda.SdkClientException"}
