"""`python -m monolith analyze`: the JSON contract, the table, and bad input handled per file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sample_streams import BlockCorruption, Freeze, generate_stream


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monolith", *args], capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def defective(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "defective.mp4"
    generate_stream(path, duration_s=8, width=320, height=180,
                    defects=(Freeze(1.0, 2.5), BlockCorruption(4.3)), seed=5)  # fmt: skip
    return path


def test_json_report_follows_the_contract(defective: Path) -> None:
    # Given a stream with a freeze and block damage, When analysed with --json
    result = _run("analyze", str(defective), "--json")
    # Then it exits 0 and prints one report in the contract's shape with both defects at their times
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["source"] == str(defective)
    assert report["video"] == {"width": 320, "height": 180, "fps": 25.0}
    assert report["audio"] == {"sample_rate": 48000, "channels": 1}
    assert report["duration_s"] == pytest.approx(8.0, abs=0.1)
    kinds = {d["type"]: d for d in report["defects"]}
    assert set(kinds) == {"freeze", "block_corruption"}
    assert kinds["freeze"]["start_s"] == pytest.approx(1.0, abs=0.05)
    assert kinds["freeze"]["end_s"] == pytest.approx(3.5, abs=0.05)
    assert kinds["block_corruption"]["start_s"] == pytest.approx(4.32, abs=0.1)
    for defect in report["defects"]:
        assert 0.0 <= defect["confidence"] <= 1.0 and defect["start_s"] < defect["end_s"]


def test_bad_files_get_one_line_each_and_exit_2_while_good_ones_are_still_analysed(
    defective: Path, tmp_path: Path
) -> None:
    # Given a good stream between a missing file and random bytes
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(bytes(range(256)) * 200)
    missing = tmp_path / "missing.ts"
    # When analysed together as JSON
    result = _run("analyze", str(missing), str(defective), str(junk), "--json")
    # Then the exit code is 2, each bad file has one error line naming it, and no traceback is shown
    assert result.returncode == 2
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 2
    assert errors[0].startswith(f"error: {missing}: ") and errors[1].startswith(f"error: {junk}: ")
    assert "Traceback" not in result.stderr
    # And the JSON list still holds the good stream's report and the reasons for the bad ones
    reports = json.loads(result.stdout)
    assert [r["source"] for r in reports] == [str(missing), str(defective), str(junk)]
    assert "error" in reports[0] and "error" in reports[2]
    assert {d["type"] for d in reports[1]["defects"]} == {"freeze", "block_corruption"}


def test_table_output_lists_the_defects(defective: Path) -> None:
    result = _run("analyze", str(defective), "--workers", "2")
    assert result.returncode == 0
    assert "freeze" in result.stdout and "block_corruption" in result.stdout and "320x180" in result.stdout


def test_a_bad_option_is_a_usage_error() -> None:
    result = _run("analyze", "x.mp4", "--workers", "0")
    assert result.returncode == 2 and "must be at least 1" in result.stderr
