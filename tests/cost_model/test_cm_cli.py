"""`python -m cost_model`: the compare contract, the table, the chart, prices, count, and bad input."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from cm_helpers import run

from calibration import CALIBRATION_PATH
from cost_model import measured
from cost_model import prices as price_table
from cost_model.prices import (
    AFTER_DATE,
    PURCHASES,
    REGIONS,
    RI_DATE,
    TABLE_DATE,
    US_EAST_1,
    XRAY_DATE,
    LivePricesUnavailable,
    PriceBook,
    UnknownRegion,
    live_prices,
)

MEDIA = Path(__file__).resolve().parents[2] / "media"


def test_compare_json_is_the_contract(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # Given a Prime-Video-like scenario
    code, out, _ = run(
        capsys,
        "compare",
        "--streams",
        "3000",
        "--hours",
        "730",
        "--fps",
        "25",
        "--region",
        "us-east-1",
        "--json",
    )
    # Then the JSON has exactly the contract's keys and shapes
    assert code == 0
    r = json.loads(out)
    assert {"scenario", "serverless", "monolith", "reduction_pct", "quota"} <= set(r)
    for side in ("serverless", "monolith"):
        assert isinstance(r[side]["monthly_usd"], float)
        for x in r[side]["lines"]:
            assert set(x) == {"service", "unit", "quantity", "unit_price_usd", "monthly_usd", "source"}
    assert isinstance(r["quota"]["max_concurrent_streams"], int) and isinstance(r["quota"]["limit"], str)
    assert {x["service"] for x in r["serverless"]["lines"]} >= {"Step Functions", "Lambda", "S3", "SNS"}
    assert {x["service"] for x in r["monolith"]["lines"]} >= {"EC2", "S3", "SQS", "SNS", "EBS", "ECR", "VPC"}
    # Live streams: 10 transitions a quiet second, 3 per 60 s execution, and the waits at the live edge
    # (at most one poll a second): the ceiling is the StateTransition refill over them
    transitions = r["scenario"]["per_stream_second"]["state_transitions"]
    assert 10.05 < transitions < 11.06
    assert r["reduction_pct"] >= 90 and r["quota"]["max_concurrent_streams"] == int(1500 // transitions)
    # The after has no line per stream-second: results are written every 60 s, not every second
    puts = next(x for x in r["monolith"]["lines"] if x["unit"] == "PUT requests (results)")
    assert puts["quantity"] == 3000 * 730 * 3600 / 60
    # The committed calibration is what the model read, and it names the scenario's resolution
    assert r["scenario"]["resolution"] == "1080p"
    assert any("calibration.json: measured" in note for note in r["scenario"]["inputs"])
    # Every purchase option is there; the Savings Plans have no rate unless one is given, and say so
    assert set(r["monolith"]["by_purchase"]) == set(PURCHASES)
    assert r["monolith"]["by_purchase"]["savings-1y"] is None
    assert "--sp-discount-1y" in r["monolith"]["purchase_notes"]["savings-1y"]


def _row(out: str, *first: str) -> list[str]:
    """The cells of the table row whose first words are `first` (cells split at runs of spaces)."""
    for line in out.splitlines():
        cells = [cell for cell in line.strip().split("  ") if cell]
        if [cell.strip() for cell in cells[: len(first)]] == list(first):
            return [cell.strip() for cell in cells]
    raise AssertionError(f"no row {first} in:\n{out}")


def test_compare_table_and_html_chart(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    chart = tmp_path / "cost.html"
    # Finished files: no wait at a live edge, so 10 + 3 / 60 + 2 / 3,600 transitions a stream-second
    code, out, _ = run(
        capsys, "compare", "--streams", "500", "--hours", "730", "--files", "--chart", str(chart)
    )
    assert code == 0
    assert "BEFORE" in out and "AFTER" in out and "reduction:" in out and "quota ceiling: 149" in out
    # The table's line is the JSON's line, with its unit price unrounded and its dollars grouped
    code, data, _ = run(capsys, "compare", "--streams", "500", "--hours", "730", "--files", "--json")
    line = next(x for x in json.loads(data)["serverless"]["lines"] if x["service"] == "Step Functions")
    assert line["unit_price_usd"] == pytest.approx(0.000025)
    assert _row(out, "Step Functions") == [
        "Step Functions", "state transitions", f"{line['quantity']:,.0f}", "$0.000025",
        f"${line['monthly_usd']:,.0f}",
    ]
    assert _row(out, "service") == ["service", "unit", "quantity", "unit price", "monthly"]
    text = chart.read_text()
    assert text.startswith("<!doctype html>") and "<svg" in text and "quota ceiling 149 streams" in text
    assert "well-architected, built" in text and "express-batched" in text  # the built design and the priced
    assert "ri-standard-3y" in text and "$1M" in text  # log axis in dollars


def test_compare_svg_chart_and_variant(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    chart = tmp_path / "cost.svg"
    code, out, _ = run(
        capsys,
        "compare",
        "--streams",
        "100",
        "--hours",
        "100",
        "--variant",
        "batched",
        "--chart",
        str(chart),
        "--json",
    )
    assert code == 0 and json.loads(out)["scenario"]["variant"] == "batched"
    assert chart.read_text().startswith("<svg")


def test_png_figures_with_matplotlib(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(
        capsys,
        "compare",
        "--streams",
        "10",
        "--hours",
        "10",
        "--chart",
        str(tmp_path / "c.png"),
        "--bars",
        str(tmp_path / "b.png"),
    )
    assert code == 0, err
    for name in ("c.png", "b.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_png_without_matplotlib_is_one_clear_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given matplotlib hidden (an import of it raises ImportError)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, _, err = run(
        capsys, "compare", "--streams", "10", "--hours", "10", "--chart", str(tmp_path / "c.png")
    )
    assert code == 2 and err.count("\n") == 1 and "matplotlib" in err
    assert not (tmp_path / "c.png").exists()
    # And the hand-written SVG figures still work without it
    code, _, err = run(
        capsys,
        "compare",
        "--streams",
        "10",
        "--hours",
        "10",
        "--chart",
        str(tmp_path / "c.svg"),
        "--bars",
        str(tmp_path / "b.svg"),
    )
    assert code == 0, err
    assert (
        "<svg" in (tmp_path / "c.svg").read_text()
        and "USD per stream-hour" in (tmp_path / "b.svg").read_text()
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["compare", "--streams", "0", "--hours", "730"],
        ["compare", "--streams", "-5", "--hours", "730"],
        ["compare", "--streams", "10", "--hours", "0"],
        ["compare", "--streams", "10", "--hours", "800"],
        ["compare", "--streams", "10", "--hours", "730", "--region", "mars-1"],
        ["compare", "--streams", "10", "--hours", "730", "--variant", "quantum"],
        ["compare", "--streams", "10", "--hours", "730", "--fps", "-25"],
        ["compare", "--streams", "10", "--hours", "730", "--chart", "out.pdf"],
        ["compare", "--streams", "10", "--hours", "730", "--calibrate", "/nonexistent/summary.json"],
        ["compare", "--streams", "10", "--hours", "730", "--purchase", "savings-1y"],
        ["compare", "--streams", "10", "--hours", "730", "--purchase", "ri-standard-1y", "--instance",
         "c6i.large"],
        ["compare", "--streams", "10", "--hours", "730", "--sp-discount-3y", "1.5"],
        ["what-if", "--streams", "10", "--hours", "730", "--variant", "express"],
        ["what-if", "--streams", "10", "--hours", "730", "--purchase", "savings-3y"],
        ["compare", "--streams", "10", "--hours", "730", "--resolution", "4320p"],
        ["compare", "--streams", "10", "--hours", "730", "--calibration", "/nonexistent/calibration.json"],
        ["compare", "--streams", "10", "--hours", "730", "--purchase", "reserved"],
        [
            "compare",
            "--streams",
            "10",
            "--hours",
            "730",
            "--architecture",
            "arm64",
            "--instance",
            "c6i.2xlarge",
        ],
        ["count", "--summary", "/nonexistent/summary.json", "--stream", "/nonexistent.mp4"],
        ["count", "--summary", "/nonexistent/summary.json"],
        ["counts", "--asl", "/nonexistent/asl.json"],
        ["prices", "--region", "mars-1"],
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2, (out, err)
    assert err.startswith("error: ") and err.count("\n") == 1, err


def test_count_from_a_summary_checks_transitions(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # Given a 10 s run summary: 10 x 10 + 3 (fresh start) = 103 transitions; 10 x (25 frames + audio) + 10
    # Record PUTs; 10 x 76 detector GETs + 1 stream download, 10 converter HEADs
    summary = tmp_path / "summary.json"
    summary.write_text(
        json.dumps(
            {
                "stream_seconds": 10,
                "defects": [],
                "notifications": 0,
                "corrective_actions": 0,
                "state_transitions": 103,
                "s3_requests": {"put": 270, "get": 761, "head": 10, "list": 0},
                "lambda_invocations": 40,
                "lambda_gb_seconds": 20.0,
            }
        )
    )
    code, out, _ = run(capsys, "count", "--summary", str(summary), "--json", "--strict")
    result = json.loads(out)
    assert code == 0
    assert all(row["equal"] for row in result["check"]), result["check"]
    assert result["per_stream_second"]["lambda_gb_seconds"] == pytest.approx(2.0)
    # When the summary disagrees, --strict fails
    summary.write_text(json.dumps({"stream_seconds": 10, "state_transitions": 99}))
    code, out, _ = run(capsys, "count", "--summary", str(summary), "--strict")
    assert code == 1 and "≠" in out
    # 10 x 10 + 3 = 103 transitions expected, 99 measured
    assert _row(out, "state transitions")[:4] == ["state transitions", "103", "99", "≠"]


def test_count_by_execution_arn_without_a_reachable_service(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    class Broken:
        def get_execution_history(self, **_: Any) -> dict[str, Any]:
            raise ConnectionError("no endpoint")

    monkeypatch.setattr(measured, "stepfunctions_client", lambda: Broken())
    code, _, err = run(capsys, "count", "--execution-arn", "arn:aws:states:us-east-1:1:execution:m:x")
    assert code == 2 and "cannot read the execution history" in err and err.count("\n") == 1


def test_counts_and_what_if_and_prices_print(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "counts", "--files")
    assert code == 0 and "transitions per quiet second: 10" in out
    # 10 per quiet second + 3 per 60 s execution + (1 defect second + 1 notification) per hour
    assert _row(out, "state transitions") == ["state transitions", f"{10 + 3 / 60 + 2 / 3600:,.4f}"]
    code, out, _ = run(capsys, "what-if", "--streams", "3000", "--hours", "730", "--files")
    assert code == 0 and all(
        v in out for v in ("baseline", "express", "batched", "fewer-detectors", "sampled", "express-batched",
                           "well-architected")
    )
    assert _row(out, "variant") == [
        "variant", "serverless/month", "vs baseline", "ceiling (streams)", "after (on-demand)", "after saves",
    ]
    baseline = _row(out, "baseline")
    assert baseline[2:4] == ["+0.0%", "149"] and baseline[1].startswith("$")
    assert "after (on-demand), from the measured CPU spread: $" in out
    code, out, _ = run(capsys, "prices", "--region", "us-east-1")
    assert code == 0 and _row(out, "sfn.transition")[:3] == ["sfn.transition", "2.5e-05", "state transition"]
    code, out, _ = run(capsys, "prices", "--region", "sa-east-1", "--json")
    table = json.loads(out)
    assert code == 0 and table["state_transition_refill_per_s"] == 500


# --- prices ------------------------------------------------------------------------------------------
def test_every_price_has_a_date_and_a_source_and_regions_inherit_visibly() -> None:
    for region in REGIONS:
        for row in PriceBook(region).table():
            assert row["date"] in (TABLE_DATE, AFTER_DATE, RI_DATE, XRAY_DATE) and row["usd"] > 0
            assert "https://" in row["source"], row  # a public source, in the repository
    book = PriceBook("sa-east-1")
    assert book["sfn.transition"].usd == pytest.approx(0.0375 / 1000)
    assert "NOT verified for sa-east-1" in book["s3.put"].source
    assert "NOT verified" not in PriceBook("us-east-1")["s3.put"].source
    with pytest.raises(UnknownRegion):
        PriceBook("mars-1")


class FakePricing:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.requests: list[dict[str, Any]] = []

    def get_products(self, **kw: Any) -> dict[str, Any]:
        self.requests.append(kw)
        if self.error:
            raise self.error
        usd = "0.0000250000" if kw["ServiceCode"] == "AmazonStates" else "0"
        product = {
            "terms": {
                "OnDemand": {
                    "T": {"priceDimensions": {"D": {"beginRange": "0", "pricePerUnit": {"USD": usd}}}}
                }
            }
        }
        return {"PriceList": [json.dumps(product)]}


def test_live_prices_parse_the_price_list() -> None:
    fake = FakePricing()
    found = live_prices("us-east-1", client=fake)
    assert found["sfn.transition"].usd == pytest.approx(0.000025)
    assert "Price List API" in found["sfn.transition"].source
    assert "lambda.request" not in found  # a zero price is not taken
    assert {"Type": "TERM_MATCH", "Field": "regionCode", "Value": "us-east-1"} in fake.requests[0]["Filters"]


def test_live_prices_without_credentials_say_so() -> None:
    from botocore.exceptions import NoCredentialsError

    with pytest.raises(LivePricesUnavailable, match="no AWS credentials"):
        live_prices("us-east-1", client=FakePricing(NoCredentialsError()))


def test_live_prices_flag_falls_back_with_a_message(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(region: str, **_: Any) -> Any:
        raise LivePricesUnavailable(
            "cannot read live prices: no AWS credentials found; using the stored table"
        )

    monkeypatch.setattr(price_table, "live_prices", unavailable)
    code, out, err = run(capsys, "compare", "--streams", "10", "--hours", "10", "--live-prices")
    assert code == 0 and "cannot read live prices" in err and "BEFORE" in out


def test_us_east_1_table_has_the_facts_numbers() -> None:
    assert US_EAST_1["sfn.transition"].usd == pytest.approx(0.000025)
    assert US_EAST_1["s3.put"].usd == pytest.approx(0.000005)
    assert US_EAST_1["s3.get"].usd == pytest.approx(0.0000004)
    assert US_EAST_1["lambda.gb_s.x86_64.1"].usd == pytest.approx(0.0000166667)
    assert US_EAST_1["ec2.c6i.2xlarge"].usd == pytest.approx(0.34)
    assert US_EAST_1["ec2.c7g.2xlarge"].usd == 0.29  # three sources agree; not 0.289
    assert US_EAST_1["xray.trace"].usd == pytest.approx(0.000005)


def test_the_code_cites_sources_a_user_has() -> None:
    # Every fact file the cost model cites is in the repository; none points at notes outside it
    package = Path(price_table.__file__).parent
    sources = (package / "SOURCES.md").read_text()
    for module in package.rglob("*.py"):
        assert "aws-facts" not in module.read_text(), module
    # And the Reserved Instance rates the code prices are the ones SOURCES.md gives with their source
    for instance, rates in price_table.RESERVED.items():
        row = next(line for line in sources.splitlines() if line.startswith(f"| {instance} |"))
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert [float(c) for c in cells[1:]] == [US_EAST_1[f"ec2.{instance}"].usd, *rates], instance
    assert "yeo/ec2.shop" in sources and "73696e380ae600b175f859850a726edebd1de72f" in sources


def test_count_accepts_a_real_demo_summary_and_every_count_matches(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given the summary that `make demo` wrote for its 20 s sample on LocalStack (kept as test data)
    summary = Path(__file__).parent / "data" / "demo-summary.json"
    # When counted strictly against the workflow definition
    code, out, err = run(capsys, "count", "--summary", str(summary), "--json", "--strict")
    # Then transitions, invocations, PUTs and GETs derived from the definitions equal the measured ones
    assert code == 0, err
    result = json.loads(out)
    rows = {row["quantity"]: row for row in result["check"]}
    assert {"state transitions", "Lambda invocations", "S3 PUT", "S3 GET/HEAD"} <= set(rows)
    assert all(row["equal"] for row in rows.values()), rows
    # And the executions, counted from the summary's execution ARNs, are what the definition implies
    assert rows["executions"]["measured"] == rows["executions"]["analytic"] == 1


def test_count_checks_the_after_of_a_summary(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # Given the demo's summary with the after's run of the same 20 s stream, results every 5 s, a heartbeat
    # every 4 s: by hand 4 results PUTs, 1 GET, 1 receive + 1 delete, (20 - 1) // 4 = 4 extensions,
    # 3 publishes;
    # 2 of the receives came back empty (idle polling, reported apart)
    data = json.loads((Path(__file__).parent / "data" / "demo-summary.json").read_text())
    data["after"] = {
        "stream_seconds": 20,
        "defects": data["defects"],
        # as metering's after bill counts them: the corrective-action function's PUTs apart
        "s3_requests": {
            "get": 1,
            "put": 7,
            "head": 0,
            "list": 0,
            "by_source": {"service": {"GetObject": 1, "PutObject": 4}, "corrective-action": {"PutObject": 3}},
        },
        "sqs_requests": {
            "ReceiveMessage": 1,
            "DeleteMessage": 1,
            "ChangeMessageVisibility": 4,
            "idle_ReceiveMessage": 2,
            "total": 8,
        },
        "sns_publishes": 3,
        "settings": {"results_batch_seconds": 5, "heartbeat_seconds": 4, "detectors": ["freeze", "av_sync"]},
    }
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps(data))
    code, out, err = run(capsys, "count", "--summary", str(summary), "--json", "--strict")
    assert code == 0, (out, err)
    rows = {r["quantity"]: r for r in json.loads(out)["check"]}
    assert (
        rows["after S3 PUT"]["analytic"] == 4 and rows["after SQS ChangeMessageVisibility"]["analytic"] == 4
    )
    assert rows["after SQS ReceiveMessage"]["measured"] == 1 and rows["after SNS publishes"]["equal"]
    assert rows["state transitions"]["equal"]  # the before is still checked beside it
    # When the after wrote one results object per second, as the old model assumed, Then --strict fails
    data["after"]["s3_requests"]["by_source"]["service"]["PutObject"] = 20
    summary.write_text(json.dumps(data))
    code, out, _ = run(capsys, "count", "--summary", str(summary), "--strict")
    assert code == 1 and "after S3 PUT" in out and "≠" in out
    # A setting the service does not have is refused with one line
    data["after"]["settings"] = {"results_every": 5}
    summary.write_text(json.dumps(data))
    code, _, err = run(capsys, "count", "--summary", str(summary))
    assert code == 2 and "unknown field" in err


def test_count_from_a_real_stream_counts_its_short_last_second(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Given chaplin (9.64 s: nine seconds of 25 frames, a last one of 16) as run on LocalStack: 261 PUTs and
    # 744 GET/HEAD measured (10 x 10 + 3 = 103 transitions, no defect)
    summary = tmp_path / "summary.json"
    summary.write_text(
        json.dumps(
            {
                "stream_seconds": 10,
                "state_transitions": 103,
                "notifications": 0,
                "corrective_actions": 0,
                "s3_requests": {"put": 261, "get": 734, "head": 10},
            }
        )
    )
    # When counted as if every second were full, Then PUT and GET differ (270 and 771)
    code, out, _ = run(capsys, "count", "--summary", str(summary), "--json", "--strict")
    rows = {r["quantity"]: r for r in json.loads(out)["check"]}
    assert code == 1 and (rows["S3 PUT"]["analytic"], rows["S3 GET/HEAD"]["analytic"]) == (270, 771)
    # When counted from the stream's real frames: 241 frames + 10 audio + 10 Records = 261 PUTs;
    # 3 x 241 + 10 audio + 10 HEADs + 1 download = 744
    code, out, err = run(
        capsys,
        "count",
        "--summary",
        str(summary),
        "--stream",
        str(MEDIA / "chaplin.mp4"),
        "--json",
        "--strict",
    )
    rows = {r["quantity"]: r for r in json.loads(out)["check"]}
    assert code == 0, (out, err)
    assert (rows["S3 PUT"]["analytic"], rows["S3 GET/HEAD"]["analytic"]) == (261, 744)


def test_compare_breakeven_and_arm64(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys,
        "compare",
        "--streams",
        "100",
        "--hours",
        "730",
        "--files",
        "--breakeven",
        "--json",
        "--architecture",
        "arm64",
        "--purchase",
        "savings-1y",
        "--sp-discount-1y",
        "0.2",
        "--network",
        "endpoints",
    )
    assert code == 0, err
    r = json.loads(out)
    assert r["scenario"]["monolith"]["instance"] == "c7g.2xlarge"
    assert r["scenario"]["monolith"]["arm64_cpu_factor"] == pytest.approx(0.832)
    assert "ENCODING benchmark" in r["scenario"]["monolith"]["arm64_cpu_source"]
    assert any(x["unit"].startswith("interface endpoint-hours") for x in r["monolith"]["lines"])
    # Every purchase option with a rate: the four sourced Reserved Instances, the 1-year plan given; the
    # 3-year plan has none
    rows = {(b["variant"], b["purchase"]): b for b in r["breakeven"]}
    assert set(rows) == {
        (v, p)
        for v in ("baseline", "express", "batched", "fewer-detectors", "sampled", "express-batched",
                  "well-architected")
        for p in ("on-demand", "ri-standard-1y", "ri-standard-3y", "ri-convertible-1y", "ri-convertible-3y",
                  "savings-1y")
    }
    assert rows[("baseline", "on-demand")]["quota_ceiling_streams"] == 149
    assert all(b["breakeven_streams"] is None or b["breakeven_streams"] >= 1 for b in rows.values())


def test_count_uses_the_summarys_stream_path(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # Given a summary that names the local file the demo uploaded (chaplin: 261 PUTs, 744 GET/HEAD)
    summary = tmp_path / "summary.json"
    summary.write_text(
        json.dumps(
            {
                "stream_seconds": 10,
                "state_transitions": 103,
                "s3_requests": {"put": 261, "get": 734, "head": 10},
                "stream_path": str(MEDIA / "chaplin.mp4"),
            }
        )
    )
    code, out, err = run(capsys, "count", "--summary", str(summary), "--strict")
    assert code == 0, (out, err)
    assert "(the summary's stream_path)" in out


def test_a_calibration_without_the_monolith_cpu_is_one_error_line(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # Given the committed calibration without the monolith's CPU table (the Lambda profiles still there)
    data = json.loads(CALIBRATION_PATH.read_text())
    del data["monolith"]["cpu_s_per_stream_second"]
    (tmp_path / "cal.json").write_text(json.dumps(data))
    # Then sizing the after's fleet fails with the file and what to run, not a traceback
    code, _, err = run(capsys, "compare", "--streams", "30", "--hours", "730",
                       "--calibration", str(tmp_path / "cal.json"))
    assert code == 2
    assert err.strip() == (f"error: {tmp_path / 'cal.json'}: no monolith.cpu_s_per_stream_second; "
                           "run `make calibrate`")
