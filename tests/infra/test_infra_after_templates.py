"""Both stacks synthesized the way `make synth-offline` does (the pinned CDK CLI, `cli_synth` in conftest.py),
with no Docker, and both templates linted by cfn-lint with zero errors, for AWS and for the LocalStack
variant."""

from __future__ import annotations

from pathlib import Path

import pytest
from cfnlint.api import lint_file
from infra_helpers import synth  # noqa: F401  (sets the jsii environment variables before aws_cdk loads)

from infra.after_config import after_stack_name
from infra.config import stack_name
from infra.serverless_stack import serverless_stack_name

STACKS = (stack_name("dev"), after_stack_name("dev"), serverless_stack_name("dev"))

pytestmark = pytest.mark.slow


def errors(template: Path) -> list[str]:
    return [f"{m.rule.id} {m.message} ({m.path_string})" for m in lint_file(template)
            if m.rule.severity == "error"]


def test_cli_synth_gives_both_stacks_without_docker(cli_synth: Path) -> None:
    for name in STACKS:
        assert (cli_synth / f"{name}.template.json").exists(), name
    # The image's build context is staged for `cdk deploy`, which builds it where Docker exists
    staged = [p for p in cli_synth.glob("asset.*") if (p / "Dockerfile").exists()]
    assert len(staged) == 1


@pytest.mark.parametrize("name", STACKS)
def test_cfn_lint_finds_no_error_in_the_aws_templates(cli_synth: Path, name: str) -> None:
    assert errors(cli_synth / f"{name}.template.json") == []


@pytest.mark.parametrize("context", [
    {"localstack": "true"},
    {"after_network": "nat"},
    {"after_network": "endpoints", "after_instance_type": "c7g.2xlarge"},
], ids=["localstack", "nat", "endpoints-arm64"])
def test_cfn_lint_finds_no_error_in_the_other_variants(context: dict[str, str]) -> None:
    from app import build_stacks

    outdir = Path(build_stacks({"aws:cdk:bundling-stacks": [], **context}).app.synth().directory)
    for name in STACKS:
        assert errors(outdir / f"{name}.template.json") == [], name


def test_cfn_lint_reports_an_error_it_is_given(tmp_path: Path) -> None:
    # The check can fail: a queue with a visibility timeout beyond SQS's 12 hours is an error
    bad = tmp_path / "bad.json"
    bad.write_text('{"Resources": {"Q": {"Type": "AWS::SQS::Queue", '
                   '"Properties": {"VisibilityTimeout": 99999}}}}')
    assert errors(bad)
