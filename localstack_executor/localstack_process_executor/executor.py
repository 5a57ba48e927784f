"""LocalStack Lambda runtime executor that runs each execution environment as a local process (no Docker).

One environment = one ``python -S -u shim.py`` process in its own process group, with the function's
unzipped code as ``LAMBDA_TASK_ROOT``. The executor enforces the function timeout, the memory size and
the ephemeral storage (/tmp) size as AWS does, turns a dead process into ``Runtime.ExitError``, restarts
the process lazily after any of them, and kills the group on stop.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import importlib.util
import json
import logging
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

import requests
from localstack import config
from localstack.aws.api.lambda_ import PackageType
from localstack.http import Response
from localstack.services.lambda_.invocation.executor_endpoint import ExecutorEndpoint, ShutdownDuringStartup
from localstack.services.lambda_.invocation.lambda_models import FunctionVersion, InvocationResult
from localstack.services.lambda_.invocation.runtime_executor import LambdaRuntimeException, RuntimeExecutor
from werkzeug import Request

from localstack_process_executor.shim import billed_duration_ms

LOG = logging.getLogger(__name__)
SHIM = Path(__file__).with_name("shim.py")
# What the AWS Python runtime ships besides the standard library; appended at the END of sys.path.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")
_PYTHON_RUNTIME = re.compile(r"python(3\.\d+)$")
POLL_S = 0.1  # how often the runtime's peak memory is read during an invocation (VmHWM keeps peaks between)
SLOW_POLL_S = 0.5  # the handler's children and /tmp less often: each costs a walk of /proc or /tmp
MiB = 1 << 20
_runtime_packages_lock = threading.Lock()


@functools.cache
def find_python(runtime: str) -> str:
    """The interpreter for a ``python3.X`` runtime, found like ``scripts/find-python3.13``:
    ``$LAMBDA_PROCESS_PYTHON3_X``, ``python3.X`` on PATH, pyenv's versions folder, this interpreter."""
    match = _PYTHON_RUNTIME.match(runtime or "")
    if not match:
        raise LambdaRuntimeException(
            f"Runtime '{runtime}' is not supported by the 'process' Lambda executor (python3.x only)"
        )
    version = match[1]
    variable = f"LAMBDA_PROCESS_PYTHON{version.replace('.', '_')}"
    candidates = [os.environ.get(variable), shutil.which(f"python{version}")]
    for root in (os.environ.get("PYENV_ROOT"), os.path.expanduser("~/.pyenv"), "/root/.pyenv"):
        if root:
            candidates += sorted(glob.glob(f"{root}/versions/{version}*/bin/python{version}"))
    if sys.version_info[:2] == tuple(map(int, version.split("."))):
        candidates.append(getattr(sys, "_base_executable", sys.executable))
    wanted = version.replace(".", ", ")
    check = f"import sys; assert sys.version_info[:2] == ({wanted}); print(sys.executable)"
    for candidate in filter(None, candidates):
        try:  # a pyenv shim only counts if it really runs; use the real path it resolves to
            done = subprocess.run([candidate, "-c", check], capture_output=True, text=True, timeout=20)
        except OSError:
            continue
        if done.returncode == 0 and done.stdout.strip():
            return done.stdout.strip()
    raise LambdaRuntimeException(
        f"No Python {version} interpreter found for runtime {runtime}: looked for python{version} on PATH "
        f"and in pyenv's versions folder; install it or set {variable}=/path/to/python{version}"
    )


def runtime_packages_dir() -> str:
    """A folder of links to this venv's boto3 & co., like the AWS runtime's /var/runtime."""
    target = Path(tempfile.gettempdir(), "lambda-process", "runtime-packages")
    with _runtime_packages_lock:
        if not target.is_dir():
            target.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix="runtime-packages-", dir=target.parent))
            for name in RUNTIME_PACKAGES:
                spec = importlib.util.find_spec(name)
                if spec and spec.origin:
                    origin = Path(spec.origin)
                    source = origin.parent if origin.name == "__init__.py" else origin
                    (staging / source.name).symlink_to(source)
            staging.rename(target)
    return str(target)


class ProcessEndpoint(ExecutorEndpoint):
    """LocalStack's callback endpoint; the runtime reports the port it bound in its ready body."""

    def status_ready(self, request: Request, executor_id: str) -> Response:
        self.container_port = int(json.loads(request.data or b"{}").get("port", 0))
        return super().status_ready(request, executor_id)


class ProcessRuntimeExecutor(RuntimeExecutor):
    def __init__(self, id: str, function_version: FunctionVersion) -> None:
        super().__init__(id=id, function_version=function_version)
        self.endpoint = ProcessEndpoint(id, container_address="127.0.0.1", container_port=None)
        self.proc: subprocess.Popen[bytes] | None = None
        self.workdir = Path(tempfile.gettempdir(), "lambda-process", id)
        self.log_file = self.workdir / "output.log"
        self.command: list[str] = []
        self.env: dict[str, str] = {}
        self._cpu_at_start: float | None = None

    # --- lifecycle ---------------------------------------------------------------------------------------
    def start(self, env_vars: dict[str, str]) -> None:
        config_ = self.function_version.config
        code_dir = str(config_.code.get_unzipped_code_location())
        (self.workdir / "tmp").mkdir(parents=True, exist_ok=True)
        python = find_python(config_.runtime)
        layers = [str(layer.code.get_unzipped_code_location()) for layer in config_.layers if layer.code]
        paths: list[str] = []
        for layer in reversed(layers):  # later layers win, as when AWS extracts them over each other in /opt
            paths += [f"{layer}/python/lib/{config_.runtime}/site-packages", f"{layer}/python"]
        self.command = [python, "-S", "-u", str(SHIM), "--parent-pid", str(os.getpid()),
                        "--log-file", str(self.log_file), "--runtime-path", runtime_packages_dir()]
        self.command += [arg for path in paths for arg in ("--path", path)]
        self.env = {
            "PATH": os.pathsep.join([*(f"{layer}/bin" for layer in layers), str(Path(python).parent),
                                     "/usr/local/bin", "/usr/bin", "/bin"]),
            "LD_LIBRARY_PATH": os.pathsep.join(f"{layer}/lib" for layer in layers),
            "LANG": "C.UTF-8",
            "HOME": str(self.workdir / "tmp"),  # keeps the user's ~/.aws out of the function
            "TMPDIR": str(self.workdir / "tmp"),
            **{key: str(value) for key, value in env_vars.items()},
            "LAMBDA_TASK_ROOT": code_dir,
            "LAMBDA_RUNTIME_DIR": str(SHIM.parent),
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{config_.runtime}",
        }
        self.endpoint.start()
        self._spawn()

    def _spawn(self) -> None:
        self.endpoint.startup_future = Future()
        with open(self.log_file, "ab") as log:
            self.proc = subprocess.Popen(
                self.command, env=self.env, cwd=self.env["LAMBDA_TASK_ROOT"], stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,  # own process group
            )
        LOG.debug("Lambda environment %s: started pid %s: %s", self.id, self.proc.pid, self.command)
        deadline = time.monotonic() + config.LAMBDA_RUNTIME_ENVIRONMENT_TIMEOUT
        while True:
            try:
                self.endpoint.startup_future.result(timeout=0.05)
                return
            except CancelledError as e:  # stop() during start-up
                raise ShutdownDuringStartup("Execution environment shut down during start-up") from e
            except FutureTimeout:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self._kill()
                    raise LambdaRuntimeException(
                        f"Lambda runtime process exited or did not get ready; its output:\n{self.get_logs()}"
                    ) from None

    def _kill(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # the runtime and anything the function started
        self.proc.wait()

    def stop(self) -> None:
        self._kill()
        try:
            self.endpoint.shutdown()
        except Exception as e:  # already unregistered, or never started
            LOG.debug("Error while shutting down the endpoint of %s: %s", self.id, e)
        shutil.rmtree(self.workdir, ignore_errors=True)

    # --- invocations -------------------------------------------------------------------------------------
    def invoke(self, payload: dict[str, str]) -> InvocationResult:
        if self.proc is None or self.proc.poll() is not None:
            self._spawn()  # cold start again after a timeout or a crash, like AWS resets the sandbox
        request_id = payload["invoke-id"]
        log_start = self.log_file.stat().st_size
        self.endpoint.invocation_future = future = Future()
        self.endpoint.logs = None
        url = f"http://127.0.0.1:{self.endpoint.container_port}/invoke"
        requests.post(url, json=payload, proxies={"http": "", "https": ""}, timeout=30).raise_for_status()
        config_ = self.function_version.config
        timeout = float(config_.timeout)
        memory_mb, storage_mb = int(config_.memory_size), int(config_.ephemeral_storage.size)
        started = time.monotonic()
        self._cpu_at_start = _cpu_s(self.proc.pid)
        deadline, next_slow_check = started + timeout, started
        while True:
            try:
                result = future.result(timeout=min(POLL_S, max(0.0, deadline - time.monotonic())))
            except FutureTimeout:
                if self.proc.poll() is not None:
                    status = self.proc.returncode
                    reason = f"signal: {signal.Signals(-status).name}" if status < 0 else f"exit {status}"
                    return self._failure(request_id, log_start, "Runtime.ExitError",
                                         f"Runtime exited with error: {reason}", started)
                if time.monotonic() >= deadline:
                    cpu_ms = self._cpu_ms()
                    self._kill()
                    return self._failure(request_id, log_start, "Sandbox.Timedout",
                                         f"Task timed out after {timeout:.2f} seconds", started,
                                         cpu_ms=cpu_ms)
                slow = time.monotonic() >= next_slow_check
                used_mb = self.memory_used_mb(children=slow)
                if used_mb > memory_mb:  # AWS's cgroup kills the sandbox past its memory size
                    cpu_ms = self._cpu_ms()
                    self._kill()
                    return self._failure(request_id, log_start, "Runtime.OutOfMemory",
                                         "Runtime exited with error: signal: killed", started,
                                         max_memory_mb=used_mb, cpu_ms=cpu_ms)
                if slow:
                    next_slow_check = time.monotonic() + SLOW_POLL_S
                    if failure := self._check_tmp(request_id, log_start, storage_mb, started):
                        return failure
                continue
            # The shim fails an invocation whose own peak passed the memory size; /tmp is checked once more
            # (a short burst of writes between two samples).
            return self._check_tmp(request_id, log_start, storage_mb, started) or result

    def memory_used_mb(self, children: bool = True) -> int:
        """The environment's memory: the runtime's peak resident set (VmHWM, reset at each invocation)
        or, if larger, the resident sets of every process in its group (children the handler started)."""
        if self.proc is None:
            return 0
        peak = _status_kib(self.proc.pid, "VmHWM")
        if children:
            peak = max(peak, sum(_status_kib(pid, "VmRSS") for pid in _group_pids(self.proc.pid)))
        return peak // 1024

    def tmp_used_mb(self) -> float:
        used = 0
        for root, _dirs, files in os.walk(self.env["TMPDIR"]):
            for name in files:
                with contextlib.suppress(OSError):
                    used += os.lstat(os.path.join(root, name)).st_blocks * 512  # what the disk holds
        return used / MiB

    def _check_tmp(self, request_id: str, log_start: int, storage_mb: int, started: float
                   ) -> InvocationResult | None:
        used = self.tmp_used_mb()
        if used <= storage_mb:
            return None
        # On AWS the write that passes the ephemeral storage size fails with ENOSPC; here the data is
        # already written, so the environment is stopped and /tmp emptied (a fresh sandbox next time).
        cpu_ms = self._cpu_ms()
        self._kill()
        shutil.rmtree(self.env["TMPDIR"], ignore_errors=True)
        Path(self.env["TMPDIR"]).mkdir(parents=True, exist_ok=True)
        return self._failure(request_id, log_start, "OSError",
                             f"[Errno 28] No space left on device: /tmp holds {used:.0f} MB, more than the "
                             f"function's {storage_mb} MB of ephemeral storage", started, cpu_ms=cpu_ms)

    def _cpu_ms(self) -> float | None:
        """CPU time the runtime used since the invocation started (None once it is gone)."""
        now = _cpu_s(self.proc.pid) if self.proc is not None else None
        return None if now is None or self._cpu_at_start is None else (now - self._cpu_at_start) * 1000

    def _failure(self, request_id: str, log_start: int, error_type: str, message: str, started: float,
                 max_memory_mb: int | None = None, cpu_ms: float | None = None) -> InvocationResult:
        message = f"RequestId: {request_id} Error: {message}"
        with open(self.log_file, "rb") as f:
            f.seek(log_start)
            logs = f.read().decode(errors="replace")
        timestamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        duration_ms = (time.monotonic() - started) * 1000
        memory = f"\tMax Memory Used: {max_memory_mb} MB" if max_memory_mb is not None else ""
        cpu = f"\tCPU Time: {cpu_ms:.2f} ms" if cpu_ms is not None else ""
        logs += (f"{timestamp} {message}\nEND RequestId: {request_id}\nREPORT RequestId: {request_id}\t"
                 f"Duration: {duration_ms:.2f} ms\tBilled Duration: {billed_duration_ms(duration_ms)} ms\t"
                 f"Memory Size: {self.function_version.config.memory_size} MB{memory}{cpu}\t"
                 f"Status: error\tError Type: {error_type}\n")
        body = json.dumps({"errorMessage": message, "errorType": error_type}).encode()
        return InvocationResult(request_id, body, is_error=True, logs=logs)

    # --- the rest of the interface ------------------------------------------------------------------------
    def get_address(self) -> str:
        return "127.0.0.1"

    def get_endpoint_from_executor(self) -> str:
        host = config.GATEWAY_LISTEN[0].host
        return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host

    def get_runtime_endpoint(self) -> str:
        return (f"http://{self.get_endpoint_from_executor()}:{config.GATEWAY_LISTEN[0].port}"
                f"{self.endpoint.get_endpoint_prefix()}")

    def get_logs(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""

    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        config_ = function_version.config
        if config_.package_type != PackageType.Zip or not config_.code:
            raise LambdaRuntimeException("The 'process' Lambda executor runs zip functions only, not images")
        find_python(config_.runtime)  # fails the function (State=Failed) with a clear reason
        host = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(
            platform.machine().lower())
        if host and config_.architectures and config_.architectures[0] != host:
            LOG.warning("Lambda %s is %s but runs on this %s host: compiled packages in it may not import",
                        function_version.qualified_arn, config_.architectures[0], host)
        config_.code.prepare_for_execution()
        for layer in config_.layers:
            if layer.code:
                layer.code.prepare_for_execution()

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        pass


def _status_kib(pid: int, field: str) -> int:
    """A ``kB`` field of /proc/<pid>/status (0 once the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return next((int(line.split()[1]) for line in f if line.startswith(f"{field}:")), 0)
    except (OSError, ValueError):
        return 0


def _cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a live process (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    except (OSError, IndexError, ValueError):
        return None


def _group_pids(pgid: int) -> list[int]:
    """The live processes of process group ``pgid`` (the runtime and whatever its handler started)."""
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                with open(f"/proc/{entry.name}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid and fields[0] != "Z":  # fields: state, ppid, pgrp, ...
                    pids.append(int(entry.name))
    return pids
