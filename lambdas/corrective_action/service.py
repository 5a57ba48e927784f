"""What the monitor does about a defect: decide the corrective action and record it in S3.

The record is the observable effect (a real deployment would call the encoder's control API here).
One object per defect event, keyed by stream, type and start, so SNS redelivery overwrites it.
"""

from __future__ import annotations

import json
from typing import Any

from lambdas.shared.keys import check_segment
from lambdas.shared.results import action_key

ACTIONS = {
    "freeze": "restart encoder",
    "block_corruption": "switch to backup",
    "av_sync": "resync audio",
}
DEFAULT_ACTION = "page operator"


def action_for(defect_type: str) -> str:
    return ACTIONS.get(defect_type, DEFAULT_ACTION)


def record_action(message: dict[str, Any], *, s3: Any, bucket: str, message_id: str = "") -> dict[str, Any]:
    """Record the action for one defect-event message (as published by the Notify state)."""
    stream_id = check_segment("stream_id", message["stream_id"])
    defect = message["defect"]
    record = {
        "stream_id": stream_id,
        "source": message.get("source"),
        "execution_id": message.get("execution_id"),
        "defect": defect,
        "action": action_for(str(defect["type"])),
        "message_id": message_id,
    }
    key = action_key(stream_id, defect)
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(record).encode(), ContentType="application/json")
    return {"key": key, **record}
