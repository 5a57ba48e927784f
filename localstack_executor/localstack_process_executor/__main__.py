"""Run LocalStack (``python -m localstack_process_executor``) after checking that the Lambda executor named
in ``LAMBDA_RUNTIME_EXECUTOR`` really exists: LocalStack itself only warns and falls back to Docker."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time


def _stop_with_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(1)
    os.kill(os.getpid(), signal.SIGTERM)  # a clean shutdown, which also stops the Lambda runtimes


def _step_functions_parity() -> None:
    """Three places where LocalStack 4.14.0's Step Functions differ from AWS, for workflows that run on both.

    - Jayway JsonPath (AWS) returns [] for any indefinite path that matches nothing, e.g.
      `$.detect[*].defects[*]` when no branch found a defect; LocalStack does so only for paths with a
      single wildcard and fails the execution otherwise.
    - An aws-sdk integration's blob parameter given as a string (`"Body.$": "States.JsonToString($)"`
      for s3:putObject) is sent as that string's bytes on AWS; LocalStack JSON-encodes it again, so the
      object holds a quoted string instead of the JSON document.
    - A lambda:invoke whose connection to the Lambda API breaks (a dropped keep-alive connection, seen on
      a saturated host) fails with the non-retryable `States.Runtime`; on AWS the SDK's client-side
      failure is `Lambda.SdkClientException`, which workflows retry.
    """
    import re

    from botocore.exceptions import BotoCoreError, ClientError
    from localstack.services.stepfunctions.asl.component.state.state_execution.state_task.service import (
        state_task_service,
        state_task_service_lambda,
    )
    from localstack.services.stepfunctions.asl.utils import json_path

    contains_wildcard = json_path._contains_slice_or_wildcard_array  # looked up at call time
    json_path._contains_slice_or_wildcard_array = (
        lambda path: contains_wildcard(path) or (not path.startswith("$[") and re.search(r"\[\*\]|\.\*", path)
                                                 is not None))

    service = state_task_service.StateTaskService
    to_boto = service._to_boto_request_value

    def to_boto_request_value(self: object, request_value: object, value_shape: object) -> object:
        if getattr(value_shape, "type_name", None) == "blob" and isinstance(request_value, str):
            return request_value.encode()
        return to_boto(self, request_value, value_shape)

    service._to_boto_request_value = to_boto_request_value

    lambda_task = state_task_service_lambda.StateTaskServiceLambda
    lambda_from_error = lambda_task._from_error

    def from_error(self: object, env: object, ex: Exception) -> object:
        if isinstance(ex, BotoCoreError):  # no HTTP response at all: a client-side failure
            response = {"Error": {"Code": "SdkClientException", "Message": str(ex)},
                        "ResponseMetadata": {"HTTPStatusCode": 0, "RequestId": ""}}
            ex = ClientError(response, "Invoke")  # type: ignore[arg-type]
        return lambda_from_error(self, env, ex)

    lambda_task._from_error = from_error


def main() -> None:
    from localstack.services.lambda_.invocation.runtime_executor import EXECUTOR_PLUGIN_MANAGER

    name = os.environ.get("LAMBDA_RUNTIME_EXECUTOR", "").strip()
    if not EXECUTOR_PLUGIN_MANAGER.exists(name):
        names = sorted(spec.name for spec in EXECUTOR_PLUGIN_MANAGER.list_plugin_specs())
        sys.exit(f"error: LAMBDA_RUNTIME_EXECUTOR={name!r} is not an installed Lambda executor {names}")
    print(f"Lambda runtime executor: {name}", flush=True)
    if os.environ.get("LOCALSTACK_EXIT_WITH_PARENT") == "1":  # e.g. a test session that gets killed
        threading.Thread(target=_stop_with_parent, args=(os.getppid(),), daemon=True).start()
    _step_functions_parity()
    from localstack.runtime.main import main as localstack_main

    localstack_main()


if __name__ == "__main__":
    main()
