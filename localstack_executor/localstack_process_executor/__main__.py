"""Run LocalStack (``python -m localstack_process_executor``) after checking that the Lambda executor named
in ``LAMBDA_RUNTIME_EXECUTOR`` really exists: LocalStack itself only warns and falls back to Docker."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

from localstack_process_executor import sfn_parity


def _stop_with_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(1)
    os.kill(os.getpid(), signal.SIGTERM)  # a clean shutdown, which also stops the Lambda runtimes


def main() -> None:
    from localstack.services.lambda_.invocation.runtime_executor import EXECUTOR_PLUGIN_MANAGER

    name = os.environ.get("LAMBDA_RUNTIME_EXECUTOR", "").strip()
    if not EXECUTOR_PLUGIN_MANAGER.exists(name):
        names = sorted(spec.name for spec in EXECUTOR_PLUGIN_MANAGER.list_plugin_specs())
        sys.exit(f"error: LAMBDA_RUNTIME_EXECUTOR={name!r} is not an installed Lambda executor {names}")
    print(f"Lambda runtime executor: {name}", flush=True)
    if os.environ.get("LOCALSTACK_EXIT_WITH_PARENT") == "1":  # e.g. a test session that gets killed
        threading.Thread(target=_stop_with_parent, args=(os.getppid(),), daemon=True).start()
    try:
        sfn_parity.install()
    except sfn_parity.ParityPatchError as error:  # LocalStack is not the 4.14.0 the patches replace
        sys.exit(f"error: {error}")
    from localstack.runtime.main import main as localstack_main

    localstack_main()


if __name__ == "__main__":
    main()
