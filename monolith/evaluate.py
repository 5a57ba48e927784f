"""`python -m monolith evaluate`: precision and recall of the detectors on streams with known defects.

The set is drawn from a seed: seed 0 is the development set the thresholds were tuned on; any other
seed places other defects at other times in other streams, a set the detectors have never seen. Each
case mixes resolutions, codecs and containers, and includes real clips with injected defects.
Freeze intervals are also cross-checked against FFmpeg's freezedetect (run through PyAV).
"""

from __future__ import annotations

import json
import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import av.error

from lambdas.shared.media import DEFECT_TYPES
from monolith.pipeline import analyze
from sample_streams import AvOffset, BlockCorruption, Freeze, generate_stream, inject_defects
from sample_streams.live import write_live

REPO = Path(__file__).resolve().parents[1]
REAL_CLIPS = {"chaplin": REPO / "media" / "chaplin.mp4", "bigbuckbunny": REPO / "media" / "bigbuckbunny.mp4"}
# How far a found boundary (start, end) may be from the true one and still count as the same event.
# An A/V shift can only be seen at the next audio-visual event after it, and a shift that drops audio
# can swallow that event's beep: with events every 1 s its start is known to within 1.5 s.
TOLERANCE_S = {"freeze": (0.5, 0.5), "block_corruption": (0.5, 1.0), "av_sync": (1.5, 1.0)}


@dataclass
class Case:
    name: str
    make: Callable[[Path], dict[str, Any]]  # writes the stream, returns its ground truth as a dict
    suffix: str = ".mp4"


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


def build_cases(seed: int, *, quick: bool = False) -> list[Case]:
    """A varied set of streams, its defects placed at random times drawn from `seed`."""
    rng = random.Random(seed)

    def at(lo: float, hi: float) -> float:
        return round(rng.uniform(lo, hi), 2)

    def freeze_at(lo: float, hi: float) -> float:
        # Synthetic flashes last 2 frames from x.52 s: a freeze starting there would hold a flat white
        # picture, which the freeze detector deliberately keeps apart from frozen content.
        while True:
            start = at(lo, hi)
            if not 0.46 <= start % 1.0 <= 0.62:
                return start

    def offset() -> float:
        return float(rng.choice([-1, 1]) * rng.randrange(120, 420, 10))

    def synthetic(duration: float, size: tuple[int, int], codec: str, defects: tuple) -> Callable:
        def make(path: Path) -> dict[str, Any]:
            truth = generate_stream(
                path,
                duration_s=duration,
                width=size[0],
                height=size[1],
                video_codec=codec,
                defects=defects,
                seed=rng.randrange(1 << 30),
            )
            return truth.to_dict()

        return make

    def real(clip: str, defects: tuple) -> Callable:
        def make(path: Path) -> dict[str, Any]:
            return inject_defects(REAL_CLIPS[clip], path, defects, seed=rng.randrange(1 << 30)).to_dict()

        return make

    def live(make: Callable) -> Callable:
        def remux(path: Path) -> dict[str, Any]:
            seekable = path.with_name(f"seekable-{path.name}")
            truth = make(seekable)
            write_live(seekable, path)
            return truth

        return remux

    cases = [
        Case(
            "synthetic 360p h264 mp4",
            synthetic(
                16,
                (640, 360),
                "h264",
                (
                    Freeze(freeze_at(1.5, 3.5), at(2.0, 3.5)),
                    BlockCorruption(at(6.2, 7.8)),
                    AvOffset(at(10.5, 12.5), offset()),
                ),
            ),
        ),
        Case(
            "synthetic 720p h264 ts",
            synthetic(
                12,
                (1280, 720),
                "h264",
                (
                    Freeze(freeze_at(1.5, 3.0), at(2.2, 3.0), noise=2.0),
                    BlockCorruption(at(6.2, 7.5)),
                    AvOffset(at(8.5, 9.5), offset()),
                ),
            ),
            ".ts",
        ),
        Case(
            "real chaplin 360p, injected",
            real(
                "chaplin",
                (
                    Freeze(freeze_at(1.0, 2.5), at(2.0, 3.0)),
                    BlockCorruption(at(6.2, 7.4)),
                ),
            ),
        ),
        Case("clean real bigbuckbunny 720p", lambda path: _copy_clean(REAL_CLIPS["bigbuckbunny"], path)),
    ]
    if quick:
        return cases
    return [
        *cases,
        Case(
            "synthetic 480p mpeg4 mp4",
            synthetic(
                12,
                (854, 480),
                "mpeg4",
                (
                    Freeze(freeze_at(1.5, 3.0), at(2.0, 3.0)),
                    BlockCorruption(at(6.2, 7.5)),
                    AvOffset(at(8.5, 9.5), offset()),
                ),
            ),
        ),
        Case(
            "synthetic 360p vp9 webm",
            synthetic(
                10,
                (640, 360),
                "vp9",
                (
                    Freeze(freeze_at(1.5, 3.0), at(2.0, 3.0), noise=1.0),
                    AvOffset(at(6.5, 7.5), offset()),
                ),
            ),
            ".webm",
        ),
        Case("synthetic 360p clean mp4", synthetic(10, (640, 360), "h264", ())),
        Case(
            "real bigbuckbunny 720p, injected",
            real(
                "bigbuckbunny",
                (
                    Freeze(freeze_at(0.6, 1.2), 2.0),
                    BlockCorruption(at(4.1, 4.4)),
                ),
            ),
        ),
        Case("clean real chaplin 360p", lambda path: _copy_clean(REAL_CLIPS["chaplin"], path)),
        # Last, so that the draws of the cases above stay what they were for every seed.
        Case(
            "synthetic 360p vp9 webm written live (no duration, no cues)",
            live(
                synthetic(
                    10,
                    (640, 360),
                    "vp9",
                    (
                        Freeze(freeze_at(1.5, 3.0), at(2.0, 3.0)),
                        AvOffset(at(6.5, 7.5), offset()),
                    ),
                )
            ),
            ".webm",
        ),
        *_relative_cases(rng),
    ]


def _relative_cases(rng: random.Random) -> list[Case]:
    """Real clips (speech and cuts, film with its score, animation with music) with the audio content
    shifted by 300-400 ms mid-stream, and clean: the A/V relative method's cases. Drawn last, from the
    same generator, so that the cases above keep their draws."""
    clips = {
        "grid speech a": REPO / "media" / "grid-speech-a.mp4",
        "grid speech b": REPO / "media" / "grid-speech-b.mp4",
        "chaplin": REPO / "media" / "chaplin.mp4",
        "bbb 12 s": REPO / "media" / "bbb-vp8-11s.webm",
    }

    def shifted(src: Path, start_s: float, offset_ms: float, seed: int) -> Callable:
        def make(path: Path) -> dict[str, Any]:
            return inject_defects(src, path, (AvOffset(start_s, offset_ms),), seed=seed).to_dict()

        return make

    cases = []
    for name, src in clips.items():
        start_s = round(
            rng.uniform(5.0, 6.5) if "bbb" in name or "grid" in name else rng.uniform(4.0, 5.0), 2
        )
        offset_ms = float(rng.choice([-1, 1]) * rng.randrange(300, 410, 10))
        seed = rng.randrange(1 << 30)
        cases.append(
            Case(f"real {name}, audio content shifted mid-stream", shifted(src, start_s, offset_ms, seed))
        )
    cases += [
        Case(f"clean real {name}", lambda path, src=src: _copy_clean(src, path), src.suffix)
        for name, src in clips.items()
        if name != "chaplin"  # already a clean case above
    ]
    return cases


def _copy_clean(src: Path, dst: Path) -> dict[str, Any]:
    dst.write_bytes(src.read_bytes())
    return {"source": str(src), "defects": []}


def evaluate(
    seed: int = 0, *, quick: bool = False, log: Callable[[str], None] = lambda _: None
) -> dict[str, Any]:
    scores = {kind: Score() for kind in DEFECT_TYPES}
    cases_out: list[dict[str, Any]] = []
    freeze_cross_check: list[dict[str, Any]] = []
    cases = build_cases(seed, quick=quick)
    with tempfile.TemporaryDirectory(prefix="evaluate-") as tmp:
        for number, case in enumerate(cases, 1):
            path = Path(tmp) / f"case{number}{case.suffix}"
            log(f"[{number}/{len(cases)}] {case.name}")
            truth = case.make(path)
            report = analyze(path)
            outcome = score_case(truth["defects"], report["defects"], scores)
            cases_out.append(
                {"case": case.name, "truth": truth["defects"], "found": report["defects"], **outcome}
            )
            if any(d["type"] == "freeze" for d in truth["defects"]):
                freeze_cross_check.append(
                    {"case": case.name, **cross_check_freezes(path, truth["defects"], report["defects"])}
                )
    return {
        "seed": seed,
        "streams": len(cases),
        "by_type": {
            kind: {
                "precision": round(s.precision, 3),
                "recall": round(s.recall, 3),
                "true_positives": s.true_positives,
                "false_positives": s.false_positives,
                "false_negatives": s.false_negatives,
                "offset_error_ms_max": round(max(s.offset_errors_ms), 1) if s.offset_errors_ms else None,
            }
            for kind, s in scores.items()
        },
        "freeze_vs_ffmpeg_freezedetect": freeze_cross_check,
        "cases": cases_out,
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
    """Pair each true event with at most one found event of its type; count the rest as misses/alarms."""
    unmatched = list(found)
    missed = []
    for event in truth:
        match = next((f for f in unmatched if _matches(event, f)), None)
        if match is None:
            scores[event["type"]].false_negatives += 1
            missed.append(event)
            continue
        unmatched.remove(match)
        scores[event["type"]].true_positives += 1
        if event["type"] == "av_sync":
            scores["av_sync"].offset_errors_ms.append(abs(match["offset_ms"] - event["offset_ms"]))
    for alarm in unmatched:
        scores[alarm["type"]].false_positives += 1
    return {"missed": missed, "false_alarms": unmatched}


def ffmpeg_freezedetect(
    path: Path, *, noise: float = 0.001, duration_s: float = 2.0
) -> list[tuple[float, float]]:
    """FFmpeg's own freeze intervals for the stream, from the freezedetect filter run inside PyAV."""
    intervals: list[tuple[float, float]] = []
    start: float | None = None
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        origin = container.start_time / av.time_base if container.start_time is not None else 0.0
        graph = av.filter.Graph()
        source = graph.add_buffer(template=stream)
        detector = graph.add("freezedetect", f"n={noise}:d={duration_s}")
        sink = graph.add("buffersink")
        source.link_to(detector)
        detector.link_to(sink)
        graph.configure()

        def drain() -> None:
            nonlocal start
            while True:
                try:
                    frame = sink.pull()
                except (av.error.BlockingIOError, av.error.EOFError):
                    return
                metadata = frame.metadata
                if "lavfi.freezedetect.freeze_start" in metadata:
                    start = float(metadata["lavfi.freezedetect.freeze_start"]) - origin
                if "lavfi.freezedetect.freeze_end" in metadata and start is not None:
                    intervals.append((start, float(metadata["lavfi.freezedetect.freeze_end"]) - origin))
                    start = None

        for frame in container.decode(stream):
            source.push(frame)
            drain()
        source.push(None)
        drain()
    return intervals


def cross_check_freezes(
    path: Path, truth: list[dict[str, Any]], found: list[dict[str, Any]]
) -> dict[str, Any]:
    ours = [(d["start_s"], d["end_s"]) for d in found if d["type"] == "freeze"]
    theirs = ffmpeg_freezedetect(path)
    # Its default (-60 dB) wants bit-identical pictures; -40 dB tolerates some re-encoding noise.
    theirs_loose = ffmpeg_freezedetect(path, noise=0.01)
    rows = []
    for event in (d for d in truth if d["type"] == "freeze"):

        def near(intervals: list[tuple[float, float]], event: dict[str, Any] = event) -> bool:
            return any(
                abs(s - event["start_s"]) <= 0.5 and abs(e - event["end_s"]) <= 0.5 for s, e in intervals
            )

        rows.append(
            {
                "truth": [event["start_s"], event["end_s"]],
                "noise": event.get("noise", 0.0),
                "ours": near(ours),
                "ffmpeg_freezedetect": near(theirs),
                "ffmpeg_freezedetect_40db": near(theirs_loose),
            }
        )
    return {"freezes": rows, "ffmpeg_intervals": theirs, "ffmpeg_intervals_40db": theirs_loose}


def format_evaluation(result: dict[str, Any]) -> str:
    lines = [
        f"seed {result['seed']}: {result['streams']} streams",
        f"{'defect':<18}{'precision':>10}{'recall':>8}{'TP':>5}{'FP':>5}{'FN':>5}{'max offset err ms':>19}",
    ]
    for kind, row in result["by_type"].items():
        err = row["offset_error_ms_max"]
        lines.append(
            f"{kind:<18}{row['precision']:>10.2f}{row['recall']:>8.2f}{row['true_positives']:>5}"
            f"{row['false_positives']:>5}{row['false_negatives']:>5}{'' if err is None else f'{err:.1f}':>19}"
        )
    lines.append(f"{'freeze cross-check (found within ±0.5 s?)':<76}ours | freezedetect -60 dB | -40 dB")
    for case in result["freeze_vs_ffmpeg_freezedetect"]:
        for row in case["freezes"]:
            kind = "repeated picture" if not row["noise"] else f"repeated + noise ±{row['noise']:g}"
            lines.append(
                f"  {case['case']:<34} {row['truth'][0]:>6.2f}-{row['truth'][1]:<6.2f} {kind:<24}"
                f"{'yes' if row['ours'] else 'NO':>5} | {'yes' if row['ffmpeg_freezedetect'] else 'no':>19}"
                f" | {'yes' if row['ffmpeg_freezedetect_40db'] else 'no':>6}"
            )
    for case in result["cases"]:
        for event in case["missed"]:
            lines.append(f"  missed in {case['case']}: {json.dumps(event)}")
        for event in case["false_alarms"]:
            lines.append(f"  false alarm in {case['case']}: {json.dumps(event)}")
    return "\n".join(lines)
