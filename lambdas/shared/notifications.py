"""The mark that tells the designs' notifications apart on the one topic they share.

The before, the after and the serverless design all publish to the same SNS topic (the corrective action
reacts to any of them) and may follow the same live stream at once. Each marks every notification with
the message attribute `design` (before | after | serverless): the before's workflow in its Notify states
(statemachine/stream_quality.asl.json), the after and the serverless design through `marked`. Whoever
reads notifications tells them apart with `design_of`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DESIGN_ATTRIBUTE = "design"
BEFORE, AFTER, SERVERLESS = "before", "after", "serverless"
DESIGNS = (BEFORE, AFTER, SERVERLESS)


def text_attribute(value: str) -> dict[str, str]:
    """An SNS message attribute of type String."""
    return {"DataType": "String", "StringValue": value}


def marked(notification: dict[str, Any], design: str) -> dict[str, Any]:
    """The Publish request's arguments with the design's mark added to its message attributes."""
    if design not in DESIGNS:
        raise ValueError(f"design must be one of {', '.join(DESIGNS)}, got {design!r}")
    attributes = {**notification.get("MessageAttributes", {}), DESIGN_ATTRIBUTE: text_attribute(design)}
    return {**notification, "MessageAttributes": attributes}


def design_of(attributes: Mapping[str, Any]) -> str | None:
    """The design a received notification came from, from its message attributes as a subscriber gets
    them: name -> value (an SQS subscription's raw `Value`), or the Publish request's own shape
    (name -> {"DataType", "StringValue"}). None: unmarked (not one of ours)."""
    value = attributes.get(DESIGN_ATTRIBUTE)
    if isinstance(value, Mapping):
        value = value.get("StringValue", value.get("Value"))
    return value if value in DESIGNS else None


STALL_SUBJECT = "Stream stalled"


def stall_notification(stream_id: str, source: str, second: int, stalled_s: float, design: str
                       ) -> dict[str, Any]:
    """A live stream's playlist stopped growing, analysed up to `second`: to people, not a defect for
    the corrective action. The after and the serverless design send the same notice (the before's
    workflow ends its execution with a status instead)."""
    return marked({
        "Subject": STALL_SUBJECT,
        "Message": f"Stream {stream_id} ({source}) stalled: its playlist has not grown for {stalled_s:g} s; "
                   f"analysed up to second {second}",
        "MessageAttributes": {"kind": text_attribute("stream_stalled"),
                              "stream_id": text_attribute(stream_id)},
    }, design)
