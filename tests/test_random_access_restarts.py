"""Streams whose keyframes are not all exact entry points: random access decodes from an earlier point.

What the decoder learns mid-stream and no decoder option can carry makes the keyframes after it unsafe
entry points: a second x264 build in a spliced stream, MPEG-4 Part 2 encoder identification sent only in
the stream, a codec the parity suite does not cover. Random access then starts at the point where it was
announced (or at the stream's start), decodes exactly what the sequential pass decodes, and logs why.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from test_random_access_parity import _differences

from lambdas.converter.decode import iter_seconds, probe, read_second

FPS = 25
WIDTH, HEIGHT = 160, 96
USER_DATA = re.compile(rb"\x00\x00\x01\xb2[^\x00]*")  # MPEG-4 Part 2 user data, up to the next start code


def _frames(count: int) -> list[av.VideoFrame]:
    """Moving noise: every frame differs, so any decoding difference shows."""
    rng = np.random.default_rng(1)
    texture = rng.integers(0, 255, (2 * HEIGHT, 2 * WIDTH, 3), dtype=np.uint8)
    frames = []
    for n in range(count):
        top, left = (3 * n) % HEIGHT, (5 * n) % WIDTH
        picture = np.ascontiguousarray(texture[top : top + HEIGHT, left : left + WIDTH])
        frame = av.VideoFrame.from_ndarray(picture, format="rgb24").reformat(format="yuv420p")
        frame.pts, frame.time_base = n, Fraction(1, FPS)
        frames.append(frame)
    return frames


def _copy(packet: av.Packet, data: bytes, stream: av.stream.Stream) -> av.Packet:
    copy = av.Packet(data)
    copy.pts, copy.dts, copy.time_base = packet.pts, packet.dts, packet.time_base
    copy.is_keyframe = packet.is_keyframe
    copy.stream = stream
    return copy


def _spliced_x264(path: Path) -> Path:
    """Two x264 encodes of 2 s each in one MPEG-TS, the second announcing another build (142)."""
    frames = _frames(4 * FPS)
    with av.open(str(path), "w", format="mpegts") as out:
        stream = out.add_stream("libx264", rate=FPS, options={"g": str(FPS), "bf": "0"})
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for frame in frames[: 2 * FPS]:
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
        second = av.CodecContext.create("libx264", "w")
        second.width, second.height, second.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        second.time_base, second.framerate = Fraction(1, FPS), Fraction(FPS)
        second.options = {"g": str(FPS), "bf": "0"}
        first = True
        for frame in [*frames[2 * FPS :], None]:
            for packet in second.encode(frame):
                data = bytes(packet)
                if first:
                    data, first = re.sub(rb"x264 - core \d+", b"x264 - core 142", data, count=1), False
                out.mux(_copy(packet, data, stream))
    return path


def _mpeg4_with_xvid_user_data_once(path: Path) -> Path:
    """MPEG-4 Part 2 in AVI whose first frame alone says "XviD0050"; the extradata says nothing."""
    plain = path.with_name("plain.avi")
    with av.open(str(plain), "w") as out:
        stream = out.add_stream("mpeg4", rate=FPS, options={"g": str(FPS)})
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.codec_context.bit_rate = 400_000
        for frame in _frames(4 * FPS):
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with av.open(str(plain)) as source, av.open(str(path), "w") as out:
        video = source.streams.video[0]
        stream = out.add_stream_from_template(video)
        stream.codec_context.extradata = USER_DATA.sub(b"", bytes(video.codec_context.extradata))
        first = True
        for packet in source.demux(video):
            if packet.size:
                xvid = b"\x00\x00\x01\xb2XviD0050" if first else b""
                data, first = USER_DATA.sub(xvid, bytes(packet), count=1 if first else 0), False
                out.mux(_copy(packet, data, stream))
    return path


def _mjpeg(path: Path) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mjpeg", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuvj420p"
        for frame in _frames(3 * FPS):
            out.mux(stream.encode(frame.reformat(format="yuvj420p")))
        out.mux(stream.encode(None))
    return path


def _parity(path: Path, info) -> list[str]:
    sequential = list(iter_seconds(path, info))
    return [p for s in sequential for p in _differences(path, read_second(path, s.index, info), s)]


def test_a_spliced_stream_with_a_second_x264_build_restarts_where_it_is_announced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a stream spliced from two encodes whose second announces x264 build 142 at 2.0 s
    path = _spliced_x264(tmp_path / "spliced.ts")
    info = probe(path)
    # Then every decode starts with the first build, and seconds from 2 on decode from the splice
    first_build = info.decoder_options["x264_build"]
    assert first_build != "142"
    assert info.restart_points == [pytest.approx(2.0)]
    assert f"{first_build} at 0.00 s then 142 at 2.00 s" in (info.restart_reason or "")
    assert info.decode_from(1) is None and info.decode_from(3) == pytest.approx(2.0)
    # And every second decoded alone equals the sequential pass, the log naming the restart
    with caplog.at_level(logging.WARNING, logger="lambdas.converter.decode"):
        assert _parity(path, info) == []
    assert "second 3 of" in caplog.text and "decoded from 2.00 s" in caplog.text


def test_mpeg4_encoder_user_data_sent_only_in_the_stream_makes_random_access_start_there(
    tmp_path: Path,
) -> None:
    # Given MPEG-4 Part 2 whose first frame alone identifies Xvid (FFmpeg then uses Xvid's IDCT)
    path = _mpeg4_with_xvid_user_data_once(tmp_path / "xvid.avi")
    info = probe(path)
    assert info.restart_points == [0.0] and "user data" in (info.restart_reason or "")
    # When a second is decoded from its own keyframe anyway, Then its pictures differ: a real artefact
    expected = list(iter_seconds(path, info))[2]
    unsafe = read_second(path, 2, replace(info, restart_points=[]))
    pairs = zip(unsafe.frames, expected.frames, strict=True)
    assert any(not np.array_equal(a.luma, b.luma) for a, b in pairs)
    # And decoded from the restart point, every second equals the sequential pass
    assert _parity(path, info) == []


def test_the_same_mpeg4_with_its_user_data_in_the_extradata_needs_no_restart() -> None:
    # FFmpeg's own encoder repeats its user data in the extradata and every keyframe
    assert probe(Path(__file__).parents[1] / "media" / "parity" / "mpeg4-part2.avi").restart_points == []


def test_a_codec_not_known_exact_at_keyframes_is_decoded_from_the_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a stream in a codec the parity suite does not cover (Motion JPEG)
    path = _mjpeg(tmp_path / "clip.avi")
    info = probe(path)
    assert info.restart_points == [0.0] and "mjpeg" in (info.restart_reason or "")
    # When each second is decoded alone, Then it equals the sequential pass and the log says why
    with caplog.at_level(logging.WARNING, logger="lambdas.converter.decode"):
        assert _parity(path, info) == []
    assert "video decoded from 0.00 s" in caplog.text and "mjpeg" in caplog.text
