"""The three defect detectors.

Each detector is a pure function `detect(second, state) -> (defects, new_state)` over one stream-second:
`state` is a small JSON-serialisable dict (None for the first second) that the caller carries to the
next second — in memory in the monolith, through the state machine on the Lambda path. Events still
open at the stream's last second (`second.is_last`) are closed and reported then.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lambdas.shared.media import StreamSecond

Defects = list[dict[str, Any]]
State = dict[str, Any]
DetectFn = Callable[[StreamSecond, State | None], tuple[Defects, State]]

# What each detector looks at, name -> (video, audio): its Lambda GETs only those objects (the audio-only
# path of A/V sync still needs the pictures to find the flashes). Here, in a module without side effects,
# so that the handlers and the cost model read the same table.
NEEDS: dict[str, tuple[bool, bool]] = {
    "freeze": (True, False),
    "block_corruption": (True, False),
    "av_sync": (True, True),
}


def registry() -> dict[str, DetectFn]:
    """Detector name -> detect function, in a fixed order."""
    from lambdas.detectors import av_sync, block_corruption, freeze

    return {"freeze": freeze.detect, "block_corruption": block_corruption.detect, "av_sync": av_sync.detect}
