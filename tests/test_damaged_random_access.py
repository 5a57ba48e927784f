"""Random access into a damaged stream gives the pictures and decoder evidence of the sequential pass, so
the Lambda path reports the monolith's damage (issue 22: damaged VP9 once differed at the keyframe)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lambdas.converter.decode import iter_seconds, probe, read_second
from monolith.lambda_path import analyze_lambda_path, compare_defects
from monolith.pipeline import analyze
from sample_streams import corpus
from sample_streams.damage import PacketDamage, Site

REPO = Path(__file__).resolve().parents[1]


def test_failed_packets_before_a_keyframe_count_the_same_both_ways(tmp_path: Path) -> None:
    # Given 4 s of a real broadcast clip as VP9 (a keyframe at 2 s) whose 46th packet (1.8 s) is
    # truncated: it and the 4 packets after it fail to decode, up to the keyframe
    pictures = corpus.source_pictures(REPO / "media/parity/h264-aac.ts", 0.0)
    clean, damaged = tmp_path / "clean.webm", tmp_path / "damaged.webm"
    corpus.encode(pictures, clean, "vp9", 0.12, damaged=damaged,
                  damage=PacketDamage([Site("truncated_packet", 45)], seed=1))
    info = probe(damaged)
    sequential = list(iter_seconds(damaged, info))
    # When every second is also decoded on its own
    for expected in sequential:
        alone = read_second(damaged, expected.index, info)
        # Then each picture carries the same flags and errors both ways
        assert [(f.pts_s, f.key_frame, f.corrupt, f.decode_errors) for f in alone.frames] == [
            (f.pts_s, f.key_frame, f.corrupt, f.decode_errors) for f in expected.frames]
    # The 5 pictures that never came out count as dropped after the last one that did, not on the keyframe
    last = next(f for f in sequential[1].frames if f.pts_s == 1.76)
    keyframe = next(f for f in sequential[2].frames if f.key_frame)
    assert (last.dropped_after, keyframe.decode_errors) == (5, 0)
    # And the Lambda path reports exactly the monolith's damage
    found = analyze(damaged)["defects"]
    assert any(d["type"] == "block_corruption" for d in found)
    assert compare_defects(found, analyze_lambda_path(damaged))["equal"]


def _corpus_stream(name: str, folder: Path) -> Path:
    """One damaged stream of the damage corpus (seed 0), built on its own."""
    (source,) = [s for s in corpus.SOURCES if name.startswith(f"{s.name}-")]
    (plan,) = [p for p in corpus.streams_of(source, 0) if p["name"] == name]
    pictures = corpus.source_pictures(REPO / source.path, source.start_s)
    return folder / corpus.build_stream(plan, pictures, folder)["damaged"]


@pytest.mark.parametrize("name", ["bikes-vp8-low", "bikes-mpeg4-high"])
def test_damage_before_a_keyframe_leaves_the_pictures_after_it_alike_both_ways(tmp_path: Path, name: str
                                                                               ) -> None:
    # Given a corpus stream (cyclists, keyframes at 0 and 2 s) damaged in both GOPs: flipped VP8 bytes at
    # 0.88 and 2.16 s, or MPEG-4 TS packets lost at 0.96 s and in the keyframe at 2.0 s, concealed by the
    # decoder from the picture it decoded last
    damaged = _corpus_stream(name, tmp_path)
    info = probe(damaged)
    sequential = list(iter_seconds(damaged, info))
    # When every second is also decoded on its own, from the keyframe before it
    for expected in sequential:
        alone = read_second(damaged, expected.index, info)
        # Then it holds the very pictures, flags and errors of the sequential pass
        assert [(f.pts_s, f.corrupt, f.decode_errors) for f in alone.frames] == [
            (f.pts_s, f.corrupt, f.decode_errors) for f in expected.frames]
        assert all(np.array_equal(a.luma, b.luma) for a, b in zip(alone.frames, expected.frames, strict=True))
    # And the Lambda path reports exactly the monolith's damage
    found = analyze(damaged)["defects"]
    assert any(d["type"] == "block_corruption" for d in found)
    assert compare_defects(found, analyze_lambda_path(damaged))["equal"]
