"""The service's image holds exactly what `monolith serve` imports: the packages .dockerignore lets into the
build context (and the Dockerfile copies) are the project's packages that serve's module graph reaches.

Serve's module graph, read from the source: `monolith/__main__.py`, `monolith/cli.py` outside its
functions and in `_serve` (the other subcommands' functions are theirs), and from there on every import of
every module reached, in functions too. Then a fresh interpreter in which the project's packages that the
image leaves out cannot be imported (a meta-path blocker) imports that graph and runs
`python -m monolith serve`; the development commands there say that they are."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from import_graph import REPO, first_party_imports, first_party_packages, modules

# Run in the fresh interpreter: argv[1] the packages to block (JSON), argv[2] the modules to import (JSON),
# argv[3:] a `python -m monolith` command line to run after them, if any. Prints the project's packages
# that ended up imported (JSON), then runs the command (its exit status is the process's).
BLOCKED_RUN = """
import importlib, json, runpy, sys

blocked, wanted, command = set(json.loads(sys.argv[1])), json.loads(sys.argv[2]), sys.argv[3:]


class NotInTheImage:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r} (not in the image)", name=name)
        return None


sys.meta_path.insert(0, NotInTheImage())
for module in wanted:
    importlib.import_module(module)
print(json.dumps(sorted({name.partition(".")[0] for name in sys.modules})), flush=True)
if command:
    sys.argv = ["monolith", *command]
    runpy.run_module("monolith", run_name="__main__", alter_sys=True)
"""


def admitted(dockerignore: str) -> set[str]:
    """The top-level names a `*` then `!name` .dockerignore lets into the build context."""
    lines = [line.strip() for line in dockerignore.splitlines()]
    assert "*" in lines, ".dockerignore must start from nothing (`*`) and name what goes in"
    return {line[1:].strip("/") for line in lines if line.startswith("!")}


def copied(dockerfile: str) -> set[str]:
    """The sources of the Dockerfile's COPY instructions from the build context."""
    sources: set[str] = set()
    for match in re.finditer(r"(?im)^\s*COPY\s+(?!--from)(.+)$", dockerfile):
        *names, _destination = match[1].split()
        sources |= {name.strip("/") for name in names if not name.startswith("--")}
    return sources


def image_packages() -> set[str]:
    return {name for name in admitted((REPO / ".dockerignore").read_text()) if (REPO / name).is_dir()}


def serve_graph() -> set[str]:
    """The project's modules `python -m monolith serve` can import, read from the source."""
    known = modules(REPO, first_party_packages())
    cli = known["monolith.cli"]
    pending = [target for target, _ in first_party_imports(known["monolith.__main__"], REPO, known)]
    pending += [t for t, _ in first_party_imports(cli, REPO, known, scope="")]
    pending += [t for t, _ in first_party_imports(cli, REPO, known, scope="_serve")]
    graph = {"monolith", "monolith.__main__", "monolith.cli"}
    while pending:
        module = pending.pop()
        if module in graph:
            continue
        graph.add(module)
        # importing a.b.c runs a/__init__.py and a/b/__init__.py first
        pending += [".".join(module.split(".")[:end]) for end in range(1, module.count(".") + 1)]
        pending += [target for target, _ in first_party_imports(known[module], REPO, known)]
    return graph


def run_without(blocked: set[str], wanted: list[str], *command: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    return subprocess.run(
        [sys.executable, "-c", BLOCKED_RUN, json.dumps(sorted(blocked)), json.dumps(wanted), *command],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_the_dockerfile_copies_what_dockerignore_lets_in() -> None:
    # Given the two files the image is built from, Then they name the same sources
    dockerfile, dockerignore = (REPO / "Dockerfile").read_text(), (REPO / ".dockerignore").read_text()
    assert copied(dockerfile) == admitted(dockerignore)
    assert {"pyproject.toml", "monolith"} <= admitted(dockerignore)


def test_the_image_holds_exactly_the_packages_that_serve_imports() -> None:
    # Given serve's module graph read from the source
    graph = serve_graph()
    # Then the project's packages it reaches are those the image holds, sample_streams not among them
    assert {module.partition(".")[0] for module in graph} == image_packages()
    assert "sample_streams" not in image_packages()
    assert "monolith.service" in graph and "monolith.evaluate" not in graph


def test_serve_imports_and_runs_with_only_what_the_image_holds() -> None:
    # Given a fresh interpreter in which the project's packages the image leaves out cannot be imported
    blocked = set(first_party_packages()) - image_packages()
    assert "sample_streams" in blocked
    # When it imports serve's whole module graph (__main__ runs: the command does that) and runs
    # `python -m monolith serve` with no settings
    result = run_without(blocked, sorted(serve_graph() - {"monolith.__main__"}), "serve")
    # Then every import succeeds, only the image's packages are loaded, and serve stops at its settings
    first_line, _, _ = result.stdout.partition("\n")
    assert "ModuleNotFoundError" not in result.stderr, result.stderr
    assert set(json.loads(first_line)) & set(first_party_packages()) == image_packages()
    assert result.returncode == 2, result.stderr
    assert "error: set MONITOR_JOB_QUEUE_URL, MONITOR_RESULTS_BUCKET, MONITOR_TOPIC_ARN" in result.stderr


@pytest.mark.parametrize("command", [["evaluate", "--quick"], ["bench"], ["demo"]])
def test_the_development_commands_say_so_where_sample_streams_is_absent(command: list[str]) -> None:
    # Given the image's interpreter (no sample_streams), When a development command runs
    result = run_without(set(first_party_packages()) - image_packages(), [], *command)
    # Then it refuses with exit 2 and says why, without a traceback
    assert result.returncode == 2, result.stderr
    assert f"error: `monolith {command[0]}` is a development command" in result.stderr
    assert "run it from a checkout" in result.stderr and "Traceback" not in result.stderr


def test_the_dockerfile_readers_read_what_they_should() -> None:
    dockerignore = "# comment\n*\n!pyproject.toml\n!lambdas/\n**/__pycache__\n"
    assert admitted(dockerignore) == {"pyproject.toml", "lambdas"}
    dockerfile = ("FROM python:3.13 AS build\nCOPY --from=build /x /y\nCOPY pyproject.toml ./\n"
                  "copy lambdas ./lambdas\nCOPY --chown=1:1 settings text_tables ./\n")
    assert copied(dockerfile) == {"pyproject.toml", "lambdas", "settings", "text_tables"}
    with pytest.raises(AssertionError, match="start from nothing"):
        admitted("!lambdas/\n")


def test_the_blocker_blocks() -> None:
    # Given sample_streams blocked, When it is imported, Then the import fails as in the image
    result = run_without({"sample_streams"}, ["sample_streams"])
    assert result.returncode == 1
    assert "No module named 'sample_streams' (not in the image)" in result.stderr
