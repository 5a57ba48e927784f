"""The learned block-damage decision (issue 22): inference by hand, reproducible training, and a damage
event on a tuning source that the decision learned from the corpus finds and the rules alone miss."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from detector_runs import run_detector

from lambdas.converter.decode import iter_seconds
from lambdas.detectors import block_corruption
from lambdas.detectors.block_model import FEATURES, MODEL_PATH, LogisticModel, ModelError, committed_model
from lambdas.shared.media import StreamSecond, VideoFrame
from monolith.corpus_evaluate import match_events
from monolith.train_block_model import NEVER, train
from sample_streams import corpus
from sample_streams.corpus_sources import SOURCES, CorpusSource
from sample_streams.damage import PacketDamage, Site

REPO = Path(__file__).resolve().parents[1]


def _model(**weights: float) -> LogisticModel:
    n = len(FEATURES)
    vector = np.zeros(n)
    for name, weight in weights.items():
        vector[FEATURES.index(name)] = weight
    scale = np.ones(n)
    scale[FEATURES.index("missing_pictures")] = 2.0
    mean = np.zeros(n)
    mean[FEATURES.index("unexplained")] = 0.1
    return LogisticModel(FEATURES, mean, scale, vector, -1.0, 0.8)


def test_inference_on_a_hand_made_feature_vector() -> None:
    # Given weights 1 (decoder flag), 2 (missing pictures, scale 2) and 10 (unexplained, mean 0.1), bias -1
    model = _model(decoder_flag=1.0, missing_pictures=2.0, unexplained=10.0)
    x = np.zeros((2, len(FEATURES)))
    x[0, FEATURES.index("decoder_flag")] = 1.0
    x[0, FEATURES.index("missing_pictures")] = 2.0
    x[0, FEATURES.index("unexplained")] = 0.1  # at its mean: adds nothing
    x[1, FEATURES.index("unexplained")] = 0.15
    # When scored: log-odds 1 + (2 / 2) * 2 + 0 - 1 = 2, and 10 * 0.05 - 1 = -0.5
    scores = model.scores(x)
    # Then the probabilities are 1 / (1 + e^-2) = 0.8808 and 1 / (1 + e^0.5) = 0.3775
    assert scores[0] == pytest.approx(0.8807970779778823, abs=1e-12)
    assert scores[1] == pytest.approx(0.3775406687981454, abs=1e-12)
    assert list(scores >= model.threshold) == [True, False]


def test_a_model_round_trips_through_json_and_a_foreign_one_is_refused() -> None:
    model = _model(decoder_flag=1.5)
    again = LogisticModel.from_dict(json.loads(json.dumps(model.to_dict())))
    assert again.to_dict() == model.to_dict()
    other = {**model.to_dict(), "features": ["decoder_flag"]}
    with pytest.raises(ModelError, match="make train"):
        LogisticModel.from_dict(other)
    with pytest.raises(ModelError, match="scales > 0"):
        LogisticModel.from_dict({**model.to_dict(), "scale": [0.0] * len(FEATURES)})


def test_the_committed_model_says_what_it_was_trained_on() -> None:
    document = json.loads(MODEL_PATH.read_text())
    trained_on = document["trained_on"]
    held_out = {source.name for source in SOURCES if source.held_out}
    assert set(trained_on["sources"]) == {source.name for source in SOURCES if not source.held_out}
    assert not held_out & set(trained_on["sources"])
    assert trained_on["command"] == "make train" and trained_on["pictures"]["new_damage"] > 0
    assert committed_model().features == FEATURES


@pytest.mark.slow
def test_training_on_a_tiny_corpus_gives_the_same_weights_twice(tmp_path: Path) -> None:
    # Given a corpus of two short tuning sources (two folds for the out-of-fold threshold)
    sources = (
        CorpusSource("grid-speech", "talking head", "media/grid-speech-a.mp4", 0.0, False),
        CorpusSource("terminal-thefuck", "screen content", "media/corpus/terminal-thefuck.mp4", 0.0, False),
    )
    # When trained twice
    first = train(0, tmp_path / "corpus", sources=sources)
    second = train(0, tmp_path / "corpus", sources=sources)
    # Then the models are the same, and they record their two sources
    assert first["model"] == second["model"]
    assert first["trained_on"]["sources"] == ["grid-speech", "terminal-thefuck"]
    assert first["trained_on"]["damaged_streams"] == 2 * len(corpus.CODECS) * len(corpus.BIT_RATES_BPP)


def test_the_learned_decision_finds_damage_the_rules_miss(tmp_path: Path) -> None:
    # Given 2 s of a tuning source (cyclists) as VP8 whose 12th packet is lost: VP8 says nothing, the next
    # pictures are predicted from the wrong one
    pictures = corpus.source_pictures(REPO / "media/parity/bikes.mp4", 0.0, duration_s=2.0)
    clean, damaged = tmp_path / "clean.webm", tmp_path / "damaged.webm"
    corpus.encode(pictures, clean, "vp8", 0.12, damaged=damaged,
                  damage=PacketDamage([Site("lost_packet", 12)], seed=1))
    events = corpus.label(clean, damaged)
    assert [e["optional"] for e in events] == [False]  # a viewer sees it
    # When the detector runs with the committed model, and with a model that never fires (the rules alone)
    learned = run_detector(block_corruption.detect, iter_seconds(damaged))[0]
    rules = run_detector(lambda second, state: block_corruption.detect(second, state, model=NEVER),
                         iter_seconds(damaged))[0]
    # Then only the learned decision finds the event, in time, and says so
    found = match_events(events, [(d["start_s"], d["end_s"]) for d in learned])
    assert found["found"] == 1 and found["false_alarms"] == 0
    assert math.fabs(found["onset_errors_s"][0]) <= 0.2
    assert "learned" in learned[0]["evidence"]
    assert match_events(events, [(d["start_s"], d["end_s"]) for d in rules])["found"] == 0


def _moving_second(index: int, lost: set[int], is_last: bool = False) -> StreamSecond:
    """A second of 25 pictures of a gradient moving 2 px a picture; the pictures in `lost` never arrive
    (their packets were lost without a decoder error); a keyframe at its start."""
    y, x = np.mgrid[0:128, 0:256]
    frames = []
    for k in range(25):
        if k in lost:
            continue
        shift = 2 * (25 * index + k)
        luma = (100 + 0.3 * y + 40 * np.sin((x + shift) / 11.0) * np.cos(y / 9.0)).astype(np.uint8)
        frames.append(VideoFrame(round(index + k / 25, 6), luma, key_frame=k == 0, corrupt=False))
    return StreamSecond(index, frames, None, is_last)


def _detect_all(seconds: list[StreamSecond]) -> list[dict]:
    state, events = None, []
    for second in seconds:
        found, state = block_corruption.detect(second, json.loads(json.dumps(state)))
        events += found
    return events


def test_a_picture_missing_by_the_timestamps_opens_an_event_until_the_next_keyframe() -> None:
    # Given moving pictures whose 6th picture (0.2 s) never arrived, and keyframes at 0 s, 1 s and 2 s
    events = _detect_all([_moving_second(0, {5}), _moving_second(1, set()), _moving_second(2, set(), True)])
    # Then the committed model finds one event from the missing picture to the next keyframe
    assert [(e["start_s"], e["end_s"], e["evidence"]) for e in events] == [(0.2, 1.0, ["learned"])]


def test_a_picture_missing_just_before_the_end_is_no_event() -> None:
    # Given the same pictures with the second-to-last one missing: the model sees the gap, 2 pictures remain
    events = _detect_all([_moving_second(0, set()), _moving_second(1, {23}, True)])
    # Then nothing is reported: an event only the model saw must last 3 pictures
    assert events == []


def _still_then_moving_second(lost: set[int]) -> StreamSecond:
    """A second whose first 10 pictures repeat one picture (a still scene), then move 2 px a picture; the
    pictures in `lost` never arrive; a keyframe at its start, the last second of the stream."""
    y, x = np.mgrid[0:128, 0:256]
    frames = []
    for k in range(25):
        if k in lost:
            continue
        shift = 2 * max(0, k - 9)
        luma = (100 + 0.3 * y + 40 * np.sin((x + shift) / 11.0) * np.cos(y / 9.0)).astype(np.uint8)
        frames.append(VideoFrame(round(k / 25, 6), luma, key_frame=k == 0, corrupt=False))
    return StreamSecond(0, frames, None, True)


def test_a_picture_lost_right_after_a_still_scene_is_still_found_by_the_timestamps() -> None:
    # Given a still scene whose first picture to move (0.4 s) never arrived: the next one moves after repeats
    events = _detect_all([_still_then_moving_second({10})])
    # Then the committed model (it reads the decoder and the timestamps only) finds it from the lost picture
    assert [(e["start_s"], e["evidence"]) for e in events] == [(0.4, ["learned"])]


def test_a_model_that_reads_the_content_is_not_trusted_on_the_first_picture_to_move_after_a_still() -> None:
    # Given the same stream, and a model that fires on the same gap but also weighs the pictures' content
    model = _model(missing_pictures=10.0, change_rise=1e-9)
    state = None
    # When it judges the picture after the gap, the first to move after repeated ones
    events, state = block_corruption.detect(_still_then_moving_second({10}), state, model=model)
    # Then that picture opens no event (a freeze ending looks new to every measure of the content)
    assert events == []
    # And the same model opens one where the gap follows moving pictures
    moving = _moving_second(0, {5}, True)
    assert [e["start_s"] for e in block_corruption.detect(moving, None, model=model)[0]] == [0.2]
