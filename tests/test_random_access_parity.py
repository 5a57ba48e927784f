"""Random access decodes what the sequential pass decodes: every second of every real clip we keep.

The Lambda path decodes each stream-second on its own (`read_second`: seek to the keyframe before it),
the monolith decodes the stream once (`iter_seconds`). A difference is a seek artefact the detectors
would report as damage on one path only, so pictures, their decoder flags and the audio's timing must be
identical. The clips (media/ATTRIBUTION.md) span encoders and eras: x264 from core 142 (2014) to 165,
H.264 from other encoders, x265, VP8, VP9, AV1, MPEG-2 and H.264 in MPEG-TS (broadcast captures, one
with parameter sets only at its start), MPEG-4 Part 2, B-pyramids, open GOPs.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from detector_runs import run_detector

from lambdas.converter.decode import DEFAULT_THREADS, iter_seconds, probe, read_second
from lambdas.detectors import registry
from lambdas.shared.media import StreamInfo, StreamSecond
from sample_streams import BlockCorruption, inject_defects

MEDIA = Path(__file__).resolve().parents[1] / "media"

VIDEO_SUFFIXES = {".mp4", ".mkv", ".webm", ".ts", ".avi"}
CLIPS = sorted(p for p in [*MEDIA.iterdir(), *(MEDIA / "parity").iterdir()] if p.suffix in VIDEO_SUFFIXES)
# Audio samples are compared exactly too: both paths decode each second's sound with a decoder of its
# own from the same packet (lambdas/converter/decode.py, `_SecondsOfAudio`). Before, one decoder ran on
# from the stream's start and AAC's noise substitution (PNS) drew different noise: h264-aac.ts differed by
# up to 0.04, the GRID speech clips by up to 0.2.
COCKATOO = MEDIA / "parity" / "cockatoo-x264-core142.mp4"


def _differences(path: Path, got: StreamSecond, expected: StreamSecond) -> list[str]:
    where = f"{path.name} second {expected.index}"
    times, expected_times = [f.pts_s for f in got.frames], [f.pts_s for f in expected.frames]
    if times != expected_times:
        return [f"{where}: frames at {times}, sequential {expected_times}"]
    problems = []
    for a, b in zip(got.frames, expected.frames, strict=True):
        if not np.array_equal(a.luma, b.luma):
            mean = float(np.abs(a.luma.astype(np.int16) - b.luma).mean())
            problems.append(f"{where}: picture at {a.pts_s} s differs (mean |diff| {mean:.1f})")
        if (a.corrupt, a.decode_errors, a.key_frame) != (b.corrupt, b.decode_errors, b.key_frame):
            problems.append(f"{where}: flags at {a.pts_s} s: random access {(a.corrupt, a.decode_errors)}, "
                            f"sequential {(b.corrupt, b.decode_errors)}")
    if got.is_last != expected.is_last or (got.audio is None) != (expected.audio is None):
        problems.append(f"{where}: is_last or audio presence differs")
    if got.audio is not None and expected.audio is not None:
        timing = (got.audio.chunks, got.audio.filled_samples, got.audio.decode_errors)
        if timing != (expected.audio.chunks, expected.audio.filled_samples, expected.audio.decode_errors):
            problems.append(f"{where}: audio timing, gaps or errors differ")
        elif not np.array_equal(got.audio.samples, expected.audio.samples):
            problems.append(f"{where}: audio samples differ")
    return problems


@pytest.mark.parametrize("path", CLIPS, ids=[p.name for p in CLIPS])
def test_every_second_decoded_alone_equals_the_sequential_pass(path: Path) -> None:
    # Given a real clip and its sequential decode, as the monolith does it
    info = probe(path)
    sequential = list(iter_seconds(path, info, threads=DEFAULT_THREADS))
    assert len(sequential) == info.seconds
    # When every second is decoded on its own, as the converter Lambda does
    problems = [p for s in sequential for p in _differences(path, read_second(path, s.index, info), s)]
    # Then nothing differs: no picture, no flag, no audio timing
    assert problems == []


def test_the_suite_covers_the_encoders_and_containers_it_claims() -> None:
    # The parity test above is only as good as its clips: keep the variety the module docstring names.
    infos = {p.name: probe(p) for p in CLIPS}
    codecs = {i.video_codec for i in infos.values()}
    assert {"h264", "hevc", "vp8", "vp9", "mpeg2video", "mpeg4", "libdav1d"} <= codecs
    builds = {int(i.decoder_options["x264_build"]) for i in infos.values() if i.decoder_options}
    assert min(builds) <= 142 and max(builds) >= 164  # old and new x264
    assert sum(p.suffix == ".ts" for p in CLIPS) >= 4
    public = [p for p in CLIPS if p.name not in GENERATED]
    assert len(public) >= 10


GENERATED = {"x265-open-gop.mp4", "x264-bpyramid-open-gop.mkv", "x264-headers-once.ts", "mpeg2-open-gop.ts",
             "mpeg4-part2.avi", "av1-svt.mp4"}


def test_every_clip_has_its_source_and_licence_in_the_attribution() -> None:
    attribution = (MEDIA / "ATTRIBUTION.md").read_text()
    missing = [p.name for p in CLIPS if f"| {p.name} |" not in attribution]
    assert missing == []


def test_probe_learns_the_x264_build_that_only_the_stream_start_announces() -> None:
    # Given the 2014 clip whose first frame carries "x264 - core 142" in an SEI message
    info = probe(COCKATOO)
    # Then every decode is told the build, and its keyframes stay exact entry points
    assert info.decoder_options == {"x264_build": "142"}
    assert info.restart_points == [] and info.decode_from(4) is None
    # And a stream from another H.264 encoder gets no hint (FFmpeg assumes none either)
    assert probe(MEDIA / "bigbuckbunny.mp4").decoder_options == {}


def test_without_the_x264_build_a_seek_would_fake_damage() -> None:
    # Given the cockatoo clip decoded sequentially
    info = probe(COCKATOO)
    expected = list(iter_seconds(COCKATOO, info))[4]
    # When second 4 (after the IDR at 3.8 s) is decoded alone without the hint, as before the fix
    got = read_second(COCKATOO, 4, replace(info, decoder_options={}))
    # Then every picture is about 60 grey levels off and flagged corrupt: what the suite guards against
    assert len(got.frames) == len(expected.frames) == 20
    assert all(f.corrupt for f in got.frames) and not any(f.corrupt for f in expected.frames)
    assert np.abs(got.frames[0].luma.astype(np.int16) - expected.frames[0].luma).mean() > 30


def test_lambda_path_and_monolith_find_the_same_nothing_on_the_cockatoo_clip() -> None:
    # Given the clip that raised three false alarms on the Lambda path, When every detector runs over
    # the seconds decoded alone with its state carried through JSON (the Lambda path) and over the
    # sequential pass (the monolith), Then both find nothing
    info = probe(COCKATOO)
    for name, detect in registry().items():
        lambda_path = run_detector(detect, (read_second(COCKATOO, n, info) for n in range(info.seconds)),
                                   through_json=True)[0]
        monolith = run_detector(detect, iter_seconds(COCKATOO, info, threads=DEFAULT_THREADS))[0]
        assert lambda_path == monolith == [], name


def test_stream_info_carries_the_stream_start_knowledge_through_json() -> None:
    # The converter's result carries the info as JSON; what random access needs must survive it
    info = probe(COCKATOO)
    again = StreamInfo.from_dict(json.loads(json.dumps(info.to_dict())))
    assert again == info
    assert "decoder_options" not in info.to_report()  # the analyze --json contract is unchanged


def test_damage_just_after_an_idr_is_concealed_alike_on_both_paths(tmp_path: Path) -> None:
    # Given a real clip re-encoded with IDRs every 2 s and packets damaged 0.12 s after the IDR at 4 s
    # (H.264 conceals them from the picture decoded last, which the sequential pass took from before the
    # IDR and random access, starting at that IDR, never decoded)
    path = tmp_path / "damaged.mp4"
    truth = inject_defects(MEDIA / "bigbuckbunny.mp4", path, [BlockCorruption(4.1)], seed=3)
    assert truth.defects[0]["packet_times_s"][0] == pytest.approx(4.12)
    info = probe(path)
    # When every second is decoded both ways
    sequential = list(iter_seconds(path, info, threads=DEFAULT_THREADS))
    problems = [p for s in sequential for p in _differences(path, read_second(path, s.index, info), s)]
    # Then the concealed pictures are the same bit for bit, and flagged alike
    assert problems == []
    assert sum(f.corrupt for s in sequential for f in s.frames) > 0
