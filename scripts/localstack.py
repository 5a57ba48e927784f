#!/usr/bin/env python3
"""Start and stop LocalStack 4.14.0 in host mode (a plain Python process, no Docker) with our ``process``
Lambda executor. Standard library only, so tests can import it from any venv.

    scripts/localstack.py up [--port N] [--state-dir .localstack]   # background; writes pid, port, url, env
    scripts/localstack.py down [--state-dir .localstack]
    scripts/localstack.py run [--port N]                             # foreground until Ctrl-C
    eval "$(scripts/localstack.py env)"                 # AWS_ENDPOINT_URL & co. for boto3/cdklocal

Library use: ``server = start(data_dir)``, ``server.url``, ``server.client_env()``, ``stop(server.pid)``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PYTHON = ROOT / ".venv-localstack" / "bin" / "python"
EXECUTOR = "process"
SERVICES = ("s3,lambda,stepfunctions,sns,sqs,iam,sts,cloudformation,ssm,logs,events,dynamodb,glue,cloudwatch,"
            "kms")
REGION = "us-east-1"


@dataclass
class LocalStack:
    pid: int
    port: int
    data_dir: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "localstack.log"

    def client_env(self, region: str = REGION) -> dict[str, str]:
        return client_env(self.url, region)


def client_env(url: str, region: str = REGION) -> dict[str, str]:
    """Environment for boto3, the AWS CLI and cdklocal to talk to LocalStack at ``url``."""
    port = url.rsplit(":", 1)[1].rstrip("/")
    return {
        "AWS_ENDPOINT_URL": url,
        "AWS_ENDPOINT_URL_S3": url,  # cdklocal 3 refuses AWS_ENDPOINT_URL alone
        "EDGE_PORT": port,
        "LOCALSTACK_HOSTNAME": "127.0.0.1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(port: int, data_dir: Path, keepalive_ms: int = 30_000, exit_with_parent: bool = False
               ) -> dict[str, str]:
    dirs = {name: data_dir / name for name in ("tmp", "filesystem", "volume")}
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON", "VIRTUAL_ENV"))},
        "GATEWAY_LISTEN": f"127.0.0.1:{port}",
        "LOCALSTACK_HOST": f"127.0.0.1:{port}",  # URLs LocalStack hands out (e.g. queue URLs) resolve offline
        "SQS_ENDPOINT_STRATEGY": "path",
        "SERVICES": SERVICES,
        "LAMBDA_RUNTIME_EXECUTOR": EXECUTOR,
        "LAMBDA_KEEPALIVE_MS": str(keepalive_ms),
        # Asynchronous invocations (SNS -> corrective action) are retried 1 s and 2 s after a failure instead
        # of AWS's ~1 and ~2 min: the same two retries, so a failing action reaches its queue in seconds.
        "LAMBDA_RETRY_BASE_DELAY": "1",
        # SQS queue depths reach CloudWatch every 5 s instead of 60 s, so an alarm on one sees it sooner.
        "SQS_CLOUDWATCH_METRICS_REPORT_INTERVAL": "5",
        "DISABLE_EVENTS": "1",  # else shutdown waits ≈15 s on an analytics host and leaves timers behind
        "DNS_ADDRESS": "0",
        "SKIP_SSL_CERT_DOWNLOAD": "1",
        "TMPDIR": str(dirs["tmp"]),
        "FILESYSTEM_ROOT": str(dirs["filesystem"]),
        "LOCALSTACK_VOLUME_DIR": str(dirs["volume"]),
        "LOCALSTACK_EXIT_WITH_PARENT": "1" if exit_with_parent else "0",
    }


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_localstack/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def localstack_python() -> Path:
    """The interpreter of LocalStack's venv ($LOCALSTACK_PYTHON overrides)."""
    return Path(os.environ.get("LOCALSTACK_PYTHON", DEFAULT_PYTHON))


def exports(env: dict[str, str]) -> str:
    """Shell lines that export `env`."""
    return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())


def start(data_dir: Path, port: int | None = None, python: Path | None = None, timeout: float = 90,
          keepalive_ms: int = 30_000, exit_with_parent: bool = True) -> LocalStack:
    """Start LocalStack in the background; return once it is ready and runs our Lambda executor.
    With ``exit_with_parent`` it shuts itself down when this process dies (``up`` leaves it running)."""
    python = python or localstack_python()
    if not python.exists():
        raise RuntimeError(f"{python} not found: build the LocalStack venv first (make localstack-venv)")
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    server = LocalStack(pid=0, port=port or free_port(), data_dir=data_dir)
    with open(server.log_file, "ab") as log:
        process = subprocess.Popen(
            [str(python), "-m", "localstack_process_executor"],
            env=server_env(server.port, data_dir, keepalive_ms, exit_with_parent), cwd=data_dir,
            stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,  # its own process group
        )
    server.pid = process.pid
    deadline = time.monotonic() + timeout
    while True:
        log_text = server.log_file.read_text(errors="replace")
        if process.poll() is not None:
            raise RuntimeError(f"LocalStack exited ({process.returncode}); {server.log_file}:\n{log_text}")
        if "Ready." in log_text and _ready(server.url):
            if f"Lambda runtime executor: {EXECUTOR}" not in log_text:
                stop(server.pid)
                raise RuntimeError(f"LocalStack does not use the '{EXECUTOR}' Lambda executor:\n{log_text}")
            return server
        if time.monotonic() > deadline:
            stop(server.pid)
            raise RuntimeError(f"LocalStack not ready after {timeout:.0f} s; {server.log_file}:\n{log_text}")
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours counts as gone
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def stop(pid: int, timeout: float = 20) -> None:
    """SIGTERM (LocalStack stops its services and Lambda environments), then SIGKILL its process group."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)  # anything left in its group (it runs in a session of its own)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)  # reap if it is our child


def _is_ours(pid: int) -> bool:
    try:
        return b"localstack_process_executor" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["up", "down", "run", "env"])
    parser.add_argument("--port", type=int, default=None, help="default: $LOCALSTACK_PORT or a free port")
    parser.add_argument("--state-dir", type=Path, default=ROOT / ".localstack")
    args = parser.parse_args()
    state: Path = args.state_dir.resolve()
    state_file = state / "state.json"
    port = args.port or int(os.environ.get("LOCALSTACK_PORT") or 0) or None

    if args.command in ("down", "env"):
        if not state_file.exists():
            sys.exit(f"no LocalStack state in {state} (run 'make localstack-up')")
        info = json.loads(state_file.read_text())
        if args.command == "env":
            print(exports(client_env(info["url"])), end="")
            return
        if _alive(info["pid"]) and _is_ours(info["pid"]):
            stop(info["pid"])
            print(f"LocalStack (pid {info['pid']}) stopped")
        state_file.unlink()
        (state / "env.sh").unlink(missing_ok=True)
        return

    if args.command == "up" and state_file.exists():
        info = json.loads(state_file.read_text())
        if _alive(info["pid"]) and _is_ours(info["pid"]):
            print(f"LocalStack already running: {info['url']} (pid {info['pid']})")
            return
    state.mkdir(parents=True, exist_ok=True)
    (state / ".gitignore").write_text("*\n")
    shutil.rmtree(state / "data", ignore_errors=True)  # a fresh, empty LocalStack each time
    started = time.monotonic()
    server = start(state / "data", port, exit_with_parent=args.command == "run")
    print(f"LocalStack ready at {server.url} in {time.monotonic() - started:.1f} s (pid {server.pid}, "
          f"log {server.log_file})", flush=True)
    if args.command == "up":
        state_file.write_text(json.dumps({"pid": server.pid, "port": server.port, "url": server.url}) + "\n")
        (state / "env.sh").write_text(exports(server.client_env()))
        return
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while _alive(server.pid):
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        stop(server.pid)


if __name__ == "__main__":
    main()
