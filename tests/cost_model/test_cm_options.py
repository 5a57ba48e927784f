"""Every option of every `python -m cost_model` subcommand does something: run with it, the subcommand prints
something else (or writes a file, or exits otherwise) than without it, or refuses it with one error line.
An option added without a case here fails `test_every_option_has_a_case`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from calibration import CALIBRATION_PATH
from cost_model import cli, measured
from cost_model import prices as price_table
from cost_model.cli.options import RESOLUTIONS
from cost_model.prices import Price
from statemachine import ASL_PATH

MEDIA = Path(__file__).resolve().parents[2] / "media"
SCENARIO = ["--streams", "100", "--hours", "730"]
# What each subcommand is run with when no option is under test.
BASELINES = {
    "compare": ["compare", *SCENARIO],
    "what-if": ["what-if", *SCENARIO],
    "counts": ["counts"],
    "count": ["count", "--summary", "{summary}"],
    "prices": ["prices"],
}


def _cases(tmp: dict[str, str]) -> dict[str, dict[str, list[str]]]:
    """subcommand -> option -> the whole command line that exercises it."""
    scenario = {
        "--streams": ["--streams", "200", "--hours", "730"],
        "--hours": ["--streams", "100", "--hours", "100"],
    }
    workload = {
        "--fps": ["--fps", "30"],
        "--resolution": ["--resolution", "720p"],
        "--calibration": ["--calibration", tmp["calibration"]],
        "--detectors": ["--detectors", "freeze"],
        "--defects-per-hour": ["--defects-per-hour", "10"],
        "--retry-rate": ["--retry-rate", "0.5"],
        "--files": ["--files"],
        "--segment-seconds": ["--segment-seconds", "6"],
        "--asl": ["--asl", tmp["asl"]],
    }
    price_options = {
        "--region": ["--region", "us-west-1"],
        "--live-prices": ["--live-prices"],
        "--free-tier": ["--free-tier"],
    }
    after = {
        "--architecture": ["--architecture", "arm64"],
        "--instance": ["--instance", "c6i.4xlarge"],
        "--purchase": ["--purchase", "ri-standard-3y"],
        "--sp-discount-1y": ["--sp-discount-1y", "0.2"],
        "--sp-discount-3y": ["--sp-discount-3y", "0.4"],
        "--network": ["--network", "nat"],
        "--concurrency": ["--concurrency", "1"],
    }
    as_json = {"--json": ["--json"]}

    def on(command: str, options: dict[str, list[str]], base: list[str] = SCENARIO) -> dict[str, list[str]]:
        return {
            name: [command, *(base if name not in scenario else []), *argv] for name, argv in options.items()
        }

    return {
        "compare": on(
            "compare",
            {
                **scenario,
                **workload,
                "--variant": ["--variant", "express"],
                **price_options,
                **after,
                "--chart": ["--chart", tmp["chart"]],
                "--bars": ["--bars", tmp["bars"]],
                "--breakeven": ["--breakeven"],
                **as_json,
            },
        ),
        "what-if": on("what-if", {**scenario, **workload, **price_options, **after, **as_json}),
        "counts": on("counts", {**workload, "--variant": ["--variant", "batched"], **as_json}, base=[]),
        "count": {
            "--summary": ["count", "--summary", tmp["other_summary"]],
            "--execution-arn": ["count", "--execution-arn", "arn:aws:states:us-east-1:1:execution:m:x"],
            "--no-follow": ["count", "--summary", tmp["summary"], "--no-follow"],
            "--stream": ["count", "--summary", tmp["summary"], "--stream", str(MEDIA / "chaplin.mp4")],
            "--frames-per-second": ["count", "--summary", tmp["summary"], "--frames-per-second", "5"],
            "--asl": ["count", "--summary", tmp["summary"], "--asl", tmp["asl"]],
            "--json": ["count", "--summary", tmp["summary"], "--json"],
            "--strict": ["count", "--summary", tmp["summary"], "--strict"],
        },
        "prices": on("prices", {**price_options, **as_json}, base=[]),
    }


@pytest.fixture
def tmp_inputs(tmp_path: Path) -> dict[str, str]:
    # A calibration whose every CPU figure is 20% higher than the committed one's
    data = json.loads(CALIBRATION_PATH.read_text())
    for row in data["monolith"]["cpu_s_per_stream_second"].values():
        row.update({k: row[k] * 1.2 for k in ("median", "min", "max")})
    for profile in data["profiles"]["by_resolution"].values():
        profile["decode_ms_per_frame"] *= 1.2
    (tmp_path / "calibration.json").write_text(json.dumps(data))
    # The workflow with one more Pass state in the loop: 11 transitions a quiet second instead of 10
    asl = json.loads(ASL_PATH.read_text())
    asl["States"]["NextSecond"]["Next"] = "Breathe"
    asl["States"]["Breathe"] = {"Type": "Pass", "Next": "Convert"}
    (tmp_path / "asl.json").write_text(json.dumps(asl))
    # A 10 s run whose counts the definition does not all predict (so --strict fails it), and another run
    run = {"stream_seconds": 10, "state_transitions": 99, "s3_requests": {"put": 270, "get": 761, "head": 10}}
    (tmp_path / "summary.json").write_text(json.dumps(run))
    (tmp_path / "other.json").write_text(json.dumps({**run, "stream_seconds": 20, "state_transitions": 203}))
    return {
        "calibration": str(tmp_path / "calibration.json"),
        "asl": str(tmp_path / "asl.json"),
        "summary": str(tmp_path / "summary.json"),
        "other_summary": str(tmp_path / "other.json"),
        "chart": str(tmp_path / "chart.svg"),
        "bars": str(tmp_path / "bars.svg"),
    }


@pytest.fixture(autouse=True)
def no_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Price List API answers with one dearer price; no Step Functions endpoint is reachable."""

    def live(region: str, **_: Any) -> dict[str, Price]:
        return {"sfn.transition": Price(0.00003, "state transition", "Price List API (test)", "2026-12-07")}

    class Unreachable:
        def get_execution_history(self, **_: Any) -> dict[str, Any]:
            raise ConnectionError("no endpoint")

    monkeypatch.setattr(price_table, "live_prices", live)
    monkeypatch.setattr(measured, "stepfunctions_client", lambda: Unreachable())


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {o for a in parser._actions for o in a.option_strings if o.startswith("--") and o != "--help"}


def _run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    try:
        code = cli.main(argv)
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_every_option_has_a_case_help_and_choices_where_closed(tmp_inputs: dict[str, str]) -> None:
    cases = _cases(tmp_inputs)
    parsers = _subparsers()
    assert set(parsers) == set(cases) == set(BASELINES)
    for name, parser in parsers.items():
        assert _options(parser) == set(cases[name]), name
        for action in parser._actions:
            assert action.help, (name, action.option_strings)
    # Closed sets are choices
    compare = {a.dest: a for a in parsers["compare"]._actions}
    for dest in ("variant", "resolution", "region", "architecture", "instance", "purchase", "network"):
        assert compare[dest].choices, dest
    assert tuple(compare["resolution"].choices) == RESOLUTIONS


def test_resolutions_are_the_ones_make_calibrate_measures() -> None:
    from monolith.bench import SIZES

    assert tuple(SIZES) == RESOLUTIONS


# The cases that end in one error line, and what it says: the option was honoured (the service it names was
# asked) or refused (it does not apply to that command line).
ERRORS = {
    ("count", "--execution-arn"): "cannot read the execution history",
    ("count", "--no-follow"): "--no-follow applies to --execution-arn only",
}


def test_every_option_changes_the_output_or_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_inputs: dict[str, str]
) -> None:
    outputs = (Path(tmp_inputs["chart"]), Path(tmp_inputs["bars"]))
    for command, cases in _cases(tmp_inputs).items():
        base_argv = [arg.format(**tmp_inputs) for arg in BASELINES[command]]
        base = _run(capsys, base_argv)
        assert base[0] in (0, 1), (base_argv, base[2])
        for option, argv in cases.items():
            written = {path: path.exists() for path in outputs}
            code, out, err = _run(capsys, argv)
            if (command, option) in ERRORS:
                assert code == 2 and err.count("\n") == 1, (argv, err)
                assert err.startswith("error: ") and ERRORS[command, option] in err, (argv, err)
                continue
            assert code in (0, 1), (argv, err)
            wrote = any(path.exists() and not before for path, before in written.items())
            assert wrote or (code, out, err) != base, (command, option)


def test_options_that_do_not_apply_are_refused(
    capsys: pytest.CaptureFixture[str], tmp_inputs: dict[str, str]
) -> None:
    for argv in (
        ["what-if", *SCENARIO, "--variant", "express"],  # what-if prices every variant
        ["what-if", *SCENARIO, "--purchase", "savings-1y"],  # no rate given
        ["count", "--summary", tmp_inputs["summary"], "--no-follow"],  # follows executions, not summaries
        ["counts", "--region", "us-west-1"],  # counts are not priced
    ):
        code, _, err = _run(capsys, argv)
        assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, (argv, err)
