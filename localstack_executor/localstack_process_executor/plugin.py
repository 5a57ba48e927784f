"""The plux plugin LocalStack discovers (entry-point group ``localstack.lambda.runtime_executor``)."""

from __future__ import annotations

from typing import Any

from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin

from localstack_process_executor import EXECUTOR_NAME


class ProcessRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    name = EXECUTOR_NAME

    def load(self, *args: Any, **kwargs: Any) -> type:
        from localstack_process_executor.executor import ProcessRuntimeExecutor

        return ProcessRuntimeExecutor
