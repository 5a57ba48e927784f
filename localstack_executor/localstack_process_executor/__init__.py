"""LocalStack Lambda runtime executor ``process``: runs Python functions as local processes (no Docker)."""

EXECUTOR_NAME = "process"
