"""The damage corpus (issue 22): damage at the byte level, the self-made labels, and the build."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sample_streams import corpus
from sample_streams.corpus_sources import KINDS, SOURCES
from sample_streams.damage import (
    TS_PACKET,
    PacketDamage,
    Site,
    av1_tile_data,
    flip_bytes,
    lose_ts_packets,
    truncate,
    video_packet_spans,
)

REPO = Path(__file__).resolve().parents[2]
STUDIO = next(s for s in SOURCES if s.name == "tv-studio")


@pytest.fixture(scope="module")
def studio_pictures() -> list[np.ndarray]:
    """2 s of a real broadcast clip (the held-out live-action source) at the corpus's size and rate."""
    return corpus.source_pictures(REPO / STUDIO.path, 0.0, duration_s=2.0)


# --- damage -----------------------------------------------------------------------------------------


def test_flipped_bytes_change_exactly_the_bytes_reported() -> None:
    # Given a packet of zeros
    data = bytes(1000)
    # When bytes are flipped
    damaged, detail = flip_bytes(data, np.random.default_rng(7))
    # Then the non-zero bytes are exactly the ones reported (1-8 of them), and the length is kept
    changed = [i for i, byte in enumerate(damaged) if byte]
    assert changed == detail["bytes"]
    assert 1 <= len(changed) <= 8
    assert len(damaged) == 1000


def test_truncated_packet_keeps_a_prefix_of_10_to_90_percent() -> None:
    data = bytes(range(200))
    for seed in range(20):
        cut, detail = truncate(data, np.random.default_rng(seed))
        assert 20 <= len(cut) <= 180
        assert data.startswith(cut)
        assert detail == {"kept_bytes": len(cut), "of_bytes": 200}


def test_av1_flips_land_in_tile_data_past_the_frame_header() -> None:
    # A temporal delimiter OBU (type 2, size 0), then a frame OBU (type 6, has_size) of 20 bytes:
    # header byte (6 << 3) | 2 = 0x32, size 0x14. Its payload starts at byte 4; the first 16 bytes are
    # left to the frame header, so bytes 20..23 are tile data.
    unit = bytes([0x12, 0x00, 0x32, 0x14]) + bytes(20)
    assert av1_tile_data(unit) == [20, 21, 22, 23]
    damaged, detail = flip_bytes(unit, np.random.default_rng(1), av1_tile_data(unit))
    assert set(detail["bytes"]) <= {20, 21, 22, 23}
    assert damaged[:20] == unit[:20]


def test_packet_damage_loses_and_records_the_chosen_packets() -> None:
    damage = PacketDamage([Site("lost_packet", 1), Site("truncated_packet", 3)], seed=3)
    out = [damage.apply(bytes([k]) * 100, k * 0.04, k == 0) for k in range(5)]
    assert out[1] is None
    assert out[3] is not None and len(out[3]) < 100
    assert [out[0], out[2], out[4]] == [bytes([0]) * 100, bytes([2]) * 100, bytes([4]) * 100]
    assert [(r["kind"], r["packet"], r["pts_s"]) for r in damage.records] == [
        ("lost_packet", 1, 0.04), ("truncated_packet", 3, 0.12)]
    damage.check_done()


def test_a_site_past_the_last_packet_is_an_error() -> None:
    damage = PacketDamage([Site("lost_packet", 9)], seed=0)
    for _ in range(5):
        damage.apply(b"x", None, False)
    with pytest.raises(ValueError, match="only 5 video packets"):
        damage.check_done()


def test_lost_ts_packets_remove_whole_packets_inside_the_chosen_picture(
    tmp_path: Path, studio_pictures: list[np.ndarray]
) -> None:
    # Given a clean H.264 MPEG-TS stream
    clean, damaged = tmp_path / "clean.ts", tmp_path / "damaged.ts"
    corpus.encode(studio_pictures, clean, "h264", 0.12)
    spans = video_packet_spans(clean)
    # When TS packets are lost at the 30th video packet
    done = lose_ts_packets(clean, damaged, [Site("lost_ts_packets", 30)], seed=5)
    # Then whole 188-byte packets are gone, from the bytes that carry that picture
    lost = done[0]["ts_packets"]
    assert clean.stat().st_size - damaged.stat().st_size == lost * TS_PACKET
    data = damaged.read_bytes()
    assert all(data[i] == 0x47 for i in range(0, len(data), TS_PACKET))
    begin, end, pts_s = spans[30]
    assert begin // TS_PACKET <= done[0]["first_ts_packet"] <= (end - 1) // TS_PACKET
    assert done[0]["pts_s"] == pts_s


# --- labels -----------------------------------------------------------------------------------------


def test_damaged_share_compares_what_is_shown_at_each_time() -> None:
    base = np.full((10, 10), 100, np.uint8)
    off = base.copy()
    off[0, :3] = 117  # 3 of 100 samples off by 17 (> 16)
    edge = base.copy()
    edge[0, :5] = 116  # off by exactly 16: not counted
    clean = [(0.0, base), (0.04, base), (0.08, base), (0.12, base)]
    # The damaged stream lost its picture at 0.08 s: the one at 0.04 s is still shown then.
    damaged = [(0.0, edge), (0.04, off), (0.12, np.zeros((5, 5), np.uint8))]
    assert corpus.damaged_shares(clean, damaged) == [0.0, 0.03, 0.03, 1.0]
    assert corpus.damaged_shares(clean, []) == [1.0, 1.0, 1.0, 1.0]


def test_label_events_merge_short_gaps_and_mark_short_events_optional() -> None:
    shares = [0.0] * 20
    for index in (1, 2, 6):  # a gap of 3 clean pictures (3, 4, 5): merged
        shares[index] = 0.02
    shares[12] = 0.5  # 6 pictures after the last damaged one: a new event, one picture long
    shares[13] = 0.009  # under 1%: clean
    times = [round(0.04 * i, 2) for i in range(20)]
    events = corpus.label_events(times, shares, 0.04)
    assert events == [
        {"start_s": 0.04, "end_s": 0.28, "pictures": 6, "damaged_pictures": 3, "peak_share": 0.02,
         "optional": False},
        {"start_s": 0.48, "end_s": 0.52, "pictures": 1, "damaged_pictures": 1, "peak_share": 0.5,
         "optional": True},
    ]


def test_a_truncated_h264_picture_is_labelled_from_itself_to_the_keyframe(
    tmp_path: Path, studio_pictures: list[np.ndarray]
) -> None:
    # Given 2 s of real content as H.264 (one keyframe, at 0 s), its 10th packet truncated to 10-90%
    clean, damaged = tmp_path / "clean.mp4", tmp_path / "damaged.mp4"
    damage = PacketDamage([Site("truncated_packet", 10)], seed=2)
    corpus.encode(studio_pictures, clean, "h264", 0.12, damaged=damaged, damage=damage)
    # When the damaged stream is labelled against the clean one
    events = corpus.label(clean, damaged)
    # Then one event starts at the damaged picture (0.4 s) and lasts while pictures predict from it
    assert damage.records[0]["pts_s"] == pytest.approx(0.4)
    assert len(events) == 1
    assert events[0]["start_s"] == pytest.approx(0.4)
    assert events[0]["pictures"] >= 3 and not events[0]["optional"]
    # And the clean stream against itself has nothing
    assert corpus.label(clean, clean) == []


# --- the corpus ------------------------------------------------------------------------------------


def test_every_kind_has_a_held_out_source_and_files_exist() -> None:
    held_out = {s.kind for s in SOURCES if s.held_out}
    assert held_out == set(KINDS) - {"synthetic"}
    assert len({s.name for s in SOURCES}) == len(SOURCES)
    for source in SOURCES:
        assert source.kind in KINDS
        assert source.path is None or (REPO / source.path).is_file(), source.path


def test_plans_cover_every_codec_at_two_rates_with_damage_the_container_allows() -> None:
    for source in SOURCES:
        plans = list(corpus.streams_of(source, seed=0))
        assert {(p["codec"], p["rate"]) for p in plans} == {
            (codec, rate) for codec in corpus.CODECS for rate in corpus.BIT_RATES_BPP}
        for plan in plans:
            native = corpus.CONTAINER[plan["codec"]]
            assert plan["suffix"] == (".ts" if plan["damage"] == "lost_ts_packets" else native)
            if plan["damage"] == "lost_ts_packets":
                assert plan["codec"] in corpus.TS_CODECS and plan["suffix"] == ".ts"
            assert not (plan["codec"] == "av1" and plan["damage"] == "truncated_packet")
    assert list(corpus.streams_of(SOURCES[0], 0)) == list(corpus.streams_of(SOURCES[0], 0))


def test_short_sources_play_forward_then_backward() -> None:
    # news-graphics holds 32 pictures (1.28 s): the 4 s cut is 0..31, 30..0, 1..31, 30..24
    pictures = corpus.source_pictures(REPO / "media/corpus/news-graphics.mp4", 0.0)
    assert len(pictures) == 100
    assert np.array_equal(pictures[32], pictures[30])
    assert np.array_equal(pictures[62], pictures[0])
    assert np.array_equal(pictures[63], pictures[1])
    assert pictures[0].shape == (540, 640)  # yuv420p: 360 lines of luma and half as many of chroma


def test_the_build_is_cached_and_reproducible(tmp_path: Path) -> None:
    # Given one short held-out source
    source = (next(s for s in SOURCES if s.name == "news-graphics"),)
    # When the corpus is built twice into one folder, and once into another
    first = corpus.build_corpus(tmp_path / "a", 0, sources=source)
    logged: list[str] = []
    again = corpus.build_corpus(tmp_path / "a", 0, sources=source, log=logged.append)
    other = corpus.build_corpus(tmp_path / "b", 0, sources=source)
    # Then the second build reused the first, and a fresh build gives the same streams and labels
    assert logged == ["[1/1] news-graphics: cached"]
    assert again == first
    assert other["streams"] == first["streams"]
    for stream in first["streams"]:
        for name in (stream["clean"], stream["damaged"]):
            assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert len(first["streams"]) == len(corpus.CODECS) * len(corpus.BIT_RATES_BPP)
    assert sum(len(s["events"]) for s in first["streams"]) > 0


def test_the_builder_says_why_it_cannot_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert corpus.main(["build", "--out", str(blocker)]) == 1
    assert "error: the corpus could not be built" in capsys.readouterr().err
