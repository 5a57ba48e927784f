"""Count the AWS requests a process makes, by service and operation, so that a run can be priced from
what it did.

A botocore event hook on `request-created` fires once per HTTP attempt (retries included, since AWS
bills every request), before the request is sent — so it also counts under moto in tests. One counter
serves any number of clients of any services (the Lambdas count S3; the after's service counts S3, SQS
and SNS).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import boto3

_EVENT = "request-created"

Requests = dict[str, dict[str, int]]  # {service: {operation: requests}}, e.g. {"s3": {"GetObject": 1}}


class RequestCounter:
    """Attach to clients; `snapshot()` gives {service: {operation: requests}} since the last reset."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str]] = Counter()

    def attach(self, client: Any) -> Any:
        client.meta.events.register(_EVENT, self._count)
        return client

    def reset(self) -> None:
        self._counts.clear()

    def snapshot(self) -> Requests:
        out: Requests = {}
        for (service, operation), n in sorted(self._counts.items()):
            out.setdefault(service, {})[operation] = n
        return out

    def counts(self, service: str) -> dict[str, int]:
        """{operation: requests} of one service (its botocore event name: "s3", "sqs", "sns", …)."""
        return self.snapshot().get(service, {})

    def take(self) -> Requests:
        """The snapshot, then reset: what happened since the last `take`."""
        out = self.snapshot()
        self.reset()
        return out

    def _count(self, event_name: str = "", **_: Any) -> None:
        # event_name is "request-created.<service>.<Operation>"
        _, service, operation = event_name.split(".", 2)
        self._counts[service, operation] += 1


def counting_client(counter: RequestCounter, service: str, **client_kwargs: Any) -> Any:
    """A new boto3 client for `service` whose requests `counter` counts."""
    return counter.attach(boto3.client(service, **client_kwargs))
