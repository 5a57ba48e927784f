"""AvOffset: audio content shifted against video (default), or audio packet timestamps shifted (pts mode)."""

from __future__ import annotations

import numpy as np
import pytest
from ss_helpers import beep_onsets, decode_audio, decode_luma, demux, mean_abs_diff

from sample_streams import AvOffset, generate_stream

# The picture does not matter here, so it is tiny.
KW = dict(duration_s=4.0, seed=2, width=160, height=90, fps=25)


@pytest.mark.parametrize("offset_ms", [80, -60])
def test_content_offset_moves_beeps_after_start_only(tmp_path, offset_ms):
    # Given an offset applied at 2.8 s (between the beeps at 2.52 s and 3.52 s)
    path = tmp_path / "off.mp4"
    truth = generate_stream(path, defects=[AvOffset(2.8, offset_ms)], **KW)
    (d,) = truth.defects_of("av_sync")
    assert (d["start_s"], d["end_s"], d["offset_ms"], d["mode"]) == (2.8, 4.0, offset_ms, "content")
    # When the beep onsets are measured in the decoded audio
    audio, sr, t0 = decode_audio(path)
    expected = [t + (offset_ms / 1000 if t >= d["start_s"] else 0.0) for t in truth.events_s]
    onsets = beep_onsets(audio, sr, [t - t0 for t in expected])
    # Then beeps before the start sit on their flashes and later ones are offset by offset_ms (±5 ms)
    assert all(o is not None for o in onsets)
    assert np.allclose(np.array(onsets) + t0, expected, atol=0.005)
    # And the audio timeline stays continuous: same length as without the offset
    assert abs(len(audio) / sr - 4.0) < 0.03


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    path = tmp_path_factory.mktemp("clean") / "clean.mp4"
    generate_stream(path, **KW)
    return path


@pytest.mark.parametrize("offset_ms", [100, -100])
def test_pts_mode_shifts_audio_packet_timestamps(tmp_path, clean, offset_ms):
    # Given the same stream without and with a packaging desync at 2.5 s
    shifted = tmp_path / "pts.mp4"
    truth = generate_stream(shifted, defects=[AvOffset(2.5, offset_ms, mode="pts")], **KW)
    assert truth.defects[0]["mode"] == "pts"
    # When their audio packets are compared
    a, b = demux(clean, "audio"), demux(shifted, "audio")
    by_data = {p.data: p.time_s for p in a}
    # Then every packet keeps its coded bytes, packets before 2.5 s keep their time, later ones move by offset
    before = [p for p in b if by_data[p.data] < 2.5]
    after = [p for p in b if by_data[p.data] >= 2.5]
    assert before and after
    assert all(p.time_s == by_data[p.data] for p in before)
    assert all(abs(p.time_s - by_data[p.data] - offset_ms / 1000) < 1e-3 for p in after)
    # (a lead would overlap earlier packets, so those are dropped instead)
    assert len(b) == len(a) if offset_ms > 0 else len(b) < len(a)
    # And the video is untouched: the same packets at the same times, the same pictures. (Pictures, not
    # bytes: one CI run saw libx264 re-encode the identical input a few bytes differently.)
    va, vb = demux(clean), demux(shifted)
    assert [(p.pts, p.keyframe) for p in va] == [(p.pts, p.keyframe) for p in vb]
    (_, ya), (_, yb) = decode_luma(clean), decode_luma(shifted)
    assert max(mean_abs_diff(x, y) for x, y in zip(ya, yb, strict=True)) < 0.5


def test_av_offset_without_audio_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="needs audio"):
        generate_stream(tmp_path / "x.mp4", audio=False, defects=[AvOffset(1.0, 40)], **KW)
