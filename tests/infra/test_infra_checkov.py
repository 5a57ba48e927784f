"""checkov (the pinned 3.3 of `make checkov-venv`) on every template of the cloud assembly that
`make synth-offline` gives (`cli_synth`): no failed check. A check that does not apply is suppressed on its
resource with the reason (infra/checkov.py), so a new failure anywhere breaks the build.

checkov runs once, in one process, over all the templates and over one template made to fail (which shows
that the run can fail); the tests read that one report.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
from infra_helpers import synth  # noqa: F401  (sets the jsii environment variables before aws_cdk loads)

from infra.after_config import after_stack_name
from infra.config import stack_name

ROOT = Path(__file__).resolve().parents[2]
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
# A queue with no encryption and a function with no dead-letter queue: checkov must report both.
BAD_TEMPLATE = {"Resources": {
    "Plain": {"Type": "AWS::SQS::Queue", "Properties": {"SqsManagedSseEnabled": False}},
    "Fn": {"Type": "AWS::Lambda::Function", "Properties": {
        "Runtime": "python3.13", "Handler": "index.handler", "Role": "arn:aws:iam::123456789012:role/r",
        "Code": {"ZipFile": "def handler(event, context): pass"}}},
}}

pytestmark = pytest.mark.slow


def require_checkov() -> Path:
    """Build the checkov venv if needed (`make checkov-venv`, one xdist worker at a time); fail, never skip,
    when it cannot be built."""
    lock_file = Path(tempfile.gettempdir(), f"venv-checkov-{hashlib.md5(bytes(ROOT)).hexdigest()}.lock")
    with open(lock_file, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), "checkov-venv"],
                              capture_output=True, text=True)
    assert done.returncode == 0 and CHECKOV.exists(), f"make checkov-venv failed:\n{done.stderr[-2000:]}"
    return CHECKOV


def stack_templates(assembly: Path) -> list[Path]:
    """Every CloudFormation template the cloud assembly holds, whatever stacks the app defines."""
    manifest = json.loads((assembly / "manifest.json").read_text())
    return sorted(assembly / artifact["properties"]["templateFile"]
                  for artifact in manifest["artifacts"].values()
                  if artifact["type"] == "aws:cloudformation:stack")


def by_template(report: list[dict[str, Any]], kind: str) -> dict[str, list[dict[str, Any]]]:
    """The `kind` results (failed_checks, skipped_checks, passed_checks) by template file name."""
    out: dict[str, list[dict[str, Any]]] = {}
    for section in report:
        for result in section["results"][kind]:
            out.setdefault(Path(result["file_path"]).name, []).append(result)
    return out


@pytest.fixture(scope="module")
def templates(cli_synth: Path) -> list[Path]:
    return stack_templates(cli_synth)


@pytest.fixture(scope="module")
def report(templates: list[Path], tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    bad = tmp_path_factory.mktemp("checkov") / "bad.template.json"
    bad.write_text(json.dumps(BAD_TEMPLATE))
    files = [arg for path in [*templates, bad] for arg in ("-f", str(path))]
    # --skip-download and no update check: offline, nothing is fetched from Prisma Cloud or PyPI.
    done = subprocess.run(
        [str(require_checkov()), "--framework", "cloudformation", *files, "--output", "json", "--compact",
         "--skip-download"],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"},
    )
    assert done.stdout.strip(), done.stderr[-3000:]
    parsed = json.loads(done.stdout)
    sections = parsed if isinstance(parsed, list) else [parsed]
    assert [s["check_type"] for s in sections] == ["cloudformation"], done.stderr[-3000:]
    # Exit status 1: the bad template failed; anything else would be checkov's own error.
    assert done.returncode == 1, done.stderr[-3000:]
    return sections


def test_the_assembly_holds_the_before_and_the_after(templates: list[Path]) -> None:
    names = {p.name for p in templates}
    assert {f"{stack_name('dev')}.template.json", f"{after_stack_name('dev')}.template.json"} <= names


def test_checkov_passes_every_template_of_the_assembly(report: list[dict[str, Any]],
                                                      templates: list[Path]) -> None:
    # Given every template the assembly holds, When checkov checks them
    passed = by_template(report, "passed_checks")
    failed = by_template(report, "failed_checks")
    # Then each was read and checked, and none has a failed check
    assert all(not s["results"]["parsing_errors"] for s in report)
    for template in templates:
        assert len(passed.get(template.name, [])) > 20, template.name
        assert [f"{r['check_id']} {r['resource']}: {r['check_name']}" for r in failed.get(template.name, [])
                ] == [], template.name


def test_every_suppression_names_its_reason(report: list[dict[str, Any]], templates: list[Path]) -> None:
    skipped = by_template(report, "skipped_checks")
    names = {t.name for t in templates}
    suppressions = [r for name, results in skipped.items() if name in names for r in results]
    assert suppressions
    short = [f"{r['check_id']} {r['resource']}" for r in suppressions
             if len(str(r["check_result"].get("suppress_comment", "")).split()) < 8]
    assert short == []


def test_checkov_reports_the_failures_it_is_given(report: list[dict[str, Any]]) -> None:
    failed = by_template(report, "failed_checks")["bad.template.json"]
    assert {("CKV_AWS_27", "AWS::SQS::Queue.Plain"), ("CKV_AWS_116", "AWS::Lambda::Function.Fn")} <= {
        (r["check_id"], r["resource"]) for r in failed}
