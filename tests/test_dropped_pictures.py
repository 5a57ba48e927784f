"""Pictures the decoder drops without an error: FFmpeg's HEVC decoder silently drops every picture that
refers to a damaged one, up to the next keyframe. The converter counts them on the picture before them;
block corruption reports them as damage; both paths see the same.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
from detector_runs import run_detector

from lambdas.converter.decode import _DroppedPictures, iter_seconds, probe, read_second
from lambdas.detectors import block_corruption
from monolith.evaluation_cases import concealed_damage_cases


def test_pictures_that_never_come_out_are_dropped_once_a_later_one_does() -> None:
    # Given a decoder at 25 fps (time base 1/25) that took packets 3 (a keyframe) and 1, 2 (leading
    # pictures before it, dropped rightly after a seek), then 4, 6, 5, 7, 8 in decode order
    dropped = _DroppedPictures(Fraction(1, 25), origin=0.0)
    for pts in (3, 1, 2):
        dropped.taken(pts)
    # When the keyframe comes out first, Then nothing counts: pictures before the first are not judged
    assert dropped.given_out(3) == []
    for pts in (4, 6, 5, 7, 8):
        dropped.taken(pts)
    # When 4 and then 7 come out, Then 5 and 6 (0.20 and 0.24 s) were dropped; after the flush, 8
    assert dropped.given_out(4) == []
    assert dropped.given_out(7) == [0.2, 0.24]
    assert dropped.at_end() == [0.32]


def _video_only(source: Path, target: Path) -> Path:
    with av.open(str(source)) as src, av.open(str(target), "w") as out:
        video = src.streams.video[0]
        copy = out.add_stream_from_template(video)
        for packet in src.demux(video):
            if packet.dts is not None:
                packet.stream = copy
                out.mux(packet)
    return target


def test_hevc_damage_the_decoder_drops_silently_is_one_event_to_the_keyframe(tmp_path: Path) -> None:
    # Given the evaluation's seed-9 HEVC damage case (damaged packets at 2.56-2.64 s), without its audio:
    # the decoder gives out the pictures up to 2.52 s, then none until the keyframe at 4.0 s, no error
    (case,) = [c for c in concealed_damage_cases(9) if c.name == "synthetic 360p hevc mp4, damage"]
    truth = case.make(tmp_path / "damaged.mp4")
    assert [d["start_s"] for d in truth["defects"]] == [2.56]
    path = _video_only(tmp_path / "damaged.mp4", tmp_path / "video-only.mp4")
    seconds = list(iter_seconds(path))
    frames = [f for second in seconds for f in second.frames]
    assert not any(f.corrupt or f.decode_errors for f in frames)
    # When converted, Then the 36 pictures due from 2.56 to 3.96 s are counted on the one at 2.52 s, and
    # second 3, whose pictures were all dropped, is analysed rather than refused as truncated
    assert [(f.pts_s, f.dropped_after) for f in frames if f.dropped_after] == [(2.52, 36)]
    assert [len(second.frames) for second in seconds] == [25, 25, 14, 0, 25, 25, 25, 25]
    # When detected, Then one event from the first dropped picture to the keyframe, from decoder evidence
    found, _ = run_detector(block_corruption.detect, seconds)
    assert [(e["start_s"], e["end_s"], e["evidence"], e["confidence"]) for e in found] == [
        (2.56, 4.0, ["dropped_pictures"], 0.9)
    ]
    # and the Lambda path (each second decoded on its own, the state through JSON) sees the same
    info = probe(path)
    alone = [read_second(path, index, info) for index in range(info.seconds)]
    assert [(f.pts_s, f.dropped_after) for s in alone for f in s.frames if f.dropped_after] == [(2.52, 36)]
    assert run_detector(block_corruption.detect, alone, through_json=True)[0] == found

