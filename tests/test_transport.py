"""Frame and audio objects for the temporary bucket: lossless, numpy-only, strict about their input."""

from __future__ import annotations

import numpy as np
import pytest

from lambdas.shared.media import AudioSecond, VideoFrame
from lambdas.shared.transport import (
    TransportError,
    audio_from_bytes,
    audio_to_bytes,
    frame_from_bytes,
    frame_to_bytes,
)


def test_a_frame_round_trips_bit_exactly_and_smaller_than_raw() -> None:
    # Given a 360p luma plane with smooth content and the decoder's flags
    rows = np.linspace(0, 255, 360, dtype=np.float32)[:, None] + np.zeros((1, 640), np.float32)
    luma = rows.astype(np.uint8)
    frame = VideoFrame(3.04, luma, key_frame=False, corrupt=True, decode_errors=2, dropped_after=7)
    # When it is written and read back
    data = frame_to_bytes(frame)
    back = frame_from_bytes(data)
    # Then every pixel and flag survives (no lossy artifacts), and it is compressed
    assert np.array_equal(back.luma, frame.luma)
    assert (back.pts_s, back.key_frame, back.corrupt, back.decode_errors, back.dropped_after) == (
        3.04, False, True, 2, 7
    )
    assert len(data) < frame.luma.nbytes / 4


def test_audio_round_trips_with_its_timing_evidence() -> None:
    samples = np.random.default_rng(1).standard_normal(48000).astype(np.float32)
    audio = AudioSecond(
        samples=samples,
        sample_rate=48000,
        filled_samples=5,
        decode_errors=1,
        chunks=[(2.0, 1024), (2.021333, 1024)],
    )
    back = audio_from_bytes(audio_to_bytes(audio))
    assert np.array_equal(back.samples, samples)
    assert back.chunks == audio.chunks and back.filled_samples == 5 and back.decode_errors == 1


def test_foreign_or_damaged_bytes_are_refused_with_a_reason() -> None:
    frame = VideoFrame(pts_s=0.0, luma=np.zeros((4, 4), np.uint8), key_frame=True, corrupt=False)
    data = frame_to_bytes(frame)
    with pytest.raises(TransportError, match="magic"):
        frame_from_bytes(b"JUNK" + data[4:])
    with pytest.raises(TransportError, match="damaged"):
        frame_from_bytes(data[:-3])
    with pytest.raises(TransportError, match="expected a audio object"):
        audio_from_bytes(data)
