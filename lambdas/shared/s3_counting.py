"""Count the S3 requests a Lambda makes, by operation, so that a run can be priced from what it did.

A botocore event hook on `request-created.s3.*` fires once per HTTP attempt (retries included, since S3
bills every request), before the request is sent — so it also counts under moto in tests.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import boto3

_EVENT = "request-created.s3"


class S3RequestCounter:
    """Attach to one or more S3 clients; `snapshot()` gives {operation: requests} since the last reset."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()

    def attach(self, client: Any) -> Any:
        client.meta.events.register(_EVENT, self._count)
        return client

    def reset(self) -> None:
        self._counts.clear()

    def snapshot(self) -> dict[str, int]:
        return dict(sorted(self._counts.items()))

    def _count(self, event_name: str = "", **_: Any) -> None:
        # event_name is "request-created.s3.<Operation>"
        self._counts[event_name.rsplit(".", 1)[-1]] += 1


def counting_s3_client(counter: S3RequestCounter, **client_kwargs: Any) -> Any:
    """A new S3 client whose requests `counter` counts."""
    return counter.attach(boto3.client("s3", **client_kwargs))
