"""The evaluation's cases (`python -m monolith evaluate`): streams with known defects, drawn from a seed.

Seed 0 is the development set the thresholds were tuned on; any other seed places other defects at
other times in other streams. Each case mixes resolutions, codecs and containers, and includes real clips
(media/) with injected defects. A case only makes its stream and says what is in it; `monolith.evaluate`
runs and scores it. A development tool: it generates its streams with sample_streams, which the
service's image does not carry.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sample_streams import AvOffset, BlockCorruption, Freeze, generate_stream, inject_defects
from sample_streams.av_sources import SOURCES as AV_SOURCES
from sample_streams.events import AudioBackground, Sound, generate_event_stream
from sample_streams.live import write_live

REPO = Path(__file__).resolve().parents[1]
REAL_CLIPS = {"chaplin": REPO / "media" / "chaplin.mp4", "bigbuckbunny": REPO / "media" / "bigbuckbunny.mp4"}


@dataclass
class Case:
    name: str
    make: Callable[[Path], dict[str, Any]]  # writes the stream, returns its ground truth as a dict
    suffix: str = ".mp4"



def build_cases(seed: int, *, quick: bool = False) -> list[Case]:
    """A varied set of streams, its defects placed at random times drawn from `seed`."""
    rng = random.Random(seed)

    def at(lo: float, hi: float) -> float:
        return round(rng.uniform(lo, hi), 2)

    def freeze_at(lo: float, hi: float) -> float:
        # Synthetic flashes last 2 frames from x.52 s: a freeze starting there would hold a flat white
        # picture, which the freeze detector deliberately keeps apart from frozen content.
        while True:
            start = at(lo, hi)
            if not 0.46 <= start % 1.0 <= 0.62:
                return start

    def offset() -> float:
        return float(rng.choice([-1, 1]) * rng.randrange(120, 420, 10))

    # Content seeds are drawn when a case is built, not when it is made: a case's stream is then the same
    # whether it is made alone (`--only`) or after others.
    def synthetic(duration: float, size: tuple[int, int], codec: str, defects: tuple) -> Callable:
        content_seed = rng.randrange(1 << 30)

        def make(path: Path) -> dict[str, Any]:
            truth = generate_stream(
                path,
                duration_s=duration,
                width=size[0],
                height=size[1],
                video_codec=codec,
                defects=defects,
                seed=content_seed,
            )
            return truth.to_dict()

        return make

    def real(clip: str, defects: tuple) -> Callable:
        content_seed = rng.randrange(1 << 30)

        def make(path: Path) -> dict[str, Any]:
            return inject_defects(REAL_CLIPS[clip], path, defects, seed=content_seed).to_dict()

        return make

    def live(make: Callable) -> Callable:
        def remux(path: Path) -> dict[str, Any]:
            seekable = path.with_name(f"seekable-{path.name}")
            truth = make(seekable)
            write_live(seekable, path)
            return truth

        return remux

    cases = [
        Case(
            "synthetic 360p h264 mp4",
            synthetic(
                16,
                (640, 360),
                "h264",
                (
                    Freeze(freeze_at(1.5, 3.5), at(2.0, 3.5)),
                    BlockCorruption(at(6.2, 7.8)),
                    AvOffset(at(10.5, 12.5), offset()),
                ),
            ),
        ),
        Case(
            "synthetic 720p h264 ts",
            synthetic(
                12,
                (1280, 720),
                "h264",
                (
                    Freeze(freeze_at(1.5, 3.0), at(2.2, 3.0), noise=2.0),
                    BlockCorruption(at(6.2, 7.5)),
                    AvOffset(at(8.5, 9.5), offset()),
                ),
            ),
            ".ts",
        ),
        Case(
            "real chaplin 360p, injected",
            real(
                "chaplin",
                (
                    Freeze(freeze_at(1.0, 2.5), at(2.0, 3.0)),
                    BlockCorruption(at(6.2, 7.4)),
                ),
            ),
        ),
        Case("clean real bigbuckbunny 720p", lambda path: _copy_clean(REAL_CLIPS["bigbuckbunny"], path)),
    ]
    if quick:
        return cases
    return [
        *cases,
        Case(
            "synthetic 480p mpeg4 mp4",
            synthetic(
                12,
                (854, 480),
                "mpeg4",
                (
                    Freeze(freeze_at(1.5, 3.0), at(2.0, 3.0)),
                    BlockCorruption(at(6.2, 7.5)),
                    AvOffset(at(8.5, 9.5), offset()),
                ),
            ),
        ),
        Case(
            "synthetic 360p vp9 webm",
            synthetic(
                10,
                (640, 360),
                "vp9",
                (
                    Freeze(freeze_at(1.5, 3.0), at(2.0, 3.0), noise=1.0),
                    AvOffset(at(6.5, 7.5), offset()),
                ),
            ),
            ".webm",
        ),
        Case("synthetic 360p clean mp4", synthetic(10, (640, 360), "h264", ())),
        Case(
            "real bigbuckbunny 720p, injected",
            real(
                "bigbuckbunny",
                (
                    Freeze(freeze_at(0.6, 1.2), 2.0),
                    BlockCorruption(at(4.1, 4.4)),
                ),
            ),
        ),
        Case("clean real chaplin 360p", lambda path: _copy_clean(REAL_CLIPS["chaplin"], path)),
        # Last, so that the draws of the cases above stay what they were for every seed.
        Case(
            "synthetic 360p vp9 webm written live (no duration, no cues)",
            live(
                synthetic(
                    10,
                    (640, 360),
                    "vp9",
                    (
                        Freeze(freeze_at(1.5, 3.0), at(2.0, 3.0)),
                        AvOffset(at(6.5, 7.5), offset()),
                    ),
                )
            ),
            ".webm",
        ),
        *_relative_cases(rng),
        # Event content unlike the generator's above (sample_streams/events.py): a flash or a sudden
        # appearance of part of the picture at irregular times over a background that keeps moving, with
        # a tone burst of any pitch or a clap; offsets from mid-stream, both signs.
        *_event_cases(rng),
        # Damage that decoders conceal without a flag (issue 12), one case per codec, and a clean heavily
        # compressed stream per codec. Truths also name the codec. They draw from
        # a generator of their own, so every case above keeps its draws.
        *concealed_damage_cases(seed),
    ]


def _event_cases(rng: random.Random) -> list[Case]:
    """Partial flashes over moving backgrounds as H.264 MP4, VP9/Opus WebM and HEVC MP4, and one clean case.

    Offsets start 3.5-6.5 s into the 12 s stream, so that at least two events follow them.
    """

    def events(
        codec: str, background: AudioBackground, sounds: tuple[Sound, ...], defects: tuple
    ) -> Callable:
        seed = rng.randrange(1 << 30)

        def make(path: Path) -> dict[str, Any]:
            truth = generate_event_stream(
                path,
                duration_s=12,
                video_codec=codec,
                audio_background=background,
                sounds=sounds,
                defects=defects,
                seed=seed,
            )
            return truth.to_dict()

        return make

    def offset(sign: int) -> tuple[AvOffset]:
        return (AvOffset(round(rng.uniform(3.5, 6.5), 2), float(sign * rng.randrange(100, 410, 10))),)

    sign = rng.choice([-1, 1])
    return [
        Case(
            "events 360p h264 mp4 (partial flashes, tone bursts + claps)",
            events("h264", "noise", ("tone", "clap"), offset(sign)),
        ),
        Case(
            "events 360p vp9/opus webm (partial flashes, tone bursts + claps over a chord)",
            events("vp9", "chord", ("tone", "clap"), offset(-sign)),
            ".webm",
        ),
        Case(
            "events 360p hevc mp4 (partial flashes, claps)",
            events("hevc", "noise", ("clap",), offset(rng.choice([-1, 1]))),
        ),
        Case(
            "events 360p h264 mp4 clean (partial flashes, tone bursts over a chord)",
            events("h264", "chord", ("tone",), ()),
        ),
    ]


def _relative_cases(rng: random.Random) -> list[Case]:
    """Real clips (speech and cuts, film with its score, animation with music) with the audio content
    shifted by 300-400 ms mid-stream, and clean: the A/V relative method's cases. Drawn last, from the
    same generator, so that the cases above keep their draws."""
    clips = {
        "grid speech a": REPO / "media" / "grid-speech-a.mp4",
        "grid speech b": REPO / "media" / "grid-speech-b.mp4",
        "chaplin": REPO / "media" / "chaplin.mp4",
        "bbb 12 s": REPO / "media" / "bbb-vp8-11s.webm",
    }

    # Whether each clip's sound is tied to what moves (sample_streams.av_sources): a shift in a clip whose
    # sound is not (chaplin's score, Big Buck Bunny's music and effects) is scored apart, neither a miss
    # nor a find (issue 22 item 5).
    tied = {REPO / source.path: source.tied for source in AV_SOURCES}

    def shifted(src: Path, start_s: float, offset_ms: float, seed: int) -> Callable:
        def make(path: Path) -> dict[str, Any]:
            truth = inject_defects(src, path, (AvOffset(start_s, offset_ms),), seed=seed).to_dict()
            if not tied[src]:
                for defect in truth["defects"]:
                    defect["tied"] = False
            return truth

        return make

    cases = []
    for name, src in clips.items():
        start_s = round(
            rng.uniform(5.0, 6.5) if "bbb" in name or "grid" in name else rng.uniform(4.0, 5.0), 2
        )
        offset_ms = float(rng.choice([-1, 1]) * rng.randrange(300, 410, 10))
        seed = rng.randrange(1 << 30)
        cases.append(
            Case(f"real {name}, audio content shifted mid-stream", shifted(src, start_s, offset_ms, seed))
        )
    cases += [
        Case(f"clean real {name}", lambda path, src=src: _copy_clean(src, path), src.suffix)
        for name, src in clips.items()
        if name != "chaplin"  # already a clean case above
    ]
    return cases


def concealed_damage_cases(seed: int) -> list[Case]:
    """VP8, VP9 and HEVC damage, then clean streams of all five codecs at a starved bitrate."""
    rng = random.Random(seed * 1_000_003 + 12)
    suffix = {"h264": ".mp4", "mpeg4": ".mp4", "vp8": ".webm", "vp9": ".webm", "hevc": ".mp4"}
    # x264 at CRF 48; the others at 100 kbit/s (MPEG-4 cannot go that low: it stays near 300).
    starved = {"h264": {"crf": "48"}} | {codec: {"b": "100k"} for codec in ("mpeg4", "vp8", "vp9", "hevc")}
    cases = []
    for codec in ("vp8", "vp9", "hevc"):
        damage = (BlockCorruption(round(rng.uniform(2.2, 5.4), 2)),)
        make = _synthetic_with_codec(codec, damage, {}, rng.randrange(1 << 30))
        cases.append(Case(f"synthetic 360p {codec} {suffix[codec][1:]}, damage", make, suffix[codec]))
    for codec, options in starved.items():
        make = _synthetic_with_codec(codec, (), options, rng.randrange(1 << 30))
        name = f"synthetic 360p {codec} {suffix[codec][1:]}, clean, heavily compressed"
        cases.append(Case(name, make, suffix[codec]))
    return cases


def _synthetic_with_codec(
    codec: str, defects: tuple, options: dict[str, str], stream_seed: int
) -> Callable[[Path], dict[str, Any]]:
    """8 s of 360p synthetic content; the truth names the codec (`codec`) for recall per codec."""

    def make(path: Path) -> dict[str, Any]:
        truth = generate_stream(
            path,
            duration_s=8,
            width=640,
            height=360,
            video_codec=codec,
            defects=defects,
            seed=stream_seed,
            encoder_options=options,
        )
        return {**truth.to_dict(), "codec": codec}

    return make


def _copy_clean(src: Path, dst: Path) -> dict[str, Any]:
    dst.write_bytes(src.read_bytes())
    return {"source": str(src), "defects": []}


def select_cases(cases: list[Case], only: str | None) -> list[Case]:
    """The cases whose name holds `only` (case-insensitive); all of them when it is None."""
    if only is None:
        return cases
    chosen = [case for case in cases if only.lower() in case.name.lower()]
    if not chosen:
        names = "\n  ".join(case.name for case in cases)
        raise ValueError(f"no case's name holds {only!r}; the cases are:\n  {names}")
    return chosen
