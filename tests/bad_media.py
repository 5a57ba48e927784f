"""Broken and hostile inputs, made on the fly (small, deterministic): what a monitor must refuse clearly.

`make_bad_files(folder)` writes one file per case and returns {case: (path, reason the analysis must
give)}; `video_only(folder)` writes a stream without audio, which is not an error. Shared by the
monolith tests (tests/test_bad_inputs.py) and the LocalStack ones (tests/e2e/test_e2e_reliability.py).
"""

from __future__ import annotations

import random
from pathlib import Path

import av
import numpy as np

from sample_streams.live import write_live

# The stream's picture size for the cases made from a real stream: small keeps every case fast.
WIDTH, HEIGHT = 160, 90
# More pixels than 8K UHD (decode.MAX_PIXELS) yet within what FFmpeg accepts, so our own check refuses it.
HUGE = (10_000, 10_000)


def good_stream(path: Path, *, audio: bool = True, duration_s: float = 3.0, seed: int = 1) -> Path:
    from sample_streams import generate_stream

    generate_stream(path, duration_s=duration_s, width=WIDTH, height=HEIGHT, audio=audio, seed=seed)
    return path


def video_only(folder: Path) -> Path:
    return good_stream(folder / "video-only.mp4", audio=False, seed=2)


def _audio_only(path: Path) -> None:
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=48000)
        stream.layout = "mono"
        for i in range(60):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 48000, i * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def _unknown_codec(path: Path) -> None:
    """An AVI whose video FourCC (stream header and BITMAPINFOHEADER) names no codec FFmpeg knows."""
    source = path.with_suffix(".mpeg4.avi")
    with av.open(str(source), "w", format="avi") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = WIDTH, 96, "yuv420p"
        rng = np.random.default_rng(3)
        for i in range(25):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (96, WIDTH, 3), dtype=np.uint8),
                                               format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    data = source.read_bytes()
    source.unlink()
    assert data.count(b"FMP4") == 2, "expected the FourCC in strh and strf"
    path.write_bytes(data.replace(b"FMP4", b"QQ99"))


def _faststart(source: Path, target: Path) -> None:
    """Remux with the index (moov) first, as streaming uploads do: a cut copy still opens."""
    with av.open(str(source)) as src, av.open(str(target), "w", options={"movflags": "faststart"}) as dst:
        streams = {s.index: dst.add_stream_from_template(s) for s in src.streams}
        for packet in src.demux():
            if packet.dts is None:
                continue
            packet.stream = streams[packet.stream.index]
            dst.mux(packet)


def make_bad_files(folder: Path) -> dict[str, tuple[Path, str]]:
    """{case: (file, words the refusal must contain)} for every kind of bad file."""
    folder.mkdir(parents=True, exist_ok=True)
    good = good_stream(folder / "good-source.mp4")
    data = good.read_bytes()
    assert data.find(b"moov") > data.find(b"mdat"), "the generator writes the index at the end"
    cases: dict[str, tuple[Path, str]] = {}

    def case(name: str, suffix: str, reason: str) -> Path:
        path = folder / f"{name}{suffix}"
        cases[name] = (path, reason)
        return path

    case("empty", ".mp4", "empty").write_bytes(b"")
    case("random-bytes", ".mp4", "not a readable media file").write_bytes(
        random.Random(7).randbytes(64 * 1024))
    # Cut in half: the index at the end is gone, so nothing opens ...
    case("truncated", ".mp4", "not a readable media file").write_bytes(data[: len(data) // 2])
    # ... while with the index first the file opens and its last second has no data at all.
    faststart = folder / "faststart-source.mp4"
    _faststart(good, faststart)
    fast = faststart.read_bytes()
    case("truncated-indexed", ".mp4", "truncated").write_bytes(fast[: len(fast) // 2])
    # A WebM written live has no duration to check against: cut mid-cluster, it must still be refused.
    live = write_live(good_stream(folder / "good-source.webm"), folder / "live-source.webm").read_bytes()
    case("truncated-live", ".webm", "truncated").write_bytes(live[: len(live) * 2 // 3])
    _audio_only(case("audio-only", ".m4a", "no video stream"))
    _unknown_codec(case("unknown-codec", ".avi", "codec is not supported"))
    # A raw-video header claiming 10000x10000 (YUV4MPEG2: the size is plain text in the header).
    width, height = HUGE
    case("huge-resolution", ".y4m", "larger than 8K").write_bytes(
        f"YUV4MPEG2 W{width} H{height} F25:1 Ip A1:1 C420jpeg\nFRAME\n".encode() + bytes(4096))
    return cases
