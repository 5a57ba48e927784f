"""Checks for the names that become S3 key segments and for the stream keys a request names. Standard
library only: the corrective-action function ships without numpy, so it must not import the frame code
to validate a stream id."""

from __future__ import annotations

import re
from typing import Any

# Stream ids and execution names become S3 key segments and Step Functions execution names.
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
MAX_KEY_BYTES = 1024  # S3's limit for an object key
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SHOWN = 60  # characters of a rejected value quoted in the message (values may be absurdly long)


class InvalidRequest(ValueError):
    """The request names a stream, key or execution that cannot be used (the workflow's error name)."""


def shown(value: Any) -> str:
    """A rejected value for a message: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= _SHOWN else f"{text[:_SHOWN]}... ({len(text)} characters)"


def check_segment(name: str, value: Any) -> str:
    if not isinstance(value, str) or not _SAFE.match(value):
        raise InvalidRequest(f"{name} must match {_SAFE.pattern}, got {shown(value)}")
    return value


def check_key(value: Any) -> str:
    """An object key to read a stream from: non-empty, at most 1024 bytes, no control characters, and a
    plain relative path (no leading '/', no empty, '.' or '..' segments — a sign of a confused or
    malicious caller even though S3 keys are flat)."""
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"key must be a non-empty string, got {shown(value)}")
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > MAX_KEY_BYTES:
        raise InvalidRequest(f"key is {size} bytes long, more than S3's {MAX_KEY_BYTES}: {shown(value)}")
    if _CONTROL.search(value):
        raise InvalidRequest(f"key contains control characters: {shown(value)}")
    if any(part in ("", ".", "..") for part in value.split("/")):
        raise InvalidRequest(f"key must be a relative path without empty, '.' or '..' segments, "
                             f"got {shown(value)}")
    return value
