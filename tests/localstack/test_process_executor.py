"""Real Lambda functions on LocalStack (host mode) through our ``process`` runtime executor."""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import os
import signal
import time
import uuid
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from localstack_fixtures import launcher, require_localstack_venv

pytestmark = pytest.mark.slow
ROLE = "arn:aws:iam::000000000000:role/lambda-role"


def make_zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, source in files.items():
            archive.writestr(name, source)
    return buffer.getvalue()


def create_function(lambda_client: Any, source: str, timeout: int = 10, runtime: str = "python3.13",
                    **kwargs: Any) -> str:
    name = f"fn-{uuid.uuid4().hex[:10]}"
    lambda_client.create_function(FunctionName=name, Runtime=runtime, Role=ROLE, Handler="app.handler",
                                  Code={"ZipFile": make_zip({"app.py": source})}, Timeout=timeout, **kwargs)
    while lambda_client.get_function_configuration(FunctionName=name)["State"] == "Pending":
        time.sleep(0.05)  # boto3's waiter polls once a second
    return name


def invoke(lambda_client: Any, name: str, event: Any = None) -> tuple[Any, str | None, str]:
    """→ (decoded payload, FunctionError, log tail)."""
    response = lambda_client.invoke(FunctionName=name, Payload=json.dumps(event or {}), LogType="Tail")
    logs = base64.b64decode(response.get("LogResult", "")).decode()
    return json.loads(response["Payload"].read()), response.get("FunctionError"), logs


@pytest.fixture(scope="module")
def lambda_client(aws_client: Callable[[str], Any]) -> Any:
    return aws_client("lambda")


def test_handler_returns_value_and_logs(lambda_client: Any) -> None:
    # Given a function that prints and returns what it got plus its Lambda environment
    name = create_function(lambda_client, """
import os
def handler(event, context):
    print("hello from", context.function_name)
    return {"event": event, "root": os.environ["LAMBDA_TASK_ROOT"],
            "name": os.environ["AWS_LAMBDA_FUNCTION_NAME"], "endpoint": os.environ.get("AWS_ENDPOINT_URL"),
            "remaining": context.get_remaining_time_in_millis()}
""")
    # When it is invoked
    result, error, logs = invoke(lambda_client, name, {"n": 1})
    # Then the value comes back, the environment is Lambda's, and the print is in the log tail
    assert error is None, result
    assert result["event"] == {"n": 1} and result["name"] == name
    assert Path(result["root"], "app.py").is_file()
    assert result["endpoint"].startswith("http://127.0.0.1:")
    assert 0 < result["remaining"] <= 10_000
    assert f"hello from {name}" in logs and "REPORT RequestId" in logs


def test_function_uses_s3_with_the_runtime_boto3(lambda_client: Any, aws_client: Callable[[str], Any]
                                                  ) -> None:
    # Given a bucket with an object, and a function zip with nothing but the handler (boto3 is the runtime's)
    s3 = aws_client("s3")
    bucket = f"bucket-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="in.txt", Body=b"ping")
    name = create_function(lambda_client, """
import boto3
def handler(event, context):
    s3 = boto3.client("s3")
    body = s3.get_object(Bucket=event["bucket"], Key="in.txt")["Body"].read().decode()
    s3.put_object(Bucket=event["bucket"], Key="out.txt", Body=(body + "-pong").encode())
    return {"read": body, "boto3": boto3.__file__}
""")
    # When the function reads and writes S3 inside LocalStack
    result, error, _ = invoke(lambda_client, name, {"bucket": bucket})
    # Then both worked, with a boto3 the runtime provided
    assert error is None, result
    assert result["read"] == "ping"
    assert "runtime-packages" in result["boto3"]
    assert s3.get_object(Bucket=bucket, Key="out.txt")["Body"].read() == b"ping-pong"


def test_unhandled_exception_has_the_aws_error_shape(lambda_client: Any) -> None:
    # Given a function that raises
    name = create_function(lambda_client, """
def handler(event, context):
    raise ValueError("boom " + event["what"])
""")
    # When it is invoked
    result, error, logs = invoke(lambda_client, name, {"what": "here"})
    # Then the error comes back as AWS shapes it, and the traceback is in the logs
    assert error == "Unhandled"
    assert result["errorType"] == "ValueError" and result["errorMessage"] == "boom here"
    assert any("app.py" in line for line in result["stackTrace"])
    assert "[ERROR] ValueError: boom here" in logs


@pytest.mark.parametrize(("source", "error_type", "message"), [
    ("import no_such_module\ndef handler(e, c): pass\n", "Runtime.ImportModuleError",
     "Unable to import module 'app': No module named 'no_such_module'"),
    ("def other(e, c): pass\n", "Runtime.HandlerNotFound", "Handler 'handler' missing on module 'app'"),
])
def test_init_errors(lambda_client: Any, source: str, error_type: str, message: str) -> None:
    # Given a function whose handler cannot be loaded
    name = create_function(lambda_client, source)
    # When it is invoked
    result, error, _ = invoke(lambda_client, name)
    # Then the invocation fails with the runtime's error type
    assert error == "Unhandled"
    assert result["errorType"] == error_type and result["errorMessage"] == message


def test_timeout_kills_the_process_and_the_next_invoke_works(lambda_client: Any) -> None:
    # Given a function with a 1 s timeout that sleeps when asked
    name = create_function(lambda_client, """
import os, time
def handler(event, context):
    print("PID", os.getpid())
    time.sleep(event.get("sleep", 0))
    return os.getpid()
""", timeout=1)
    # When an invocation runs past the timeout
    started = time.monotonic()
    result, error, logs = invoke(lambda_client, name, {"sleep": 30})
    elapsed = time.monotonic() - started
    # Then it fails as Sandbox.Timedout after about 1 s, and its process is gone
    assert error == "Unhandled"
    assert result["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in result["errorMessage"]
    assert elapsed < 5
    # And its REPORT line is billed as AWS bills a timeout: the full duration, with the CPU time used
    assert 1000 <= report_field(logs, "Duration") < 5000 and "Status: error" in logs
    assert "CPU Time: " in logs.split("REPORT RequestId", 1)[1]
    pid = int(logs.split("PID ")[1].split()[0])
    assert not _alive(pid)
    # And the next invocation gets a fresh process
    result, error, _ = invoke(lambda_client, name, {"sleep": 0})
    assert error is None and result != pid


def test_five_parallel_invokes_run_in_five_processes(lambda_client: Any) -> None:
    # Given a function that takes a second
    name = create_function(lambda_client, """
import os, time
def handler(event, context):
    time.sleep(1)
    return {"i": event["i"], "pid": os.getpid()}
""")
    # When it is invoked five times at once
    started = time.monotonic()
    with ThreadPoolExecutor(5) as pool:
        results = list(pool.map(lambda i: invoke(lambda_client, name, {"i": i}), range(5)))
    elapsed = time.monotonic() - started
    # Then all succeed, concurrently, each in an environment of its own
    assert [error for _, error, _ in results] == [None] * 5
    assert sorted(result["i"] for result, _, _ in results) == list(range(5))
    assert len({result["pid"] for result, _, _ in results}) == 5
    assert elapsed < 4.5


def report_field(logs: str, field: str) -> float:
    """A number on the REPORT line, e.g. ``Max Memory Used: 57 MB`` → 57."""
    line = next(line for line in logs.splitlines() if line.startswith("REPORT RequestId"))
    return float(line.split(f"{field}: ", 1)[1].split()[0])


MEMORY_HOG = """
import os
def handler(event, context):
    hog = b"x" * (event["mb"] << 20)  # written, so resident
    return {"pid": os.getpid(), "held": len(hog) >> 20}
"""


def test_report_line_gives_each_invocations_peak_memory(lambda_client: Any) -> None:
    # Given a 256 MB function that holds as many MB as it is asked to
    name = create_function(lambda_client, MEMORY_HOG, MemorySize=256)
    # When it holds 150 MB once, then nothing in the same (warm) environment
    first, error, first_logs = invoke(lambda_client, name, {"mb": 150})
    assert error is None, first
    second, error, second_logs = invoke(lambda_client, name, {"mb": 0})
    assert error is None and second["pid"] == first["pid"]
    # Then the REPORT lines print the memory size and each invocation's own peak, as AWS does
    assert report_field(first_logs, "Memory Size") == 256
    assert 150 <= report_field(first_logs, "Max Memory Used") < 256
    assert report_field(second_logs, "Max Memory Used") < 100


def test_memory_past_the_function_size_fails_the_invocation_as_out_of_memory(lambda_client: Any) -> None:
    # Given a 128 MB function
    name = create_function(lambda_client, MEMORY_HOG, MemorySize=128)
    # When an invocation holds 300 MB
    result, error, logs = invoke(lambda_client, name, {"mb": 300})
    # Then it fails as AWS fails it (the sandbox is killed), with the peak on the REPORT line
    assert error == "Unhandled"
    assert result["errorType"] == "Runtime.OutOfMemory"
    assert result["errorMessage"].endswith("Error: Runtime exited with error: signal: killed")
    assert report_field(logs, "Max Memory Used") > 128
    # And the next invocation runs in a fresh environment within the limit
    again, error, logs = invoke(lambda_client, name, {"mb": 10})
    assert error is None and again["held"] == 10
    assert report_field(logs, "Max Memory Used") <= 128


def test_tmp_past_the_ephemeral_storage_size_fails_the_invocation(lambda_client: Any) -> None:
    # Given a function with the smallest ephemeral storage (512 MB) that writes MB to its /tmp
    name = create_function(lambda_client, """
import os, tempfile
def handler(event, context):
    path = os.path.join(tempfile.gettempdir(), "fill.bin")
    with open(path, "wb") as f:
        for _ in range(event["mb"]):
            f.write(os.urandom(1 << 20))
    size = os.path.getsize(path) >> 20
    if event.get("remove"):
        os.remove(path)
    return size
""", timeout=60, EphemeralStorage={"Size": 512})
    # When it writes 100 MB, then 700 MB
    small, error, _ = invoke(lambda_client, name, {"mb": 100, "remove": True})
    assert error is None and small == 100
    result, error, _ = invoke(lambda_client, name, {"mb": 700})
    # Then the first fits and the second fails as a full /tmp does on AWS
    assert error == "Unhandled"
    assert result["errorType"] == "OSError"
    assert "No space left on device" in result["errorMessage"] and "512 MB" in result["errorMessage"]
    # And the next invocation has its /tmp again
    small, error, _ = invoke(lambda_client, name, {"mb": 10, "remove": True})
    assert error is None and small == 10


def test_unsupported_runtime_fails_the_function_clearly(lambda_client: Any) -> None:
    # Given a Node.js function (this executor runs python3.x only)
    # When LocalStack prepares it
    name = create_function(lambda_client, "", runtime="nodejs20.x")
    # Then the function is Failed with a reason naming the limitation
    config = lambda_client.get_function_configuration(FunctionName=name)
    assert config["State"] == "Failed"
    assert "not supported by the 'process' Lambda executor" in config["StateReason"]


def _alive(pid: int) -> bool:
    try:  # killed children may linger as zombies until init reaps them
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _processes_mentioning(text: str) -> list[int]:
    """Pids whose command line or environment contains ``text`` (the runtimes get their dirs in both)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                mentions = text.encode() in (proc / "cmdline").read_bytes() + (proc / "environ").read_bytes()
                if mentions and _alive(int(proc.name)):
                    found.append(int(proc.name))
            except OSError:
                pass
    return found


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_no_process_is_left_after_localstack_stops(tmp_path: Path, how: str) -> None:
    import boto3

    # Given its own LocalStack running two functions, one of which started a background child process
    require_localstack_venv()
    server = launcher.start(tmp_path / "ls")
    try:
        client = boto3.client("lambda", endpoint_url=server.url, region_name="us-east-1",
                              aws_access_key_id="test", aws_secret_access_key="test")
        spawner = create_function(client, """
import subprocess
def handler(event, context):
    return subprocess.Popen(["sleep", "300"]).pid
""")
        child_pid, error, _ = invoke(client, spawner)
        assert error is None
        invoke(client, create_function(client, "def handler(e, c): return 1\n"))
        assert len(_processes_mentioning(str(tmp_path))) >= 3  # LocalStack, two runtimes, the child
        # When LocalStack stops (cleanly), or dies
        if how == "SIGTERM":
            launcher.stop(server.pid)
        else:
            os.kill(server.pid, signal.SIGKILL)
            os.waitpid(server.pid, 0)
    finally:
        launcher.stop(server.pid)
    # Then no runtime process and no process they started is left
    deadline = time.monotonic() + 5
    while (_processes_mentioning(str(tmp_path)) or _alive(child_pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_mentioning(str(tmp_path)) == []
    assert not _alive(child_pid)


def test_billed_duration_rounds_up_to_the_millisecond() -> None:
    # Given the shim's rule (the shim runs with the standard library only, so load it by path)
    path = Path(__file__).resolve().parents[2] / "localstack_executor/localstack_process_executor/shim.py"
    spec = importlib.util.spec_from_file_location("executor_shim", path)
    assert spec is not None and spec.loader is not None
    shim = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shim)
    # Then whole milliseconds bill as themselves, fractions round up, and nothing bills 0 ms
    assert [shim.billed_duration_ms(d) for d in (40.0, 40.01, 102.5, 0.2)] == [40, 41, 103, 1]
