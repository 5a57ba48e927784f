"""A standard-library-only AWS Lambda Python runtime speaking LocalStack's runtime ("init") protocol.

The ``process`` executor starts it as ``python -S -u shim.py --parent-pid P --log-file F [--path D]...
[--runtime-path D]...`` with the function's environment, stdout and stderr appended to ``F``. It:

1. builds ``sys.path`` like AWS: ``LAMBDA_TASK_ROOT``, the layers (``--path``), the standard library, and
   last the runtime's own packages such as boto3 (``--runtime-path``), so a bundled boto3 wins;
2. imports the handler (``_HANDLER``), listens on 127.0.0.1 (port 0) and calls back
   ``$LOCALSTACK_RUNTIME_ENDPOINT/status/<id>/ready`` with ``{"port": N}`` — or ``.../error`` with an AWS
   shaped init error (``Runtime.ImportModuleError``, ``Runtime.HandlerNotFound``, ...);
3. for each ``POST /invoke`` runs the handler in the main thread, then posts
   ``invocations/<request id>/logs`` and afterwards ``invocations/<request id>/response`` or ``/error``.

The executor enforces the function timeout (it kills this process group); this process kills its own group
when its parent (LocalStack) goes away. It must run on any Python 3.9+, so it avoids newer syntax at runtime.
"""

from __future__ import annotations

import argparse
import decimal
import importlib
import json
import logging
import math
import os
import queue
import signal
import sys
import threading
import time
import traceback
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via an HTTP proxy
_INVOCATIONS: queue.Queue[dict[str, Any]] = queue.Queue()
_request_id = ""


class InitError(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def billed_duration_ms(duration_ms: float) -> int:
    """Lambda bills the duration rounded up to the next millisecond (an exact 40 ms bills 40, not 41)."""
    return max(1, math.ceil(duration_ms))


def _post(path: str, body: Any) -> None:
    url = f"{os.environ['LOCALSTACK_RUNTIME_ENDPOINT']}/{path}"
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST")
    request.add_header("Content-Type", "application/json")
    with _OPENER.open(request, timeout=60) as response:
        response.read()


def _error(error_type: str, message: str, stack: list[str] | None = None) -> dict[str, Any]:
    return {"errorMessage": message, "errorType": error_type, "requestId": _request_id,
            "stackTrace": stack or []}


def _unhandled(exc: BaseException) -> dict[str, Any]:
    stack = traceback.format_list(traceback.extract_tb(exc.__traceback__)[1:])  # drop the shim's frame
    trace = "".join(stack)
    print(f"[ERROR] {type(exc).__name__}: {exc}\nTraceback (most recent call last):\n{trace}", flush=True)
    return _error(type(exc).__name__, str(exc), stack)


def _load_handler(spec: str) -> Callable[[Any, Any], Any]:
    """Import ``module.function`` (the module may be a path like ``dir/module``) the way AWS does."""
    try:
        module_name, function_name = spec.rsplit(".", 1)
    except ValueError as e:
        raise InitError("Runtime.MalformedHandlerName", f"Bad handler '{spec}': {e}") from e
    if module_name.split(".")[0] in sys.builtin_module_names:
        raise InitError("Runtime.BuiltInModuleConflict", f"Cannot use built-in module {module_name} "
                        "as a handler module")
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as e:
        raise InitError("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {e}") from e
    except SyntaxError as e:
        raise InitError("Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {e}") from e
    try:
        return getattr(module, function_name)
    except AttributeError:
        raise InitError("Runtime.HandlerNotFound",
                        f"Handler '{function_name}' missing on module '{module_name}'") from None


class LambdaContext:
    def __init__(self, invoke: dict[str, Any], timeout_s: float) -> None:
        self.aws_request_id: str = invoke["invoke-id"]
        self.invoked_function_arn: str = invoke.get("invoked-function-arn", "")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _json_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _peak_memory_mb() -> int:
    try:  # VmHWM: this process's peak resident set since exec or the last _reset_peak_memory()
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) // 1024 for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return 0


def _reset_peak_memory() -> None:
    """Start VmHWM again from the current resident set, so Max Memory Used is this invocation's peak."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _invoke(handler: Callable[[Any, Any], Any], invoke: dict[str, Any], log_file: str, init_ms: float
            ) -> None:
    global _request_id
    _request_id = request_id = invoke["invoke-id"]
    os.environ["_X_AMZN_TRACE_ID"] = invoke.get("trace-id") or ""
    log_start = os.path.getsize(log_file)
    started, cpu_started = time.monotonic(), time.process_time()
    version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
    memory = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
    print(f"START RequestId: {request_id} Version: {version}", flush=True)
    _reset_peak_memory()
    outcome = "response"
    try:
        payload = invoke.get("payload") or "{}"
        context = LambdaContext(invoke, float(os.environ["AWS_LAMBDA_FUNCTION_TIMEOUT"]))
        result = handler(json.loads(payload), context)
        try:
            body: Any = json.dumps(result, default=_json_default).encode()
        except (TypeError, ValueError) as e:
            outcome, body = "error", _error("Runtime.MarshalError", f"Unable to marshal response: {e}")
    except Exception as e:
        outcome, body = "error", _unhandled(e)
    duration_ms = (time.monotonic() - started) * 1000
    cpu_ms = (time.process_time() - cpu_started) * 1000
    max_mb = _peak_memory_mb()
    # Past the memory size AWS kills the sandbox (its cgroup limit); the executor samples the memory
    # during the invocation, this catches a peak between two samples.
    killed = memory is not None and max_mb > int(memory)
    if killed:
        outcome = "error"
        body = {"errorType": "Runtime.OutOfMemory",
                "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: signal: killed"}
        print(f"{body['errorMessage']}\nRuntime.OutOfMemory", flush=True)
    init = f"\tInit Duration: {init_ms:.2f} ms" if init_ms else ""
    status = "\tStatus: error\tError Type: Runtime.OutOfMemory" if killed else ""
    sys.stderr.flush()
    print(f"END RequestId: {request_id}\nREPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
          f"Billed Duration: {billed_duration_ms(duration_ms)} ms\tMemory Size: {memory} MB\t"
          f"Max Memory Used: {max_mb} MB{init}\tCPU Time: {cpu_ms:.2f} ms{status}", flush=True)
    with open(log_file, "rb") as f:  # logs must arrive before the result: LocalStack attaches them then
        f.seek(log_start)
        _post(f"invocations/{request_id}/logs", {"logs": f.read().decode(errors="replace")})
    _post(f"invocations/{request_id}/{outcome}", body)
    if killed:
        os._exit(137)  # as killed: the next invocation starts a fresh environment


class _InvokeHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path != "/invoke":
            self.send_response(404)
        else:
            _INVOCATIONS.put(json.loads(body))
            self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # keep the function's log clean
        pass


def _exit_with_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    os.killpg(os.getpgrp(), signal.SIGKILL)  # LocalStack is gone: take our own children with us


def _setup_logging() -> None:
    """AWS attaches a handler to the root logger that prints the request id."""

    class RequestId(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            record.aws_request_id = _request_id
            return True

    line = "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s"
    formatter = logging.Formatter(line, "%Y-%m-%dT%H:%M:%S")
    formatter.converter = time.gmtime
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    handler.addFilter(RequestId())
    logging.getLogger().addHandler(handler)
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL")
    if level:
        logging.getLogger().setLevel(level.upper())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--parent-pid", type=int, required=True)
    parser.add_argument("--log-file", required=True)
    parser.add_argument("--path", action="append", default=[])
    parser.add_argument("--runtime-path", action="append", default=[])
    args = parser.parse_args()
    task_root = os.environ["LAMBDA_TASK_ROOT"]
    sys.path[:] = [task_root, *args.path, *sys.path[1:], *args.runtime_path]
    os.chdir(task_root)
    threading.Thread(target=_exit_with_parent, args=(args.parent_pid,), daemon=True).start()
    server = HTTPServer(("127.0.0.1", 0), _InvokeHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    _setup_logging()
    started = time.monotonic()
    status = f"status/{os.environ['LOCALSTACK_RUNTIME_ID']}"
    try:
        handler = _load_handler(os.environ.get("_HANDLER", ""))
    except InitError as e:
        cause = e.__cause__ or e
        trace = "".join(traceback.format_exception(type(cause), cause, cause.__traceback__))
        print(f"[ERROR] {e.error_type}: {e}\n{trace}", flush=True)
        _post(f"{status}/error", _error(e.error_type, str(e)))
        return
    except Exception as e:  # the module raised while being imported
        _post(f"{status}/error", _unhandled(e))
        return
    init_ms = (time.monotonic() - started) * 1000
    _post(f"{status}/ready", {"port": server.server_address[1]})
    while True:
        _invoke(handler, _INVOCATIONS.get(), args.log_file, init_ms)
        init_ms = 0.0


if __name__ == "__main__":
    main()
