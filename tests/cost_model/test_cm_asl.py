"""The ASL walker counts transitions as Step Functions bills them; the loop model gives per-second counts."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from cm_helpers import SMALL_LOOP, task

from statemachine import ASL_PATH, DETECTOR_PLACEHOLDERS
from statemachine.asl import AslError, LoopModel, Tally, drop_detector_branches, find_loop, load, walk


def always(target: str):  # a Choice decider that always takes `target`
    return lambda name, state: target


def test_every_state_type_is_one_transition_and_parallel_map_count_their_inner_states() -> None:
    # Given Pass → Wait → Parallel(2 branches: Task; Pass→Task) → Map(Task per item) → Choice → Succeed
    states = {
        "P": {"Type": "Pass", "Next": "W"},
        "W": {"Type": "Wait", "Seconds": 1, "Next": "Par"},
        "Par": {
            "Type": "Parallel",
            "Next": "M",
            "Branches": [
                {"StartAt": "A", "States": {"A": task(fn="${A}")}},
                {"StartAt": "B0", "States": {"B0": {"Type": "Pass", "Next": "B"}, "B": task(fn="${B}")}},
            ],
        },
        "M": {
            "Type": "Map",
            "Next": "C",
            "ItemProcessor": {
                "StartAt": "Pub",
                "States": {"Pub": task(resource="arn:aws:states:::sns:publish")},
            },
        },
        "C": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.x", "IsPresent": True, "Next": "F"}],
            "Default": "S",
        },
        "S": {"Type": "Succeed"},
        "F": {"Type": "Fail"},
    }
    # When it is walked with 3 Map items and the Choice's Default
    tally, end = walk(states, "P", decide=always("S"), map_items=lambda n, s: 3)
    # Then by hand: P, W, Par(1) + A + B0 + B, M(1) + 3 x Pub, C, S = 1+1+4+4+1+1 = 12
    assert end is None
    assert tally.transitions == 12
    assert tally.calls == {"lambda:invoke:A": 1, "lambda:invoke:B": 1, "sns:publish": 3}
    assert tally.entered["Pub"] == 3


def test_retries_are_billed_as_extra_transitions_and_calls() -> None:
    # Given one Task that is retried twice
    states = {"T": task(fn="${F}", Retry=[{"ErrorEquals": ["States.ALL"]}])}
    # When walked
    tally, _ = walk(states, "T", decide=always(""), retries=lambda n, s: 2)
    # Then 1 entry + 2 retries = 3 transitions and 3 invocations
    assert (tally.transitions, tally.retries, tally.calls["lambda:invoke:F"]) == (3, 2, 3)


def test_fail_state_ends_the_walk_and_counts() -> None:
    # Given Pass → Fail
    tally, end = walk({"P": {"Type": "Pass", "Next": "X"}, "X": {"Type": "Fail"}}, "P", decide=always(""))
    # Then both are transitions
    assert (tally.transitions, end) == (2, None)


def test_walk_rejects_unknown_states_and_endless_loops() -> None:
    with pytest.raises(AslError, match="not defined"):
        walk({"P": {"Type": "Pass", "Next": "Nope"}}, "P", decide=always(""))
    with pytest.raises(AslError, match="no end"):
        walk({"P": {"Type": "Pass", "Next": "P"}}, "P", decide=always(""), max_steps=50)


def test_find_loop_returns_the_first_cycle_state_and_its_members() -> None:
    loop = find_loop(SMALL_LOOP)
    assert loop.entry == "Work"
    assert loop.members == {"Work", "Any?", "Tell", "Save", "Last?", "Next"}


def test_find_loop_rejects_a_definition_without_a_loop() -> None:
    with pytest.raises(AslError, match="no loop"):
        find_loop({"StartAt": "A", "States": {"A": {"Type": "Succeed"}}})


def test_loop_model_of_a_small_definition_matches_hand_counts() -> None:
    # Given the small loop; When modelled
    m = LoopModel(SMALL_LOOP)
    # Then by hand: quiet second = Work, Any?, Save, Last?, Next = 5
    assert m.quiet.transitions == 5
    assert m.defect_second.transitions == 1  # the Map state
    assert m.per_defect.transitions == 1  # one Pub per item
    assert m.continue_tail.transitions == 1  # Again + Gone instead of Next
    assert m.fresh_prefix.transitions == 3  # Fresh?, Begin, Init
    assert m.continued_prefix.transitions == 2  # Fresh?, Init
    # And per second with a 10-second execution: 5 + (2 + 1) / 10
    assert m.per_second(seconds_per_execution=10)["transitions"] == pytest.approx(5.3)


def test_run_replays_a_whole_stream_across_executions() -> None:
    # Given 7 seconds, 3 seconds per execution, defects on 2 seconds (2 and 1 notifications)
    m = LoopModel(SMALL_LOOP)
    tally, executions = m.run(7, seconds_per_execution=3, defect_items=[2, 1])
    # Then by hand: executions 3 (3+3+1 s); 7 x 5 + fresh 3 + 2 x continued 2 + 2 x continue tail 1
    #   + done tail 0 + 2 Maps + 3 Pubs = 35 + 3 + 4 + 2 + 0 + 2 + 3 = 49
    assert executions == 3
    assert tally.transitions == 49
    assert tally.calls["sns:publish"] == 3
    assert tally.calls["states:startExecution"] == 2


# --- the project's workflow -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real() -> dict[str, Any]:
    # A missing definition is a failure (load raises), never a skip.
    return load(ASL_PATH)


def test_real_workflow_quiet_second_costs_ten_transitions(real: dict[str, Any]) -> None:
    # Given the project's workflow; When modelled
    m = LoopModel(real)
    # Then the loop is Convert … NextSecond, and by hand a quiet second enters: Convert, Detect (Parallel),
    # Freeze, BlockCorruption, AvSync, Evaluate, AnyDefects?, Record, Last?, NextSecond = 10
    assert m.loop.entry == "Convert"
    assert m.quiet.transitions == 10
    assert m.quiet.calls_matching("lambda:invoke") == 4
    assert m.quiet.calls["aws-sdk:s3:putObject"] == 1
    # + Notify per defect second, + Publish per notification, + per execution: NewStream? + Init
    # (continued prefix) and ContinueAsNew + ContinuedAsNew in place of NextSecond
    assert (m.defect_second.transitions, m.per_defect.transitions) == (1, 1)
    assert (m.continued_prefix + m.continue_tail).transitions == 3
    assert m.per_second(seconds_per_execution=300)["transitions"] == pytest.approx(10 + 3 / 300)


def test_dropping_detectors_removes_their_branches(real: dict[str, Any]) -> None:
    # Given only freeze enabled; Then 10 - 2 branches = 8 transitions, 2 Lambda invocations
    m = LoopModel(drop_detector_branches(real, DETECTOR_PLACEHOLDERS, ("freeze",)))
    assert m.quiet.transitions == 8
    assert m.quiet.calls_matching("lambda:invoke") == 2


def test_tally_difference_is_signed() -> None:
    a = Tally(3, calls=Counter({"x": 1}))
    b = Tally(5, calls=Counter({"x": 2, "y": 1}))
    d = a - b
    assert d.transitions == -2 and d.calls == {"x": -1, "y": -1}
