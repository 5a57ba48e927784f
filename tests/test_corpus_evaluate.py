"""Scoring on the damage corpus (monolith.corpus_evaluate): matching, the summary, one real stream."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from monolith.corpus_evaluate import (
    at_damage,
    damage_windows,
    detect,
    format_corpus_evaluation,
    generated_row,
    match_events,
    summarise,
)
from sample_streams import corpus
from sample_streams.damage import PacketDamage, Site

REPO = Path(__file__).resolve().parents[1]


def _event(start: float, end: float, optional: bool = False) -> dict:
    return {"start_s": start, "end_s": end, "pictures": 0, "damaged_pictures": 0, "peak_share": 0.1,
            "optional": optional}


def test_detections_are_matched_to_events_with_their_onset() -> None:
    events = [_event(1.0, 2.0), _event(3.0, 3.08, optional=True), _event(4.0, 4.5)]
    detections = [
        (0.6, 1.5),  # starts 0.4 s early, within the 0.5 s tolerance: finds the first event
        (1.2, 1.9),  # overlaps the first event too, but the nearer onset counts
        (3.0, 3.1),  # on the optional event: neither found nor an alarm
        (3.45, 3.49),  # ends before 4.0 - 0.5: an alarm
        (5.0, 6.0),  # away from everything: an alarm
    ]
    score = match_events(events, detections)
    assert score["true"] == 2
    assert score["found"] == 1
    assert score["onset_errors_s"] == [0.2]
    assert score["detections"] == 5
    assert score["false_alarms"] == 2
    assert score["alarm_intervals"] == [[3.45, 3.49], [5.0, 6.0]]


def test_alarms_at_damaged_places_are_told_apart() -> None:
    # Keyframes every 2 s: damage at 1.2 s can show until 2.0 s; a damaged keyframe at 2.0 s until 4.0 s
    windows = damage_windows([{"pts_s": 1.2}, {"pts_s": 2.0}, {"pts_s": None}], 2.0)
    assert windows == [(0.7, 2.0), (1.5, 4.0)]
    assert at_damage([[0.8, 1.0], [4.0, 5.0], [0.0, 0.7]], windows) == 1
    assert at_damage([[3.9, 4.2]], windows) == 1


def test_a_clean_stream_counts_every_detection_as_an_alarm() -> None:
    assert match_events([], [(0.0, 1.0)])["false_alarms"] == 1
    assert match_events([], [])["false_alarms"] == 0


def _row(codec: str, kind: str, damage: str, ours: dict, theirs: dict, clean_alarms: int = 0) -> dict:
    clean = {"true": 0, "found": 0, "onset_errors_s": [], "detections": clean_alarms,
             "false_alarms": clean_alarms, "alarm_intervals": [[0.0, 1.0]] * clean_alarms}
    return {"name": f"x-{codec}", "source": "x", "kind": kind, "codec": codec, "rate": "high",
            "damage": damage, "events": [], "refused": None, "lambda_path_equal": [True, True],
            "ours_intervals": [], "ffmpeg_flags_intervals": [],
            "ours": {"damaged": ours, "clean": clean},
            "ffmpeg_flags": {"damaged": theirs, "clean": {**clean, "detections": 0, "false_alarms": 0}}}


def _score(
    true: int, found: int, onsets: list[float], detections: int, alarms: int, at_damage: int = 0
) -> dict:
    return {"true": true, "found": found, "onset_errors_s": onsets, "detections": detections,
            "false_alarms": alarms, "alarm_intervals": [], "alarms_at_damage": at_damage}


def test_summary_by_codec_and_kind_and_overall() -> None:
    rows = [
        _row("h264", "animation", "lost_packet", _score(2, 2, [0.0, -0.3], 4, 2, at_damage=1),
             _score(2, 1, [0.1], 1, 0)),
        _row("vp9", "animation", "flipped_bytes", _score(1, 0, [], 0, 0), _score(1, 0, [], 0, 0),
             clean_alarms=1),
        _row("vp9", "talking head", "lost_packet", _score(3, 3, [0.1, 0.2, 0.25], 3, 0),
             _score(3, 0, [], 0, 0)),
    ]
    media = [{"clip": "media/a.mp4", "refused": None, "lambda_path_equal": [True],
              "ours": _score(0, 0, [], 2, 2), "ffmpeg_flags": _score(0, 0, [], 0, 0)}]
    summary = summarise(rows, media)
    ours = summary["overall"]["ours"]
    # 5 of 6 events; onsets 0.0, 0.3, 0.1, 0.2, 0.25: three within 0.2 s
    assert (ours["events"], ours["found"], ours["recall"]) == (6, 5, 0.833)
    assert ours["onset_within_0_2_s"] == 3
    # detections 4 + 0 + 3 on damaged streams and 1 on a clean one; alarms 2 (one at invisible damage) + 1
    assert ours["precision"] == round(5 / 8, 3)
    assert ours["precision_invisible_right"] == round(6 / 8, 3)
    assert (ours["alarms_at_invisible_damage"], ours["false_alarms_damaged"]) == (1, 1)
    assert (ours["false_alarms_clean"], ours["clean_streams_with_alarms"]) == (1, 1)
    assert (ours["false_alarms_media"], ours["media_clips_with_alarms"]) == (2, 1)
    assert summary["by_codec"]["vp9"] == {"events": 4, "ours": 3, "ffmpeg_flags": 0, "ours_recall": 0.75,
                                          "ffmpeg_flags_recall": 0.0}
    assert summary["by_kind"]["animation"]["ours_recall"] == round(2 / 3, 3)
    assert summary["by_damage"]["lost_packet"]["ffmpeg_flags"] == 1
    assert summary["lambda_path"] == {"checked": 7, "equal": 7}
    result = {"split": "held-out", "summary": summary, "streams": rows, "media": media}
    text = format_corpus_evaluation(result)
    assert "event recall" in text and "5/6 (0.83)" in text
    assert "false alarm on media/a.mp4" not in text  # no intervals were kept in this hand-made row


def test_a_damaged_stream_runs_through_both_paths_and_ffmpeg(tmp_path: Path) -> None:
    # Given 2 s of a real broadcast clip as H.264 whose 10th packet is truncated
    source = REPO / "media/parity/h264-aac.ts"
    pictures: list[np.ndarray] = corpus.source_pictures(source, 0.0, duration_s=2.0)
    clean, damaged = tmp_path / "clean.mp4", tmp_path / "damaged.mp4"
    corpus.encode(pictures, clean, "h264", 0.12, damaged=damaged,
                  damage=PacketDamage([Site("truncated_packet", 10)], seed=2))
    events = corpus.label(clean, damaged)
    # When both streams are run as the evaluation runs them
    hit, quiet = detect(damaged, lambda_path=True), detect(clean, lambda_path=True)
    # Then the Lambda path agrees with the monolith on both, FFmpeg flags the truncated picture, and
    # nothing is reported on the clean stream
    assert hit["lambda_path_equal"] and quiet["lambda_path_equal"]
    assert match_events(events, hit["ffmpeg_flags"])["found"] == 1
    assert quiet["ours"] == [] and quiet["ffmpeg_flags"] == []


def test_the_generated_cases_are_one_row_beside_the_content_kinds() -> None:
    # Given a result of `monolith evaluate --json` with 3 + 2 block-damage events in two codecs
    evaluation = {"seed": 4, "block_corruption_by_codec": {
        "h264": {"events": 3, "ours": 3, "decoder_flags": 2},
        "vp9": {"events": 2, "ours": 1, "decoder_flags": 0},
    }}
    row = generated_row(evaluation)
    # Then its row sums them: ours 4/5, FFmpeg's flags 2/5
    assert row == {"events": 5, "ours": 4, "ffmpeg_flags": 2, "seed": 4, "ours_recall": 0.8,
                   "ffmpeg_flags_recall": 0.4}
    rows = [_row("h264", "animation", "lost_packet", _score(2, 2, [0.0], 2, 0), _score(2, 1, [0.1], 1, 0))]
    result = {"split": "held-out", "summary": summarise(rows, []), "streams": rows, "media": [],
              "generated": row}
    text = format_corpus_evaluation(result)
    assert "generated cases (make evaluate, seed 4)" in text and "4/5 (0.80)" in text
