"""Where LocalStack 4.14.0's Step Functions differ from AWS, for workflows that must run on both: patched
at start-up (``install()``, called by ``__main__`` before LocalStack starts).

Each patch replaces one LocalStack function, named below, and ``check()`` first verifies that 4.14.0's
internals are what the patch was written against (the version, the function, its parameters, the names
its caller looks up); anything else stops LocalStack with ``ParityPatchError`` instead of running a
silently different emulator.

1. ``localstack.services.stepfunctions.asl.utils.json_path._contains_slice_or_wildcard_array``
   (looked up by ``extract_json`` at call time). AWS evaluates Parameters paths with Jayway JsonPath,
   which returns ``[]`` for any indefinite path that matches nothing — e.g. ``$.detect[*].defects[*]``
   when no branch found a defect (localstack#12318, whose fix localstack#12366 covers only paths with a
   single wildcard; ministack#1217 recorded ``$.results[*].previews[0].changes[*]`` → ``[]`` on AWS).
   LocalStack fails such a path with ``States.Runtime``; the patch makes every path with a ``[*]`` or
   ``.*`` (not at the root) indefinite.
2. ``localstack.services.stepfunctions.asl.component.state.state_execution.state_task.service.
   state_task_service_lambda.StateTaskServiceLambda._from_error``. A lambda:invoke whose HTTP connection
   to the Lambda API fails (refused, reset, closed before a response, e.g. a dropped keep-alive
   connection on a saturated host) is recorded by LocalStack as the non-retryable ``States.Runtime``; on
   AWS the SDK's client-side failure is ``Lambda.SdkClientException``, which workflows retry. Only
   connection failures are mapped (``connection_failure``): a request the client refuses to send
   (``ParamValidationError``) or a response that never finished arriving (``ReadTimeoutError``) keeps
   LocalStack's own error, so a request bug is not retried and mislabelled.

The workflow no longer depends on how a blob parameter given as a string is sent (s3:putObject ``Body``):
it passes the record as a JSON object, which AWS and LocalStack both serialise to the same JSON text.
"""

from __future__ import annotations

import inspect
import re
from importlib import metadata
from typing import Any

LOCALSTACK_VERSION = "4.14.0"
JSON_PATH = "localstack.services.stepfunctions.asl.utils.json_path"
LAMBDA_TASK = ("localstack.services.stepfunctions.asl.component.state.state_execution.state_task.service."
               "state_task_service_lambda")
_WILDCARD = re.compile(r"\[\*\]|\.\*")


class ParityPatchError(RuntimeError):
    """LocalStack is not the version, or its internals not the shape, these patches were written for."""


def connection_failure(error: BaseException) -> bool:
    """A failure to reach the service over HTTP at all: what the AWS SDKs report as SdkClientException."""
    from botocore.exceptions import ConnectionClosedError, ConnectionError

    return isinstance(error, ConnectionError | ConnectionClosedError)


def as_sdk_client_exception(error: Exception) -> Exception:
    """A connection failure as the ClientError the Lambda task maps to ``Lambda.SdkClientException``;
    any other error unchanged."""
    from botocore.exceptions import ClientError

    if not connection_failure(error):
        return error
    response: Any = {"Error": {"Code": "SdkClientException", "Message": str(error)},
                     "ResponseMetadata": {"HTTPStatusCode": 0, "RequestId": ""}}
    return ClientError(response, "Invoke")


def _require(condition: bool, what: str) -> None:
    if not condition:
        raise ParityPatchError(f"LocalStack {LOCALSTACK_VERSION} parity patches: {what}; update "
                               f"{__name__} (sfn_parity.py) for this LocalStack")


def check() -> None:
    """Fail loudly unless LocalStack's internals are those of 4.14.0 that the patches replace."""
    import importlib

    version = metadata.version("localstack-core")
    _require(version == LOCALSTACK_VERSION, f"found localstack-core {version}")
    json_path = importlib.import_module(JSON_PATH)
    _require(callable(getattr(json_path, "_contains_slice_or_wildcard_array", None)),
             f"{JSON_PATH}._contains_slice_or_wildcard_array is gone")
    _require(list(inspect.signature(json_path._contains_slice_or_wildcard_array).parameters) == ["path"],
             "_contains_slice_or_wildcard_array no longer takes (path)")
    _require("_contains_slice_or_wildcard_array" in json_path.extract_json.__code__.co_names,
             "extract_json no longer calls _contains_slice_or_wildcard_array")
    lambda_task = importlib.import_module(LAMBDA_TASK).StateTaskServiceLambda
    _require("_from_error" in vars(lambda_task), "StateTaskServiceLambda._from_error is gone")
    _require(list(inspect.signature(lambda_task._from_error).parameters) == ["self", "env", "ex"],
             "StateTaskServiceLambda._from_error no longer takes (self, env, ex)")
    _require("ClientError" in inspect.getsource(inspect.unwrap(lambda_task._from_error)),
             "StateTaskServiceLambda._from_error no longer maps a ClientError to its error code")


def install() -> None:
    """Check, then patch (idempotent: a second call changes nothing)."""
    import importlib

    check()
    json_path = importlib.import_module(JSON_PATH)
    if not getattr(json_path._contains_slice_or_wildcard_array, "parity_patch", False):
        original = json_path._contains_slice_or_wildcard_array

        def contains_slice_or_wildcard_array(path: str) -> bool:
            return original(path) or (not path.startswith("$[") and _WILDCARD.search(path) is not None)

        contains_slice_or_wildcard_array.parity_patch = True  # type: ignore[attr-defined]
        contains_slice_or_wildcard_array.__wrapped__ = original  # type: ignore[attr-defined]
        json_path._contains_slice_or_wildcard_array = contains_slice_or_wildcard_array

    lambda_task = importlib.import_module(LAMBDA_TASK).StateTaskServiceLambda
    if not getattr(lambda_task._from_error, "parity_patch", False):
        from_error_original = lambda_task._from_error

        def from_error(self: Any, env: Any, ex: Exception) -> Any:
            return from_error_original(self, env, as_sdk_client_exception(ex))

        from_error.parity_patch = True  # type: ignore[attr-defined]
        from_error.__wrapped__ = from_error_original  # type: ignore[attr-defined]
        lambda_task._from_error = from_error
