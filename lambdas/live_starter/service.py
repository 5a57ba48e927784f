"""Start one workflow execution per live stream, however often its playlist is rewritten.

S3 sends an event for every rewrite of a playlist (and may send one twice: delivery is at least once).
The execution's name is fixed by the stream: its id, and a digest of the bucket, playlist key and the
first segment's EXT-X-PROGRAM-DATE-TIME (the event's start, which every rewrite repeats). Step Functions
refuses a second execution of that name (ExecutionAlreadyExists), so rewrites start nothing more, while a
new event published later under the same id (another first PROGRAM-DATE-TIME) is a new stream.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from lambdas.shared.keys import InvalidRequest, check_key, check_segment
from lambdas.shared.live import LIVE_PREFIX, PlaylistUnreadable, is_playlist, read_playlist, stream_id_of

NAME_STREAM_CHARS = 47  # + "-" + 32 hex digits = 80, Step Functions' longest execution name


@dataclass(frozen=True)
class Started:
    stream_id: str
    execution_name: str
    # False: the stream's execution has ended (a late rewrite or a repeated event). While it runs, Step
    # Functions answers a StartExecution of the same name and input with that execution: True again.
    started: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"stream_id": self.stream_id, "execution_name": self.execution_name, "started": self.started,
                "reason": self.reason}


def execution_name(stream_id: str, bucket: str, key: str, first_programme_time: str) -> str:
    digest = hashlib.md5(f"{bucket}/{key}/{first_programme_time}".encode(), usedforsecurity=False).hexdigest()
    return f"{stream_id[:NAME_STREAM_CHARS]}-{digest}"


def first_programme_time(s3: Any, bucket: str, key: str) -> str:
    """The first segment's EXT-X-PROGRAM-DATE-TIME ('' when the playlist has none or cannot be followed:
    the workflow then fails on it with the reason): one GET."""
    try:
        return read_playlist(s3, bucket, key).first_programme_time
    except PlaylistUnreadable:
        return ""


def start_stream(s3: Any, sfn: Any, state_machine_arn: str, bucket: str, key: str) -> Started:
    """Start the stream's execution unless it has one. A key that is not a live playlist is ignored;
    a playlist that cannot be read is still started, so that the workflow fails on it with the reason and
    notifies (the converter reads and checks it)."""
    check_key(key)
    if not is_playlist(key) or not key.startswith(LIVE_PREFIX):
        raise InvalidRequest(f"s3://{bucket}/{key} is not a live stream's playlist ({LIVE_PREFIX}…/*.m3u8)")
    stream_id = check_segment("stream_id", stream_id_of(key))
    name = execution_name(stream_id, bucket, key, first_programme_time(s3, bucket, key))
    try:
        sfn.start_execution(stateMachineArn=state_machine_arn, name=name,
                            input=json.dumps({"bucket": bucket, "key": key, "stream_id": stream_id}))
    except sfn.exceptions.ExecutionAlreadyExists:
        return Started(stream_id, name, False, "the stream's execution has already ended")
    return Started(stream_id, name, True, "started, or running already")
