"""Damage a clean stream the way transport and storage do: flipped bytes, lost packets, truncated packets
(on the coded video packets, remuxed into the same container), and lost 188-byte MPEG-TS packets (on the
file's bytes). Where and how much is drawn from a seeded generator, so a corpus rebuilds bit for bit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

DAMAGE_KINDS = ("flipped_bytes", "lost_packet", "truncated_packet", "lost_ts_packets")
TS_PACKET = 188
MAX_FLIPPED_BYTES = 8
MAX_LOST_TS_PACKETS = 7
AV1_FRAME_HEADER_BYTES = 16


@dataclass(frozen=True)
class Site:
    """One place damaged: the `packet`-th video packet in decode order, and how."""

    kind: str  # one of DAMAGE_KINDS
    packet: int


def av1_tile_data(data: bytes) -> list[int]:
    """Byte offsets of an AV1 temporal unit's frame and tile-group OBU payloads, past their first
    `AV1_FRAME_HEADER_BYTES` (the frame header): where a flipped byte leaves the OBU structure intact.

    Every AV1 muxer (MP4, WebM, Matroska, IVF) parses the OBUs of each packet and refuses or mangles a
    packet whose OBU headers or sizes are broken, so damage written through a muxer must spare them.
    """
    offsets: list[int] = []
    at = 0
    while at < len(data):
        header = data[at]
        obu_type, has_extension, has_size = (header >> 3) & 0xF, header >> 2 & 1, header >> 1 & 1
        at += 1 + has_extension
        size, shift = 0, 0
        if has_size:
            while at < len(data):
                byte = data[at]
                at += 1
                size |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
        else:
            size = len(data) - at
        if obu_type in (4, 6):  # OBU_TILE_GROUP, OBU_FRAME
            offsets += range(at + min(AV1_FRAME_HEADER_BYTES, size), at + size)
        at += size
    return offsets


def flip_bytes(
    data: bytes, rng: np.random.Generator, within: list[int] | None = None
) -> tuple[bytes, dict[str, Any]]:
    """1-8 bytes of the packet (of the offsets `within`, when given) XORed with a non-zero value: every
    chosen byte changes."""
    candidates = np.arange(len(data)) if within is None else np.asarray(within, dtype=np.int64)
    count = min(len(candidates), int(rng.integers(1, MAX_FLIPPED_BYTES + 1)))
    where = np.sort(rng.choice(candidates, size=count, replace=False))
    buf = np.frombuffer(data, np.uint8).copy()
    buf[where] ^= rng.integers(1, 256, size=count).astype(np.uint8)
    return buf.tobytes(), {"bytes": [int(i) for i in where]}


def truncate(data: bytes, rng: np.random.Generator) -> tuple[bytes, dict[str, Any]]:
    """The packet cut to 10-90% of its length (the rest never arrived)."""
    keep = max(1, int(len(data) * rng.uniform(0.1, 0.9)))
    return data[:keep], {"kept_bytes": keep, "of_bytes": len(data)}


class PacketDamage:
    """Packet-level damage (flipped_bytes, lost_packet, truncated_packet) at `sites`, applied to a stream's
    video packets as they pass in decode order; `records` says what was done at each site."""

    def __init__(self, sites: list[Site], seed: int, *, av1: bool = False) -> None:
        unknown = {site.kind for site in sites} - {"flipped_bytes", "lost_packet", "truncated_packet"}
        if unknown:
            raise ValueError(f"not packet-level damage: {sorted(unknown)}")
        self.sites = {site.packet: site for site in sites}  # those still to come
        self.planned = len(self.sites)
        self.rng = np.random.default_rng([seed, 22])
        self.records: list[dict[str, Any]] = []
        self.index = 0
        self.av1 = av1  # flipped bytes only in tile data (av1_tile_data)

    def apply(self, data: bytes, pts_s: float | None, key_frame: bool) -> bytes | None:
        """The next packet as it arrives: its bytes, damaged or not, or None when it is lost."""
        site = self.sites.pop(self.index, None)
        self.index += 1
        if site is None:
            return data
        record = {**asdict(site), "pts_s": pts_s, "key_frame": key_frame}
        if site.kind == "lost_packet":
            self.records.append(record)
            return None
        if site.kind == "truncated_packet":
            if self.av1:
                raise ValueError("AV1 packets cannot be truncated through a muxer (see av1_tile_data)")
            data, detail = truncate(data, self.rng)
        else:
            within = av1_tile_data(data) if self.av1 else None
            if within is not None and not within:  # no tile data (a repeated frame): the next packet
                self.sites[self.index] = Site(site.kind, self.index)
                return data
            data, detail = flip_bytes(data, self.rng, within)
        self.records.append(record | detail)
        return data

    def check_done(self) -> None:
        if len(self.records) != self.planned:
            raise ValueError(f"only {self.index} video packets; sites left at {sorted(self.sites)}")


def video_packet_spans(ts_file: Path) -> list[tuple[int, int, float]]:
    """Each video packet of an MPEG-TS file as (first byte, byte where the next video packet starts, pts
    in seconds), in file order."""
    starts: list[tuple[int, float]] = []
    with av.open(str(ts_file)) as container:
        video = container.streams.video[0]
        for packet in container.demux(video):
            if packet.size and packet.pos is not None and packet.pos >= 0:
                pts_s = float(packet.pts * packet.time_base) if packet.pts is not None else 0.0
                starts.append((packet.pos, pts_s))
    ends = [pos for pos, _ in starts[1:]] + [ts_file.stat().st_size]
    return [(pos, end, pts_s) for (pos, pts_s), end in zip(starts, ends, strict=True)]


def lose_ts_packets(clean: Path, damaged: Path, sites: list[Site], seed: int) -> list[dict[str, Any]]:
    """Copy the MPEG-TS file `clean` to `damaged` without 1-7 consecutive 188-byte TS packets at each
    site, drawn from the bytes that carry that site's video packet."""
    rng = np.random.default_rng([seed, 188])
    data = clean.read_bytes()
    if len(data) % TS_PACKET or data[:1] != b"\x47":
        raise ValueError(f"{clean} is not a stream of 188-byte TS packets")
    spans = video_packet_spans(clean)
    lost: set[int] = set()
    done = []
    for site in sites:
        if site.packet >= len(spans):
            raise ValueError(f"{clean}: only {len(spans)} video packets, a site asked for {site.packet}")
        begin, end, pts_s = spans[site.packet]
        first_ts, last_ts = begin // TS_PACKET, max(begin // TS_PACKET, (end - 1) // TS_PACKET)
        start = int(rng.integers(first_ts, last_ts + 1))
        count = int(rng.integers(1, MAX_LOST_TS_PACKETS + 1))
        lost.update(range(start, min(start + count, len(data) // TS_PACKET)))
        done.append({**asdict(site), "pts_s": pts_s, "first_ts_packet": start, "ts_packets": count})
    kept = [data[i * TS_PACKET:(i + 1) * TS_PACKET] for i in range(len(data) // TS_PACKET) if i not in lost]
    damaged.write_bytes(b"".join(kept))
    return done
