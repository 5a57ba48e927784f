"""Command line: ``python -m sample_streams generate|inject ...``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import av

from .api import generate_stream, inject_defects
from .defects import AvOffset, BlockCorruption, DefectSpec, Freeze
from .live import write_live
from .truth import GroundTruth, truth_path


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # One clear line instead of usage + message, exit code 2 like argparse.
        self.exit(2, f"{self.prog}: error: {message}\n")


def _floats(text: str, what: str, min_parts: int, max_parts: int) -> list[str]:
    parts = text.split(":")
    if not min_parts <= len(parts) <= max_parts or any(p == "" for p in parts):
        raise argparse.ArgumentTypeError(f"bad {what} {text!r}")
    return parts


def _num(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad number {text!r} in {what}") from None


def _spec(build, text: str, what: str):
    try:
        return build()
    except ValueError as e:  # validation in the dataclass, e.g. negative start
        raise argparse.ArgumentTypeError(f"bad {what} {text!r}: {e}") from None


def parse_freeze(text: str) -> Freeze:
    p = _floats(text, "--freeze START:DURATION[:NOISE]", 2, 3)
    v = [_num(x, "--freeze") for x in p]
    return _spec(lambda: Freeze(v[0], v[1], v[2] if len(v) > 2 else 0.0), text, "--freeze")


def parse_corrupt(text: str) -> BlockCorruption:
    p = _floats(text, "--corrupt START[:PACKETS[:BYTES]]", 1, 3)
    start = _num(p[0], "--corrupt")
    try:
        ints = [int(x) for x in p[1:]]
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad --corrupt {text!r}: PACKETS and BYTES are integers") from None
    return _spec(lambda: BlockCorruption(start, *ints), text, "--corrupt")


def parse_av_offset(text: str) -> AvOffset:
    p = _floats(text, "--av-offset START:MS[:pts]", 2, 3)
    mode = p[2] if len(p) > 2 else "content"
    if mode not in ("pts", "content"):
        raise argparse.ArgumentTypeError(f"bad --av-offset {text!r}: mode must be 'pts' or 'content'")
    v = [_num(x, "--av-offset") for x in p[:2]]
    return _spec(lambda: AvOffset(v[0], v[1], mode), text, "--av-offset")  # type: ignore[arg-type]


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad --size {text!r}, expected WxH like 640x360") from None
    if w <= 0 or h <= 0 or w % 2 or h % 2:
        raise argparse.ArgumentTypeError(f"bad --size {text!r}: width and height must be positive and even")
    return w, h


def _positive(kind):
    def parse(text: str):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad number {text!r}") from None
        if v <= 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
        return v

    return parse


def _add_defect_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--freeze", action="append", type=parse_freeze, default=[], metavar="START:DURATION[:NOISE]"
    )
    p.add_argument(
        "--corrupt", action="append", type=parse_corrupt, default=[], metavar="START[:PACKETS[:BYTES]]"
    )
    p.add_argument("--av-offset", action="append", type=parse_av_offset, default=[], metavar="START:MS[:pts]")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gop", type=_positive(float), default=2.0, metavar="SECONDS", help="keyframe interval")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="sample_streams", description="Write test streams with known defects + ground truth."
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    g = sub.add_parser("generate", help="synthetic stream with flash/beep events")
    g.add_argument("out")
    g.add_argument("--duration", type=_positive(float), default=20.0, metavar="S")
    g.add_argument("--size", type=parse_size, default=(640, 360), metavar="WxH")
    g.add_argument("--fps", type=_positive(float), default=25.0)
    g.add_argument("--codec", choices=["h264", "mpeg4", "vp8", "vp9", "hevc"], default=None)
    g.add_argument("--no-audio", action="store_true")
    g.add_argument("--event-period", type=_positive(float), default=1.0, metavar="S")
    g.add_argument("--live", action="store_true",
                   help="write .webm/.mkv as a live encoder does: no duration, no Cues")
    _add_defect_options(g)
    i = sub.add_parser("inject", help="re-encode a real clip with defects")
    i.add_argument("src")
    i.add_argument("out")
    i.add_argument(
        "--duration", type=_positive(float), default=None, metavar="S", help="use only the first S s"
    )
    _add_defect_options(i)
    _add_publish_parser(sub)
    return parser


def _segment_seconds(text: str) -> tuple[int, float]:
    parts = text.split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        index, seconds = int(parts[0]), float(parts[1])
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad {text!r}, expected SEGMENT:SECONDS like 3:10") from None
    if index < 0 or seconds < 0:
        raise argparse.ArgumentTypeError(f"bad {text!r}: SEGMENT and SECONDS must be >= 0")
    return index, seconds


def _speed(text: str) -> float:
    return float("inf") if text == "max" else _positive(float)(text)


def _add_publish_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("publish", help="publish a stream into S3 as live HLS (MPEG-TS segments + playlist)")
    p.add_argument("source", help="a media file (H.264/HEVC/MPEG-2/MPEG-4 video; its .truth.json, if any, "
                                  "is the ground truth of the live stream too)")
    p.add_argument("--bucket", required=True, help="the bucket the stream is written to")
    p.add_argument("--stream-id", required=True, help="names the stream: PREFIX/STREAM_ID/index.m3u8")
    p.add_argument("--prefix", default="live", help="key prefix of every live stream (default: live)")
    p.add_argument("--segment-seconds", type=_positive(float), default=2.0, metavar="S",
                   help="segments are cut on the first keyframe at least S s after the last cut (default 2)")
    p.add_argument("--speed", type=_speed, default=1.0, metavar="X",
                   help="pace: X times real time (default 1); 'max': as fast as S3 takes it")
    p.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL"),
                   help="S3 endpoint (LocalStack); default: $AWS_ENDPOINT_URL, else AWS")
    p.add_argument("--die-after", type=_positive(int), metavar="N",
                   help="fault: stop after N segments without EXT-X-ENDLIST (a publisher that died)")
    p.add_argument("--stall", type=_segment_seconds, action="append", default=[], metavar="SEGMENT:S",
                   help="fault: write nothing for S seconds before SEGMENT")
    p.add_argument("--late", type=_segment_seconds, action="append", default=[], metavar="SEGMENT:S",
                   help="fault: list SEGMENT on time but PUT its object S seconds later")
    p.add_argument("--missing", type=int, action="append", default=[], metavar="SEGMENT",
                   help="fault: list SEGMENT in the playlist but never write it (readers get 404)")
    p.add_argument("--damage", type=int, action="append", default=[], metavar="SEGMENT",
                   help="fault: flip bytes inside SEGMENT's TS payloads")
    p.add_argument("--seed", type=int, default=0, help="where the damaged bytes fall")
    p.add_argument("--report", metavar="FILE", help="write what was published and when (JSON)")
    p.add_argument("--published", metavar="FILE",
                   help="write the stream as published (its segments concatenated) for `monolith analyze`")


def _summary(out: str, t: GroundTruth) -> str:
    v = t.video
    audio = f"{t.audio.codec} {t.audio.sample_rate} Hz x{t.audio.channels}" if t.audio else "no audio"
    kinds = ", ".join(f"{d['type']}@{d['start_s']:g}s" for d in t.defects) or "none"
    return (
        f"wrote {out} ({t.duration_s:g} s, {v.width}x{v.height}@{v.fps:g} {v.codec}, {audio}); "
        f"defects: {kinds}; truth: {truth_path(out)}"
    )


def _publish(args: argparse.Namespace) -> int:
    import json

    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from .publish import PublishError, PublishFaults, publish, write_published

    s3 = boto3.client("s3", endpoint_url=args.endpoint_url)
    faults = PublishFaults(die_after=args.die_after, stall_s=dict(args.stall), late_s=dict(args.late),
                           missing=frozenset(args.missing), damaged=frozenset(args.damage), seed=args.seed)

    def shown(segment) -> None:
        state = "missing" if segment.index in faults.missing else (
            "late" if segment.landed_at is None else ("damaged" if segment.damaged else "landed"))
        print(f"segment {segment.index:5d}  {segment.start_s:8.2f} s +{segment.duration_s:.2f} s  {state}",
              flush=True)

    try:
        report = publish(args.source, s3=s3, bucket=args.bucket, stream_id=args.stream_id, prefix=args.prefix,
                         segment_seconds=args.segment_seconds, speed=args.speed, faults=faults,
                         on_segment=shown)
        if args.published:
            write_published(report, s3, args.published)
    except PublishError as e:
        print(f"sample_streams: error: {e}", file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as e:
        print(f"sample_streams: error: s3://{args.bucket}: {e}", file=sys.stderr)
        return 1
    if args.report:
        Path(args.report).write_text(json.dumps(report.to_dict(), indent=2))
    end = "EXT-X-ENDLIST written" if report.ended else "stopped without EXT-X-ENDLIST"
    print(f"published s3://{report.bucket}/{report.playlist_key}: {len(report.segments)} segments, "
          f"{report.duration_s:.2f} s in {report.finished_at - report.started_at:.1f} s; {end}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "publish":
        return _publish(args)
    defects: list[DefectSpec] = [*args.freeze, *args.corrupt, *args.av_offset]
    try:
        live_suffix = Path(args.out).suffix.lower() in (".webm", ".mkv")
        if args.command == "generate" and args.live and not live_suffix:
            raise ValueError("--live writes WebM or Matroska: give OUT a .webm or .mkv name")
        if args.command == "generate":
            w, h = args.size
            fps = int(args.fps) if args.fps.is_integer() else args.fps
            truth = generate_stream(
                args.out,
                duration_s=args.duration,
                width=w,
                height=h,
                fps=fps,
                video_codec=args.codec,
                audio=not args.no_audio,
                event_period_s=args.event_period,
                gop_s=args.gop,
                defects=defects,
                seed=args.seed,
            )
            if args.live:  # the same packets, remuxed as written live
                out = Path(args.out)
                seekable = out.with_name(f".seekable-{out.name}")
                os.replace(out, seekable)
                try:
                    write_live(seekable, out)
                finally:
                    seekable.unlink()
        else:
            truth = inject_defects(
                args.src, args.out, defects, seed=args.seed, duration_s=args.duration, gop_s=args.gop
            )
    except (ValueError, FileNotFoundError, av.FFmpegError) as e:
        # Bad combinations only detectable once the stream is known (freeze past the end, SRC not media).
        print(f"sample_streams: error: {e}", file=sys.stderr)
        return 2
    print(_summary(args.out, truth))
    return 0
