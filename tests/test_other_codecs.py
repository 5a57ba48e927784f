"""Streams in other codecs than H.264 decode and are analysed: MPEG-4 Part 2, VP8 and VP9 in WebM."""

from __future__ import annotations

from pathlib import Path

import pytest

from monolith.pipeline import analyze
from sample_streams import AvOffset, Freeze, generate_stream


@pytest.mark.parametrize(("codec", "suffix"), [("mpeg4", ".mp4"), ("vp8", ".webm"), ("vp9", ".webm")])
def test_freeze_and_av_offset_are_found_in_other_codecs(tmp_path: Path, codec: str, suffix: str) -> None:
    # Given a short stream in the codec with a freeze and a +200 ms audio lag from 4 s
    path = tmp_path / f"stream{suffix}"
    generate_stream(path, duration_s=7, width=320, height=180, video_codec=codec,
                    defects=(Freeze(1.0, 2.2), AvOffset(4.0, 200.0)), seed=3)  # fmt: skip
    # When analysed by the monolith
    report = analyze(path)
    # Then both defects are found where they were injected
    found = {d["type"]: d for d in report["defects"]}
    assert set(found) == {"freeze", "av_sync"}, report["defects"]
    assert found["freeze"]["start_s"] == pytest.approx(1.0, abs=0.1)
    assert found["freeze"]["end_s"] == pytest.approx(3.2, abs=0.1)
    assert found["av_sync"]["offset_ms"] == pytest.approx(200.0, abs=20.0)
    assert found["av_sync"]["start_s"] == pytest.approx(4.0, abs=1.5)
