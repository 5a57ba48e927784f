"""Ground truth for a generated stream, stored as JSON beside it (``<stream>.truth.json``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TRUTH_SUFFIX = ".truth.json"


@dataclass
class VideoInfo:
    width: int
    height: int
    fps: float
    codec: str = ""
    gop_s: float | None = None


@dataclass
class AudioInfo:
    sample_rate: int
    channels: int
    codec: str = ""


@dataclass
class GroundTruth:
    """What is in a stream. Times are seconds from the first video frame's presentation time."""

    source: str
    duration_s: float
    video: VideoInfo
    audio: AudioInfo | None
    events_s: list[float] = field(default_factory=list)
    event_period_s: float | None = None
    # One dict per defect: {"type": "freeze"|"block_corruption"|"av_sync", "start_s", "end_s", ...}
    defects: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "duration_s": self.duration_s,
            "video": vars(self.video).copy(),
            "audio": None if self.audio is None else vars(self.audio).copy(),
            "events_s": list(self.events_s),
            "event_period_s": self.event_period_s,
            "defects": [dict(d) for d in self.defects],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GroundTruth:
        return cls(
            source=data["source"],
            duration_s=float(data["duration_s"]),
            video=VideoInfo(**data["video"]),
            audio=None if data.get("audio") is None else AudioInfo(**data["audio"]),
            events_s=[float(t) for t in data.get("events_s", [])],
            event_period_s=data.get("event_period_s"),
            defects=[dict(d) for d in data.get("defects", [])],
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def defects_of(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.defects if d["type"] == kind]

    def write(self, stream_path: str | Path) -> Path:
        """Write the JSON beside ``stream_path`` and return the JSON path."""
        path = truth_path(stream_path)
        path.write_text(self.to_json())
        return path


def truth_path(stream_path: str | Path) -> Path:
    p = Path(stream_path)
    return p if p.name.endswith(TRUTH_SUFFIX) else p.with_name(p.name + TRUTH_SUFFIX)


def load_truth(path: str | Path) -> GroundTruth:
    """Load ground truth given either the stream path or the ``.truth.json`` path."""
    return GroundTruth.from_dict(json.loads(truth_path(path).read_text()))
