"""The committed calibration, its API, and `make calibrate`'s path from a (tiny) real bench run to a file the
cost model reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from calibration import CALIBRATION_PATH, Calibration, CalibrationError, load
from calibration.__main__ import from_bench
from calibration.__main__ import main as calibrate
from cost_model import cli
from monolith.bench import format_bench, run_bench


def test_the_committed_file_says_how_it_was_made_and_covers_hd() -> None:
    cal = load()
    assert cal.path == CALIBRATION_PATH
    for key in ("generated", "machine", "command"):
        assert cal.data[key], key
    assert "make calibrate" in cal.data["command"]
    # The cost model's default scenario is 1080p; 360p and 720p are measured too
    assert cal.resolutions == ("360p", "720p", "1080p")
    for resolution in cal.resolutions:
        cpu = cal.monolith_cpu(resolution)
        assert 0 < cpu.min <= cpu.median <= cpu.max and cpu.runs >= 3
        assert cal.monolith_peak_rss_mib(resolution) > 0
        assert cal.lambda_path_cpu(resolution).median > 0
        profile = cal.profile(resolution)
        assert profile.frame_bytes > 0 and set(profile.detect_ms_per_frame) == {
            "freeze",
            "block_corruption",
            "av_sync",
        }


def test_at_a_statistic_and_for_another_processor() -> None:
    cal = Calibration(
        {
            "monolith": {
                "cpu_s_per_stream_second": {"720p": {"median": 0.2, "min": 0.1, "max": 0.4, "runs": 3}}
            }
        },
        Path("x.json"),
    )
    assert cal.at("max").monolith_cpu("720p").median == 0.4
    assert cal.at("min", cpu_factor=0.5).monolith_cpu("720p").median == pytest.approx(0.05)
    assert cal.monolith_cpu("720p").median == 0.2  # the original is unchanged
    with pytest.raises(CalibrationError, match="statistic"):
        cal.at("mean")
    with pytest.raises(CalibrationError, match="1080p"):
        cal.monolith_cpu("1080p")
    with pytest.raises(CalibrationError, match="make calibrate"):
        cal.profile("720p")


def test_unreadable_files_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match="cannot read"):
        load(tmp_path / "absent.json")
    (tmp_path / "other.json").write_text('{"results": []}')
    with pytest.raises(CalibrationError, match="not a calibration"):
        load(tmp_path / "other.json")


@pytest.mark.slow
def test_a_small_bench_becomes_a_calibration_the_cost_model_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a real (tiny) bench: a 2 s 360p stream, each measurement twice
    report = run_bench(duration_s=2, repeats=2, sizes=["360p"], log=lambda _: None)
    row = report["results"][0]
    # Then each figure is the median of its runs, with the spread beside it, CPU compared with CPU
    for kind in ("decode_only", "monolith", "lambda_path"):
        spread = row[kind]["cpu_s_per_stream_s"]
        assert spread["runs"] == 2 and spread["min"] <= spread["median"] <= spread["max"]
    # and each ratio is taken within one run: the median of the runs' ratios, each between the extremes
    # that the two spreads allow
    ratios = row["full_vs_decode_cpu_runs"]
    full, decode = row["monolith"]["cpu_s_per_stream_s"], row["decode_only"]["cpu_s_per_stream_s"]
    assert len(ratios) == 2
    assert row["full_vs_decode_cpu"] == pytest.approx((ratios[0] + ratios[1]) / 2, abs=1e-3)
    assert all(full["min"] / decode["max"] - 1e-3 <= r <= full["max"] / decode["min"] + 1e-3 for r in ratios)
    assert row["profile"]["frame_bytes"] > 0 and row["peak_rss_mib_per_stream"] > 0
    assert "360p" in format_bench(report)
    # When written as a calibration file, Then the cost model prices a 360p scenario from it
    path = tmp_path / "calibration.json"
    calibration = from_bench(report, "test")
    assert calibration["monolith"]["full_vs_decode_cpu_runs"]["360p"] == ratios
    path.write_text(json.dumps(calibration))
    code = cli.main(
        [
            "compare",
            "--streams",
            "10",
            "--hours",
            "10",
            "--resolution",
            "360p",
            "--calibration",
            str(path),
            "--json",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    fleet = json.loads(out)["scenario"]["monolith"]
    assert fleet["cpu_s_per_stream_s_measured"]["median"] == row["monolith"]["cpu_s_per_stream_s"]["median"]


@pytest.mark.parametrize(("args", "message"), [
    (["--sizes", "720p,4k"], "--sizes takes a comma list of 360p, 720p, 1080p, got '720p,4k'"),
    (["--sizes", ","], "--sizes takes a comma list"),
    (["--out", "no-such-dir/calibration.json"], "no such directory no-such-dir"),
])
def test_bad_arguments_are_refused_before_anything_is_measured(
        args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Instantly: a measurement would take minutes
    assert calibrate(args) == 2
    assert message in capsys.readouterr().err
