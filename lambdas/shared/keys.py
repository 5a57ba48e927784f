"""Checks for the names that become S3 key segments. Standard library only: the corrective-action
function ships without numpy, so it must not import the frame code to validate a stream id."""

from __future__ import annotations

import re
from typing import Any

# Stream ids and execution names become S3 key segments and Step Functions execution names.
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")


class InvalidRequest(ValueError):
    """The request names a stream or execution that cannot be used in an object key."""


def check_segment(name: str, value: Any) -> str:
    if not isinstance(value, str) or not _SAFE.match(value):
        raise InvalidRequest(f"{name} must match {_SAFE.pattern}, got {value!r}")
    return value
