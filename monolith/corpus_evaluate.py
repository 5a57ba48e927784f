"""`python -m monolith evaluate-corpus`: block-damage detection judged on the damage corpus's held-out
sources only (sample_streams.corpus; sources and split in sample_streams.corpus_sources).

Every damaged stream of a held-out source and its clean twin run through the monolith, through the Lambda
path in one process (`monolith.lambda_path`: its defects must be exactly the monolith's), and through
FFmpeg's decoder alone (frames it flags corrupt and packets it fails to decode, grouped into events, as
`monolith evaluate` does). So does every clip in media/ (all clean: any event there is a false alarm).

Scored against the corpus's self-made labels:
- an event (of 3 pictures or more) is found when a detection overlaps it, from `START_TOLERANCE_S` before
  its first damaged picture to its end; events shorter than 3 pictures may be found or not;
- onset: the found detection's start minus the label's, within `ONSET_S` or not;
- a detection that overlaps no event (required or optional) is a false alarm: on a damaged stream, on a
  clean twin, or on a media clip. On a damaged stream it is told apart by where it lies: at a damaged
  place whose damage stayed under the labelling rule (from `START_TOLERANCE_S` before the damaged packet
  to the next keyframe: the decoder saw damage a viewer hardly would), or away from any damage;
- precision: detections that overlap an event, over all detections on the corpus's streams; and the same
  with the detections at invisible damage counted as right.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av.error
from rich import box
from rich.table import Table

from lambdas.converter.decode import UnreadableStreamError
from lambdas.converter.service import StreamUnreadable
from lambdas.shared.keys import InvalidRequest
from monolith.evaluate import FFMPEG_THREAD_TYPE, TOLERANCE_S, ffmpeg_decode, flag_events
from monolith.lambda_path import analyze_lambda_path, compare_defects
from monolith.pipeline import analyze
from sample_streams.corpus import build_corpus, corpus_dir
from text_tables import NEVER_WRAPS, render_text

REPO = Path(__file__).resolve().parents[1]
START_TOLERANCE_S = TOLERANCE_S["block_corruption"][0]
ONSET_S = 0.2
MEDIA_SUFFIXES = {".mp4", ".ts", ".webm", ".mkv", ".avi"}
DETECTORS = ("ours", "ffmpeg_flags")

Interval = tuple[float, float]


def overlaps(detection: Interval, event: dict[str, Any]) -> bool:
    return detection[0] < event["end_s"] and detection[1] > event["start_s"] - START_TOLERANCE_S


def match_events(events: list[dict[str, Any]], detections: list[Interval]) -> dict[str, Any]:
    """Score one stream's detections against its labelled events (module doc)."""
    required = [event for event in events if not event["optional"]]
    onsets = []
    for event in required:
        hits = [d for d in detections if overlaps(d, event)]
        if hits:
            nearest = min(hits, key=lambda d: abs(d[0] - event["start_s"]))
            onsets.append(round(nearest[0] - event["start_s"], 3))
    alarms = [list(d) for d in detections if not any(overlaps(d, event) for event in events)]
    return {"true": len(required), "found": len(onsets), "onset_errors_s": onsets,
            "detections": len(detections), "false_alarms": len(alarms), "alarm_intervals": alarms}


def damage_windows(sites: list[dict[str, Any]], gop_s: float) -> list[Interval]:
    """Where each damaged packet can show: from START_TOLERANCE_S before it to the next keyframe after
    it (keyframes every `gop_s`; a damaged keyframe lasts to the one after)."""
    return [(site["pts_s"] - START_TOLERANCE_S, (int(site["pts_s"] / gop_s + 1e-9) + 1) * gop_s)
            for site in sites if site["pts_s"] is not None]


def at_damage(alarms: list[list[float]], windows: list[Interval]) -> int:
    """How many of a damaged stream's false alarms lie at a damaged place (overlap its window)."""
    return sum(any(start < end_w and end > start_w for start_w, end_w in windows) for start, end in alarms)


def detect(path: Path, *, lambda_path: bool) -> dict[str, Any]:
    """Block-damage intervals on one stream: ours (the monolith's), FFmpeg's decoder flags, and whether
    the Lambda path gave exactly the monolith's defects (None when not run)."""
    try:
        defects: list[dict[str, Any]] = analyze(path)["defects"]
        refused = None
    except UnreadableStreamError as error:
        defects, refused = [], error.reason
    try:
        decoded = ffmpeg_decode(path, thread_type=FFMPEG_THREAD_TYPE)
        flags = flag_events(decoded["flagged_s"], 1.0 / decoded["fps"])
    except (av.error.FFmpegError, IndexError):
        flags = []
    equal = None
    if lambda_path:
        try:
            equal = compare_defects(defects, analyze_lambda_path(path))["equal"] and refused is None
        except (StreamUnreadable, InvalidRequest):
            equal = refused is not None
    ours = [(d["start_s"], d["end_s"]) for d in defects if d["type"] == "block_corruption"]
    return {"ours": ours, "ffmpeg_flags": [tuple(f) for f in flags], "refused": refused,
            "lambda_path_equal": equal}


def media_clips() -> list[Path]:
    return sorted(p for p in (REPO / "media").rglob("*") if p.suffix in MEDIA_SUFFIXES)


def evaluate_corpus(
    seed: int = 0,
    *,
    split: str = "held-out",
    lambda_path: bool = True,
    media: bool = True,
    corpus: Path | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Build (or reuse) the corpus and score the streams of `split` ("held-out" or "tune")."""
    where = corpus or corpus_dir(seed)
    manifest = build_corpus(where, seed, log=log)
    held_out = split == "held-out"
    streams = [s for s in manifest["streams"] if s["held_out"] == held_out]
    gop_s = manifest["rule"]["gop_frames"] / manifest["rule"]["fps"]
    rows = []
    for number, stream in enumerate(streams, 1):
        log(f"[{number}/{len(streams)}] {stream['name']} ({stream['damage']})")
        damaged = detect(where / stream["damaged"], lambda_path=lambda_path)
        clean = detect(where / stream["clean"], lambda_path=lambda_path)
        windows = damage_windows(stream["damage_sites"], gop_s)
        scores = {name: {"damaged": match_events(stream["events"], damaged[name]),
                         "clean": match_events([], clean[name])} for name in DETECTORS}
        for score in scores.values():
            score["damaged"]["alarms_at_damage"] = at_damage(score["damaged"]["alarm_intervals"], windows)
        rows.append({
            **{key: stream[key] for key in ("name", "source", "kind", "codec", "rate", "damage")},
            "events": stream["events"],
            "refused": damaged["refused"],
            "lambda_path_equal": [damaged["lambda_path_equal"], clean["lambda_path_equal"]],
            **{f"{name}_intervals": [list(d) for d in damaged[name]] for name in DETECTORS},
            **scores,
        })
    clips = []
    for number, path in enumerate(media_clips() if media else [], 1):
        log(f"[media {number}] {path.relative_to(REPO)}")
        found = detect(path, lambda_path=lambda_path)
        clips.append({"clip": str(path.relative_to(REPO)), "refused": found["refused"],
                      "lambda_path_equal": [found["lambda_path_equal"]],
                      **{name: match_events([], found[name]) for name in DETECTORS}})
    return {"seed": seed, "split": split, "corpus": str(where), "rule": manifest["rule"],
            "sources": [s for s in manifest["sources"] if s["held_out"] == held_out],
            "summary": summarise(rows, clips), "streams": rows, "media": clips}


def _recall(found: int, true: int) -> float | None:
    return round(found / true, 3) if true else None


def _group(rows: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        group = out.setdefault(row[key], {"events": 0, **{name: 0 for name in DETECTORS}})
        group["events"] += row["ours"]["damaged"]["true"]
        for name in DETECTORS:
            group[name] += row[name]["damaged"]["found"]
    for group in out.values():
        for name in DETECTORS:
            group[f"{name}_recall"] = _recall(group[name], group["events"])
    return dict(sorted(out.items()))


def summarise(rows: list[dict[str, Any]], clips: list[dict[str, Any]]) -> dict[str, Any]:
    """Recall per codec, content kind and damage kind; overall recall, onset, precision and false alarms
    for ours and FFmpeg's flags; the Lambda path's agreement."""
    overall: dict[str, Any] = {}
    for name in DETECTORS:
        damaged = [row[name]["damaged"] for row in rows]
        clean = [row[name]["clean"] for row in rows]
        true, found = sum(s["true"] for s in damaged), sum(s["found"] for s in damaged)
        onsets = [abs(e) for s in damaged for e in s["onset_errors_s"]]
        detections = sum(s["detections"] for s in damaged + clean)
        alarms = sum(s["false_alarms"] for s in damaged + clean)
        at_invisible = sum(s["alarms_at_damage"] for s in damaged)
        overall[name] = {
            "events": true, "found": found, "recall": _recall(found, true),
            "onset_within_0_2_s": sum(e <= ONSET_S + 1e-9 for e in onsets),
            "precision": round((detections - alarms) / detections, 3) if detections else None,
            "precision_invisible_right": (round((detections - alarms + at_invisible) / detections, 3)
                                          if detections else None),
            "alarms_at_invisible_damage": at_invisible,
            "false_alarms_damaged": sum(s["false_alarms"] for s in damaged) - at_invisible,
            "false_alarms_clean": sum(s["false_alarms"] for s in clean),
            "clean_streams_with_alarms": sum(s["false_alarms"] > 0 for s in clean),
            "false_alarms_media": sum(c[name]["false_alarms"] for c in clips),
            "media_clips_with_alarms": sum(c[name]["false_alarms"] > 0 for c in clips),
        }
    checks = [v for row in [*rows, *clips] for v in row["lambda_path_equal"] if v is not None]
    return {
        "damaged_streams": len(rows), "clean_streams": len(rows), "media_clips": len(clips),
        "refused_damaged_streams": sum(row["refused"] is not None for row in rows),
        "overall": overall,
        "by_codec": _group(rows, "codec"),
        "by_kind": _group(rows, "kind"),
        "by_damage": _group(rows, "damage"),
        "lambda_path": {"checked": len(checks), "equal": sum(checks)} if checks else None,
    }


# --- the report -------------------------------------------------------------------------------------


def _fraction(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _cell(found: int, events: int, recall: float | None) -> str:
    return f"{found}/{events} ({'–' if recall is None else f'{recall:.2f}'})"


def generated_row(evaluation: dict[str, Any]) -> dict[str, Any]:
    """`monolith evaluate`'s generated cases (a result of `evaluate --json`) as one row beside the content
    kinds: its block-damage events, found by ours and by FFmpeg's decoder flags."""
    codecs = evaluation["block_corruption_by_codec"].values()
    row = {"events": sum(c["events"] for c in codecs), "ours": sum(c["ours"] for c in codecs),
           "ffmpeg_flags": sum(c["decoder_flags"] for c in codecs), "seed": evaluation["seed"]}
    for name in DETECTORS:
        row[f"{name}_recall"] = _recall(row[name], row["events"])
    return row


def corpus_tables(result: dict[str, Any], *, markdown: bool = False) -> list[Table]:
    style: dict[str, Any] = {"box": box.MARKDOWN if markdown else box.SIMPLE_HEAD, "title_justify": "left"}
    summary = result["summary"]
    tables = []
    for key, label in (("by_codec", "codec"), ("by_kind", "content kind"), ("by_damage", "damage")):
        table = Table(title=f"{result['split']} sources: block-damage event recall per {label}", **style)
        for header in (label, "events", "ours", "FFmpeg decoder flags"):
            table.add_column(header, justify="left" if header == label else "right")
        groups = dict(summary[key])
        if key == "by_kind" and result.get("generated"):
            generated = result["generated"]
            groups[f"generated cases (make evaluate, seed {generated['seed']})"] = generated
        for name, group in groups.items():
            table.add_row(name, str(group["events"]),
                          *(_cell(group[d], group["events"], group[f"{d}_recall"]) for d in DETECTORS))
        tables.append(table)
    title = (f"{result['split']} sources: overall ({summary['damaged_streams']} damaged streams, as many "
             f"clean, {summary['media_clips']} media clips)")
    overall = Table(title=title, **style)
    overall.add_column("")
    for header in ("ours", "FFmpeg decoder flags"):
        overall.add_column(header, justify="right")
    rows = [
        ("event recall", lambda o: _cell(o["found"], o["events"], o["recall"])),
        (f"onset within {ONSET_S} s (of found)", lambda o: f"{o['onset_within_0_2_s']}/{o['found']}"),
        ("precision", lambda o: _fraction(o["precision"])),
        ("reports at damage under the labelling rule", lambda o: str(o["alarms_at_invisible_damage"])),
        ("precision, those counted as right", lambda o: _fraction(o["precision_invisible_right"])),
        ("false alarms on damaged streams away from damage", lambda o: str(o["false_alarms_damaged"])),
        ("false alarms on clean streams (streams)",
         lambda o: f"{o['false_alarms_clean']} ({o['clean_streams_with_alarms']})"),
        ("false alarms on media/ clips (clips)",
         lambda o: f"{o['false_alarms_media']} ({o['media_clips_with_alarms']})"),
    ]
    for label, cell in rows:
        overall.add_row(label, *(cell(summary["overall"][d]) for d in DETECTORS))
    return [overall, *tables]


def format_corpus_evaluation(result: dict[str, Any], *, markdown: bool = False) -> str:
    parts: list[Any] = []
    for table in corpus_tables(result, markdown=markdown):
        if markdown:
            parts.append(f"**{table.title}**")
            table.title = None
        parts += [table, ""]
    lines = []
    check = result["summary"]["lambda_path"]
    lines.append("Lambda path = monolith: not checked" if check is None
                 else f"Lambda path = monolith: {check['equal']}/{check['checked']} streams")
    for row in result["streams"]:
        for which, equal in zip(("damaged", "clean"), row["lambda_path_equal"], strict=True):
            if equal is False:
                lines.append(f"  DIFFERS on {which} {row['name']}")
    lines += [f"  DIFFERS on {clip['clip']}" for clip in result["media"]
              if clip["lambda_path_equal"] == [False]]
    refused = result["summary"]["refused_damaged_streams"]
    if refused:
        lines.append(f"damaged streams the monolith refused (their events count as missed): {refused}")
    for row in result["streams"]:
        for event, found in _missed(row):
            lines.append(f"  missed in {row['name']} ({row['damage']}): {json.dumps(event)}"
                         + ("" if not found else " (FFmpeg's flags found it)"))
        for interval in row["ours"]["clean"]["alarm_intervals"]:
            lines.append(f"  false alarm on clean {row['name']}: {interval}")
    for clip in result["media"]:
        for interval in clip["ours"]["alarm_intervals"]:
            lines.append(f"  false alarm on {clip['clip']}: {interval}")
    return render_text(*parts, width=NEVER_WRAPS) + "\n\n" + "\n".join(lines)


def _missed(row: dict[str, Any]) -> list[tuple[dict[str, Any], bool]]:
    """The required events ours missed, each with whether FFmpeg's flags found it."""
    out = []
    for event in (e for e in row["events"] if not e["optional"]):
        ours = match_events([event], _intervals(row, "ours"))
        if not ours["found"]:
            out.append((event, bool(match_events([event], _intervals(row, "ffmpeg_flags"))["found"])))
    return out


def _intervals(row: dict[str, Any], name: str) -> list[Interval]:
    """A damaged stream's detections by `name` (kept in the row as lists: JSON has no tuples)."""
    return [(start, end) for start, end in row[f"{name}_intervals"]]
