"""The committed calibration, its API, and `make calibrate`'s path (`python -m monolith calibrate`) from a
(tiny) real bench run and whole-task measurements to a file the cost model reads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from calibration import (
    CALIBRATION_PATH,
    HOST_REFERENCE_PATH,
    Calibration,
    CalibrationError,
    HostReferenceError,
    load,
    load_host_reference,
)
from cost_model import cli
from monolith.bench import ChildRun, NotQuiet, bench_seconds, format_bench, host_speeds, normalised, run_bench
from monolith.calibrate import document, format_tasks, task_section
from monolith.calibrate import main as calibrate
from monolith.sizing import task_size


def _task(n: int, idle: float, sampled: float, peak: float) -> dict[str, Any]:
    """One whole-task run as monolith.task_memory.measure_task reports it."""
    return {"concurrency": n, "processes": 1 if n == 1 else n + 2, "idle_mib": idle,
            "sampled_peak_mib": sampled, "peak_mib": peak, "jobs_per_worker": [1] * n, "wall_s": 10.0}


# Round figures: one stream's task peaks at 150-160 MiB, four streams' at 500-540 over an idle tree of 400
TASKS = {"stream_seconds": 2, "runs": 3, "concurrencies": [1, 4], "by_resolution": {"360p": {
    "1": [_task(1, 100, 140, 150), _task(1, 110, 150, 160), _task(1, 105, 145, 155)],
    "4": [_task(4, 400, 480, 500), _task(4, 410, 500, 540), _task(4, 400, 490, 520)],
}}}


def test_the_committed_file_says_how_it_was_made_and_covers_hd() -> None:
    cal = load()
    assert cal.path == CALIBRATION_PATH
    for key in ("generated", "machine", "command"):
        assert cal.data[key], key
    assert "make calibrate" in cal.data["command"]
    # and that nothing else ran: the load average before and after, the CPU others used during the run
    quiet = cal.data["quiet"]
    assert quiet["quiet"] is True and len(quiet["before"]["load_average"]) == 3, quiet
    # The cost model's default scenario is 1080p; 360p and 720p are measured too
    assert cal.resolutions == ("360p", "720p", "1080p")
    for resolution in cal.resolutions:
        cpu = cal.monolith_cpu(resolution)
        assert 0 < cpu.min <= cpu.median <= cpu.max and cpu.runs >= 3
        assert cal.monolith_peak_rss_mib(resolution) > 0
        # Whole tasks at every concurrency the stack may be configured with, the peak above the idle tree
        assert cal.task_concurrencies(resolution) == (1, 2, 4, 8)
        for n in cal.task_concurrencies(resolution):
            peak = cal.task_peak_mib(resolution, n)
            assert 0 < peak.min <= peak.median <= peak.max and peak.runs >= 3
            assert peak.min > cal.data["task"]["idle_mib"][resolution][str(n)]["max"]
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
    # Given a real (tiny) bench: a 2 s 360p stream, each measurement twice (the machine running the tests
    # is not quiet: the report says so)
    report = run_bench(duration_s=2, repeats=2, sizes=["360p"], require_quiet=False, log=lambda _: None)
    assert report["quiet"]["quiet"] in (True, False) and report["quiet"]["during"]["wall_s"] > 0
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
    # Memory: what the full analysis's work added to its child, each run; the imports-only child's base
    assert len(row["peak_rss_mib_per_stream_runs"]) == 2 and row["process_base_mib"]["median"] > 20
    assert "360p" in format_bench(report)
    # And the serverless design's function on the same stream cut into 2 s segments (8 s: 4 windows),
    # compared with the monolith within each run
    segments = row["segment_analyzer"]["cpu_s_per_stream_s"]
    assert segments["runs"] == 2 and 0 < segments["min"] <= segments["median"] <= segments["max"]
    assert len(row["segment_analyzer_vs_monolith_cpu_runs"]) == 2
    assert row["segment_analyzer_vs_monolith_cpu"] > 0
    # When written as a calibration file with hand-made whole tasks, Then the cost model prices a 360p
    # scenario from it, the task's memory from the largest peak of 4 streams: 540 x 1.5 = 810 -> 896 MiB
    path = tmp_path / "calibration.json"
    calibration = document(report, TASKS, "test")
    assert calibration["monolith"]["full_vs_decode_cpu_runs"]["360p"] == ratios
    assert calibration["segment_analyzer"]["segment_seconds"] == 2.0
    assert Calibration(calibration, path).segment_analyzer_cpu("360p").median == segments["median"]
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
    assert (fleet["streams_per_task"], fleet["task_memory_mib"]) == (4, 896)


@pytest.mark.parametrize(("args", "message"), [
    (["--sizes", "720p,4k"], "--sizes takes a comma list of 360p, 720p, 1080p, got '720p,4k'"),
    (["--sizes", ","], "--sizes takes a comma list"),
    (["--out", "no-such-dir/calibration.json"], "no such directory no-such-dir"),
    (["--concurrencies", "0,4"], "--concurrencies takes a comma list of whole numbers from 1, got '0,4'"),
    (["--concurrencies", "four"], "--concurrencies takes a comma list"),
    (["--task-repeats", "0"], "--task-repeats must be at least 1"),
])
def test_bad_arguments_are_refused_before_anything_is_measured(
        args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Instantly: a measurement would take minutes
    assert calibrate(args) == 2
    assert message in capsys.readouterr().err


def test_whole_task_runs_become_a_median_and_spread_per_concurrency_that_sizes_the_task() -> None:
    # Given three runs each of one and four streams at 360p (TASKS)
    section = task_section(TASKS)
    # Then each figure is the median and spread of its runs, the processes the largest tree seen
    assert section["peak_mib"]["360p"]["4"] == {"median": 520, "min": 500, "max": 540, "runs": 3}
    assert section["idle_mib"]["360p"]["1"] == {"median": 105, "min": 100, "max": 110, "runs": 3}
    assert section["sampled_peak_mib"]["360p"]["4"]["median"] == 490
    assert section["processes"] == {"1": 1, "4": 6}
    # And the task is sized from the largest peak: 4 streams 540 x 1.5 = 810 -> 896 MiB; one stream
    # 160 x 1.5 = 240 -> 256 MiB (CPU: 0.05 x 4 x 1.5 x 1,024 = 307.2 -> 308 units)
    cal = Calibration({"monolith": {"cpu_s_per_stream_second": {
        "360p": {"median": 0.05, "min": 0.05, "max": 0.05, "runs": 1}}}, "task": section}, Path("t.json"))
    assert (task_size(cal, "360p", 4).cpu_units, task_size(cal, "360p", 4).memory_mib) == (308, 896)
    assert task_size(cal, "360p", 1).memory_mib == 256
    # A concurrency not measured is refused with what to run, not guessed
    with pytest.raises(CalibrationError, match=r"no task of 2 streams measured at 360p \(measured: 1, 4\); "
                                               r"run `python -m monolith calibrate --concurrencies 1,4,2`"):
        task_size(cal, "360p", 2)
    # And the table says what the extra interpreters cost: idle 400 - 105 = 295 MiB, 55% of the 540 peak
    table = format_tasks(section)
    assert "295 MiB (55% of the peak)" in table and "520 [500–540]" in table


def test_a_busy_machine_is_refused_before_anything_is_measured(tmp_path: Path) -> None:
    # Given another process that keeps one core busy (a share of the CPU far above the 5% allowed)
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        # When the bench starts, Then it refuses at once, saying how busy the machine was
        with pytest.raises(NotQuiet, match=r"other processes used \d+% of the CPU over 3 s \(load average"):
            run_bench(duration_s=2, repeats=1, sizes=["360p"], log=lambda _: None)
    finally:
        spinner.kill()
        spinner.wait()


def _calibration_file(path: Path, cpu: float, task_peak: float) -> Path:
    """A calibration of round figures at 720p, one of them `cpu` and the 4-stream task's peak `task_peak`."""
    spread = {"median": cpu, "min": cpu, "max": cpu, "runs": 5}
    path.write_text(json.dumps({
        "generated": "by hand", "machine": "none", "command": "by hand",
        "monolith": {"cpu_s_per_stream_second": {"720p": spread},
                     "decode_only_cpu_s_per_stream_second": {"720p": {**spread, "median": 0.05}},
                     "peak_rss_mib_per_stream": {"720p": 100}},
        "lambda_path": {"cpu_s_per_stream_second": {"720p": {**spread, "median": 0.4}}},
        "task": {"peak_mib": {"720p": {"4": {"median": task_peak, "min": task_peak, "max": task_peak,
                                             "runs": 3}}}},
    }))
    return path


def test_two_calibrations_are_compared_figure_by_figure(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a first calibration, a second whose CPU is 5% higher and task peak 8% lower, a third whose CPU
    # is 12% lower
    first = _calibration_file(tmp_path / "a.json", 0.1, 1000)
    close = _calibration_file(tmp_path / "b.json", 0.105, 920)
    far = _calibration_file(tmp_path / "c.json", 0.088, 1000)
    # When compared, Then each figure's difference is shown, and they agree within ±10% (exit 0)
    assert calibrate(["--compare", str(first), str(close)]) == 0
    out = capsys.readouterr().out
    assert "+5.0%" in out and "-8.0%" in out and "largest difference 8.0%: they agree" in out
    # And a figure 12% away fails the check (exit 1)
    assert calibrate(["--compare", str(first), str(far)]) == 1
    assert "largest difference 12.0%: outside ±10%" in capsys.readouterr().out
    # When both carry within-run ratios (monolith / decode 2.0 and 2.1), Then they are shown apart, +5.0%,
    # outside the verdict
    for path, ratio in ((first, 2.0), (close, 2.1)):
        data = json.loads(path.read_text())
        data["monolith"]["full_vs_decode_cpu"] = {"720p": ratio}
        path.write_text(json.dumps(data))
    assert calibrate(["--compare", str(first), str(close)]) == 0
    out = capsys.readouterr().out
    assert "monolith / decode only" in out and "largest difference of the ratios 5.0%" in out
    # When only the second is priced in the reference host's CPU-seconds, Then the units are said to differ
    data = json.loads(close.read_text())
    data["host"] = {"speed": {"720p": {"median": 1.2}}}
    data["monolith"]["measured_cpu_s_per_stream_second"] = {"720p": {"median": 0.126}}
    close.write_text(json.dumps(data))
    calibrate(["--compare", str(first), str(close)])
    assert "not in the same unit" in capsys.readouterr().out
    # When both are (the first measured 0.09 on a host at 0.9: 0.1; the second 0.126 at 1.2: 0.105),
    # Then the measured figures and host speeds are shown beside the priced ones, outside the verdict
    data = json.loads(first.read_text())
    data["host"] = {"speed": {"720p": {"median": 0.9}}}
    data["monolith"]["measured_cpu_s_per_stream_second"] = {"720p": {"median": 0.09}}
    first.write_text(json.dumps(data))
    assert calibrate(["--compare", str(first), str(close)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "not in the same unit" not in "\n".join(lines)
    header = next(i for i, line in enumerate(lines) if "as measured, not priced" in line)
    assert [line.split()[-3:] for line in lines[header + 2:header + 4]] == [
        ["0.09", "0.126", "+40.0%"], ["0.9", "1.2", "+33.3%"]]
    # And a file without whole tasks is one error line
    assert calibrate(["--compare", str(first), str(tmp_path / "none.json")]) == 2
    assert "cannot read the calibration" in capsys.readouterr().err


def test_a_whole_task_run_that_could_not_be_measured_is_tried_again_then_refused() -> None:
    # Given a whole-task run that twice finds its streams did not all run at once, then succeeds
    from monolith.calibrate import _measure_with_retries
    from monolith.task_memory import TaskMemoryError

    attempts: list[int] = []
    logged: list[str] = []

    def flaky(attempt: int) -> str:
        attempts.append(attempt)
        if attempt < 3:
            raise TaskMemoryError("the 8 streams were not analysed at once")
        return "measured"

    # When it is measured with three attempts
    # Then the third attempt's measurement comes back and each retry was logged
    assert _measure_with_retries(flaky, log=logged.append, attempts=3) == "measured"
    assert attempts == [1, 2, 3] and len(logged) == 2 and "attempt 2/3" in logged[0]

    # And a run that never measures gives its error after the last attempt
    def never(attempt: int) -> str:
        raise TaskMemoryError(f"attempt {attempt} failed")

    with pytest.raises(TaskMemoryError, match="attempt 2 failed"):
        _measure_with_retries(never, log=logged.append, attempts=2)


def test_each_run_is_priced_in_the_reference_host_s_cpu_seconds() -> None:
    # Given two runs on a 10 s stream: the reference cost 0.6 and 0.9 CPU-s (0.06 and 0.09 per
    # stream-second) where the reference host spent 0.06, and the monolith 2.0 and 3.3 CPU-s
    def run(kind: str, cpu_s: float) -> ChildRun:
        return ChildRun(kind, cpu_s, 1.0, 0, 0, {})

    speeds = host_speeds([run("reference", 0.6), run("reference", 0.9)], 10.0, 0.06)
    # Then the host ran at the reference host's speed in the first run and 1.5 times slower in the second
    assert speeds == pytest.approx([1.0, 1.5])
    # And the monolith's 0.20 and 0.33 CPU-s per stream-second are 0.20 and 0.22 reference-host CPU-s
    assert normalised([0.2, 0.33], speeds) == pytest.approx([0.2, 0.22])


def test_the_reference_host_must_fit_the_measurement(tmp_path: Path) -> None:
    # Given a reference host measured at 360p and 1080p with PyAV 19.0.2
    path = tmp_path / "host_reference.json"
    path.write_text(json.dumps({"generated": "2026-12-07T21:00:00Z", "machine": {"av": "19.0.2"},
                                "reference": {"cpu_s_per_stream_second": {
                                    "360p": {"median": 0.01, "min": 0.009, "max": 0.011, "runs": 9},
                                    "1080p": {"median": 0.1, "min": 0.09, "max": 0.11, "runs": 9}}}}))
    host = load_host_reference(path)
    assert host.cpu_s_per_stream_second == {"360p": 0.01, "1080p": 0.1}
    host.check(["360p", "1080p"], "19.0.2")
    # Then a size it lacks, another PyAV (another decoder), a missing file and a file of another kind are
    # each one error that says what to run
    with pytest.raises(HostReferenceError, match=r"no reference measured at 720p; run `make calibrate-ref"):
        host.check(["360p", "720p"], "19.0.2")
    with pytest.raises(HostReferenceError, match=r"measured with PyAV 19\.0\.2, this is 20\.0\.0"):
        host.check(["360p"], "20.0.0")
    with pytest.raises(HostReferenceError, match="cannot read the reference host"):
        load_host_reference(tmp_path / "absent.json")
    (tmp_path / "other.json").write_text('{"monolith": {}}')
    with pytest.raises(HostReferenceError, match="not a reference host file"):
        load_host_reference(tmp_path / "other.json")


def test_the_committed_reference_host_is_this_pyav_s_at_every_calibrated_size() -> None:
    import av

    host = load_host_reference()
    assert host.path == HOST_REFERENCE_PATH
    host.check(list(load().resolutions), av.__version__)
    # Bigger pictures cost more to decode
    cost = host.cpu_s_per_stream_second
    assert 0 < cost["360p"] < cost["720p"] < cost["1080p"]
    # And the committed calibration was priced against it
    assert load().data["host"]["reference"]["generated"] == host.generated


@pytest.mark.slow
def test_calibrate_reference_writes_the_unit_a_bench_then_prices_in(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a (tiny) real reference host measurement
    path = tmp_path / "host_reference.json"
    assert calibrate(["--reference", "--repeats", "1", "--duration", "2", "--sizes", "360p", "--allow-busy",
                      "--out", str(path)]) == 0
    assert "360p: reference" in capsys.readouterr().out
    host = load_host_reference(path)
    # When a bench is measured against it
    report = run_bench(duration_s=2, repeats=1, sizes=["360p"], require_quiet=False, host=host,
                       log=lambda _: None)
    row = report["results"][0]
    # Then every CPU figure is the measured one over the run's host speed, which is the reference's CPU in
    # the run over the file's
    speed = row["host_speed"]["median"]
    assert speed == pytest.approx(row["reference"]["cpu_s_per_stream_s"]["median"]
                                  / host.cpu_s_per_stream_second["360p"], rel=1e-3)
    for kind in ("decode_only", "monolith", "lambda_path", "segment_analyzer"):
        assert row[kind]["cpu_s_per_stream_s"]["median"] == pytest.approx(
            row[kind]["measured_cpu_s_per_stream_s"]["median"] / speed, rel=1e-3), kind
    assert report["host_reference"]["file"] == "host_reference.json"
    # And a calibration against a reference host of another PyAV is refused before anything is measured
    data = json.loads(path.read_text())
    data["machine"]["av"] = "0.0.1"
    path.write_text(json.dumps(data))
    with pytest.raises(HostReferenceError, match=r"measured with PyAV 0\.0\.1"):
        run_bench(duration_s=2, repeats=1, sizes=["360p"], require_quiet=False,
                  host=load_host_reference(path), log=lambda _: None)


def test_smaller_pictures_get_longer_bench_streams_up_to_four_times() -> None:
    # 1080p has 9x the pixels of 360p and 2.25x those of 720p: 10 s become 40 s (capped at 4x) and 22 s
    assert [bench_seconds(name, 10) for name in ("360p", "720p", "1080p")] == [40.0, 22.0, 10.0]
    assert bench_seconds("360p", 2) == 8.0
