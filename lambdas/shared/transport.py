"""Bytes for carrying frames and audio between Lambdas through the temporary S3 bucket.

Lossless (zlib over the raw planes): a lossy format such as JPEG would add the 8x8 blocking that the
block-corruption detector looks for, and would make the Lambda path disagree with the monolith.
Readable with numpy alone, so the detector functions need no PyAV.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import asdict
from typing import Any

import numpy as np

from lambdas.shared.media import AudioSecond, VideoFrame

MAGIC = b"PVM1"
_HEADER = struct.Struct(">4sI")
# zlib level 1: most of the size win at a fraction of the CPU of higher levels.
ZLIB_LEVEL = 1


class TransportError(ValueError):
    """The bytes are not a frame or audio object written by this module."""


def frame_to_bytes(frame: VideoFrame) -> bytes:
    meta = {
        "kind": "frame",
        "pts_s": frame.pts_s,
        "key_frame": frame.key_frame,
        "corrupt": frame.corrupt,
        "decode_errors": frame.decode_errors,
        "dropped_after": frame.dropped_after,
    }
    return _pack(meta, frame.luma)


def frame_from_bytes(data: bytes) -> VideoFrame:
    meta, luma = _unpack(data, "frame")
    return VideoFrame(
        pts_s=meta["pts_s"],
        luma=luma,
        key_frame=meta["key_frame"],
        corrupt=meta["corrupt"],
        decode_errors=meta["decode_errors"],
        dropped_after=meta["dropped_after"],
    )


def audio_to_bytes(audio: AudioSecond) -> bytes:
    meta = {key: value for key, value in asdict(audio).items() if key != "samples"}
    meta["kind"] = "audio"
    return _pack(meta, audio.samples)


def audio_from_bytes(data: bytes) -> AudioSecond:
    meta, samples = _unpack(data, "audio")
    return AudioSecond(
        samples=samples,
        sample_rate=meta["sample_rate"],
        filled_samples=meta["filled_samples"],
        decode_errors=meta["decode_errors"],
        chunks=[tuple(c) for c in meta["chunks"]],
    )


def _pack(meta: dict[str, Any], array: np.ndarray) -> bytes:
    array = np.ascontiguousarray(array)
    header = json.dumps({**meta, "dtype": array.dtype.str, "shape": list(array.shape)}).encode()
    return _HEADER.pack(MAGIC, len(header)) + header + zlib.compress(array.tobytes(), ZLIB_LEVEL)


def _unpack(data: bytes, kind: str) -> tuple[dict[str, Any], np.ndarray]:
    if len(data) < _HEADER.size:
        raise TransportError("object too short to hold a header")
    magic, header_len = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise TransportError("not a frame/audio object (bad magic bytes)")
    try:
        meta = json.loads(data[_HEADER.size : _HEADER.size + header_len])
        payload = zlib.decompress(data[_HEADER.size + header_len :])
        array = np.frombuffer(payload, dtype=np.dtype(meta["dtype"])).reshape(meta["shape"])
    except (ValueError, KeyError, zlib.error) as error:
        raise TransportError(f"damaged object: {error}") from None
    if meta.get("kind") != kind:
        raise TransportError(f"expected a {kind} object, got {meta.get('kind')!r}")
    return meta, array
