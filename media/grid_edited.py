"""Regenerate media/grid-edited.mp4, a tuning source of the A/V-shift evaluation (issue 22 item 5):
`python media/grid_edited.py DIR` where DIR holds the GRID sentences of rizkiarm/LipNet
`evaluation/samples/GRID/` (and `evaluation/samples/id2_vcd_swwp2s.mpg`).

No public clip of edited TV speech (several shots, cuts, speech on camera) with a licence that allows it
was found besides the held-out one, so this edits GRID talking heads (CC-BY 4.0) the way a studio
programme is cut: five speakers say one sentence each, one after the other, and the sound runs on while
the pictures cut every 1-2 s between the speaker in close-up, a listener (another speaker's silent
lead-in, played forward and back: a face that moves a little, not with the words) and a wide shot of the
speaker and a listener side by side at half size. Each sentence keeps its own A/V alignment. Encoded with
PyAV: libx264 CRF 23, a keyframe every 2 s, AAC 44.1 kHz mono.
"""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

OUT = Path(__file__).resolve().parent / "grid-edited.mp4"
FPS = 25
RATE = 44100
SIZE = (360, 288)
BACKGROUND = (38, 44, 60)  # RGB of the studio around the wide shot's two faces
# Who speaks, in order (75 pictures and 3 s of sound each), and the sentence whose silent lead-in (its
# first LEAD_IN pictures, before the first word) shows that speaker as a listener.
SPEAKERS = ("lwbsza", "id2_vcd_swwp2s", "bbaf2n", "lrwp9a", "swiz3n")
LEAD_IN = 9
# Per sentence, its shots: (kind, pictures, listener). "close": the speaker; "listener": the listener
# alone; "wide": the speaker (left) and the listener (right) at half size.
SHOTS: tuple[tuple[tuple[str, int, str], ...], ...] = (
    (("close", 45, ""), ("wide", 30, "lbbc2a")),
    (("listener", 30, "lwbsza"), ("close", 45, "")),
    (("close", 35, ""), ("listener", 40, "lbbc2a")),
    (("wide", 40, "id2_vcd_swwp2s"), ("close", 35, "")),
    (("close", 50, ""), ("listener", 25, "lrwp9a")),
)


def sentence(path: Path) -> tuple[list[np.ndarray], np.ndarray]:
    """Its 75 RGB pictures and 3 s of mono sound at RATE."""
    with av.open(str(path)) as container:
        pictures = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)][: 3 * FPS]
    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        chunks = [x.to_ndarray()[0] for f in container.decode(audio=0) for x in resampler.resample(f)]
    pcm = np.concatenate(chunks)
    pictures += [pictures[-1]] * (3 * FPS - len(pictures))
    return pictures, np.pad(pcm, (0, max(0, 3 * RATE - len(pcm))))[: 3 * RATE]


def listener(pictures: list[np.ndarray], n: int) -> list[np.ndarray]:
    """n pictures of the silent lead-in, forward then backward, over and over."""
    cycle = pictures[:LEAD_IN] + pictures[LEAD_IN - 2 : 0 : -1]
    return [cycle[i % len(cycle)] for i in range(n)]


def half(picture: np.ndarray) -> np.ndarray:
    return picture[::2, ::2]


def wide(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    canvas = np.full((SIZE[1], SIZE[0], 3), BACKGROUND, np.uint8)
    h, w = SIZE[1] // 2, SIZE[0] // 2
    canvas[h // 2 : h // 2 + h, :w] = half(left)[:h, :w]
    canvas[h // 2 : h // 2 + h, w:] = half(right)[:h, :w]
    return canvas


def main(source_dir: Path) -> None:
    needed = set(SPEAKERS) | {name for shots in SHOTS for _, _, name in shots if name}
    found = {name: next(source_dir.rglob(f"{name}.mpg"), None) for name in needed}
    missing = sorted(name for name, path in found.items() if path is None)
    if missing:
        sys.exit(f"error: {source_dir} lacks {', '.join(m + '.mpg' for m in missing)}")
    clips = {name: sentence(path) for name, path in found.items() if path is not None}
    pictures: list[np.ndarray] = []
    for speaker, shots in zip(SPEAKERS, SHOTS, strict=True):
        own, at = clips[speaker][0], 0
        for kind, n, other in shots:
            them = listener(clips[other][0], n) if other else []
            for i in range(n):
                if kind == "close":
                    pictures.append(own[at + i])
                elif kind == "listener":
                    pictures.append(them[i])
                else:
                    pictures.append(wide(own[at + i], them[i]))
            at += n
        assert at == 3 * FPS, f"{speaker}: shots cover {at} pictures"
    pcm = np.concatenate([clips[s][1] for s in SPEAKERS]).astype(np.float32)
    with av.open(str(OUT), "w") as out:
        video = out.add_stream("libx264", rate=FPS, options={"crf": "23", "g": str(2 * FPS)})
        video.width, video.height, video.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        audio = out.add_stream("aac", rate=RATE, layout="mono")
        for n, picture in enumerate(pictures):
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts, frame.time_base = n, Fraction(1, FPS)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        size = audio.codec_context.frame_size or 1024
        for start in range(0, len(pcm), size):
            chunk = pcm[start : start + size]
            frame = av.AudioFrame.from_ndarray(np.pad(chunk, (0, size - len(chunk)))[None], format="flt",
                                               layout="mono")
            frame.sample_rate, frame.pts = RATE, start
            out.mux(audio.encode(frame))
        out.mux(audio.encode(None))
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(pictures) / FPS:.1f} s)")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python media/grid_edited.py DIR  (a directory holding LipNet's GRID samples)")
    main(Path(sys.argv[1]))
