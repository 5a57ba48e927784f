"""`make demo` fails when the Lambda path and `monolith analyze` disagree on the same file."""

from __future__ import annotations

from demo.__main__ import EXIT_DISAGREEMENT, outcome
from lambdas.shared.media import make_defect

FREEZE = make_defect("freeze", 3.0, 6.0, 0.87, duration_s=3.0)
DAMAGE = make_defect("block_corruption", 4.0, 14.0, 0.9, frames=200, evidence=["decoder_flag"])


def test_the_same_defects_on_both_paths_exit_zero() -> None:
    assert outcome("SUCCEEDED", [FREEZE], [FREEZE]) == (0, None)
    assert outcome("SUCCEEDED", [], []) == (0, None)


def test_defects_only_the_lambda_path_found_are_an_error_that_names_them() -> None:
    # Given the Lambda path reporting damage that the monolith did not find on the same file (issue 11)
    code, message = outcome("SUCCEEDED", [DAMAGE], [])
    # Then the demo exits non-zero and says which path found what
    assert code == EXIT_DISAGREEMENT != 0
    assert message is not None and "disagree" in message and "bug" in message
    assert "only on the Lambda path:" in message and "block_corruption" in message and "4.00" in message
    assert "only in `monolith analyze`" not in message


def test_defects_only_the_monolith_found_are_an_error_too() -> None:
    code, message = outcome("SUCCEEDED", [FREEZE], [FREEZE, DAMAGE])
    assert code == EXIT_DISAGREEMENT
    assert message is not None and "only in `monolith analyze`:" in message
    assert "only on the Lambda path" not in message


def test_a_different_value_in_one_defect_is_a_disagreement() -> None:
    other = make_defect("freeze", 3.0, 6.0, 0.5, duration_s=3.0)
    assert outcome("SUCCEEDED", [other], [FREEZE])[0] == EXIT_DISAGREEMENT


def test_a_failed_run_exits_one_and_skipped_comparison_is_no_error() -> None:
    assert outcome("FAILED", [], None) == (1, None)
    assert outcome("SUCCEEDED", [DAMAGE], None) == (0, None)  # --no-monolith: nothing to compare
