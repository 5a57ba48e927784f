"""The damage corpus (issue 22): public clips of six kinds of content (and the project's own generator),
each encoded in every codec the converter decodes at two bit rates, damaged the way transport and storage
damage streams, and labelled by decoding the damaged and the clean stream picture by picture.

    python -m sample_streams.corpus build [--out DIR] [--seed N]

The pictures of each source: `DURATION_S` from its `start_s`, at `FPS` (each output time shows the latest
source picture), scaled to `HEIGHT` lines (width to a multiple of 16, sample aspect applied); a source
shorter than that plays forward then backward. Encoded with a keyframe every `GOP_FRAMES` and no B-frames
(sample_streams.writer.StreamWriter). Each clean stream gets one damaged copy with `SITES` damaged places
of one kind, one per GOP, in a random packet of it (keyframes included). The damage kind turns over the
streams; lost TS packets only for the codecs MPEG-TS carries (written as .ts, the clean copy too).

Labels, never typed by hand: both streams decoded as the converter decodes them (the same luma and the
same concealment, `lambdas.converter.decode.decode_pictures`); at each clean picture's time the damaged
stream shows its latest picture at or before it. A picture is damaged where at least `DAMAGED_SHARE` of
its luma samples differ by more than `DIFF_LEVELS`; damaged pictures at most `MERGE_GAP` pictures apart
(4 clean ones between) are one event. An event of fewer than `MIN_EVENT_PICTURES` pictures is optional:
finding it or not is right. Damage that changes nothing visible is no event.

Everything goes to a cache folder outside git (default ~/.cache/stream-quality-monitor/corpus/seed<N>)
with `manifest.json`; a stream is rebuilt only when its source file, the seed or `BUILDER_VERSION` changed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error
import numpy as np

from lambdas.converter.decode import decode_pictures

from .corpus_sources import SOURCES, CorpusSource
from .damage import DAMAGE_KINDS, PacketDamage, Site, lose_ts_packets
from .writer import StreamWriter

REPO = Path(__file__).resolve().parents[1]
# Bump when a change below, or to the converter's decoding (the labels are its pictures), alters what is built
BUILDER_VERSION = 3
FPS = 25
HEIGHT = 360
DURATION_S = 4.0
GOP_FRAMES = 50
SITES = 2  # damaged places per stream, one per GOP
CODECS = ("h264", "hevc", "vp8", "vp9", "av1", "mpeg2", "mpeg4")
# Bits per pixel per picture: a usual streaming rate, and a starved one.
BIT_RATES_BPP = {"high": 0.12, "low": 0.03}
CONTAINER = {"h264": ".mp4", "hevc": ".mp4", "vp8": ".webm", "vp9": ".webm", "av1": ".mp4", "mpeg2": ".ts",
             "mpeg4": ".mp4"}
TS_CODECS = frozenset({"h264", "hevc", "mpeg2", "mpeg4"})
# AV1 gets no truncated packets, and its flipped bytes land in tile data only: every AV1 muxer re-parses
# the OBUs of each packet and fails on a broken one (see sample_streams.damage.av1_tile_data).
DIFF_LEVELS = 16
DAMAGED_SHARE = 0.01
MERGE_GAP = 5
MIN_EVENT_PICTURES = 3
DEFAULT_CACHE = Path.home() / ".cache" / "stream-quality-monitor" / "corpus"


# --- clean pictures ---------------------------------------------------------------------------------


def output_width(width: int, height: int, sample_aspect: Fraction) -> int:
    """The width that keeps the display aspect at HEIGHT lines, to a multiple of 16."""
    return max(16, round(width * sample_aspect / height * HEIGHT / 16) * 16)


def source_pictures(path: Path, start_s: float, duration_s: float = DURATION_S) -> list[np.ndarray]:
    """The source's pictures as yuv420p arrays at FPS for `duration_s` from `start_s` (see module doc)."""
    wanted = round(duration_s * FPS)
    pictures: list[np.ndarray] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        origin = container.start_time / av.time_base if container.start_time is not None else 0.0
        ratio = stream.codec_context.sample_aspect_ratio
        aspect = Fraction(ratio) if ratio else Fraction(1)
        size: tuple[int, int] | None = None
        shown: np.ndarray | None = None
        for frame in container.decode(stream):
            at = float(frame.pts * frame.time_base) - origin if frame.pts is not None else 0.0
            if at < start_s - 1e-6:
                continue
            if size is None:
                size = (output_width(frame.width, frame.height, aspect), HEIGHT)
            # Every output time up to this picture's shows the picture before it (the first: this one).
            while len(pictures) < wanted and start_s + len(pictures) / FPS < at - 1e-6 and shown is not None:
                pictures.append(shown)
            shown = frame.reformat(width=size[0], height=size[1], format="yuv420p").to_ndarray()
            if len(pictures) >= wanted:
                break
        if shown is not None and len(pictures) < wanted:
            pictures.append(shown)
    if len(pictures) < 2:
        raise ValueError(f"{path}: fewer than 2 pictures after {start_s} s")
    played = list(pictures)
    while len(pictures) < wanted:  # forward, then backward, then forward ...
        played = played[::-1]
        pictures += played[1:]
    return pictures[:wanted]


def synthetic_pictures(seed: int) -> list[np.ndarray]:
    """The project's generator (flashes over a scrolling checkerboard and moving shapes), encoded with its
    defaults and decoded: one source among the others."""
    from .api import generate_stream

    with tempfile.TemporaryDirectory(prefix="corpus-synthetic-") as tmp:
        path = Path(tmp) / "synthetic.mp4"
        generate_stream(path, duration_s=DURATION_S, width=640, height=HEIGHT, video_codec="h264",
                        audio=False, seed=seed, encoder_options={"crf": "18"})
        return source_pictures(path, 0.0)


# --- encoding and damage ----------------------------------------------------------------------------


def encoder_options(codec: str, bpp: float, width: int) -> dict[str, str]:
    kbps = max(50, round(width * HEIGHT * FPS * bpp / 1000))
    options = {"b": f"{kbps}k"}
    if codec == "h264":
        options["crf"] = "-1"  # StreamWriter's CRF off: the bit rate rules
    return options


class _TwinWriter(StreamWriter):
    """The clean stream, and packet for packet beside it a copy with packet-level damage (the copy is
    muxed from the encoder's own packets: no remux, so every codec the writer encodes can be damaged)."""

    def __init__(
        self, clean: Path, damaged: Path | None, damage: PacketDamage | None, **options: Any
    ) -> None:
        super().__init__(clean, **options)
        self.damage = damage
        self.twin = av.open(str(damaged), "w", options={"fflags": "+bitexact"}) if damaged else None
        self.twin_stream: Any = None

    def _mux_video(self, packets: list[Any]) -> None:
        if self.twin is not None and self.damage is not None:
            for packet in packets:
                if self.twin_stream is None:  # now that the encoder is open and has its headers
                    self.twin_stream = self._twin_stream()
                pts_s = float(packet.pts * packet.time_base) if packet.pts is not None else None
                data = self.damage.apply(bytes(packet), pts_s, bool(packet.is_keyframe))
                if data is None:
                    continue
                copy = av.Packet(data)
                copy.pts, copy.dts, copy.time_base = packet.pts, packet.dts, packet.time_base
                copy.duration, copy.is_keyframe = packet.duration, packet.is_keyframe
                copy.stream = self.twin_stream
                self.twin.mux(copy)
        super()._mux_video(packets)

    def _twin_stream(self) -> Any:
        """A stream for the encoder's packets. The template copies the codec but not the picture size or
        the headers (extradata) that MP4 and WebM keep out of band: those are set here."""
        assert self.twin is not None
        stream = self.twin.add_stream_from_template(self.vs)
        stream.width, stream.height, stream.pix_fmt = self.vs.width, self.vs.height, self.vs.pix_fmt
        stream.time_base = self.vs.codec_context.time_base
        stream.codec_context.extradata = self.vs.codec_context.extradata
        return stream

    def close(self) -> None:
        super().close()
        if self.twin is not None:
            self.twin.close()


def encode(pictures: list[np.ndarray], clean: Path, codec: str, bpp: float, *,
           damaged: Path | None = None, damage: PacketDamage | None = None) -> None:
    """Encode `pictures` into `clean` and, given `damaged` and `damage`, the damaged copy beside it."""
    height, width = pictures[0].shape[0] * 2 // 3, pictures[0].shape[1]
    writer = _TwinWriter(clean, damaged, damage, width=width, height=height, fps=Fraction(FPS),
                         video_codec=codec, gop_frames=GOP_FRAMES, audio=None, sample_rate=48000,
                         corruptions=[], pts_shifts=[], seed=0,
                         encoder_options=encoder_options(codec, bpp, width))
    for picture in pictures:
        writer.add_video(picture)
    writer.close()
    if damage is not None:
        damage.check_done()


def draw_sites(rng: np.random.Generator, kind: str, packets: int) -> list[Site]:
    """One site per GOP, in a random packet of it (keyframe included, the stream's first picture not)."""
    sites = []
    for gop_start in range(0, min(packets, SITES * GOP_FRAMES), GOP_FRAMES):
        low = max(1, gop_start)
        sites.append(Site(kind, int(rng.integers(low, min(packets, gop_start + GOP_FRAMES)))))
    return sites


# --- labels ----------------------------------------------------------------------------------------


def decode_luma(path: Path) -> list[tuple[float, np.ndarray]]:
    """Every picture as (seconds from the stream's start, luma), decoded as the converter decodes
    (`decode_pictures`: the same on every run; FFmpeg conceals damage, libvpx drops VP9's damaged pictures
    up to the next keyframe). A packet the decoder rejects gives no picture."""
    return [(frame.pts_s, frame.luma) for frame in decode_pictures(path)]


Pictures = list[tuple[float, np.ndarray]]


def damaged_shares(clean: Pictures, damaged: Pictures) -> list[float]:
    """For each clean picture, the share of luma samples off by more than DIFF_LEVELS in what the damaged
    stream shows at that time (its latest picture at or before it; 1.0 when it shows none yet or a
    picture of another size)."""
    damaged = sorted(damaged, key=lambda item: item[0])
    times = [at for at, _ in damaged]
    shares = []
    for at, luma in clean:
        k = int(np.searchsorted(times, at + 1e-3, side="right")) - 1
        if k < 0 or damaged[k][1].shape != luma.shape:
            shares.append(1.0)
            continue
        diff = np.abs(damaged[k][1].astype(np.int16) - luma.astype(np.int16))
        shares.append(float(np.mean(diff > DIFF_LEVELS)))
    return shares


def label_events(times: list[float], shares: list[float], frame_s: float) -> list[dict[str, Any]]:
    """Damaged pictures (share >= DAMAGED_SHARE) as events: two damaged pictures at most MERGE_GAP
    pictures apart are in one event; [first picture's time, last picture's time + one frame)."""
    events: list[dict[str, Any]] = []
    last = -MERGE_GAP - 1
    for index, share in enumerate(shares):
        if share < DAMAGED_SHARE:
            continue
        if events and index - last <= MERGE_GAP:
            event = events[-1]
        else:
            event = {"first": index, "damaged_pictures": 0, "peak_share": 0.0}
            events.append(event)
        event["last"] = index
        event["damaged_pictures"] += 1
        event["peak_share"] = max(event["peak_share"], round(share, 4))
        last = index
    return [
        {"start_s": round(times[e["first"]], 3), "end_s": round(times[e["last"]] + frame_s, 3),
         "pictures": e["last"] - e["first"] + 1, "damaged_pictures": e["damaged_pictures"],
         "peak_share": e["peak_share"], "optional": e["last"] - e["first"] + 1 < MIN_EVENT_PICTURES}
        for e in events
    ]


def label(clean: Path, damaged: Path) -> list[dict[str, Any]]:
    reference = decode_luma(clean)
    shares = damaged_shares(reference, decode_luma(damaged))
    return label_events([at for at, _ in reference], shares, 1 / FPS)


# --- the corpus ------------------------------------------------------------------------------------


def source_key(source: CorpusSource, seed: int) -> str:
    digest = hashlib.sha256(f"{BUILDER_VERSION}/{seed}/{source}".encode())
    if source.path is not None:
        digest.update((REPO / source.path).read_bytes())
    return digest.hexdigest()[:16]


def streams_of(source: CorpusSource, seed: int) -> Iterator[dict[str, Any]]:
    """The streams planned for one source (name, codec, rate, damage kind, container), in a fixed order;
    the damage kind turns over with a generator seeded by the seed and the source's name."""
    rng = np.random.default_rng([seed, int(hashlib.sha256(source.name.encode()).hexdigest()[:8], 16)])
    for codec in CODECS:
        for rate in BIT_RATES_BPP:
            kinds = tuple(k for k in DAMAGE_KINDS if (k != "lost_ts_packets" or codec in TS_CODECS)
                          and (k != "truncated_packet" or codec != "av1"))
            kind = str(rng.choice(kinds))
            suffix = ".ts" if kind == "lost_ts_packets" else CONTAINER[codec]
            yield {"name": f"{source.name}-{codec}-{rate}", "source": source.name, "kind": source.kind,
                   "held_out": source.held_out, "codec": codec, "rate": rate, "damage": kind,
                   "suffix": suffix, "site_seed": int(rng.integers(1 << 30))}


def build_stream(plan: dict[str, Any], pictures: list[np.ndarray], out: Path) -> dict[str, Any]:
    clean = out / f"{plan['name']}.clean{plan['suffix']}"
    damaged = out / f"{plan['name']}.damaged{plan['suffix']}"
    sites = draw_sites(np.random.default_rng(plan["site_seed"]), plan["damage"], len(pictures))
    bpp = BIT_RATES_BPP[plan["rate"]]
    if plan["damage"] == "lost_ts_packets":
        encode(pictures, clean, plan["codec"], bpp)
        done = lose_ts_packets(clean, damaged, sites, plan["site_seed"])
    else:
        damage = PacketDamage(sites, plan["site_seed"], av1=plan["codec"] == "av1")
        encode(pictures, clean, plan["codec"], bpp, damaged=damaged, damage=damage)
        done = damage.records
    events = label(clean, damaged)
    return {**plan, "clean": clean.name, "damaged": damaged.name, "damage_sites": done, "events": events}


def build_corpus(
    out: Path,
    seed: int = 0,
    *,
    sources: tuple[CorpusSource, ...] = SOURCES,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Build (or reuse from `out`) every source's streams; write and return the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints ~20 lines per encode below error level
    manifest_path = out / "manifest.json"
    old = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    streams: list[dict[str, Any]] = []
    keys: dict[str, str] = {}
    for number, source in enumerate(sources, 1):
        key = source_key(source, seed)
        keys[source.name] = key
        cached = [s for s in old.get("streams", []) if s["source"] == source.name]
        if old.get("keys", {}).get(source.name) == key and cached and all(
                (out / s["clean"]).exists() and (out / s["damaged"]).exists() for s in cached):
            streams += cached
            log(f"[{number}/{len(sources)}] {source.name}: cached")
            continue
        started = time.perf_counter()
        if source.path is None:
            pictures = synthetic_pictures(seed)
        else:
            pictures = source_pictures(REPO / source.path, source.start_s)
        for plan in streams_of(source, seed):
            streams.append(build_stream(plan, pictures, out))
        log(f"[{number}/{len(sources)}] {source.name}: {len(CODECS) * len(BIT_RATES_BPP)} streams in "
            f"{time.perf_counter() - started:.0f} s")
    manifest = {
        "builder_version": BUILDER_VERSION,
        "seed": seed,
        "rule": {"diff_levels": DIFF_LEVELS, "damaged_share": DAMAGED_SHARE, "merge_gap_pictures": MERGE_GAP,
                 "min_event_pictures": MIN_EVENT_PICTURES, "fps": FPS, "duration_s": DURATION_S,
                 "gop_frames": GOP_FRAMES},
        "sources": [{"name": s.name, "kind": s.kind, "path": s.path, "start_s": s.start_s,
                     "held_out": s.held_out} for s in sources],
        "keys": keys,
        "streams": streams,
    }
    manifest_path.write_text(json.dumps(manifest, indent=1))
    return manifest


def corpus_dir(seed: int, out: str | None = None) -> Path:
    base = Path(out) if out else Path(os.environ.get("CORPUS_DIR", DEFAULT_CACHE))
    return base / f"seed{seed}"


def summary(manifest: dict[str, Any]) -> str:
    streams = manifest["streams"]
    events = [e for s in streams for e in s["events"]]
    required = [e for e in events if not e["optional"]]
    held = [s for s in streams if s["held_out"]]
    return (f"{len(streams)} damaged streams ({len(held)} held out) and as many clean ones; "
            f"{len(required)} events of 3 pictures or more, {len(events) - len(required)} shorter; "
            f"{sum(not s['events'] for s in streams)} damaged streams show no visible damage")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sample_streams.corpus",
                                     description=(__doc__ or "").split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build the corpus (cached) and print a summary")
    build.add_argument("--out", help="cache folder (default: $CORPUS_DIR or ~/.cache/stream-quality-monitor/"
                                     "corpus); the seed's streams go to <out>/seed<N>")
    build.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    where = corpus_dir(args.seed, args.out)
    try:
        manifest = build_corpus(where, args.seed, log=lambda text: print(text, file=sys.stderr, flush=True))
    except (OSError, ValueError, av.error.FFmpegError) as error:
        print(f"error: the corpus could not be built: {error}", file=sys.stderr)
        return 1
    print(f"{where}: {summary(manifest)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
