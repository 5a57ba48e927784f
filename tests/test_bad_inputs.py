"""Bad inputs refused clearly: `monolith analyze` on broken and hostile files (one line naming the file,
exit 2, no traceback), the converter's request checks (before anything is read), and the test-only fault
plan the LocalStack tests rely on (tests/e2e/test_e2e_reliability.py runs the same files through the
deployed workflow)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from bad_media import make_bad_files, video_only

from lambdas.converter.service import ConvertRequest
from lambdas.shared.faults import ENV as FAULTS_ENV
from lambdas.shared.faults import FaultPlan, TransientError, inject_faults
from lambdas.shared.keys import InvalidRequest


def _analyze(*paths: Path | str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monolith", "analyze", *map(str, paths), "--json"],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    return make_bad_files(tmp_path_factory.mktemp("bad"))


def test_each_bad_file_gets_one_clear_line_and_exit_2(bad_files: dict[str, tuple[Path, str]],
                                                      tmp_path: Path) -> None:
    # Given every kind of bad file (empty, random bytes, truncated three ways, audio only, unknown codec,
    # a header claiming 10000x10000) and a path that does not exist
    missing = tmp_path / "missing.mp4"
    paths = [path for path, _ in bad_files.values()] + [missing]
    reasons = [reason for _, reason in bad_files.values()] + ["no such file"]
    # When they are analysed in one call
    result = _analyze(*paths)
    # Then the exit code is 2 and stderr has one line per file, naming it and saying why, in order
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == len(paths), result.stderr
    for line, path, reason in zip(lines, paths, reasons, strict=True):
        assert line.startswith(f"error: {path}: ") and reason in line, line
    # And the JSON report lists each with its reason, no defects for any
    reports = json.loads(result.stdout)
    assert [r["source"] for r in reports] == [str(p) for p in paths]
    assert all(set(r) == {"source", "error"} for r in reports)


@pytest.mark.parametrize("case", ["empty", "truncated-indexed", "truncated-live", "huge-resolution",
                                  "unknown-codec"])
def test_a_single_bad_file_exits_2_with_its_reason(bad_files: dict[str, tuple[Path, str]], case: str) -> None:
    path, reason = bad_files[case]
    result = _analyze(path)
    assert result.returncode == 2
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert line.startswith(f"error: {path}: ") and reason in line


def test_a_stream_without_audio_is_analysed_not_refused(tmp_path: Path) -> None:
    # Given a stream with video only: no audio is not an error (A/V sync has nothing to measure)
    result = _analyze(video_only(tmp_path))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["audio"] is None and report["defects"] == []


# --- the converter's request checks ---------------------------------------------------------------

GOOD = {"bucket": "streams-in", "key": "streams/cam-1.mp4", "stream_id": "cam-1", "second": 0,
        "execution": "run-1", "execution_id": "arn", "started_at": "2026-11-26T12:00:00.000Z"}


@pytest.mark.parametrize("change, message", [
    ({"bucket": "someone-elses-bucket"}, "is not a source bucket"),
    ({"bucket": 7}, "is not a source bucket"),
    ({"key": "../secrets/x.mp4"}, "'..' segments"),
    ({"key": "streams/./x.mp4"}, "'..' segments"),
    ({"key": "/streams/x.mp4"}, "relative path"),
    ({"key": "streams//x.mp4"}, "relative path"),
    ({"key": "streams/x\n.mp4"}, "control characters"),
    ({"key": "k" * 1025}, "more than S3's 1024"),
    ({"key": "é" * 513}, "1026 bytes long"),
    ({"key": ""}, "non-empty string"),
    ({"key": ["streams/x.mp4"]}, "non-empty string"),
    ({"stream_id": "../x"}, "stream_id must match"),
    ({"stream_id": "s" * 81}, "stream_id must match"),
    ({"second": -1}, "non-negative integer"),
    ({"second": True}, "non-negative integer"),
    ({"second": "1"}, "non-negative integer"),
    ({"started_at": "../../2026"}, "ISO timestamp"),
    ({"execution": "a/b"}, "execution must match"),
])
def test_converter_refuses_a_bad_request_before_reading_anything(change: dict[str, Any], message: str
                                                                 ) -> None:
    # Given a request with one bad field, When it is parsed (the handler's first step, before any S3 call)
    with pytest.raises(InvalidRequest, match=message) as refused:
        ConvertRequest.from_event({**GOOD, **change}, allowed_buckets={"streams-in"})
    # Then the message quotes the value cut short, however long it was
    assert len(str(refused.value)) < 200


@pytest.mark.parametrize("event", [{}, [], "x", {k: v for k, v in GOOD.items() if k != "key"}])
def test_converter_refuses_a_request_that_is_not_one(event: Any) -> None:
    with pytest.raises(InvalidRequest):
        ConvertRequest.from_event(event, allowed_buckets={"streams-in"})


def test_a_good_request_is_accepted_and_any_bucket_when_unrestricted() -> None:
    assert ConvertRequest.from_event(GOOD, allowed_buckets={"streams-in"}).key == "streams/cam-1.mp4"
    assert ConvertRequest.from_event({**GOOD, "bucket": "other"}, allowed_buckets=None).bucket == "other"


# --- the fault plan (test-only) -----------------------------------------------------------------


def test_fault_plan_is_reproducible_and_keeps_to_its_rates_and_streams() -> None:
    plan = FaultPlan.parse("error_rate=0.2,timeout_rate=0.05,seed=10,streams=faulty-,function_timeout_s=20")
    assert plan == FaultPlan(0.2, 0.05, 10, "faulty-", 20)
    draws = [plan.decide("freeze", "faulty-x", s, a) for s in range(2000) for a in range(2)]
    # Then the same identity always gets the same fault, the shares are near the rates, and other
    # streams get none
    assert draws == [plan.decide("freeze", "faulty-x", s, a) for s in range(2000) for a in range(2)]
    assert draws.count("error") / len(draws) == pytest.approx(0.2, abs=0.02)
    assert draws.count("timeout") / len(draws) == pytest.approx(0.05, abs=0.01)
    assert {plan.decide("freeze", "cam-1", s, 0) for s in range(200)} == {None}


@pytest.mark.parametrize("spec", ["error_rate=2", "errors=0.1", "seed=x", "error_rate=0.6,timeout_rate=0.6",
                                  "function_timeout_s=1"])
def test_fault_plan_refuses_bad_settings(spec: str) -> None:
    with pytest.raises(ValueError):
        FaultPlan.parse(spec)


def test_injected_error_comes_after_the_work_and_no_plan_leaves_the_handler_alone(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        calls.append(event["second"])
        return {"ok": True}

    # Given a plan that fails every invocation of a stream
    always = FaultPlan(error_rate=1.0, streams="faulty-")
    wrapped = inject_faults("converter", always)(handler)
    # Then the work is done (side effects happen) and the answer is lost in a TransientError
    with pytest.raises(TransientError):
        wrapped({"stream_id": "faulty-1", "second": 3, "attempt": 0}, None)
    assert calls == [3]
    # And another stream's invocation is untouched, as is any handler without a plan (production)
    assert wrapped({"stream_id": "cam-1", "second": 4}, None) == {"ok": True}
    monkeypatch.delenv(FAULTS_ENV, raising=False)
    assert inject_faults("converter")(handler) is handler
