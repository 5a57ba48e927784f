"""The temporary frames bucket: where the converter leaves a stream-second and the detectors find it.

One object per frame and one for the second's audio, as the original service did (this is what the
S3 request bill counts). Keys: frames/<stream_id>/<execution>/<second:06d>/frame-<i:03d>.bin and
.../audio.bin. Only the keys travel through Step Functions; the pixels never enter a payload.
"""

from __future__ import annotations

from typing import Any

from lambdas.shared.keys import check_segment
from lambdas.shared.media import StreamSecond
from lambdas.shared.transport import audio_from_bytes, audio_to_bytes, frame_from_bytes, frame_to_bytes

FRAMES_PREFIX = "frames/"  # the converter writes and the detectors read only below it (IAM is scoped to it)


def second_prefix(stream_id: str, execution: str, second: int) -> str:
    check_segment("stream_id", stream_id)
    check_segment("execution", execution)
    return f"{FRAMES_PREFIX}{stream_id}/{execution}/{second:06d}/"


def pick_frames(count: int, frames_per_second: int) -> list[int]:
    """Indices of the frames to ship: all of them (0), or `frames_per_second` spread evenly."""
    if frames_per_second <= 0 or frames_per_second >= count:
        return list(range(count))
    step = count / frames_per_second
    return sorted({int(i * step) for i in range(frames_per_second)})


def put_second(
    s3: Any, bucket: str, prefix: str, second: StreamSecond, frames_per_second: int = 0
) -> tuple[list[str], str | None]:
    """PUT each shipped frame and the audio as separate objects; return (frame keys, audio key)."""
    frame_keys: list[str] = []
    for i in pick_frames(len(second.frames), frames_per_second):
        key = f"{prefix}frame-{i:03d}.bin"
        s3.put_object(Bucket=bucket, Key=key, Body=frame_to_bytes(second.frames[i]))
        frame_keys.append(key)
    audio_key = None
    if second.audio is not None:
        audio_key = f"{prefix}audio.bin"
        s3.put_object(Bucket=bucket, Key=audio_key, Body=audio_to_bytes(second.audio))
    return frame_keys, audio_key


def get_second(
    s3: Any,
    bucket: str,
    *,
    index: int,
    is_last: bool,
    frame_keys: list[str],
    audio_key: str | None,
    video: bool = True,
    audio: bool = True,
) -> StreamSecond:
    """GET back what a detector needs (frames, audio or both) and rebuild the StreamSecond."""
    frames = [frame_from_bytes(_get(s3, bucket, key)) for key in frame_keys] if video else []
    sound = audio_from_bytes(_get(s3, bucket, audio_key)) if audio and audio_key else None
    return StreamSecond(index=index, frames=frames, audio=sound, is_last=is_last)


def _get(s3: Any, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
