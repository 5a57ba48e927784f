"""The built event-driven design (variant well-architected) in the cost model: its counts by hand for a
small case, its GB-seconds against memory size and the size the rule picks, its ceiling, and
`count --summary` on a demo summary that holds its run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cm_helpers import run

from calibration import Calibration
from cost_model.inputs import InputError
from cost_model.prices import PriceBook
from cost_model.segments import (
    chosen_memory,
    memory_curve,
    pipeline_cpu,
    segment_lines,
    segment_quota,
    segment_usage,
    stream_counts,
    uniform_spans,
)
from lambdas.segment_analyzer.settings import SegmentSettings
from sample_streams import generate_stream

DATA = Path(__file__).parent / "data"
BOOK = PriceBook("us-east-1")


def usage(segment_seconds: float = 6.0, cpu_s: float = 0.2, defects_per_hour: float = 60.0, **kw: Any):
    return segment_usage(segment_seconds=segment_seconds, cpu_s=cpu_s, settings=SegmentSettings(**kw),
                         defects_per_hour=defects_per_hour, cpu_source="a round figure",
                         log_bytes_per_invocation=1000)


def test_one_stream_of_60_s_in_6_s_segments_with_one_defect_by_hand() -> None:
    # Given 1 stream of 60 s published as 10 segments of 6 s, one defect
    counts = stream_counts(uniform_spans(60, 6), 60, defects=1)
    # Then the windows: segment 0 reads itself (it only learns the origin), segment 1 reads 0 and 1, every
    # later one reads the one before its predecessor too (the audio preroll of the first second it gives
    # out starts 0.5 s + 0.5 s of slack before it): 1 + 2 + 8 x 3 = 27 segment GETs
    assert counts.window_gets == 27
    # + a playlist GET and a state GET per segment: 27 + 10 + 10 = 47 GETs
    assert counts.s3_get == 47
    # Segment 0 gives out no second; 1..9 each write one results object: 9, + 10 state PUTs = 19 PUTs
    assert (counts.results_puts, counts.s3_put) == (9, 19)
    # Every segment and every playlist rewrite is an S3 event on EventBridge: 20
    assert counts.events == 20 and counts.defects == 1


def test_segments_that_straddle_seconds_by_hand() -> None:
    # Given the segment analyser's test stream: 12 s cut at 0, 3.2, 6.4 and 9.6 s (seconds 3, 6 and 9
    # straddle two segments)
    counts = stream_counts([(0.0, 3.2), (3.2, 3.2), (6.4, 3.2), (9.6, 2.4)], 12)
    # Then segment 1 gives out seconds 0-3 (reading 0, 1), segment 2 seconds 4-6 (reading 0, 1, 2: second
    # 4's preroll reaches 3.0 s, inside segment 0), segment 3, the end, 7-11 (reading 1, 2, 3)
    assert (counts.window_gets, counts.results_puts) == (1 + 2 + 3 + 3, 3)


def test_per_stream_second_and_priced_by_hand() -> None:
    # Given 6 s segments, 0.2 CPU-s per stream-second at the stack's 1,769 MB, 60 defects an hour
    u = usage()
    # Then per stream-second: 1/6 segment = 1/6 invocation, + 1/30 stall-watch check (one per 30 s, the
    # stack's stall timeout); GETs 3 window + 1 playlist + 1 state per segment = 5/6, + 1/30 state per
    # check; PUTs 1 results + 1 state per segment + 1/60 corrective record = 2/6 + 1/60; 2/6 events;
    # SQS 3/6 + 3/30 = 0.6 (send, receive, batch delete for each segment and each check)
    assert u.invocations == pytest.approx(1 / 6) and u.watch_checks == pytest.approx(1 / 30)
    assert u.s3_get == pytest.approx(5 / 6 + 1 / 30)
    assert u.s3_put == pytest.approx(2 / 6 + 1 / 60)
    assert (u.events, u.sqs_requests) == (pytest.approx(2 / 6), pytest.approx(0.6))
    # GB-s: 0.2 CPU-s at one full vCPU, billed at 1,769 MB: 0.2 x 1769 / 1024 = 0.345508 per stream-second;
    # one environment busy 0.2 of the time: 1.2 s per 6 s segment
    assert u.gb_s == pytest.approx(0.34550781)
    assert (u.duration_per_segment_s, u.lambda_concurrency) == (pytest.approx(1.2), pytest.approx(0.2))
    # Priced for 1 stream x 1 hour: 3,600 stream-seconds
    lines = {x["unit"]: x for x in segment_lines(u, streams=1, hours=1, architecture="x86_64", book=BOOK)}
    # Lambda requests: 600 segments + 120 checks + 60 corrective actions = 780 x $0.20 per million
    assert lines["requests"]["quantity"] == pytest.approx(780)
    assert lines["requests"]["monthly_usd"] == pytest.approx(0.000156)
    # GB-s: 0.345508 x 3,600 = 1,243.83 x $0.0000166667 = $0.0207305
    assert lines["GB-seconds (x86_64)"]["monthly_usd"] == pytest.approx(0.0207305, rel=1e-5)
    # S3: 1,260 PUTs x $0.005 per 1,000 = $0.0063; 3,120 GETs x $0.0004 per 1,000 = $0.001248
    assert lines["PUT requests (results, state, actions)"]["quantity"] == pytest.approx(1260)
    assert lines["PUT requests (results, state, actions)"]["monthly_usd"] == pytest.approx(0.0063)
    assert lines["GET requests (playlist, windows, state)"]["monthly_usd"] == pytest.approx(0.001248)
    # EventBridge 1,200 events = $0.0012; SQS 2,160 requests x $0.40 per million = $0.000864
    assert lines["S3 object events"]["monthly_usd"] == pytest.approx(0.0012)
    assert lines["requests (send, receive, delete)"]["monthly_usd"] == pytest.approx(0.000864)


def test_gb_seconds_are_flat_up_to_one_vcpu_and_the_rule_picks_the_stacks_memory() -> None:
    # Given 0.2 CPU-s per stream-second and 2 s segments
    curve = {row["memory_mb"]: row for row in memory_curve(0.2, 2.0, SegmentSettings().memory_mb)}
    # Then at 128 MB (128/1769 of a vCPU) the work lasts 0.2 x 1769/128 = 2.764 s per stream-second and
    # bills 2.764 x 0.125 GB = 0.345508 GB-s: the same as at 1,769 MB (0.2 s x 1.7275 GB)
    assert curve[128]["gb_s_per_stream_s"] == pytest.approx(0.34550781)
    assert curve[1769]["gb_s_per_stream_s"] == pytest.approx(0.34550781)
    # ... but a 2 s segment takes 5.53 s there: that stream falls behind; at 1,769 MB it takes 0.4 s
    assert not curve[128]["keeps_up"] and curve[1769]["duration_per_segment_s"] == pytest.approx(0.4)
    # Above one vCPU there is no more CPU to have: 4,096 MB bills 0.2 s x 4 GB = 0.8 GB-s
    assert curve[4096]["gb_s_per_stream_s"] == pytest.approx(0.8)
    # The rule (least GB-s, then the shortest duration) picks 1,769 MB: what the stack configures
    assert chosen_memory(list(curve.values())) == 1769 == SegmentSettings().memory_mb


def test_counts_prints_the_curve_and_fails_when_the_stack_strays_from_the_rule(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run(capsys, "counts", "--variant", "well-architected", "--json")
    assert code == 0, err
    document = json.loads(out)
    assert document["memory"] == {"configured_mb": 1769, "rule_picks_mb": 1769, "agree": True,
                                  "rule": document["memory"]["rule"]}
    # When the stack configured 3,008 MB, the check says so and exits 1
    import cost_model.cli.common as common

    monkeypatch.setattr(common, "SegmentSettings", lambda **kw: SegmentSettings(memory_mb=3008, **kw))
    code, out, _ = run(capsys, "counts", "--variant", "well-architected")
    assert code == 1 and "picks 1,769 MB: the stack configures 3,008 MB instead" in out


def test_the_ceiling_and_what_3000_streams_must_raise_by_hand() -> None:
    # Given 0.2 environments busy per stream (0.2 CPU-s per stream-second at one vCPU), 2 s segments,
    # the stack's reserved concurrency of 20
    q = segment_quota(usage(segment_seconds=2.0), streams=3000, region="us-east-1")
    ceilings = {q["max_concurrent_streams"]: q["limit"]} | {
        o["max_concurrent_streams"]: o["limit"] for o in q["other_limits"]}
    # Then: reserved 20 / 0.2 = 100 streams; the account's 1,000 less 100 unreserved / 0.2 = 4,500; the
    # event source's 1,000 batches / 0.2 = 5,000; 3,500 state PUTs/s x 2 s = 7,000; EventBridge's 18,750
    # invocations/s x 2 s = 37,500
    assert sorted(ceilings) == [100, 4500, 5000, 7000, 37500]
    assert q["max_concurrent_streams"] == 100 and "reserved concurrency 20" in q["limit"]
    # 3,000 streams keep 600 environments busy: only the stack's setting must be raised, to 600
    assert q["environments_needed"] == 600
    assert q["to_raise"] == [
        "the stack's reserved concurrency from 20 to at least 600 (a setting and a deploy)"]
    # At 0.4 CPU-s per stream-second they need 1,200: the account's limit too (to 1,300), and provisioned
    # event-source mode
    q = segment_quota(usage(segment_seconds=2.0, cpu_s=0.4), streams=3000, region="us-east-1")
    assert len(q["to_raise"]) == 3 and "from 1,000 to at least 1,300" in q["to_raise"][1]
    # A FIFO queue would have bound at 300 sends/s x 2 s = 600 streams (a note: the stack's is standard)
    assert any("600 streams at 2 s segments" in note for note in q["notes"])


def serverless_run() -> dict[str, Any]:
    """The `serverless` object of `make demo`'s summary, shaped as demo/serverless.py writes it, with the
    figures of the run of 2026-12-07 12:55 the README quotes (20 s at 640x360 as 10 segments of 2 s, all
    in one batch; 3 defects)."""
    defects = [{"type": t} for t in ("freeze", "block_corruption", "av_sync")]
    return {
        "stream_seconds": 20, "status": "SUCCEEDED", "defects": defects, "segments": 10,
        "published": {"segments": [{"index": i, "start_s": 2.0 * i, "duration_s": 2.0} for i in range(10)]},
        "architecture": "serverless",
        "s3_requests": {"put": 22, "get": 47, "list": 0, "head": 0, "total": 69,
                        "by_source": {"corrective-action": {"PutObject": 3},
                                      "segment-analyzer": {"GetObject": 47, "PutObject": 19}}},
        "sqs_requests": {"DeleteMessageBatch": 1, "ReceiveMessage": 1, "SendMessage": 10, "total": 12},
        "sns_publishes": 3, "eventbridge_events": 20, "lambda_invocations": 4,
        "lambda_functions": {
            "segment-analyzer": {"invocations": 1, "cpu_s": 1.94, "memory_mb": 1769, "gb_seconds": 3.3514},
            "corrective-action": {"invocations": 3, "cpu_s": 0.1, "memory_mb": 256, "gb_seconds": 0.3176},
        },
    }


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's sample: 20 s at 640x360, 25 fps, with sound (the stream the summary's runs analysed)."""
    path = tmp_path_factory.mktemp("demo") / "sample.mp4"
    generate_stream(path)
    return path


def summary_with(tmp_path: Path, serverless: dict[str, Any], sample: Path) -> Path:
    data = json.loads((DATA / "demo-summary.json").read_text())
    data["serverless"] = serverless
    data["stream_path"] = str(sample)  # 640x360: the calibration's 360p row prices the modelled GB-s
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(data))
    return path


def test_count_checks_the_built_designs_run_of_a_summary(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, sample: Path
) -> None:
    # Given a demo summary holding the built design's run of a 20 s stream in 10 segments of 2 s
    path = summary_with(tmp_path, serverless_run(), sample)
    # When counted strictly (the before's rows are counted from chaplin, the summary's stream_path)
    code, out, err = run(capsys, "count", "--summary", str(path), "--json")
    assert code == 0, err
    rows = {r["quantity"]: r for r in json.loads(out)["check"] if r["quantity"].startswith("serverless")}
    # Then, by hand: GETs 10 playlist + 10 state + (1 + 2 + 8 x 3) windows = 47; PUTs 10 state + 9
    # results = 19; 20 events; 10 sends; 3 publishes; 3 corrective invocations + 3 records: all equal
    expected = {"serverless S3 GET": 47, "serverless S3 PUT": 19, "serverless EventBridge events": 20,
                "serverless SQS SendMessage": 10, "serverless SNS publishes": 3,
                "serverless corrective actions": 6}
    assert {name: rows[name]["analytic"] for name in expected} == expected
    assert all(rows[name]["equal"] is True for name in expected)
    # Invocations (one batch of 10 here), receives and GB-seconds depend on timing: shown, not checked
    assert rows["serverless analyser invocations"]["equal"] is None
    assert "between 1 (full batches of 10) and 10" in rows["serverless analyser invocations"]["note"]
    gb_s = rows["serverless analyser GB-seconds"]
    assert gb_s["equal"] is None and gb_s["measured"] == 3.3514 and "360p" in gb_s["note"]
    # When the run wrote a results object per second instead, --strict fails on that row
    broken = serverless_run()
    broken["s3_requests"]["by_source"]["segment-analyzer"]["PutObject"] = 30
    code, out, _ = run(capsys, "count", "--summary", str(summary_with(tmp_path, broken, sample)), "--strict")
    assert code == 1 and "serverless S3 PUT" in out and "≠" in out


def test_the_stall_watches_a_run_armed_are_shown_beside_their_model(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, sample: Path
) -> None:
    # Given the same 20 s run whose stream armed 2 stall watches (the first segment's, and one more)
    watched = serverless_run()
    watched["sqs_requests"]["stall_watch_SendMessage"] = 2
    code, out, err = run(capsys, "count", "--summary", str(summary_with(tmp_path, watched, sample)), "--json")
    assert code == 0, err
    rows = {r["quantity"]: r for r in json.loads(out)["check"]}
    # Then at real time a 20 s stream arms ceil(20 / 30) + 1 = 2 (the first, and one when it fires): shown
    # beside the 2 measured, not checked (a stream published faster arms fewer)
    row = rows["serverless stall watches armed"]
    assert (row["analytic"], row["measured"], row["equal"]) == (2, 2, None)
    # And a run without stall watches has no such row
    code, out, _ = run(capsys, "count", "--summary", str(summary_with(tmp_path, serverless_run(), sample)),
                       "--json")
    assert "serverless stall watches armed" not in {r["quantity"] for r in json.loads(out)["check"]}


def test_count_refuses_a_serverless_run_it_cannot_read(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, sample: Path
) -> None:
    bad = serverless_run()
    del bad["published"]
    bad["segments"] = "ten"
    code, _, err = run(capsys, "count", "--summary", str(summary_with(tmp_path, bad, sample)))
    assert code == 2 and "serverless: segments must be the number of segments published" in err
    assert err.count("\n") == 1


def test_a_retried_segment_reads_the_state_again_within_a_stated_bound(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, sample: Path
) -> None:
    # Given the same run where 2 segments came before their predecessor and were handed back: 2 more state
    # GETs (and at most 2 more playlist GETs), 2 more receives
    retried = serverless_run()
    retried["sqs_requests"]["ChangeMessageVisibility"] = 2
    retried["s3_requests"]["by_source"]["segment-analyzer"]["GetObject"] = 47 + 2
    retried["lambda_functions"]["segment-analyzer"]["invocations"] = 12
    code, out, err = run(capsys, "count", "--summary", str(summary_with(tmp_path, retried, sample)), "--json")
    rows = {r["quantity"]: r for r in json.loads(out)["check"]}
    # Then the GETs are shown within 47 + 2 .. 47 + 4, not checked for equality; 12 invocations fit 1..12
    assert code == 0, err
    assert rows["serverless S3 GET"]["equal"] is None and "49..51" in rows["serverless S3 GET"]["note"]
    assert rows["serverless analyser invocations"]["equal"] is None
    # But 6 more GETs than that bound allows is a failure
    retried["s3_requests"]["by_source"]["segment-analyzer"]["GetObject"] = 47 + 8
    code, out, _ = run(capsys, "count", "--summary", str(summary_with(tmp_path, retried, sample)), "--strict")
    assert code == 1 and "serverless S3 GET" in out


def test_the_function_is_priced_from_its_own_calibration_row_else_from_the_monoliths_saying_so() -> None:
    monolith = {"cpu_s_per_stream_second": {"1080p": {"median": 0.3, "min": 0.3, "max": 0.3, "runs": 1}}}
    own = {"cpu_s_per_stream_second": {"1080p": {"median": 0.45, "min": 0.4, "max": 0.5, "runs": 1}}}
    # Given a calibration with the segment analyser's row, Then the function's CPU is that row's median
    both = Calibration({"monolith": monolith, "segment_analyzer": own}, Path("c"))
    cpu, source = pipeline_cpu(both, "1080p")
    assert cpu == 0.45 and "segment-analyser row" in source
    # Given one measured before that row existed, Then the monolith's, and the source says so
    cpu, source = pipeline_cpu(Calibration({"monolith": monolith}, Path("c")), "1080p")
    assert cpu == 0.3 and "no segment-analyser row" in source and "make calibrate" in source
    # Given neither at that resolution, Then a clear error
    with pytest.raises(InputError, match="720p"):
        pipeline_cpu(Calibration({"monolith": monolith}, Path("c")), "720p")


def test_a_stall_watchs_own_invocation_is_within_the_invocations_bound(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, sample: Path
) -> None:
    # Given the run's 10 segments each in an invocation of its own, and 1 more invocation that only
    # checked the stream's stall watch (11 REPORT lines naming the stream)
    watched = serverless_run()
    watched["lambda_functions"]["segment-analyzer"]["invocations"] = 11
    # When the bill does not say a watch had invocations, Then 11 is outside 1..10
    _, out, _ = run(capsys, "count", "--summary", str(summary_with(tmp_path, watched, sample)), "--json")
    rows = {r["quantity"]: r for r in json.loads(out)["check"]}
    assert rows["serverless analyser invocations"]["equal"] is False
    # When it says 1 invocation carried stall-watch requests, Then 11 fits 1..11
    watched["stall_watch_invocations"] = 1
    _, out, _ = run(capsys, "count", "--summary", str(summary_with(tmp_path, watched, sample)), "--json")
    rows = {r["quantity"]: r for r in json.loads(out)["check"]}
    assert rows["serverless analyser invocations"]["equal"] is None
    assert "and 11 (one segment each" in rows["serverless analyser invocations"]["note"]


def test_duplicate_deliveries_and_unfinished_invocations_are_within_the_bound_and_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, sample: Path
) -> None:
    # Given 10 segments in 13 invocations: 10 completed, of which 1 received a segment already analysed
    # (a duplicate delivery), and 2 that logged no requests (failed or timed out: their batch came back)
    run_ = serverless_run()
    run_["lambda_functions"]["segment-analyzer"]["invocations"] = 13
    run_.update(analyser_invocations_completed=11, duplicate_deliveries=1)
    _, out, _ = run(capsys, "count", "--summary", str(summary_with(tmp_path, run_, sample)), "--json")
    row = {r["quantity"]: r for r in json.loads(out)["check"]}["serverless analyser invocations"]
    # Then 13 fits 1 .. 10 + 1 + 2, each cause named
    assert row["equal"] is None and "and 13 (one segment each" in row["note"]
    assert "+ 1 duplicate deliveries, + 2 that failed or timed out" in row["note"]
    # But 14 with the same causes is outside it
    run_["lambda_functions"]["segment-analyzer"]["invocations"] = 14
    run_["analyser_invocations_completed"] = 12
    _, out, _ = run(capsys, "count", "--summary", str(summary_with(tmp_path, run_, sample)), "--json")
    rows = {r["quantity"]: r for r in json.loads(out)["check"]}
    assert rows["serverless analyser invocations"]["equal"] is False
