"""Scoring of mid-stream A/V shifts in real clips (monolith.av_evaluate): hand-made reports against
truths, the summary per split and tie, the drawn shifts, and one real run on a held-out clip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monolith.av_evaluate import (
    Shift,
    draw_shifts,
    evaluate_av,
    format_av_evaluation,
    score_stream,
    summarise,
)
from sample_streams.av_sources import SOURCES, TIED, AvSource

SHIFT = Shift(start_s=6.0, offset_ms=320.0, seed=1)


def _report(start_s: float, offset_ms: float) -> dict:
    return {"type": "av_sync", "start_s": start_s, "end_s": 12.0, "confidence": 0.6, "offset_ms": offset_ms,
            "method": "relative"}


def test_a_report_within_40_ms_of_the_shift_is_found() -> None:
    # Given a shift of +320 ms from 6.0 s, and a report 0.7 s later measuring +355 ms
    score = score_stream(SHIFT, [_report(6.7, 355.0)], was_measured=True)
    # Then it is found, 35 ms too large
    assert score == {"answer": "found", "error_ms": 35.0, "false_alarms": []}


def test_a_report_more_than_40_ms_off_has_the_wrong_size() -> None:
    score = score_stream(SHIFT, [_report(5.0, 270.0)], was_measured=True)
    assert (score["answer"], score["error_ms"]) == ("wrong size", -50.0)


def test_a_report_too_far_from_the_shift_is_a_false_alarm_and_the_shift_is_missed() -> None:
    # 1.6 s after the shift: beyond the 1.5 s start tolerance of `monolith evaluate`
    far = _report(7.6, 320.0)
    score = score_stream(SHIFT, [far], was_measured=True)
    assert score == {"answer": "missed", "error_ms": None, "false_alarms": [far]}


def test_no_report_is_unknown_only_when_the_stream_was_never_measured() -> None:
    assert score_stream(SHIFT, [], was_measured=False)["answer"] == "unknown"
    assert score_stream(SHIFT, [], was_measured=True)["answer"] == "missed"
    assert score_stream(None, [], was_measured=False)["answer"] == "unknown"
    assert score_stream(None, [], was_measured=True)["answer"] == "in sync"


def test_every_report_on_a_clean_twin_is_a_false_alarm_and_other_defects_are_ignored() -> None:
    freeze = {"type": "freeze", "start_s": 1.0, "end_s": 3.0, "confidence": 0.9}
    score = score_stream(None, [_report(5.0, 300.0), freeze], was_measured=True)
    assert score["answer"] == "in sync"
    assert len(score["false_alarms"]) == 1


def _row(held_out: bool, tied: bool, shifted: bool, answer: str, false_alarms: int = 0,
         error_ms: float | None = None) -> dict:
    return {"source": f"{'h' if held_out else 't'}{'T' if tied else 'U'}", "sound": "x", "tied": tied,
            "held_out": held_out, "shift": vars(SHIFT) if shifted else None, "answer": answer,
            "error_ms": error_ms, "false_alarms": [{}] * false_alarms, "refused": None, "av_reports": [],
            "lambda_path_equal": True}


def test_unknown_on_untied_content_is_neither_a_miss_nor_a_find() -> None:
    rows = [
        # held out, tied: 4 shifts, 2 found (errors +10 and -30 ms), 1 missed, 1 unknown; the clean twin
        # with one false alarm
        _row(True, True, True, "found", error_ms=10.0),
        _row(True, True, True, "found", error_ms=-30.0),
        _row(True, True, True, "missed", false_alarms=1),
        _row(True, True, True, "unknown"),
        _row(True, True, False, "in sync", false_alarms=1),
        # held out, untied: 3 streams, 2 unknown, 1 measured with a wrong report
        _row(True, False, True, "unknown"),
        _row(True, False, False, "unknown"),
        _row(True, False, True, "missed", false_alarms=1),
        # tuning: not in the held-out figures
        _row(False, True, True, "found", error_ms=0.0),
    ]
    summary = summarise(rows)
    held = summary["held_out"]
    assert held["tied"] == {"shifts": 4, "found": 2, "recall": 0.5,
                            "answers": {"found": 2, "missed": 1, "unknown": 1}, "errors_ms": [10.0, -30.0],
                            "false_alarms_shifted": 1, "false_alarms_clean": 1}
    # 2 of 3 untied streams answered "unknown": a share, not a recall
    assert held["untied"] == {"streams": 3, "unknown": 2, "unknown_share": 0.667,
                              "answers": {"missed": 1, "unknown": 2}, "false_alarms": 1}
    assert summary["tune"]["tied"]["shifts"] == 1
    assert summary["tune"]["untied"]["unknown_share"] is None
    assert summary["lambda_path"] == {"checked": 9, "equal": 9}


def test_shifts_are_300_to_400_ms_of_both_signs_from_mid_clip_and_repeatable() -> None:
    source = AvSource("x", "speech on camera", "media/x.mp4", True)
    shifts = draw_shifts(source, 12.0, 6, seed=3)
    assert [s.offset_ms > 0 for s in shifts] in ([True, False] * 3, [False, True] * 3)
    assert all(300 <= abs(s.offset_ms) <= 400 and abs(s.offset_ms) % 10 == 0 for s in shifts)
    assert all(5.04 <= s.start_s <= 6.48 for s in shifts)  # 0.42-0.54 of 12 s
    assert draw_shifts(source, 12.0, 6, seed=3) == shifts
    assert draw_shifts(source, 12.0, 6, seed=4) != shifts


def test_every_source_names_what_its_sound_is_and_grid_stays_a_tuning_source() -> None:
    assert all(source.sound in TIED for source in SOURCES)
    assert not any(source.held_out for source in SOURCES if source.name.startswith("grid"))
    assert any(source.held_out and source.tied for source in SOURCES)
    with pytest.raises(ValueError, match="unknown split"):
        evaluate_av(split="everything")


def test_one_shift_on_a_held_out_clip_runs_both_paths_alike() -> None:
    # Given the held-out TV studio clip, a clean twin and one shifted copy
    held_out = tuple(source for source in SOURCES if source.name == "tv-studio")
    result = evaluate_av(0, split="held-out", shifts=1, sources=held_out)
    clean, shifted = result["streams"]
    # Then the truth is the drawn shift, the Lambda path gives the monolith's defects on both, and the
    # clean twin raises no alarm
    assert 300 <= abs(shifted["shift"]["offset_ms"]) <= 400
    assert result["summary"]["lambda_path"] == {"checked": 2, "equal": 2}
    assert clean["shift"] is None and clean["false_alarms"] == []
    assert shifted["answer"] in ("found", "wrong size", "missed", "unknown")
    assert result["summary"]["held_out"]["tied"]["shifts"] == 1
    assert "held-out sources, sound tied to motion:" in format_av_evaluation(result)


def test_a_shift_on_a_tuning_speech_clip_is_found_within_40_ms() -> None:
    # Given GRID speech (a tuning source: the detector was set on it) and the first shift of seed 0,
    # -380 ms from 6.26 s
    grid = tuple(source for source in SOURCES if source.name == "grid-speech-a")
    result = evaluate_av(0, split="tune", shifts=1, lambda_path=False, sources=grid)
    clean, shifted = result["streams"]
    assert shifted["shift"] == {"start_s": 6.26, "offset_ms": -380.0, "seed": shifted["shift"]["seed"]}
    # Then the relative detector finds it, its size within 40 ms, and measures the clean twin in sync
    assert shifted["answer"] == "found" and abs(shifted["error_ms"]) <= 40
    assert clean["answer"] == "in sync" and clean["false_alarms"] == []
    assert result["summary"]["tune"]["tied"]["recall"] == 1.0


def test_the_command_prints_the_table_and_writes_the_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from monolith.cli import main

    out = tmp_path / "av.json"
    args = ["evaluate-av", "--split", "held-out", "--shifts", "1", "--no-lambda-path", "--json", str(out)]
    code = main(args)
    assert code == 0
    printed = capsys.readouterr().out
    assert "tv-studio" in printed and "Lambda path = monolith: not checked" in printed
    result = json.loads(out.read_text())
    assert [row["shift"] is None for row in result["streams"]] == [True, False]
    assert result["summary"]["lambda_path"] is None
