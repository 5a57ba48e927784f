"""The live demo's arithmetic with hand-computed numbers: when a second became readable while the stream is
still being published, each design's current lag on the board, the before's lag per stream-second taken
apart into work and emulator, the serverless design's completion times from its log lines, and the lag
table of three designs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from demo.live import LiveBoard, Publisher, current_lag, lag_table, work_per_second
from demo.serverless import seconds_analysed_at
from metering.lag import lag_report
from metering.lambda_logs import logged_at
from sample_streams.publish import PublishedSegment, second_landed_at
from text_tables import render_text


def segment(index: int, start: float, duration: float, landed: float | None) -> PublishedSegment:
    return PublishedSegment(index=index, key=f"live/s/segment-{index:05d}.ts", start_s=start,
                            duration_s=duration, landed_at=landed)


# Segments 0-2 s landed at 100, 2-4.2 s at 102.5, 4.2-6 s not yet (listed, its PUT late).
SEGMENTS = [segment(0, 0.0, 2.0, 100.0), segment(1, 2.0, 2.2, 102.5), segment(2, 4.2, 1.8, None)]


def test_a_second_is_readable_when_the_last_segment_it_overlaps_has_landed() -> None:
    assert second_landed_at(SEGMENTS, 0) == 100.0 and second_landed_at(SEGMENTS, 1) == 100.0
    assert second_landed_at(SEGMENTS, 3) == 102.5
    assert second_landed_at(SEGMENTS, 4) is None  # 4-5 s needs segment 2, not landed
    assert second_landed_at(SEGMENTS, 9) is None  # not listed at all


def test_while_publishing_a_second_past_the_listed_segments_is_not_readable_yet() -> None:
    # Given a publisher that has listed segments 0 and 1 (to 4.2 s) and is still publishing
    publisher = Publisher.__new__(Publisher)
    publisher.listed, publisher.report = SEGMENTS[:2], None
    # Then second 3 (3-4 s) is readable since 102.5, second 4 (4-5 s) is not: its end is not listed
    assert publisher.landed_at(3) == 102.5
    assert publisher.landed_at(4) is None


def test_the_current_lag_is_the_wait_of_the_oldest_published_second_not_analysed() -> None:
    landed = lambda second: second_landed_at(SEGMENTS, second)  # noqa: E731
    # On second 3 at 110: it landed at 102.5, so 7.5 s behind; on second 4 (unpublished): at the edge
    assert current_lag(3, landed, now=110.0) == pytest.approx(7.5)
    assert current_lag(0, landed, now=100.25) == pytest.approx(0.25)
    assert current_lag(4, landed, now=110.0) == 0.0


def test_the_board_shows_each_designs_second_and_lag() -> None:
    class Bars:
        def __init__(self) -> None:
            self.tasks: dict[int, dict[str, Any]] = {}

        def add_task(self, description: str, total: Any = None) -> int:
            self.tasks[len(self.tasks)] = {"description": description}
            return len(self.tasks) - 1

        def update(self, task: int, **fields: Any) -> None:
            self.tasks[task].update(fields)

    publisher = Publisher.__new__(Publisher)
    publisher.listed, publisher.report, publisher.edge_s = SEGMENTS[:2], None, 4.2
    bars = Bars()
    board = LiveBoard(bars, publisher, ("before", "after"))
    board.update({"before": 1, "after": 4}, now=104.0)
    assert bars.tasks[0]["completed"] == 4  # the edge, in whole seconds
    assert bars.tasks[1] == {"description": "before     lag   4.0 s", "completed": 1}
    assert bars.tasks[2] == {"description": "after      lag   0.0 s", "completed": 4}
    # And once a design has finished the stream, it is done, whatever its last second's landing
    board.update({"before": 2, "after": 4}, now=120.0, done={"after"})
    assert bars.tasks[1]["description"] == "before     lag  17.5 s"  # second 2 landed at 102.5: 120 - 102.5
    assert bars.tasks[2]["description"].split() == ["after", "done"]


def test_the_befores_lag_is_taken_apart_into_work_and_emulator() -> None:
    # Given 10 stream-seconds in 60 s of wall time: the converter (2,048 MB) busy 10 s of which 4 s CPU,
    # the detectors (1,024 MB) busy 5, 6 and 7 s, with 2, 2 and 3 s of CPU
    def fn(busy: float, cpu: float, mb: int) -> dict[str, Any]:
        return {"duration_s": busy, "cpu_s": cpu, "memory_mb": mb}

    bill = {"stream_seconds": 10, "wall_s": 60.0, "lambda_functions": {
        "converter": fn(10.0, 4.0, 2048), "detector-freeze": fn(5.0, 2.0, 1024),
        "detector-block": fn(6.0, 2.0, 1024), "detector-av-sync": fn(7.0, 3.0, 1024),
        "corrective-action": fn(1.0, 0.1, 256)}}
    work = work_per_second(bill)
    # Then per stream-second: 6 s wall; the critical path (converter, then the slowest detector) 1.7 s;
    # the emulator the other 4.3 s; all the functions' CPU 1.1 s
    assert work["wall_s"] == 6.0 and work["critical_path_busy_s"] == 1.7 and work["emulator_s"] == 4.3
    assert work["cpu_s"] == 1.1
    # And on AWS the converter's 4 s run at a full vCPU (2,048 MB >= 1,769), the slowest detector's
    # 3 s at 1,024 / 1,769 of one: 5.182 s; (4 + 5.182) / 10 = 0.918 s per stream-second
    assert work["critical_path_aws_cpu_s"] == pytest.approx(0.918, abs=0.001)


def test_the_serverless_designs_seconds_are_done_when_its_segment_line_is_written() -> None:
    def line(message: str, stream: str, seconds: list[int], at: str, recorded: bool = True) -> str:
        return json.dumps({"message": message, "stream_id": stream, "seconds": seconds, "recorded": recorded,
                           "timestamp": f"2026-12-07 12:00:{at}+0000", "function_request_id": "r"})

    messages = [line("segment analysed", "s", [], "00,000"),
                line("segment analysed", "s", [0, 1], "02,500"),
                line("segment analysed", "other", [2], "03,000"),
                line("segment analysed", "s", [2, 3], "04,250", recorded=False),  # a concurrent copy
                line("segment analysed", "s", [2, 3], "04,750"),
                "REPORT RequestId: r Duration: 1.0 ms", line("segment duplicate", "s", [], "05,000")]
    base = logged_at("2026-12-07 12:00:00,000+0000")
    done = {k: round(v - base, 3) for k, v in seconds_analysed_at(messages, "s").items()}
    assert done == {0: 2.5, 1: 2.5, 2: 4.75, 3: 4.75}
    assert base == pytest.approx(1796644800.0)  # 2026-12-07 12:00:00 UTC


def test_the_lag_table_has_a_row_per_design_and_measure() -> None:
    # Seconds 0-3 landed at 100 (0-1) and 102.5 (2-3); done at 101, 102, 104, 106: lags 1, 2, 1.5, 3.5
    landed = lambda second: second_landed_at(SEGMENTS, second)  # noqa: E731
    kept = lag_report({0: 101.0, 1: 102.0, 2: 104.0, 3: 106.0}, [(1, 103.0)], landed)
    assert kept["per_second_s"] == {0: 1.0, 1: 2.0, 2: 1.5, 3: 3.5}
    text = render_text(lag_table({"before": kept, "serverless": kept}))
    rows = [line.split() for line in text.splitlines() if line.split()[0] in ("before", "serverless")]
    # p50 of 1, 1.5, 2, 3.5 is 1.75; p95 3.275; slope: cov 3.5 / var 5 = 0.7 s per stream-second (grows);
    # the defect notice: 103 - 100 = 3 s
    assert rows[0][:8] == ["before", "stream-second", "4", "1.75", "3.275", "3.5", "0.7", "NO"]
    assert rows[1][:7] == ["before", "defect", "notice", "1", "3", "3", "3"]
    assert [r[0] for r in rows] == ["before", "before", "serverless", "serverless"]
