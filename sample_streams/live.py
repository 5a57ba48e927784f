"""WebM as a live encoder or a browser's MediaRecorder writes it: no Duration, no Cues.

The Matroska muxer goes back to write the duration and appends the Cues (the seek index) only when its
output is seekable and it is not told the stream is live. Remuxing into a write-only sink with `live=1`
leaves both out, packet for packet the same stream.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import av

# The EBML ID of the Cues element (Matroska spec): a live file holds none.
CUES_ID = bytes.fromhex("1C53BB6B")


class _WriteOnly:
    """A sink without seek(): PyAV then opens the muxer's output as not seekable, as a pipe is."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out

    def write(self, data: bytes) -> int:
        return self._out.write(data)


def write_live(source: str | Path, target: str | Path) -> Path:
    """Remux a Matroska/WebM stream (or any whose codecs WebM/Matroska hold) as written live."""
    target = Path(target)
    fmt = "webm" if target.suffix.lower() == ".webm" else "matroska"
    with av.open(str(source)) as src, target.open("wb") as sink:
        out = av.open(_WriteOnly(sink), "w", format=fmt, options={"live": "1", "fflags": "+bitexact"})
        try:
            kept = [s for s in src.streams if s.type in ("video", "audio")]
            streams = {s.index: out.add_stream_from_template(s) for s in kept}
            for packet in src.demux(kept):
                if packet.dts is None:  # the demuxer's end-of-stream flush packets
                    continue
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
        finally:
            out.close()
    return target
