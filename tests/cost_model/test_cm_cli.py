"""`python -m cost_model`: the compare contract, the table, the chart, prices, count, and bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cost_model import cli
from cost_model.prices import (
    REGIONS,
    TABLE_DATE,
    US_EAST_1,
    LivePricesUnavailable,
    PriceBook,
    UnknownRegion,
    live_prices,
)
from infra.config import ASL_PATH

pytestmark = pytest.mark.skipif(not ASL_PATH.is_file(), reason="no workflow definition")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = cli.main(list(argv))
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


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
        "--bench",
        str(tmp_path / "absent.json"),
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
    assert {x["service"] for x in r["monolith"]["lines"]} >= {"EC2", "S3"}
    assert r["reduction_pct"] >= 90 and r["quota"]["max_concurrent_streams"] == 149
    assert any("DEFAULT" in note for note in r["scenario"]["inputs"])  # says the bench was not found


def test_compare_table_and_html_chart(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    chart = tmp_path / "cost.html"
    code, out, _ = run(capsys, "compare", "--streams", "500", "--hours", "730", "--chart", str(chart))
    assert code == 0
    assert "SERVERLESS" in out and "MONOLITH" in out and "reduction:" in out and "quota ceiling: 149" in out
    text = chart.read_text()
    assert text.startswith("<!doctype html>") and "<svg" in text and "quota ceiling: 149 streams" in text


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


def test_png_chart_without_matplotlib_is_one_clear_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pytest.importorskip("numpy")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        code, _, err = run(
            capsys, "compare", "--streams", "10", "--hours", "10", "--chart", str(tmp_path / "c.png")
        )
        assert code == 2 and err.count("\n") == 1 and "matplotlib" in err
    else:
        code, _, _ = run(
            capsys, "compare", "--streams", "10", "--hours", "10", "--chart", str(tmp_path / "c.png")
        )
        assert code == 0 and (tmp_path / "c.png").stat().st_size > 0


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


def test_compare_calibrates_gb_seconds_from_a_summary(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    summary = tmp_path / "summary.json"
    summary.write_text(
        json.dumps({"stream_seconds": 10, "state_transitions": 103, "lambda_gb_seconds": 30.0})
    )
    code, out, _ = run(
        capsys, "compare", "--streams", "1", "--hours", "1", "--calibrate", str(summary), "--json"
    )
    assert code == 0
    assert json.loads(out)["scenario"]["per_stream_second"]["lambda_gb_seconds"] == pytest.approx(3.0)


def test_count_by_execution_arn_without_a_reachable_service(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    class Broken:
        def get_execution_history(self, **_: Any) -> dict[str, Any]:
            raise ConnectionError("no endpoint")

    monkeypatch.setattr(cli, "stepfunctions_client", lambda: Broken())
    code, _, err = run(capsys, "count", "--execution-arn", "arn:aws:states:us-east-1:1:execution:m:x")
    assert code == 2 and "cannot read the execution history" in err and err.count("\n") == 1


def test_counts_and_what_if_and_prices_print(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "counts")
    assert code == 0 and "transitions per quiet second: 10" in out
    code, out, _ = run(capsys, "what-if", "--streams", "3000", "--hours", "730")
    assert code == 0 and all(
        v in out for v in ("baseline", "express", "batched", "fewer-detectors", "sampled")
    )
    code, out, _ = run(capsys, "prices", "--region", "sa-east-1", "--json")
    table = json.loads(out)
    assert code == 0 and table["state_transition_refill_per_s"] == 500


# --- prices ------------------------------------------------------------------------------------------
def test_every_price_has_a_date_and_a_source_and_regions_inherit_visibly() -> None:
    for region in REGIONS:
        for row in PriceBook(region).table():
            assert row["date"] == TABLE_DATE and row["source"] and row["usd"] > 0
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

    monkeypatch.setattr(cli, "live_prices", unavailable)
    code, out, err = run(capsys, "compare", "--streams", "10", "--hours", "10", "--live-prices")
    assert code == 0 and "cannot read live prices" in err and "SERVERLESS" in out


def test_us_east_1_table_has_the_facts_numbers() -> None:
    assert US_EAST_1["sfn.transition"].usd == pytest.approx(0.000025)
    assert US_EAST_1["s3.put"].usd == pytest.approx(0.000005)
    assert US_EAST_1["s3.get"].usd == pytest.approx(0.0000004)
    assert US_EAST_1["lambda.gb_s.x86_64.1"].usd == pytest.approx(0.0000166667)
    assert US_EAST_1["ec2.c6i.2xlarge"].usd == pytest.approx(0.34)


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
