"""`python -m monolith evaluate`: precision and recall of the detectors on streams with known defects.

The cases come from `monolith.evaluation_cases` (a set drawn from a seed; seed 0 is the development set
the thresholds were tuned on); this module runs each one and scores what was found against its truth.

Reported: a row per case (its codec as the decoder names it, found/true and false alarms per defect
type), FFmpeg's result beside ours where FFmpeg has a detector (freezedetect for freezes, run through
PyAV; for block damage its decoder's own evidence: frames flagged corrupt or packets that fail to
decode, grouped into events), the summary per defect type, and block-damage recall per codec. Unless
told not to, every case also runs through the Lambda path in one process (`monolith.lambda_path`), whose
defects must be exactly the monolith's.
"""

from __future__ import annotations

import copy
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import av.error
from rich import box
from rich.console import RenderableType
from rich.table import Table

from lambdas.converter.decode import UnreadableStreamError
from lambdas.converter.service import StreamUnreadable
from lambdas.shared.keys import InvalidRequest
from lambdas.shared.media import DEFECT_TYPES
from monolith.evaluation_cases import Case, build_cases, select_cases
from monolith.lambda_path import analyze_lambda_path, compare_defects
from monolith.pipeline import analyze
from text_tables import NEVER_WRAPS, render_text

# How far a found boundary (start, end) may be from the true one and still count as the same event.
# An A/V shift can only be seen at the next audio-visual event after it, and a shift that drops audio
# can swallow that event's beep: with events every 1 s its start is known to within 1.5 s.
TOLERANCE_S = {"freeze": (0.5, 0.5), "block_corruption": (0.5, 1.0), "av_sync": (1.5, 1.0)}


@dataclass
class Score:
    true_positives: int = 0
    false_positives: int = 0
    false_negatives: int = 0
    offset_errors_ms: list[float] = field(default_factory=list)

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        real = self.true_positives + self.false_negatives
        return self.true_positives / real if real else 1.0


def evaluate(
    seed: int = 0,
    *,
    quick: bool = False,
    lambda_path: bool = True,
    only: str | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Run every case of the set drawn from `seed` (or those whose name holds `only`): the monolith,
    FFmpeg's detectors beside it and, unless `lambda_path` is False, the Lambda path in one process, whose
    defects must equal the monolith's."""
    scores = {kind: Score() for kind in DEFECT_TYPES}
    rows: list[dict[str, Any]] = []
    cases = select_cases(build_cases(seed, quick=quick), only)
    with tempfile.TemporaryDirectory(prefix="evaluate-") as tmp:
        for number, case in enumerate(cases, 1):
            path = Path(tmp) / f"case{number}{case.suffix}"
            where = f"[{number}/{len(cases)}] {case.name}"
            log(f"{where}: generating …")
            rows.append(run_case(case, path, scores, lambda_path=lambda_path,
                                 log=lambda text, where=where: log(f"{where}: {text}")))
    return {
        "seed": seed,
        "streams": len(cases),
        "by_type": {kind: score_row(s) for kind, s in scores.items()},
        "ffmpeg": ffmpeg_summary(rows),
        "block_corruption_by_codec": recall_by_codec(rows),
        "untied_av": untied_av_summary(rows),
        "lambda_path": lambda_path_summary(rows) if lambda_path else None,
        "freeze_vs_ffmpeg_freezedetect": [
            {"case": row["case"], **row["ffmpeg"]["freeze_cross_check"]} for row in rows
            if any(d["type"] == "freeze" for d in row["truth"])
        ],
        "cases": rows,
    }


def run_case(
    case: Case, path: Path, scores: dict[str, Score], *, lambda_path: bool, log: Callable[[str], None]
) -> dict[str, Any]:
    """One case's row: what it holds, what the monolith found, FFmpeg's findings, the Lambda path's check."""
    seconds: dict[str, float] = {}

    def timed(step: str, work: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        try:
            return work()
        finally:
            seconds[step] = round(time.perf_counter() - start, 2)

    truth = timed("generate", lambda: case.make(path))
    form = stream_format(path)
    try:
        report = timed("analyze", lambda: analyze(path))
        found, refused = report["defects"], None
    except UnreadableStreamError as error:  # a valid stream refused: every defect in it is missed
        found, refused = [], error.reason
    outcome = score_case(truth["defects"], found, scores)
    ffmpeg = timed("ffmpeg", lambda: ffmpeg_findings(path, truth["defects"], found))
    check = timed("lambda_path", lambda: check_lambda_path(path, found, refused)) if lambda_path else None
    log(f"{sum(seconds.values()):.1f} s ({', '.join(f'{k} {v:.1f}' for k, v in seconds.items())})"
        + ("" if check is None or check["equal"] else " — Lambda path DIFFERS"))
    return {
        "case": case.name,
        **form,
        "refused": refused,
        "truth": truth["defects"],
        "found": found,
        **outcome,
        "ffmpeg": ffmpeg,
        "lambda_path": check,
        "seconds": seconds,
    }


def stream_format(path: Path) -> dict[str, Any]:
    """The case's video and audio codec as the decoder names them (probed: a case need not say) and its
    container (the extension it was written with)."""
    try:
        with av.open(str(path)) as container:
            video = container.streams.video[0].codec_context.name if container.streams.video else None
            audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
    except av.error.FFmpegError:
        video = audio = None
    return {"codec": video or "unreadable", "audio_codec": audio, "container": path.suffix.lstrip(".")}


def score_row(score: Score) -> dict[str, Any]:
    return {
        "precision": round(score.precision, 3),
        "recall": round(score.recall, 3),
        "true_positives": score.true_positives,
        "false_positives": score.false_positives,
        "false_negatives": score.false_negatives,
        "offset_error_ms_max": round(max(score.offset_errors_ms), 1) if score.offset_errors_ms else None,
    }


def _matches(truth: dict[str, Any], found: dict[str, Any]) -> bool:
    if truth["type"] != found["type"]:
        return False
    start_tol, end_tol = TOLERANCE_S[truth["type"]]
    return (
        abs(truth["start_s"] - found["start_s"]) <= start_tol
        and abs(truth["end_s"] - found["end_s"]) <= end_tol
    )


def score_case(
    truth: list[dict[str, Any]], found: list[dict[str, Any]], scores: dict[str, Score]
) -> dict[str, Any]:
    """Pair each true event with at most one found event of its type; count the rest as misses/alarms.
    Adds to `scores` and returns the case's own counts: {type: {"true", "found", "false_alarms"}}. An A/V
    shift in content whose sound is not tied to motion (`"tied": False`) is counted apart (`untied_av`):
    no report there is the honest "unknown", neither a miss nor a find; a report matching it is no alarm."""
    case = {kind: Score() for kind in DEFECT_TYPES}
    unmatched = list(found)
    missed = []
    untied = {"shifts": 0, "found": 0, "not_reported": 0}
    for event in truth:
        match = next((f for f in unmatched if _matches(event, f)), None)
        if event.get("tied") is False:
            untied["shifts"] += 1
            untied["not_reported" if match is None else "found"] += 1
            if match is not None:
                unmatched.remove(match)
            continue
        if match is None:
            case[event["type"]].false_negatives += 1
            missed.append(event)
            continue
        unmatched.remove(match)
        case[event["type"]].true_positives += 1
        if event["type"] == "av_sync":
            case["av_sync"].offset_errors_ms.append(abs(match["offset_ms"] - event["offset_ms"]))
    for alarm in unmatched:
        case[alarm["type"]].false_positives += 1
    for kind, score in case.items():
        total = scores[kind]
        total.true_positives += score.true_positives
        total.false_positives += score.false_positives
        total.false_negatives += score.false_negatives
        total.offset_errors_ms += score.offset_errors_ms
    return {
        "by_type": {
            kind: {"true": s.true_positives + s.false_negatives, "found": s.true_positives,
                   "false_alarms": s.false_positives}
            for kind, s in case.items()
        },
        "offset_errors_ms": [round(e, 1) for e in case["av_sync"].offset_errors_ms],
        "untied_av": untied,
        "missed": missed,
        "false_alarms": unmatched,
    }


def untied_av_summary(rows: list[dict[str, Any]]) -> dict[str, int]:
    """The A/V shifts in content whose sound is not tied to motion, over all rows (older rows: none)."""
    total = {"shifts": 0, "found": 0, "not_reported": 0}
    for row in rows:
        for key, count in row.get("untied_av", {}).items():
            total[key] += count
    return total


# --- FFmpeg beside us: its freeze detector, and its decoder's own evidence of damage ------------------

# FFmpeg's own decoder configuration (what `ffmpeg -i` uses): frame and slice threads, as many as CPUs.
# PyAV's default is slice threads only, with which H.264 conceals damage without flagging the frames, so
# the decoder flags are also collected with PyAV's defaults, to show what a PyAV user gets.
FFMPEG_THREAD_TYPE = "AUTO"
# Flagged frames (or packets that fail to decode) less than this far apart are one event.
FLAG_GAP_S = 1.0
FREEZEDETECT_NOISES = {"freezedetect": 0.001, "freezedetect_40db": 0.01}  # -60 dB (its default), -40 dB
FREEZEDETECT_MIN_S = 2.0
FREEZE_NEAR_S = 0.5  # a freezedetect interval whose both ends are this close to a true freeze finds it


class _Freezedetect:
    """FFmpeg's freezedetect filter fed decoded frames; collects its (start, end) intervals."""

    def __init__(self, stream: av.video.stream.VideoStream, noise: float, origin: float) -> None:
        self.origin = origin
        self.intervals: list[tuple[float, float]] = []
        self._start: float | None = None
        self.graph = av.filter.Graph()
        self.source = self.graph.add_buffer(template=stream)
        detector = self.graph.add("freezedetect", f"n={noise}:d={FREEZEDETECT_MIN_S}")
        self.sink = self.graph.add("buffersink")
        self.source.link_to(detector)
        detector.link_to(self.sink)
        self.graph.configure()

    def push(self, frame: av.VideoFrame | None) -> None:
        self.source.push(frame)
        while True:
            try:
                out = self.sink.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return
            metadata = out.metadata
            if "lavfi.freezedetect.freeze_start" in metadata:
                self._start = float(metadata["lavfi.freezedetect.freeze_start"]) - self.origin
            if "lavfi.freezedetect.freeze_end" in metadata and self._start is not None:
                end = float(metadata["lavfi.freezedetect.freeze_end"]) - self.origin
                self.intervals.append((round(self._start, 3), round(end, 3)))
                self._start = None


def ffmpeg_decode(
    path: Path, *, thread_type: str | None, freezedetect: dict[str, float] | None = None
) -> dict[str, Any]:
    """Decode the video once as FFmpeg would (`thread_type` None: PyAV's defaults): the times of frames
    the decoder flags corrupt and of packets that fail to decode, the frame rate, and the intervals of
    the freezedetect filters named in `freezedetect` ({name: noise})."""
    flagged: list[float] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if thread_type is not None:
            stream.codec_context.thread_type = thread_type
            stream.codec_context.thread_count = 0  # as many as CPUs
        origin = container.start_time / av.time_base if container.start_time is not None else 0.0
        fps = float(stream.average_rate or stream.guessed_rate or 25)
        filters = {name: _Freezedetect(stream, noise, origin) for name, noise in (freezedetect or {}).items()}
        last_s = 0.0
        for packet in container.demux(stream):
            try:
                frames = stream.codec_context.decode(packet)
            except av.error.FFmpegError:
                at = packet.pts if packet.pts is not None else packet.dts
                flagged.append(float(at * packet.time_base) - origin if at is not None else last_s)
                continue
            for frame in frames:
                if frame.pts is not None:
                    last_s = float(frame.pts * frame.time_base) - origin
                if frame.is_corrupt:
                    flagged.append(last_s)
                for detector in filters.values():
                    detector.push(frame)
        for detector in filters.values():
            detector.push(None)
    return {"flagged_s": sorted(flagged), "fps": fps,
            **{name: detector.intervals for name, detector in filters.items()}}


def flag_events(times_s: list[float], frame_s: float, gap_s: float = FLAG_GAP_S) -> list[tuple[float, float]]:
    """Flagged frame times grouped into events: [first, last + one frame], split where flags pause for
    `gap_s` or more."""
    events: list[list[float]] = []
    for at in sorted(times_s):
        if events and at - events[-1][1] < gap_s:
            events[-1][1] = at
        else:
            events.append([at, at])
    return [(round(start, 3), round(end + frame_s, 3)) for start, end in events]


def score_decoder_flags(truth: list[dict[str, Any]], events: list[tuple[float, float]]) -> dict[str, Any]:
    """FFmpeg's decoder evidence against the true block damage. The decoder flags only the frames it had to
    conceal in, not the ones that inherit the damage until the next keyframe, so it is judged on when it
    noticed: an event found is one whose flags start while the damage lasts (from its start, less the start
    tolerance, to its end). Flag events near no damage are false alarms."""
    start_tol = TOLERANCE_S["block_corruption"][0]
    damage = [d for d in truth if d["type"] == "block_corruption"]

    def during(event: tuple[float, float], true: dict[str, Any]) -> bool:
        return true["start_s"] - start_tol <= event[0] <= true["end_s"]

    found = sum(any(during(e, d) for e in events) for d in damage)
    alarms = [list(e) for e in events if not any(during(e, d) for d in damage)]
    return {"true": len(damage), "found": found, "false_alarms": len(alarms),
            "events": [list(e) for e in events], "false_alarm_events": alarms}


def score_freezedetect(truth: list[dict[str, Any]], intervals: list[tuple[float, float]]) -> dict[str, Any]:
    """freezedetect's intervals against the true freezes: found when both ends are within ±0.5 s."""
    freezes = [d for d in truth if d["type"] == "freeze"]

    def near(interval: tuple[float, float], true: dict[str, Any]) -> bool:
        return (abs(interval[0] - true["start_s"]) <= FREEZE_NEAR_S
                and abs(interval[1] - true["end_s"]) <= FREEZE_NEAR_S)

    found = sum(any(near(i, d) for i in intervals) for d in freezes)
    alarms = sum(not any(near(i, d) for d in freezes) for i in intervals)
    return {"true": len(freezes), "found": found, "false_alarms": alarms}


def ffmpeg_findings(path: Path, truth: list[dict[str, Any]], found: list[dict[str, Any]]) -> dict[str, Any]:
    """FFmpeg's results on one case where FFmpeg has a detector: freezedetect for freezes, its decoder's
    flags for block damage (with FFmpeg's and with PyAV's default decoder settings). None for an
    unreadable file."""
    try:
        ffmpeg = ffmpeg_decode(path, thread_type=FFMPEG_THREAD_TYPE, freezedetect=FREEZEDETECT_NOISES)
        pyav = ffmpeg_decode(path, thread_type=None)
    except (av.error.FFmpegError, IndexError):
        return {"error": "FFmpeg cannot decode the file"}
    frame_s = 1.0 / ffmpeg["fps"]
    return {
        "freezedetect": score_freezedetect(truth, ffmpeg["freezedetect"]),
        "freezedetect_40db": score_freezedetect(truth, ffmpeg["freezedetect_40db"]),
        "decoder_flags": score_decoder_flags(truth, flag_events(ffmpeg["flagged_s"], frame_s)),
        "decoder_flags_pyav_default": score_decoder_flags(truth, flag_events(pyav["flagged_s"], frame_s)),
        "freeze_cross_check": cross_check_freezes(
            truth, found, ffmpeg["freezedetect"], ffmpeg["freezedetect_40db"]),
    }


def cross_check_freezes(
    truth: list[dict[str, Any]],
    found: list[dict[str, Any]],
    theirs: list[tuple[float, float]],
    theirs_loose: list[tuple[float, float]],
) -> dict[str, Any]:
    """Each true freeze: found by us, by freezedetect at -60 dB (its default: bit-identical pictures) and at
    -40 dB (tolerates some re-encoding noise)?"""
    ours = [(d["start_s"], d["end_s"]) for d in found if d["type"] == "freeze"]
    rows = []
    for event in (d for d in truth if d["type"] == "freeze"):
        def hit(intervals: list[tuple[float, float]], event: dict[str, Any] = event) -> bool:
            return score_freezedetect([event], intervals)["found"] == 1

        rows.append(
            {
                "truth": [event["start_s"], event["end_s"]],
                "noise": event.get("noise", 0.0),
                "ours": hit(ours),
                "ffmpeg_freezedetect": hit(theirs),
                "ffmpeg_freezedetect_40db": hit(theirs_loose),
            }
        )
    return {"freezes": rows, "ffmpeg_intervals": theirs, "ffmpeg_intervals_40db": theirs_loose}


# --- the Lambda path on every case -------------------------------------------------------------------


def check_lambda_path(path: Path, monolith: list[dict[str, Any]], refused: str | None) -> dict[str, Any]:
    """The Lambda path's defects on the case against the monolith's; a stream refused by one path only is
    a difference too."""
    try:
        defects = analyze_lambda_path(path)
    except (StreamUnreadable, InvalidRequest) as error:
        if refused is not None:
            return {"equal": True, "only_monolith": [], "only_lambda_path": [], "refused": str(error)}
        return {"equal": False, "only_monolith": monolith, "only_lambda_path": [],
                "refused": f"the Lambda path refused the stream: {error}"}
    if refused is not None:
        return {"equal": False, "only_monolith": [], "only_lambda_path": defects,
                "refused": f"the monolith refused the stream: {refused}"}
    return compare_defects(monolith, defects)


def lambda_path_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    checked = [row for row in rows if row["lambda_path"] is not None]
    return {
        "cases": len(checked),
        "equal": sum(row["lambda_path"]["equal"] for row in checked),
        "differences": [{"case": row["case"], **row["lambda_path"]} for row in checked
                        if not row["lambda_path"]["equal"]],
    }


# --- summaries ------------------------------------------------------------------------------------


def _recall(found: int, true: int) -> float | None:
    return round(found / true, 3) if true else None


def ffmpeg_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """FFmpeg's recall and false alarms over all cases, for each of its detectors."""
    out: dict[str, Any] = {}
    for name in ("freezedetect", "freezedetect_40db", "decoder_flags", "decoder_flags_pyav_default"):
        scored = [row["ffmpeg"][name] for row in rows if name in row["ffmpeg"]]
        true, found = sum(s["true"] for s in scored), sum(s["found"] for s in scored)
        out[name] = {"true": true, "found": found, "recall": _recall(found, true),
                     "false_alarms": sum(s["false_alarms"] for s in scored)}
    return out


def recall_by_codec(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Block-damage events found per video codec: ours, and FFmpeg's decoder flags with its own and with
    PyAV's default settings. The codec is the one the decoder reports for the case's file."""
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        true = row["by_type"]["block_corruption"]["true"]
        if not true:
            continue
        codec = out.setdefault(row["codec"], {"events": 0, "ours": 0, "decoder_flags": 0,
                                              "decoder_flags_pyav_default": 0})
        codec["events"] += true
        codec["ours"] += row["by_type"]["block_corruption"]["found"]
        for name in ("decoder_flags", "decoder_flags_pyav_default"):
            codec[name] += row["ffmpeg"].get(name, {}).get("found", 0)
    for codec in out.values():
        for name in ("ours", "decoder_flags", "decoder_flags_pyav_default"):
            codec[f"{name}_recall"] = _recall(codec[name], codec["events"])
    return dict(sorted(out.items()))


def combine_results(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Several seeds' results as one: a row per case name with its counts summed over the seeds (the
    sets draw the same cases with different times, offsets and content), and the totals over all rows."""
    if not results:
        raise ValueError("nothing to combine")
    rows = [row for result in results for row in result["cases"]]
    merged: dict[str, dict[str, Any]] = {}
    for row in rows:
        into = merged.get(row["case"])
        if into is None:
            merged[row["case"]] = copy.deepcopy(row)  # summed into below
            continue
        for kind, counts in row["by_type"].items():
            for key in ("true", "found", "false_alarms"):
                into["by_type"][kind][key] += counts[key]
        for name, scored in row["ffmpeg"].items():
            if name in into["ffmpeg"] and "true" in scored:
                for key in ("true", "found", "false_alarms"):
                    into["ffmpeg"][name][key] += scored[key]
        into["offset_errors_ms"] += row["offset_errors_ms"]
        if "untied_av" in row:
            into["untied_av"] = {key: into.get("untied_av", {}).get(key, 0) + count
                                 for key, count in row["untied_av"].items()}
        into["missed"] += row["missed"]
        into["false_alarms"] += row["false_alarms"]
        into["refused"] = into["refused"] or row["refused"]
        if into["lambda_path"] is not None and row["lambda_path"] is not None:
            into["lambda_path"]["equal"] = into["lambda_path"]["equal"] and row["lambda_path"]["equal"]
    scores = {kind: Score() for kind in DEFECT_TYPES}
    for row in rows:
        for kind, counts in row["by_type"].items():
            scores[kind].true_positives += counts["found"]
            scores[kind].false_positives += counts["false_alarms"]
            scores[kind].false_negatives += counts["true"] - counts["found"]
        scores["av_sync"].offset_errors_ms += row["offset_errors_ms"]
    with_lambda_path = all(result["lambda_path"] is not None for result in results)
    return {
        "seed": ", ".join(str(result["seed"]) for result in results),
        "streams": len(rows),
        "by_type": {kind: score_row(score) for kind, score in scores.items()},
        "ffmpeg": ffmpeg_summary(rows),
        "block_corruption_by_codec": recall_by_codec(rows),
        "untied_av": untied_av_summary(rows),
        "lambda_path": lambda_path_summary(rows) if with_lambda_path else None,
        "cases": list(merged.values()),
    }


# --- the report -------------------------------------------------------------------------------------

DEFECT_LABELS = {"freeze": "freeze", "block_corruption": "block damage", "av_sync": "A/V sync"}


def _count(scored: dict[str, Any] | None) -> str:
    """"found/true", with the false alarms after a "+"; a dash when there was nothing to find or found."""
    if not scored:
        return "n/a"
    if not scored["true"] and not scored["false_alarms"]:
        return "–"
    text = f"{scored['found']}/{scored['true']}"
    return f"{text} +{scored['false_alarms']} FA" if scored["false_alarms"] else text


def _untied(untied: dict[str, int] | None) -> str:
    """The A/V cell of a case whose shifts are in content not tied to motion: counted apart."""
    if not untied or not untied["shifts"]:
        return ""
    found = f", {untied['found']} found" if untied["found"] else ""
    return f"untied, {untied['not_reported']}/{untied['shifts']} unknown{found}"


def _fraction(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def evaluation_tables(result: dict[str, Any], *, markdown: bool = False) -> list[Table]:
    """The report as rich tables: a row per case, the summary per defect type, block-damage recall per
    codec."""
    style: dict[str, Any] = {"box": box.MARKDOWN if markdown else box.SIMPLE_HEAD, "title_justify": "left"}
    seeds = "seeds" if ", " in str(result["seed"]) else "seed"
    cases = Table(title=f"{seeds} {result['seed']}: {result['streams']} streams (found/true, +false alarms)",
                  **style)
    for header in ("case", "codec / container", "freeze", "FFmpeg freezedetect", "block damage",
                   "FFmpeg decoder flags", "A/V sync", "A/V error ms"):
        cases.add_column(header, overflow="fold")
    if result["lambda_path"] is not None:
        cases.add_column("Lambda path = monolith")
    for row in result["cases"]:
        ffmpeg = row["ffmpeg"]
        cells = [
            row["case"] + (f" (REFUSED: {row['refused']})" if row["refused"] else ""),
            f"{row['codec']}{'/' + row['audio_codec'] if row['audio_codec'] else ''} {row['container']}",
            _count(row["by_type"]["freeze"]),
            _count(ffmpeg.get("freezedetect")),
            _count(row["by_type"]["block_corruption"]),
            _count(ffmpeg.get("decoder_flags")),
            _untied(row.get("untied_av")) or _count(row["by_type"]["av_sync"]),
            ", ".join(f"{e:g}" for e in row["offset_errors_ms"]) or "–",
        ]
        if result["lambda_path"] is not None:
            cells.append("yes" if row["lambda_path"]["equal"] else "NO")
        cases.add_row(*cells)

    summary = Table(title="per defect type", **style)
    for header in ("defect", "precision", "recall", "TP", "FP", "FN", "max offset err ms", "FFmpeg"):
        summary.add_column(header, justify="left" if header in ("defect", "FFmpeg") else "right")
    ffmpeg = result["ffmpeg"]

    def theirs(name: str, label: str) -> str:
        row = ffmpeg[name]
        return f"{label}: recall {_fraction(row['recall'])}, {row['false_alarms']} FA"

    beside = {
        "freeze": f"{theirs('freezedetect', 'freezedetect -60 dB')}; {theirs('freezedetect_40db', '-40 dB')}",
        "block_corruption": f"{theirs('decoder_flags', 'decoder flags alone')}; "
                            f"{theirs('decoder_flags_pyav_default', 'with PyAV defaults')}",
        "av_sync": "no detector",
    }
    for kind, row in result["by_type"].items():
        err = row["offset_error_ms_max"]
        summary.add_row(DEFECT_LABELS[kind], f"{row['precision']:.2f}", f"{row['recall']:.2f}",
                        str(row["true_positives"]), str(row["false_positives"]), str(row["false_negatives"]),
                        "" if err is None else f"{err:.1f}", beside[kind])

    codecs = Table(title="block damage: event recall per codec", **style)
    for header in ("codec", "events", "ours", "FFmpeg decoder flags", "with PyAV defaults"):
        codecs.add_column(header, justify="left" if header == "codec" else "right")
    for codec, row in result["block_corruption_by_codec"].items():
        codecs.add_row(codec, str(row["events"]),
                       *(f"{row[name]} ({_fraction(row[name + '_recall'])})"
                         for name in ("ours", "decoder_flags", "decoder_flags_pyav_default")))
    return [cases, summary, codecs]


def format_evaluation(result: dict[str, Any], *, markdown: bool = False, width: int = 180) -> str:
    """The whole report as text: the tables, the Lambda path's check, and every miss and false alarm."""
    # Markdown is pasted into the README: wide enough never to wrap a cell, titles as bold lines.
    parts: list[RenderableType] = []
    for table in evaluation_tables(result, markdown=markdown):
        if markdown:
            parts.append(f"**{table.title}**")
            table.title = None
        parts += [table, ""]
    # Two blank lines between the last table and the check below it (as the README shows it).
    tables = render_text(*parts, width=NEVER_WRAPS if markdown else width) + "\n\n"
    lines = []
    untied = result.get("untied_av") or {"shifts": 0}
    if untied["shifts"]:
        lines.append(f"A/V shifts in content whose sound is not tied to what moves (counted apart, neither a "
                     f"miss nor a find): {untied['shifts']}, {untied['not_reported']} unknown (no report), "
                     f"{untied['found']} found")
    check = result["lambda_path"]
    if check is None:
        lines.append("Lambda path = monolith: not checked (--no-lambda-path)")
    else:
        lines.append(f"Lambda path = monolith: {check['equal']}/{check['cases']} cases")
        for difference in check["differences"]:
            lines.append(f"  DIFFERS in {difference['case']}:"
                         + (f" {difference['refused']}" if difference.get("refused") else ""))
            for defect in difference["only_monolith"]:
                lines.append(f"    only the monolith: {json.dumps(defect)}")
            for defect in difference["only_lambda_path"]:
                lines.append(f"    only the Lambda path: {json.dumps(defect)}")
    for case in result["cases"]:
        for event in case["missed"]:
            lines.append(f"  missed in {case['case']}: {json.dumps(event)}")
        for event in case["false_alarms"]:
            lines.append(f"  false alarm in {case['case']}: {json.dumps(event)}")
    return tables + "\n" + "\n".join(lines)
