"""A/V offset change in a real clip whose only audio events are a test signal's periodic tick."""

from __future__ import annotations

from pathlib import Path

import pytest

from monolith.pipeline import analyze
from sample_streams import AvOffset, inject_defects

SMPTE = Path(__file__).resolve().parents[1] / "media" / "smpte-2997.mp4"


@pytest.mark.parametrize("offset_ms", [300.0, -300.0])
def test_a_mid_stream_shift_of_the_tick_track_is_found(tmp_path: Path, offset_ms: float) -> None:
    # Given the SMPTE bars clip (a tick every 0.5 s, no picture to pair it with) whose audio content is
    # shifted by offset_ms from 4.2 s, timestamps left continuous
    path = tmp_path / "smpte.mp4"
    inject_defects(SMPTE, path, (AvOffset(4.2, offset_ms),), seed=1, duration_s=8.0)
    # When analysed
    defects = analyze(path)["defects"]
    # Then one A/V episode from the shift to the end carries the offset, measured from the tick rhythm
    assert [d["type"] for d in defects] == ["av_sync"], defects
    episode = defects[0]
    assert episode["method"] == "audio_markers"
    assert episode["offset_ms"] == pytest.approx(offset_ms, abs=20.0)
    assert 4.2 <= episode["start_s"] <= 4.2 + 1.0 and episode["end_s"] == pytest.approx(8.0, abs=0.1)


def test_the_clean_tick_track_raises_nothing() -> None:
    assert analyze(SMPTE)["defects"] == []
