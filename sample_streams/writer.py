"""Encoding and muxing with packet-level defects (bitstream damage, audio timestamp shifts)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from .defects import AvOffset, BlockCorruption

# Container extension -> (allowed video codecs, audio encoder for it).
CONTAINERS: dict[str, tuple[tuple[str, ...], str]] = {
    ".mp4": (("h264", "mpeg4", "hevc", "av1"), "aac"),
    ".ts": (("h264", "mpeg4", "hevc", "mpeg2"), "aac"),
    ".mkv": (("h264", "mpeg4", "vp8", "vp9", "hevc", "av1", "mpeg2"), "aac"),
    ".webm": (("vp8", "vp9", "av1"), "libopus"),
}
VIDEO_ENCODERS = {
    "h264": "libx264",
    "mpeg4": "mpeg4",
    "vp8": "libvpx",
    "vp9": "libvpx-vp9",
    "hevc": "libx265",
    "mpeg2": "mpeg2video",
    "av1": "libsvtav1",
}
OPUS_RATES = (48000, 24000, 16000, 12000, 8000)


def container_for(path: str | Path, video_codec: str) -> tuple[str, str]:
    """Validate (extension, video codec) and return (video encoder, audio encoder)."""
    ext = Path(path).suffix.lower()
    if ext not in CONTAINERS:
        raise ValueError(f"unsupported output extension {ext!r}; use one of {', '.join(CONTAINERS)}")
    allowed, audio_encoder = CONTAINERS[ext]
    if video_codec not in allowed:
        raise ValueError(
            f"video codec {video_codec!r} not supported in {ext}; use one of {', '.join(allowed)}"
        )
    return VIDEO_ENCODERS[video_codec], audio_encoder


def default_video_codec(path: str | Path) -> str:
    return CONTAINERS.get(Path(path).suffix.lower(), (("h264",), ""))[0][0]


def _slice_region(data: bytes, hevc: bool = False) -> tuple[int, int]:
    """(start, end) of the largest H.264/HEVC/MPEG start-code-delimited unit that carries picture data.

    Damage must land in slice data, not in VPS/SPS/PPS/SEI or the slice header, or the decoder would
    drop the whole picture instead of showing block damage. For H.264 that is NAL type 1 or 5; for
    HEVC (type in bits 1-6 of the first header byte) the slice types 0-21; for MPEG-4 part 2 the VOP
    (start code 00 00 01 B6) is the picture. Length-prefixed packets (MP4) have no start code and
    count as one unit.
    """
    starts = []
    i = data.find(b"\x00\x00\x01")
    while i >= 0:
        starts.append(i + 3)
        i = data.find(b"\x00\x00\x01", i + 3)
    best = (0, len(data))
    best_len = -1
    for k, s in enumerate(starts):
        e = starts[k + 1] - 3 if k + 1 < len(starts) else len(data)
        if s >= len(data):
            continue
        is_picture = (data[s] >> 1) & 0x3F <= 21 if hevc else data[s] & 0x1F in (1, 5) or data[s] == 0xB6
        if is_picture and e - s > best_len:
            best, best_len = (s, e), e - s
    return best


def damage_payload(
    data: bytes, nbytes: int, rng: np.random.Generator, start_codes: bool, hevc: bool = False
) -> tuple[bytes, int]:
    """Overwrite a burst of up to ``nbytes`` bytes between 30 % and 90 % of the picture payload.

    Replacement bytes are drawn from 4..255: with no zero byte in the burst it can neither create a
    start code (00 00 01) nor turn an emulation-prevention 00 00 03 into one, so muxers and parsers
    still split the stream into the same units. Returns (damaged bytes, number of bytes damaged).
    """
    s, e = _slice_region(data, hevc) if start_codes else (0, len(data))
    lo = s + max(int(0.3 * (e - s)), 4 if start_codes else 0)
    hi = s + int(0.9 * (e - s))
    n = min(nbytes, hi - lo)
    if n <= 0:
        return data, 0
    at = int(rng.integers(lo, hi - n + 1))
    burst = rng.integers(4, 256, size=n).astype(np.uint8)
    buf = np.frombuffer(data, np.uint8).copy()
    orig = buf[at : at + n]
    # Make every byte really change; the bump stays within 4..255.
    burst = np.where(burst == orig, np.where(burst == 255, 4, burst + 1), burst).astype(np.uint8)
    buf[at : at + n] = burst
    return buf.tobytes(), n


@dataclass
class _Damage:
    spec: BlockCorruption
    remaining: int
    times: list[float] = field(default_factory=list)
    bytes_damaged: list[int] = field(default_factory=list)


class StreamWriter:
    """Encodes video frames (and a pre-computed audio signal) into one container, applying packet defects.

    Audio is written interleaved with video so every container gets sensible interleaving.
    Video is encoded without B-frames so decode order == presentation order: damage to packet k
    then first shows at packet k's presentation time, which keeps the ground truth exact.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        width: int,
        height: int,
        fps: Fraction,
        video_codec: str,
        gop_frames: int,
        audio: np.ndarray | None,
        sample_rate: int,
        corruptions: list[BlockCorruption],
        pts_shifts: list[AvOffset],
        seed: int,
        encoder_options: dict[str, str] | None = None,
    ) -> None:
        video_encoder, audio_encoder = container_for(path, video_codec)
        self.fps = fps
        self.gop_frames = gop_frames
        self.video_codec = video_codec
        self.audio_codec = audio_encoder.removeprefix("lib")
        self._start_codes = video_codec in ("h264", "mpeg4", "hevc")
        self._rng = np.random.default_rng([seed, 4])
        self._damage = [_Damage(c, c.packets) for c in sorted(corruptions, key=lambda c: c.start_s)]
        self.keyframes_s: list[float] = []
        self.video_frames = 0

        # Fixed GOP: keyframes exactly every gop_frames, so "damage lasts until the next keyframe" is known.
        # bitexact: no random segment/track UIDs or version strings, so the same seed gives the same bytes.
        self.out = av.open(str(path), "w", options={"fflags": "+bitexact"})
        vs = self.out.add_stream(video_encoder, rate=fps)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.codec_context.time_base = 1 / fps
        opts = {"g": str(gop_frames), "keyint_min": str(gop_frames), "sc_threshold": "0", "bf": "0"}
        if video_encoder == "libx264":
            # refs=4: frames after a full-white flash can predict from before it, so block damage keeps
            # propagating to the next keyframe instead of being wiped out by the flash.
            opts |= {"preset": "veryfast", "crf": "23", "refs": "4"}
        if video_encoder == "libx265":
            # x265 reads its own parameters, not FFmpeg's generic ones: its scene-cut I-frames, B-frames and
            # open GOPs (CRA) would break the fixed GOP, decode order and "damage lasts until the next
            # keyframe"; ref=4 as for x264 (frames after a flash still predict from before it, so damage
            # propagates). One frame thread and no pool: deterministic and quiet on a shared box; ultrafast
            # keeps generation quick. No crf: the bit rate below (or a caller's "b") sets the quality.
            params = (
                f"keyint={gop_frames}:min-keyint={gop_frames}:scenecut=0:open-gop=0:bframes=0:ref=4"
                ":frame-threads=1:pools=none:log-level=error"
            )
            opts |= {"preset": "ultrafast", "x265-params": params}
        if video_encoder == "libsvtav1":
            # SVT-AV1 reads its own keyframe interval and scene-cut switch, not FFmpeg's generic ones;
            # preset 12 is its fastest, enough for small test streams; one thread (lp=1): the same bytes
            # on every run.
            opts |= {"preset": "12", "svtav1-params": f"keyint={gop_frames}:scd=0:lp=1"}
        if video_encoder in ("mpeg4", "mpeg2video"):
            # The native MPEG encoders treat sc_threshold 0 as "default"; only a huge value stops
            # them from inserting I-frames at every flash (and restarting the GOP there).
            opts["sc_threshold"] = "1000000000"
            if video_encoder == "mpeg2video":
                vs.bit_rate = int(width * height * float(fps) * 0.12)
        else:
            # Non-x264 encoders default to a starved bitrate; ~0.12 bit/pixel looks decent.
            vs.bit_rate = int(width * height * float(fps) * 0.12)
        if video_encoder.startswith("libvpx"):
            # Realtime speed, but with deterministic output: VP8 realtime with a positive cpu-used adapts
            # its speed to wall-clock time (output would depend on machine load); a negative value
            # fixes the speed. VP9 has no such adaptation, and its cpu-used range is only -9..9.
            cpu = "-16" if video_encoder == "libvpx" else "8"
            opts |= {"deadline": "realtime", "cpu-used": cpu, "auto-alt-ref": "0", "lag-in-frames": "0"}
            # One thread: libvpx's VP8 worker threads spin-wait and, on a busy 2-core box, made encodes
            # 5-10x slower; small test streams do not need them.
            opts["threads"] = "1"
        # Caller's options last, e.g. {"crf": "48"} or {"b": "100k"}: heavily compressed clean streams.
        vs.options = opts | dict(encoder_options or {})
        self.vs = vs

        self.audio = audio
        self.sample_rate = sample_rate
        self._audio_pos = 0
        self._shifts = [(s.start_s, s.offset_ms / 1000) for s in pts_shifts]
        self._last_audio_end: int | None = None
        self.as_ = None
        if audio is not None:
            if audio_encoder == "libopus" and sample_rate not in OPUS_RATES:
                raise ValueError(f"opus needs a sample rate in {OPUS_RATES}, got {sample_rate}")
            self.as_ = self.out.add_stream(audio_encoder, rate=sample_rate)
            self._audio_layout = "mono" if audio.shape[0] == 1 else "stereo"
            self.as_.layout = self._audio_layout
            # libopus takes interleaved samples only ("flt"; planar stereo failed to open the encoder).
            self._audio_format = "flt" if audio_encoder == "libopus" else "fltp"
            self.as_.format = self._audio_format
            self.as_.bit_rate = 64000 * audio.shape[0]
            self._frame_samples = 960 if audio_encoder == "libopus" else 1024

    # -- video -------------------------------------------------------------------------------
    def add_video(self, yuv: np.ndarray) -> None:
        frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        frame.pts = self.video_frames
        frame.time_base = 1 / self.fps
        self.video_frames += 1
        self._mux_video(self.vs.encode(frame))
        self._write_audio_until(Fraction(self.video_frames) / self.fps)

    def _mux_video(self, packets: list[Any]) -> None:
        for p in packets:
            t = float(p.pts * p.time_base)
            if p.is_keyframe:
                self.keyframes_s.append(t)
            for d in self._damage:
                if d.remaining > 0 and t >= d.spec.start_s - 1e-9 and p.size > 0:
                    p = self._damaged_copy(p, d)
                    break
            self.out.mux(p)

    def _damaged_copy(self, p: Any, d: _Damage) -> Any:
        data, n = damage_payload(
            bytes(p), d.spec.bytes_per_packet, self._rng, self._start_codes, self.video_codec == "hevc"
        )
        q = av.Packet(data)
        q.pts, q.dts, q.time_base, q.duration = p.pts, p.dts, p.time_base, p.duration
        q.is_keyframe = p.is_keyframe
        q.stream = p.stream
        d.remaining -= 1
        d.times.append(float(p.pts * p.time_base))
        d.bytes_damaged.append(n)
        return q

    # -- audio -------------------------------------------------------------------------------
    def _write_audio_until(self, t: Fraction) -> None:
        if self.audio is None:
            return
        target = min(self.audio.shape[1], math.ceil(t * self.sample_rate))
        step = self._frame_samples
        while self._audio_pos + step <= target:
            self._encode_audio(self._audio_pos, self._audio_pos + step)

    def _encode_audio(self, a: int, b: int) -> None:
        assert self.audio is not None and self.as_ is not None
        samples = self.audio[:, a:b]
        if self._audio_format == "flt":
            samples = samples.T.reshape(1, -1)  # interleaved: L R L R ...
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples), format=self._audio_format, layout=self._audio_layout
        )
        frame.sample_rate = self.sample_rate
        frame.pts = a
        frame.time_base = Fraction(1, self.sample_rate)
        self._audio_pos = b
        self._mux_audio(self.as_.encode(frame))

    def _mux_audio(self, packets: list[Any]) -> None:
        for p in packets:
            if self._shifts and p.pts is not None:
                # Packaging desync: rewrite timestamps of packets from each shift point on. A lead
                # (negative shift) would overlap earlier packets, so overlapping ones are dropped.
                tb = p.time_base
                delta = round(sum(d for start, d in self._shifts if p.pts * tb >= start - 1e-9) / tb)
                p.pts += delta
                p.dts += delta
                if self._last_audio_end is not None and p.dts < self._last_audio_end:
                    continue
                self._last_audio_end = p.dts + (p.duration or 0)
            self.out.mux(p)

    def close(self) -> None:
        self._mux_video(self.vs.encode(None))
        if self.audio is not None and self.as_ is not None:
            if self._audio_pos < self.audio.shape[1]:
                self._encode_audio(self._audio_pos, self.audio.shape[1])
            self._mux_audio(self.as_.encode(None))
        self.out.close()

    def corruption_truth(self, duration_s: float) -> list[dict[str, Any]]:
        out = []
        for d in self._damage:
            if not d.times:
                raise ValueError(f"corruption at {d.spec.start_s} s lies beyond the last video packet")
            last = d.times[-1]
            end = next((k for k in self.keyframes_s if k > last + 1e-9), duration_s)
            out.append(
                {
                    "type": "block_corruption",
                    "start_s": d.times[0],
                    "end_s": end,
                    "packets": len(d.times),
                    "bytes": d.spec.bytes_per_packet,
                    "packet_times_s": d.times,
                    "bytes_damaged": d.bytes_damaged,
                }
            )
        return out
