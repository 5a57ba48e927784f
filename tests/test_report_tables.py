"""The plain-text tables of the reports (text_tables): rich's layout, the reports' numbers."""

from __future__ import annotations

from typing import Any

from demo.bench import table
from monolith.cli import format_report
from text_tables import render_text, text_table


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().split("  ") if cell.strip()]


def test_text_is_printed_as_it_is_and_lines_carry_no_padding() -> None:
    # Given a cell that looks like rich markup and a line longer than any terminal
    t = text_table("name", "value", right=("value",))
    t.add_row("[bold]x[/bold]", "0.0500 [0.0450–0.0550]")
    long_line = "word " * 60
    text = render_text(long_line.strip(), t)
    lines = text.splitlines()
    # Then the line is not wrapped, the markup is text, and no line ends in spaces
    assert lines[0] == long_line.strip()
    assert _cells(lines[-1]) == ["[bold]x[/bold]", "0.0500 [0.0450–0.0550]"]
    assert all(line == line.rstrip() for line in lines) and not text.endswith("\n")


def test_analyze_report_lists_each_defect_with_its_details() -> None:
    report = {"source": "x.mp4", "duration_s": 12.0, "video": {"width": 320, "height": 180, "fps": 25.0},
              "audio": {"sample_rate": 48000, "channels": 2},
              "defects": [{"type": "freeze", "start_s": 3.0, "end_s": 6.04, "confidence": 0.9},
                          {"type": "av_sync", "start_s": 9.0, "end_s": 12.0, "confidence": 0.77,
                           "offset_ms": 240.0}]}
    lines = format_report(report).splitlines()
    assert lines[0] == "x.mp4: 12.00 s, 320x180 @ 25 fps, 48000 Hz x2"
    assert _cells(lines[2]) == ["type", "start s", "end s", "conf", "details"]
    assert _cells(lines[4]) == ["freeze", "3.00", "6.04", "0.90"]
    assert _cells(lines[5]) == ["av_sync", "9.00", "12.00", "0.77", "offset_ms=240.0"]
    assert format_report({**report, "defects": []}).splitlines()[1] == "  no defects found"


def test_the_localstack_bench_table_keeps_its_rows_and_ratios() -> None:
    def lambda_run(wall: float) -> dict[str, Any]:
        return {"wall_per_stream_s": wall, "handler_s_per_stream_s": 0.9, "cpu_s_per_stream_s": 0.5,
                "s3_requests_per_stream_s": 104.0, "state_transitions_per_stream_s": 10.05,
                "by_function_s_per_stream_s": {"converter": 0.4, "freeze": 0.2}}

    def after_run(wall: float) -> dict[str, Any]:
        return {"wall_per_stream_s": wall, "job_wall_per_stream_s": 0.2, "cpu_s_per_stream_s": 0.1,
                "s3_requests_per_stream_s": 0.25, "sqs_requests_per_stream_s": 0.3}

    result = {"stream": {"seconds": 20, "width": 640, "height": 360, "fps": 25}, "deploy_s": 12.34,
              "lambda": {"cold": lambda_run(2.0), "warm": lambda_run(1.5)},
              "after": {"run 1": after_run(0.5), "run 2": after_run(0.4)},
              "monolith": {"cpu_per_stream_s": 0.05, "wall_per_stream_s": 0.06}}
    text = table(result)
    rows = {cells[0]: cells[1:] for cells in map(_cells, text.splitlines()) if cells}
    assert text.splitlines()[0] == "20 stream-seconds at 640x360 25 fps (deploy 12.3 s)"
    assert rows["per stream-second"] == ["wall s", "busy s", "CPU s"]
    assert rows["LocalStack, Lambda path (warm)"] == ["1.500", "0.900", "0.500"]
    assert rows["LocalStack, after, one task (run 2)"] == ["0.400", "0.200", "0.100"]
    assert rows["monolith (one process)"] == ["0.060", "-", "0.050"]
    # busy 0.9 / monolith CPU 0.05 = 18x; CPU 0.5 / 0.05 = 10x; 0.5 / after's 0.1 = 5x; wall 1.5 / 0.4
    assert "Lambda-path busy time / monolith CPU time: 18.0x" in text
    assert "Lambda-path CPU time / monolith CPU time: 10.0x" in text
    assert "Lambda-path CPU time / after's CPU time: 5.0x" in text
    assert "end-to-end wall time, before (warm) / after (run 2): 3.8x" in text
    assert rows["requests per stream-second"] == ["S3", "SQS", "transitions"]
    assert rows["before (warm)"] == ["104.00", "0.00", "10.05"]
    assert rows["after (run 2)"] == ["0.25", "0.30", "0.00"]


def test_the_localstack_bench_table_shows_the_three_designs_lag_on_one_live_stream() -> None:
    def lag(p50: float, keeps_up: bool) -> dict[str, Any]:
        return {"seconds": {"count": 20, "p50_s": p50, "p95_s": p50 * 2, "max_s": p50 * 3,
                            "slope_s_per_s": 0.01 if keeps_up else 2.5, "keeps_up": keeps_up},
                "defects": {"count": 3, "p50_s": p50 + 1, "p95_s": p50 + 2, "max_s": p50 + 3,
                            "slope_s_per_s": None, "keeps_up": None, "lags_s": []}}

    run = {"wall_per_stream_s": 1.0, "handler_s_per_stream_s": 0.9, "cpu_s_per_stream_s": 0.5,
           "s3_requests_per_stream_s": 104.0, "state_transitions_per_stream_s": 10.05,
           "by_function_s_per_stream_s": {"converter": 0.4}, "job_wall_per_stream_s": 0.2,
           "sqs_requests_per_stream_s": 0.3}
    result = {"stream": {"seconds": 20, "width": 640, "height": 360, "fps": 25}, "deploy_s": 1.0,
              "lambda": {"cold": run, "warm": run}, "after": {"run 1": run, "run 2": run},
              "monolith": {"cpu_per_stream_s": 0.05, "wall_per_stream_s": 0.06},
              "live": {"speed": 1.0, "lag": {"before": lag(40.0, False), "after": lag(1.0, True),
                                             "serverless": lag(2.5, True)},
                       "before_work_per_stream_s": {"wall_s": 4.25, "critical_path_busy_s": 2.42,
                                                    "emulator_s": 1.83}}}
    text = table(result)
    rows = {(cells[0], cells[1]): cells[2:] for cells in map(_cells, text.splitlines()) if len(cells) > 2}
    assert "live, x1 real time, the three designs on one publisher (lag in s):" in text
    assert rows[("before", "stream-second")] == ["20", "40", "80", "120", "2.5", "NO (lag grows)"]
    assert rows[("after", "stream-second")] == ["20", "1", "2", "3", "0.01", "yes"]
    assert rows[("serverless", "defect notice")] == ["3", "3.5", "4.5", "5.5", "-", "-"]
    assert "before per stream-second: 4.250 s wall, 2.420 s of it the functions on the critical path, " \
           "1.830 s the emulator" in text
