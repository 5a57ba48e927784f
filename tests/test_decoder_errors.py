"""Packets the decoder rejects are the converter's surest witness of damage: none may be lost, and what a
decoder can reject it must get the chance to (FFmpeg's VP8 decoder rejects damaged packets only with slice
threads: VP8 decodes so, and one thread decodes the GOP again from a rejected packet on; VP9 decodes with
libvpx, which rejects what FFmpeg's VP9 decoder conceals).
"""

from __future__ import annotations

import math
from pathlib import Path

import av
import av.error
import numpy as np
from detector_runs import run_detector

from lambdas.converter.decode import iter_seconds, probe, read_second
from lambdas.detectors import block_corruption
from lambdas.shared.media import VideoFrame
from sample_streams import corpus


def _packets_replaced(source: Path, target: Path, replace: dict[int, bytes]) -> Path:
    """A copy of `source`'s video with the bytes of the packets numbered in `replace` (decode order)."""
    with av.open(str(source)) as src, av.open(str(target), "w") as out:
        copy = out.add_stream_from_template(src.streams.video[0])
        packets = [p for p in src.demux(src.streams.video[0]) if p.dts is not None]
        for number, packet in enumerate(packets):
            if number in replace:
                damaged = av.Packet(replace[number])
                damaged.pts, damaged.dts, damaged.time_base = packet.pts, packet.dts, packet.time_base
                damaged.is_keyframe = packet.is_keyframe
                packet = damaged
            packet.stream = copy
            out.mux(packet)
    return target


def _packet_bytes(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(container.streams.video[0]) if p.dts is not None]


def _one_thread(path: Path) -> tuple[int, list[np.ndarray]]:
    """(packets rejected, luma of each picture) by FFmpeg's decoder with one frame thread (how everything
    but VP8 is decoded)."""
    errors, lumas = 0, []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_type, stream.codec_context.thread_count = "FRAME", 1
        for packet in container.demux(stream):
            try:
                lumas += [f.to_ndarray()[: f.height] for f in stream.codec_context.decode(packet)]  # Y first
            except av.error.FFmpegError:
                errors += 1
    return errors, lumas


def _byte_flipped(clean: Path, folder: Path, packet: int, at: int) -> Path:
    """A copy of `clean` with byte `at` of its `packet`-th packet inverted."""
    data = bytearray(_packet_bytes(clean)[packet])
    data[at] ^= 0xFF
    return _packets_replaced(clean, folder / f"damaged{clean.suffix}", {packet: bytes(data)})


def _both_ways(path: Path) -> list[list[VideoFrame]]:
    """The pictures of the sequential pass, and of each second decoded on its own (random access)."""
    info = probe(path)
    sequential = [f for second in iter_seconds(path, info) for f in second.frames]
    seconds = [read_second(path, index, info) for index in range(math.ceil(info.duration_s or 0))]
    return [sequential, [f for second in seconds for f in second.frames]]


def _stream(tmp_path: Path, codec: str, suffix: str) -> Path:
    """The corpus's synthetic pictures, 2 s at 25 fps (a keyframe at 0 s), in `codec`."""
    clean = tmp_path / f"clean{suffix}"
    corpus.encode(corpus.synthetic_pictures(0)[:50], clean, codec, corpus.BIT_RATES_BPP["high"])
    return clean


def test_a_damaged_vp8_picture_is_a_decode_error_not_silent_concealment(tmp_path: Path) -> None:
    # Given a VP8 stream with one byte flipped early in its 11th picture (0.40 s), in the modes and motion
    # vectors: the bool decoder reads on from the wrong state and runs out of data mid-picture
    clean = _stream(tmp_path, "vp8", ".webm")
    damaged = _byte_flipped(clean, tmp_path, 10, 150)
    # (FFmpeg's decoder with one thread conceals the rest of that picture without a word)
    assert _one_thread(damaged)[0] == 0
    # When converted, Then that picture comes out (concealed by one thread) flagged corrupt: the slice
    # threads rejected its packet; no other picture is flagged, and no clean one
    frames = [f for second in iter_seconds(damaged) for f in second.frames]
    assert len(frames) == 50
    assert [(f.pts_s, f.decode_errors) for f in frames if f.corrupt or f.decode_errors] == [(0.4, 0)]
    assert not any(f.corrupt or f.decode_errors for second in iter_seconds(clean) for f in second.frames)
    # And block corruption reports the damage from 0.40 s on the decoder's evidence
    events, _ = run_detector(block_corruption.detect, iter_seconds(damaged))
    assert [(e["start_s"], "decoder_flag" in e["evidence"]) for e in events] == [(0.4, True)]


def test_the_pictures_are_those_of_one_thread_before_and_after_a_rejection(tmp_path: Path) -> None:
    # Given the same damaged VP8 stream
    damaged = _byte_flipped(_stream(tmp_path, "vp8", ".webm"), tmp_path, 10, 150)
    # When converted twice, sequentially and second by second from its keyframe (random access)
    # Then both give the very pictures FFmpeg's decoder gives with one thread, and the same flags
    alone = _one_thread(damaged)[1]
    for frames in _both_ways(damaged):
        assert len(frames) == len(alone)
        assert all(np.array_equal(f.luma, picture) for f, picture in zip(frames, alone, strict=True))
        assert [f.pts_s for f in frames if f.corrupt] == [0.4]


def test_packets_that_fail_after_the_last_picture_are_not_lost(tmp_path: Path) -> None:
    # Given a VP9 stream whose last 5 packets (1.80-1.96 s) are bytes no VP9 frame starts with, so that the
    # decoder rejects them and no picture comes after them
    clean = _stream(tmp_path, "vp9", ".webm")
    damaged = _packets_replaced(clean, tmp_path / "damaged.webm", {k: b"\xff" * 64 for k in range(45, 50)})
    # When converted, Then the last picture that came out (1.76 s) carries the 5 that never did
    seconds = list(iter_seconds(damaged))
    frames = [f for second in seconds for f in second.frames]
    assert frames[-1].pts_s == 1.76
    assert [(f.pts_s, f.dropped_after) for f in frames if f.dropped_after] == [(1.76, 5)]
    # And block corruption reports them, from the first that failed to the stream's end
    events, _ = run_detector(block_corruption.detect, seconds)
    assert [(e["start_s"], e["end_s"]) for e in events] == [(1.8, 2.0)]


def test_vp9_damage_ffmpeg_conceals_silently_is_dropped_by_libvpx(tmp_path: Path) -> None:
    # Given a VP9 stream with one byte flipped in its 21st picture (0.80 s), which FFmpeg's decoder
    # conceals without a word
    clean = _stream(tmp_path, "vp9", ".webm")
    damaged = _byte_flipped(clean, tmp_path, 20, 80)
    assert _one_thread(damaged)[0] == 0
    whole = dict(zip([round(k / 25, 6) for k in range(50)], _one_thread(clean)[1], strict=True))
    # When converted, sequentially and second by second from its keyframe (VP9 decodes with libvpx)
    for frames in _both_ways(damaged):
        # Then the pictures from 0.80 to 1.48 s are missing, counted as dropped after the one at 0.76 s:
        # libvpx rejects the damaged picture and those that refer to it, up to the next keyframe (1.52 s);
        # every picture that comes out is the clean stream's, as FFmpeg decodes it
        assert [(f.pts_s, f.dropped_after) for f in frames if f.dropped_after] == [(0.76, 18)]
        assert len(frames) == 50 - 18 and not any(f.corrupt or f.decode_errors for f in frames)
        assert all(np.array_equal(f.luma, whole[f.pts_s]) for f in frames)
        assert [f.pts_s for f in frames if f.key_frame] == [0.0, 0.52, 1.52]  # as FFmpeg's decoder marks them
    # And the clean stream gives FFmpeg's pictures, every one
    frames = [f for second in iter_seconds(clean) for f in second.frames]
    assert [f.pts_s for f in frames] == list(whole)
    assert all(np.array_equal(f.luma, whole[f.pts_s]) for f in frames)
    # And block corruption reports the damage on the dropped pictures, from 0.80 s to the first whole one
    events, _ = run_detector(block_corruption.detect, iter_seconds(damaged))
    assert [(e["start_s"], e["end_s"], e["evidence"]) for e in events] == [(0.8, 1.52, ["dropped_pictures"])]
