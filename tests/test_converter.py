"""The converter: one stream-second at a time, sequentially or by random access, same answer."""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np
import pytest

from lambdas.converter.decode import UnreadableStreamError, iter_seconds, probe, read_second


def test_probe_reads_the_header_of_a_real_clip(chaplin: Path) -> None:
    # Given a real H.264/MP3 clip, When probed, Then its geometry, rate, audio and length are reported
    info = probe(chaplin)
    assert (info.width, info.height, info.fps) == (640, 360, 25.0)
    assert (info.sample_rate, info.channels) == (44100, 2)
    assert info.duration_s == pytest.approx(9.64, abs=0.05)
    assert info.seconds == 10


def test_sequential_decoding_yields_every_frame_once_in_its_second(chaplin: Path) -> None:
    # Given the 9.64 s clip at 25 fps, When iterated second by second
    seconds = list(iter_seconds(chaplin))
    # Then each full second holds 25 frames stamped inside it, and the last one is flagged
    assert [s.index for s in seconds] == list(range(10))
    assert all(len(s.frames) == 25 for s in seconds[:-1])
    assert sum(len(s.frames) for s in seconds) == 241
    for second in seconds:
        assert all(second.index <= f.pts_s < second.index + 1 for f in second.frames)
    assert [s.is_last for s in seconds] == [False] * 9 + [True]
    # And the audio of each full second is one second of placed samples without gaps
    assert all(s.audio is not None and s.audio.samples.shape == (44100,) for s in seconds)
    assert all(s.audio.filled_samples == 0 for s in seconds[:-1])
    assert seconds[0].frames[0].luma.shape == (360, 640)


@pytest.mark.parametrize("index", [0, 4, 9])
def test_random_access_gives_the_same_second_as_sequential(bigbuckbunny: Path, index: int) -> None:
    # Given the sequential decode of a real 720p clip
    info = probe(bigbuckbunny)
    index = min(index, info.seconds - 1)
    expected = list(iter_seconds(bigbuckbunny, info))[index]
    # When the same second is decoded alone, as the converter Lambda does
    got = read_second(bigbuckbunny, index, info)
    # Then the pictures, their timestamps and the audio are identical
    assert [f.pts_s for f in got.frames] == [f.pts_s for f in expected.frames]
    assert all(np.array_equal(a.luma, b.luma) for a, b in zip(got.frames, expected.frames, strict=True))
    assert got.audio is not None and expected.audio is not None
    np.testing.assert_allclose(got.audio.samples, expected.audio.samples, atol=1e-6)
    assert got.is_last == expected.is_last


def test_read_second_rejects_a_second_outside_the_stream(chaplin: Path) -> None:
    with pytest.raises(ValueError, match="outside the stream"):
        read_second(chaplin, 10)


def _audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=48000)
        samples = np.zeros((1, 1024), dtype=np.float32)
        for i in range(20):
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 48000, i * 1024
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: p, "no such file"),
        (lambda p: (p.write_bytes(b""), p)[1], "the file is empty"),
        (lambda p: (p.write_bytes(os.urandom(50_000)), p)[1], "not a readable media file|no video stream"),
        (lambda p: _audio_only(p.with_suffix(".m4a")), "no video stream"),
    ],
    ids=["missing", "empty", "random-bytes", "audio-only"],
)
def test_unreadable_input_is_a_typed_error_naming_file_and_reason(tmp_path: Path, make, reason: str) -> None:
    # Given an input that is not an analysable stream, When probed, Then a typed error says why
    path = make(tmp_path / "input.mp4")
    with pytest.raises(UnreadableStreamError, match=reason) as error:
        probe(path)
    assert str(path) in str(error.value)


def test_truncated_header_is_unreadable(tmp_path: Path, chaplin: Path) -> None:
    # Given an MP4 cut inside its first kilobytes (its index is lost), Then it is refused with a reason
    truncated = tmp_path / "cut.mp4"
    truncated.write_bytes(chaplin.read_bytes()[:2000])
    with pytest.raises(UnreadableStreamError, match=str(truncated)):
        probe(truncated)
