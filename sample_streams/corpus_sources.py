"""The damage corpus's clean sources and their split (issue 22). Configuration only: no side effects.

Every source is a public clip kept in `media/` (licences in media/ATTRIBUTION.md), except `synthetic`:
the project's own generator, one source among the others. Two sources of each kind of content: one to
tune and train on, one held out. The held-out sources are the only ones `monolith evaluate-corpus`
reports on; nothing may be tuned by looking at their results.
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = (
    "live action",
    "animation",
    "sport / fast motion",
    "screen content",
    "dark / low contrast",
    "talking head",
    "synthetic",
)


@dataclass(frozen=True)
class CorpusSource:
    name: str
    kind: str  # one of KINDS
    path: str | None  # relative to the repository; None: the synthetic generator (sample_streams.synth)
    start_s: float  # where the cut starts in the clip
    held_out: bool


SOURCES: tuple[CorpusSource, ...] = (
    # --- tune / train (no dark source of its own yet: the screen-content source is dark) ---
    CorpusSource("person-indoors", "live action", "media/parity/person-detection.mp4", 0.0, False),
    CorpusSource("bigbuckbunny", "animation", "media/bigbuckbunny.mp4", 0.5, False),
    CorpusSource("bikes", "sport / fast motion", "media/parity/bikes.mp4", 0.0, False),
    CorpusSource("terminal-thefuck", "screen content", "media/corpus/terminal-thefuck.mp4", 0.0, False),
    CorpusSource("grid-speech", "talking head", "media/grid-speech-a.mp4", 0.0, False),
    CorpusSource("synthetic", "synthetic", None, 0.0, False),
    # --- held out ---
    CorpusSource("tv-studio", "live action", "media/parity/h264-aac.ts", 0.0, True),
    CorpusSource("news-graphics", "animation", "media/corpus/news-graphics.mp4", 0.0, True),
    CorpusSource("car-traffic", "sport / fast motion", "media/parity/car-detection.mp4", 0.0, True),
    CorpusSource("terminal-dive", "screen content", "media/corpus/terminal-dive.mp4", 0.0, True),
    CorpusSource("fashion-dark", "dark / low contrast", "media/corpus/fashion-dark.mp4", 0.0, True),
    # Starts mid-GOP: its first pictures lack their references, so the cut starts at its first keyframe.
    CorpusSource("tv-presenter", "talking head", "media/parity/dvb-mpeg2.ts", 0.85, True),
)
