"""The evaluation's scoring and report: per-case counts, FFmpeg's results beside ours (freezedetect, its
decoder's flags grouped into events), block-damage recall per codec, and the Lambda path checked against
the monolith on every case. Expectations are computed by hand from small hand-built inputs; two tests
run real decodes on a short generated stream."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from monolith import cli, evaluation_cases
from monolith import evaluate as evaluation
from monolith.evaluate import (
    Score,
    ffmpeg_decode,
    ffmpeg_summary,
    flag_events,
    format_evaluation,
    recall_by_codec,
    score_case,
    score_decoder_flags,
    score_freezedetect,
)
from monolith.lambda_path import LocalS3, analyze_lambda_path, compare_defects
from monolith.pipeline import analyze
from sample_streams import BlockCorruption, Freeze, generate_stream
from sample_streams.live import write_live


def damage(start: float, end: float) -> dict[str, Any]:
    return {"type": "block_corruption", "start_s": start, "end_s": end}


def freeze(start: float, end: float) -> dict[str, Any]:
    return {"type": "freeze", "start_s": start, "end_s": end}


def test_a_case_gets_its_own_counts_per_type_and_adds_them_to_the_totals() -> None:
    # Given totals that already hold one true freeze from an earlier case
    totals = {kind: Score() for kind in ("freeze", "block_corruption", "av_sync")}
    totals["freeze"].true_positives = 1
    truth = [freeze(2.0, 5.0), damage(6.0, 8.0),
             {"type": "av_sync", "start_s": 9.0, "end_s": 12.0, "offset_ms": -200.0}]
    found = [freeze(2.4, 5.3),  # within ±0.5 s of both ends
             damage(6.2, 9.5),  # its end 1.5 s late: beyond the 1.0 s end tolerance, so a miss and an alarm
             {"type": "av_sync", "start_s": 10.0, "end_s": 12.5, "offset_ms": -212.5},
             freeze(14.0, 16.0)]
    # When the case is scored
    outcome = score_case(truth, found, totals)
    # Then its own counts are found/true/false alarms per type
    assert outcome["by_type"] == {
        "freeze": {"true": 1, "found": 1, "false_alarms": 1},
        "block_corruption": {"true": 1, "found": 0, "false_alarms": 1},
        "av_sync": {"true": 1, "found": 1, "false_alarms": 0},
    }
    assert outcome["offset_errors_ms"] == [12.5]
    # And the totals add them to what was there
    assert (totals["freeze"].true_positives, totals["freeze"].false_positives) == (2, 1)
    assert (totals["block_corruption"].false_negatives, totals["block_corruption"].false_positives) == (1, 1)
    assert totals["av_sync"].offset_errors_ms == [12.5]


def test_flagged_frames_less_than_a_second_apart_are_one_event() -> None:
    # Given frames flagged at 25 fps: three in a row, two 0.5 s apart, one alone; unsorted
    times = [3.5, 1.0, 1.04, 1.08, 3.0, 5.0]
    # When grouped, Then each event runs from its first flag to one frame after its last
    assert flag_events(times, 0.04) == [(1.0, 1.12), (3.0, 3.54), (5.0, 5.04)]
    assert flag_events([], 0.04) == []


def test_decoder_flags_find_damage_they_notice_while_it_lasts() -> None:
    truth = [damage(2.0, 4.0), damage(8.0, 9.0), freeze(0.0, 1.0)]
    # Given flag events: 0.4 s before the first damage (within the 0.5 s start tolerance), one far from
    # any damage, one inside the second damage's interval, one just after it ended
    events = [(1.6, 1.7), (6.0, 6.1), (8.9, 9.0), (9.1, 9.2)]
    scored = score_decoder_flags(truth, events)
    # Then both damage events are found and the two others are false alarms
    assert (scored["true"], scored["found"], scored["false_alarms"]) == (2, 2, 2)
    assert scored["false_alarm_events"] == [[6.0, 6.1], [9.1, 9.2]]
    # And flags that start 0.6 s early do not count
    assert score_decoder_flags([damage(2.0, 4.0)], [(1.4, 1.5)])["found"] == 0


def test_freezedetect_intervals_must_match_both_ends_within_half_a_second() -> None:
    truth = [freeze(2.0, 5.0), freeze(10.0, 13.0), damage(6.0, 7.0)]
    # One interval matches the first freeze; one ends 0.7 s early on the second; one is elsewhere
    intervals = [(2.3, 4.6), (10.0, 12.3), (20.0, 22.0)]
    assert score_freezedetect(truth, intervals) == {"true": 2, "found": 1, "false_alarms": 2}
    assert score_freezedetect([], []) == {"true": 0, "found": 0, "false_alarms": 0}


def row(name: str, codec: str, *, true: int, ours: int, flags: int, pyav: int, lp: bool | None = True,
        freezes: tuple[int, int, int] = (0, 0, 0)) -> dict[str, Any]:
    """A case row as `evaluate` makes it, reduced to what the summaries read."""
    counts = {"true": true, "found": ours, "false_alarms": 0}
    none = {"true": 0, "found": 0, "false_alarms": 0}
    return {
        "case": name, "codec": codec, "audio_codec": "aac", "container": "mp4", "refused": None,
        "truth": [], "found": [], "missed": [], "false_alarms": [], "offset_errors_ms": [],
        "by_type": {"freeze": none, "block_corruption": counts, "av_sync": none},
        "ffmpeg": {
            "freezedetect": dict(zip(("true", "found", "false_alarms"), freezes, strict=True)),
            "freezedetect_40db": none,
            "decoder_flags": {"true": true, "found": flags, "false_alarms": 1 if codec == "vp9" else 0},
            "decoder_flags_pyav_default": {"true": true, "found": pyav, "false_alarms": 0},
        },
        "lambda_path": None if lp is None else {
            "equal": lp, "only_monolith": [] if lp else [damage(1.0, 2.0)], "only_lambda_path": []},
    }


ROWS = [
    row("a", "h264", true=2, ours=2, flags=1, pyav=0, freezes=(1, 0, 2)),
    row("b", "vp9", true=1, ours=0, flags=0, pyav=0, lp=False),
    row("c", "h264", true=1, ours=1, flags=1, pyav=1, freezes=(1, 1, 0)),
    row("clean", "hevc", true=0, ours=0, flags=0, pyav=0),
]


def test_block_damage_recall_is_counted_per_codec() -> None:
    by_codec = recall_by_codec(ROWS)
    # h264: 3 events, ours all 3, FFmpeg's flags 2 of 3, PyAV defaults 1 of 3; vp9: nothing found;
    # the clean HEVC case holds no damage, so it has no recall to report
    assert list(by_codec) == ["h264", "vp9"]
    assert by_codec["h264"] == {"events": 3, "ours": 3, "decoder_flags": 2, "decoder_flags_pyav_default": 1,
                                "ours_recall": 1.0, "decoder_flags_recall": 0.667,
                                "decoder_flags_pyav_default_recall": 0.333}
    assert (by_codec["vp9"]["ours_recall"], by_codec["vp9"]["decoder_flags_recall"]) == (0.0, 0.0)


def test_ffmpeg_results_are_summed_over_the_cases() -> None:
    summary = ffmpeg_summary(ROWS)
    assert summary["decoder_flags"] == {"true": 4, "found": 2, "recall": 0.5, "false_alarms": 1}
    assert summary["freezedetect"] == {"true": 2, "found": 1, "recall": 0.5, "false_alarms": 2}
    assert summary["freezedetect_40db"]["recall"] is None  # nothing to find


def test_the_comparison_of_the_two_paths_is_exact() -> None:
    a = {"type": "freeze", "start_s": 1.0, "end_s": 3.0, "confidence": 0.9}
    b = {"type": "av_sync", "start_s": 5.0, "end_s": 8.0, "confidence": 0.8, "offset_ms": 120.0}
    assert compare_defects([a, b], [a, b]) == {"equal": True, "only_monolith": [], "only_lambda_path": []}
    # A single detail differing (one millisecond of offset) is a difference, reported on both sides
    b2 = {**b, "offset_ms": 121.0}
    assert compare_defects([a, b], [a, b2]) == {"equal": False, "only_monolith": [b],
                                                "only_lambda_path": [b2]}
    # A defect found twice on one path and once on the other is a difference
    assert compare_defects([a, a], [a])["only_monolith"] == [a]


def result_of(rows: list[dict[str, Any]]) -> dict[str, Any]:
    scores = {kind: Score() for kind in ("freeze", "block_corruption", "av_sync")}
    return {
        "seed": 3, "streams": len(rows),
        "by_type": {kind: evaluation.score_row(s) for kind, s in scores.items()},
        "ffmpeg": ffmpeg_summary(rows), "block_corruption_by_codec": recall_by_codec(rows),
        "lambda_path": evaluation.lambda_path_summary(rows), "freeze_vs_ffmpeg_freezedetect": [],
        "cases": rows,
    }


def test_the_report_has_a_row_per_case_and_names_the_lambda_path_differences() -> None:
    text = format_evaluation(result_of(ROWS))
    lines = text.splitlines()
    # A row per case, with its codec, ours beside FFmpeg's decoder flags and the Lambda path's check
    case_a = next(line for line in lines if line.strip().startswith("a "))
    assert case_a.split() == ["a", "h264/aac", "mp4", "–", "0/1", "+2", "FA", "2/2", "1/2", "–", "–", "yes"]
    case_b = next(line for line in lines if line.strip().startswith("b "))
    assert case_b.split()[-1] == "NO" and "0/1 +1 FA" in case_b
    # The per-codec table and the Lambda path line, with the difference listed
    assert any(line.split()[:5] == ["h264", "3", "3", "(1.00)", "2"] for line in lines)
    assert "Lambda path = monolith: 3/4 cases" in text
    assert "DIFFERS in b:" in text and '"start_s": 1.0' in text.split("DIFFERS in b:")[1]
    # And as Markdown for the README
    assert "| a " in format_evaluation(result_of(ROWS), markdown=True)


def test_a_lambda_path_difference_fails_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = {"differs": ROWS, "agrees": [r for r in ROWS if r["case"] != "b"]}
    for name, expected in (("differs", 1), ("agrees", 0)):
        monkeypatch.setattr(evaluation, "evaluate", lambda seed, rows=rows[name], **_: result_of(rows))
        assert cli.main(["evaluate", "--quick"]) == expected, name
    # Skipped, nothing is compared and nothing fails
    skipped = [{**r, "lambda_path": None} for r in ROWS]
    monkeypatch.setattr(evaluation, "evaluate", lambda seed, **_: {**result_of(skipped), "lambda_path": None})
    assert cli.main(["evaluate", "--no-lambda-path"]) == 0


@pytest.fixture(scope="module")
def damaged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A 5 s H.264/AAC Matroska stream with a freeze and block damage, and its ground truth."""
    path = tmp_path_factory.mktemp("evaluate") / "damaged.mkv"
    truth = generate_stream(path, duration_s=5.0, width=320, height=180, video_codec="h264", seed=5,
                            defects=(Freeze(0.3, 2.4), BlockCorruption(3.3)))
    return path, truth.to_dict()


def test_ffmpeg_flags_the_damaged_frames_only_with_its_own_threading(damaged: tuple[Path, Any]) -> None:
    path, truth = damaged
    hit = next(d for d in truth["defects"] if d["type"] == "block_corruption")
    # With FFmpeg's own settings (frame threads) the decoder flags exactly the frames whose packets
    # the generator damaged
    ffmpeg = ffmpeg_decode(path, thread_type="AUTO", freezedetect={"loose": 0.01})
    assert ffmpeg["flagged_s"] == pytest.approx(hit["packet_times_s"], abs=1e-6)
    # With PyAV's defaults (slice threads) H.264 conceals the same damage without a flag
    assert ffmpeg_decode(path, thread_type=None)["flagged_s"] == []
    # And freezedetect at -40 dB finds the 2.4 s freeze of the re-encoded picture, in stream time
    frozen = next(d for d in truth["defects"] if d["type"] == "freeze")
    assert score_freezedetect([frozen], ffmpeg["loose"]) == {"true": 1, "found": 1, "false_alarms": 0}


def test_the_lambda_path_finds_the_monolith_defects_on_a_stream_written_live(
    damaged: tuple[Path, Any], tmp_path: Path
) -> None:
    # Given the damaged stream written live (no duration: the loop must end on the converter's is_last)
    live = write_live(damaged[0], tmp_path / "live.mkv")
    # When the workflow's loop runs over the converter's and the detector functions' code
    defects = analyze_lambda_path(live)
    # Then it records exactly the monolith's defects, which include the freeze and the damage
    assert defects == analyze(live)["defects"]
    assert {d["type"] for d in defects} >= {"freeze", "block_corruption"}


def test_the_local_s3_answers_as_s3_does_for_what_the_functions_call() -> None:
    s3 = LocalS3()
    s3.put_object(Bucket="b", Key="k", Body=b"abc")
    # The ETag of a simple upload is the content's MD5, quoted
    assert s3.head_object(Bucket="b", Key="k")["ETag"] == '"900150983cd24fb0d6963f7d28e17f72"'
    assert s3.get_object(Bucket="b", Key="k", IfMatch="x")["Body"].read() == b"abc"
    s3.delete_object(Bucket="b", Key="k")
    assert s3.objects == {} and s3.etags == {}


def test_the_bench_states_throughput_against_decoding_and_each_detector_cost() -> None:
    from monolith.bench import format_bench

    def spread(median: float) -> dict[str, Any]:
        return {"cpu_s_per_stream_s": {"median": median, "min": median, "max": median, "runs": 1},
                "measured_cpu_s_per_stream_s": {"median": median * 1.1, "min": median, "max": median,
                                                "runs": 1},
                "x_realtime": 10.0}

    # Given a hand-made bench row: decoding 0.02 CPU-s per stream-second, the full analysis 0.05 (in the
    # reference host's CPU-s; measured 0.055 on a host 1.1 times slower)
    report = {"repeats": 1, "duration_s": 2, "machine": {"cpus": 2, "processor": "cpu"},
              "host_reference": {"file": "host_reference.json", "generated": "by hand"}, "results": [{
        "resolution": "360p", "monolith": spread(0.05), "decode_only": spread(0.02),
        "host_speed": {"median": 1.1, "min": 1.1, "max": 1.1, "runs": 1},
        "lambda_path": spread(0.1),
        "full_vs_decode_cpu": 2.5, "lambda_path_vs_monolith_cpu": 2.0,
        "segment_analyzer_vs_monolith_cpu": 1.4, "peak_rss_mib_per_stream": 40,
        "profile": {"decode_ms_per_frame": 0.8,
                    "detect_ms_per_frame": {"freeze": 0.1, "block_corruption": 0.25, "av_sync": 0.05}},
    }]}
    lines = format_bench(report).splitlines()
    # Then the priced figure, the measured one and the host speed stand side by side
    assert lines[2].split()[1:7] == ["0.0500", "[0.0500–0.0500]", "0%", "0.0550", "1.100", "10.0"]
    # And the analysis runs at 1/2.5 = 0.40 of decoding's speed, and each detector's ms per frame is shown
    assert "0.40×" in lines[2].split()
    # And the serverless design's function against the monolith, 1.40
    assert lines[2].split()[-2] == "1.40"
    assert lines[-1].split() == ["360p", "0.800", "0.100", "0.250", "0.050", "0.400"]


def test_only_keeps_the_cases_whose_name_holds_the_text_with_their_draws(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given the seed-1 set, of which 5 case names hold "vp9"
    every_case = evaluation_cases.build_cases(1)
    # When only "VP9" is asked for
    chosen = evaluation_cases.select_cases(every_case, "VP9")
    # Then those five come, in order, as the same objects the whole set draws (same seeds, same defects)
    assert [c.name for c in chosen] == [
        "synthetic 360p vp9 webm",
        "synthetic 360p vp9 webm written live (no duration, no cues)",
        "events 360p vp9/opus webm (partial flashes, tone bursts + claps over a chord)",
        "synthetic 360p vp9 webm, damage",
        "synthetic 360p vp9 webm, clean, heavily compressed",
    ]
    assert all(c in every_case for c in chosen)
    # And a text no case holds is a clear error from the command, exit 2, no traceback
    assert cli.main(["evaluate", "--seed", "1", "--only", "no such case"]) == 2
    assert "no case's name holds 'no such case'" in capsys.readouterr().err


def test_a_case_makes_the_same_stream_alone_as_after_the_others(tmp_path: Path) -> None:
    # Given the quick seed-1 set made in order, and the same set built again
    in_order = evaluation_cases.build_cases(1, quick=True)
    in_order[0].make(tmp_path / "first.mp4")
    after_others = tmp_path / "after.mp4"
    in_order[2].make(after_others)  # real chaplin, injected: its content seed decides the damaged bytes
    # When its third case is made on its own, as `--only` does
    alone = tmp_path / "alone.mp4"
    evaluation_cases.build_cases(1, quick=True)[2].make(alone)
    # Then the two files are the same bytes (the content seed was drawn at make time before: it differed)
    assert alone.read_bytes() == after_others.read_bytes()


def _saved_row(case: str, codec: str, damage: tuple[int, int, int], av_errors: list[float],
               equal: bool = True) -> dict[str, Any]:
    """A case's row as `evaluate --json` saves it: block damage (true, found, false alarms), A/V 1/1."""
    true, found, false_alarms = damage
    scored = {"true": true, "found": found, "false_alarms": false_alarms}
    none = {"true": 0, "found": 0, "false_alarms": 0}
    return {
        "case": case, "codec": codec, "audio_codec": "aac", "container": "mp4", "refused": None,
        "by_type": {"freeze": dict(none), "block_corruption": dict(scored),
                    "av_sync": {"true": 1, "found": 1, "false_alarms": 0}},
        "offset_errors_ms": av_errors, "missed": [], "false_alarms": [],
        "ffmpeg": {"decoder_flags": {"true": true, "found": 0, "false_alarms": 0},
                   "decoder_flags_pyav_default": {"true": true, "found": 0, "false_alarms": 0}},
        "lambda_path": {"equal": equal, "only_monolith": [], "only_lambda_path": []},
    }


def test_saved_seeds_combine_into_a_row_per_case_and_totals(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    # Given two seeds' saved results of the same two cases (a VP9 and an HEVC damage case)
    seed1 = {"seed": 1, "lambda_path": {}, "cases": [_saved_row("vp9 damage", "vp9", (1, 0, 0), [2.0]),
                                                     _saved_row("hevc damage", "hevc", (1, 1, 0), [0.5])]}
    seed2 = {"seed": 2, "lambda_path": {}, "cases": [_saved_row("vp9 damage", "vp9", (1, 1, 1), [7.5]),
                                                     _saved_row("hevc damage", "hevc", (2, 1, 0), [1.0],
                                                                equal=False)]}
    # When combined
    combined = evaluation.combine_results([seed1, seed2])
    # Then each case is one row with its counts summed over the seeds
    rows = {row["case"]: row for row in combined["cases"]}
    assert rows["vp9 damage"]["by_type"]["block_corruption"] == {"true": 2, "found": 1, "false_alarms": 1}
    assert rows["hevc damage"]["by_type"]["block_corruption"] == {"true": 3, "found": 2, "false_alarms": 0}
    assert rows["vp9 damage"]["offset_errors_ms"] == [2.0, 7.5]
    assert rows["hevc damage"]["lambda_path"]["equal"] is False and rows["vp9 damage"]["lambda_path"]["equal"]
    # and the totals: damage TP 3, FP 1, FN 2 -> precision 0.75, recall 0.6; A/V 4/4, worst error 7.5
    assert combined["by_type"]["block_corruption"] == {"precision": 0.75, "recall": 0.6, "true_positives": 3,
                                                       "false_positives": 1, "false_negatives": 2,
                                                       "offset_error_ms_max": None}
    assert combined["by_type"]["av_sync"]["true_positives"] == 4
    assert combined["by_type"]["av_sync"]["offset_error_ms_max"] == 7.5
    assert combined["block_corruption_by_codec"]["hevc"]["ours_recall"] == round(2 / 3, 3)
    assert combined["lambda_path"]["cases"] == 4 and combined["lambda_path"]["equal"] == 3
    assert (combined["seed"], combined["streams"]) == ("1, 2", 4)
    # And the command reads them from files and says which rows differ on the Lambda path
    paths = [tmp_path / "s1.json", tmp_path / "s2.json"]
    for path, result in zip(paths, (seed1, seed2), strict=True):
        path.write_text(json.dumps(result))
    assert cli.main(["evaluate", "--combine", *map(str, paths)]) == 1  # a Lambda-path difference fails it
    out = capsys.readouterr().out
    assert "seeds 1, 2: 4 streams" in out and "hevc damage" in out
