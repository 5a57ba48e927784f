"""Defect specifications: what to break in a stream, and where."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Freeze:
    """The picture stops changing at ``start_s`` for ``duration_s`` seconds; audio continues.

    ``noise`` > 0 adds per-frame random luma noise of up to ±noise levels to the repeated picture,
    so the encoder keeps coding a frozen picture that is not bit-identical (a harder case for a
    detector than exact repeats).
    """

    start_s: float
    duration_s: float
    noise: float = 0.0

    def __post_init__(self) -> None:
        if self.start_s < 0:
            raise ValueError(f"freeze start must be >= 0, got {self.start_s}")
        if self.duration_s <= 0:
            raise ValueError(f"freeze duration must be > 0, got {self.duration_s}")
        if self.noise < 0:
            raise ValueError(f"freeze noise must be >= 0, got {self.noise}")


@dataclass(frozen=True)
class BlockCorruption:
    """Real bitstream damage: random bytes overwrite the middle of ``packets`` consecutive video packets.

    The first damaged packet is the first one presented at or after ``start_s``. The damage stays
    visible (error propagation through inter prediction) until the next keyframe.
    """

    start_s: float
    packets: int = 3
    bytes_per_packet: int = 20

    def __post_init__(self) -> None:
        if self.start_s < 0:
            raise ValueError(f"corruption start must be >= 0, got {self.start_s}")
        if self.packets < 1:
            raise ValueError(f"corruption needs at least 1 packet, got {self.packets}")
        if self.bytes_per_packet < 1:
            raise ValueError(f"corruption needs at least 1 byte per packet, got {self.bytes_per_packet}")


@dataclass(frozen=True)
class AvOffset:
    """From ``start_s`` on, audio is shifted against video by ``offset_ms`` (positive = audio lags).

    ``mode="content"`` shifts the audio signal itself with continuous timestamps (silence inserted
    for a lag, samples dropped for a lead), like a broken capture chain. ``mode="pts"`` leaves the
    samples alone and shifts the audio packets' timestamps instead, like a packaging bug.
    """

    start_s: float
    offset_ms: float
    mode: Literal["content", "pts"] = "content"

    def __post_init__(self) -> None:
        if self.start_s < 0:
            raise ValueError(f"av offset start must be >= 0, got {self.start_s}")
        if self.mode not in ("content", "pts"):
            raise ValueError(f"av offset mode must be 'content' or 'pts', got {self.mode!r}")
        if self.offset_ms == 0:
            raise ValueError("av offset must be non-zero")


DefectSpec = Freeze | BlockCorruption | AvOffset
