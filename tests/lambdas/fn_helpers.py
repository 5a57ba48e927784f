"""Names shared by the handler tests and their fixtures (a module, so imports never hit another conftest)."""

from __future__ import annotations

from dataclasses import dataclass

SOURCE_BUCKET = "source-bucket"


@dataclass
class LambdaContext:
    function_name: str = "test-function"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = "request-1"
