"""The A/V-shift evaluation's real clips and their split (issue 22 item 5). Configuration only: no side
effects.

Each source says once what its sound is (`sound`), and whether that sound is tied to what moves on screen
follows from it (`TIED`): speech on camera, music played on camera and impacts in sport are; a film score
or music and effects laid over animation are not. On untied content "unknown" is the honest answer of a
detector that pairs sound with motion, so it is reported apart, never as a miss or a find. GRID speech,
an edit of GRID talking heads cut like a studio programme (`media/grid_edited.py`), chaplin and Big Buck
Bunny are tuning sources: the relative A/V detector's thresholds were set on them
(lambdas/detectors/av_sync_relative.py). Only the held-out sources judge it.
"""

from __future__ import annotations

from dataclasses import dataclass

TIED: dict[str, bool] = {
    "speech on camera": True,
    "music played on camera": True,
    "impacts in sport": True,
    "music score": False,
    "music and effects": False,
}


@dataclass(frozen=True)
class AvSource:
    name: str
    sound: str  # one of TIED
    path: str  # relative to the repository; licences in media/ATTRIBUTION.md
    held_out: bool

    @property
    def tied(self) -> bool:
        return TIED[self.sound]


SOURCES: tuple[AvSource, ...] = (
    # --- tune: the relative detector was built and its thresholds set on these ---
    AvSource("grid-speech-a", "speech on camera", "media/grid-speech-a.mp4", False),
    AvSource("grid-speech-b", "speech on camera", "media/grid-speech-b.mp4", False),
    # Five GRID speakers in turn, the pictures cut every 1-2 s between the speaker, a listener and a wide
    # shot while the speech runs on: no public edited TV speech clip was found besides the held-out one.
    AvSource("grid-edited", "speech on camera", "media/grid-edited.mp4", False),
    AvSource("chaplin", "music score", "media/chaplin.mp4", False),
    AvSource("bbb", "music and effects", "media/bbb-vp8-11s.webm", False),
    # --- held out: never looked at while tuning ---
    # A TV studio debate: a speaker and his listeners in close-ups and wide shots, a cut every 1-3 s.
    AvSource("tv-studio", "speech on camera", "media/av/tv-studio-12s.ts", True),
)
