"""BlockCorruption: real bitstream damage in a few packets, visible until the next keyframe."""

from __future__ import annotations

import numpy as np
import pytest
from ss_helpers import SMALL, decode_luma, demux, mean_abs_diff

from sample_streams import BlockCorruption, generate_stream
from sample_streams.writer import damage_payload

KW = dict(duration_s=5.0, gop_s=2.0, seed=11, **SMALL)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    # Same seed with and without damage: the encoder sees identical input both times.
    d = tmp_path_factory.mktemp("corrupt")
    clean, bad = d / "clean.mp4", d / "bad.mp4"
    generate_stream(clean, **KW)
    truth = generate_stream(bad, defects=[BlockCorruption(2.6, packets=3, bytes_per_packet=24)], **KW)
    return clean, bad, truth


def test_truth_spans_first_damaged_packet_to_next_keyframe(pair):
    # Given damage requested at 2.6 s for 3 packets with a 2 s GOP
    _, _, truth = pair
    (c,) = truth.defects_of("block_corruption")
    # Then it starts at the first packet at/after 2.6 s and lasts until the keyframe at 4 s
    assert c["start_s"] == pytest.approx(2.6)
    assert c["end_s"] == pytest.approx(4.0)
    assert c["packets"] == 3 and c["bytes"] == 24
    assert c["packet_times_s"] == pytest.approx([2.6, 2.64, 2.68])


def test_exactly_the_chosen_packets_change(pair):
    # Given the clean and damaged encodes of the same seed
    clean, bad, truth = pair
    a, b = demux(clean), demux(bad)
    # When their video packets are compared one by one
    assert len(a) == len(b)
    changed = [pa.time_s for pa, pb in zip(a, b, strict=True) if pa.data != pb.data]
    # Then only the three chosen packets differ, each keeping its size and its first bytes (headers)
    assert changed == pytest.approx(truth.defects[0]["packet_times_s"])
    for pa, pb in zip(a, b, strict=True):
        assert len(pa.data) == len(pb.data)
        assert pa.data[:8] == pb.data[:8]
        assert pa.keyframe == pb.keyframe


def test_damage_is_visible_until_next_keyframe_then_gone(pair):
    # Given both encodes decoded with frame threading, as a real player would
    clean, bad, truth = pair
    times, ya = decode_luma(clean, frame_threads=True)
    _, yb = decode_luma(bad, frame_threads=True)
    c = truth.defects[0]
    flashes = {round(t * 25) + k for t in truth.events_s for k in (0, 1)}
    assert len(ya) == len(yb) == 125
    for i, t in enumerate(times):
        diff = mean_abs_diff(ya[i], yb[i])
        if t < c["start_s"] - 1e-6 or t >= c["end_s"] - 1e-6:
            # Then frames before the damage and from the next keyframe on are bit-identical
            assert diff == 0, f"frame at {t:.2f}s should be clean"
        elif i not in flashes:
            # And every frame in between differs visibly (a solid white flash frame cannot show damage)
            assert diff > 1.0, f"frame at {t:.2f}s should show damage (mean diff {diff:.2f})"


def test_corrupted_ts_stream_still_decodes(tmp_path):
    # Given damage in an MPEG-TS (Annex-B) stream
    path = tmp_path / "bad.ts"
    # (at 0.1 s: away from the flash frames, whose packets are too tiny to take 20 bytes)
    truth = generate_stream(
        path, duration_s=2.0, defects=[BlockCorruption(0.1, packets=4)], gop_s=1.0, **SMALL
    )
    # When it is decoded; then every frame comes out and damage is recorded until the 1 s keyframe
    _, lumas = decode_luma(path)
    assert len(lumas) == 50
    assert truth.defects[0]["end_s"] == pytest.approx(1.0)
    assert truth.defects[0]["bytes_damaged"] == [20, 20, 20, 20]


def test_damage_never_creates_start_codes_or_touches_headers():
    # Given Annex-B packets: SEI + IDR slice, with emulation-prevention bytes in the slice data
    rng = np.random.default_rng(0)
    for trial in range(200):
        # (no zero bytes except in emulation-prevention sequences, as in a valid NAL unit)
        body = bytearray(rng.integers(1, 256, size=int(rng.integers(40, 400))).astype(np.uint8).tobytes())
        for k in range(3, len(body) - 3, 17):
            body[k : k + 3] = b"\x00\x00\x03"  # as an encoder would emit them
        head = b"\x00\x00\x00\x01\x06\x05\x10" + bytes(range(16, 32)) + b"\x80"
        packet = head + b"\x00\x00\x01\x65" + bytes(body)
        # When damaged
        out, n = damage_payload(packet, 20, np.random.default_rng(trial), start_codes=True)
        # Then the SEI and slice header region are untouched and the bytes changed are in the slice
        nal_at, nal_len = len(head) + 3, len(body) + 1
        changed = [i for i in range(len(packet)) if packet[i] != out[i]]
        assert n == 20 and len(changed) == 20
        assert nal_at + int(0.3 * nal_len) <= changed[0] and changed[-1] < nal_at + int(0.9 * nal_len)
        # And no new start code (00 00 01) or forbidden 00 00 00/02 sequence appeared
        assert out.count(b"\x00\x00\x01") == packet.count(b"\x00\x00\x01")
        assert out.count(b"\x00\x00\x00") == packet.count(b"\x00\x00\x00")
        assert b"\x00\x00\x02" not in out


def test_hevc_damage_lands_in_the_slice_not_in_the_sei():
    # Given an Annex-B HEVC packet: a prefix SEI (type 39, header 4E 01) bigger than the IDR slice
    # (type 19, header 26 01) that follows it
    sei = b"\x00\x00\x00\x01\x4e\x01" + bytes(range(1, 201))
    slice_ = b"\x00\x00\x01\x26\x01" + bytes(range(201, 256)) + bytes(range(1, 46))
    packet = sei + slice_
    # When damaged as HEVC
    out, n = damage_payload(packet, 10, np.random.default_rng(0), start_codes=True, hevc=True)
    # Then the 10 changed bytes lie in the slice's 30-90 % (the slice unit starts after its start code)
    changed = [i for i in range(len(packet)) if packet[i] != out[i]]
    unit_at, unit_len = len(sei) + 3, len(slice_) - 3
    assert n == 10 and len(changed) == 10
    assert unit_at + int(0.3 * unit_len) <= changed[0] and changed[-1] < unit_at + int(0.9 * unit_len)
