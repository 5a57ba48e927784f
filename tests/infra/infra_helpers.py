"""Synthesis for the stack tests: the template and the cdk-nag report of one configuration.

Bundling is skipped (`aws:cdk:bundling-stacks: []`): these tests read the template, not the packages.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")


@dataclass
class Synth:
    stack: Any
    template: dict[str, Any]
    outdir: Path


def synth(context: dict[str, Any] | None = None) -> Synth:
    from app import build_app

    app, stack = build_app({"aws:cdk:bundling-stacks": [], **(context or {})})
    assembly = app.synth()
    outdir = Path(assembly.directory)
    template = json.loads((outdir / f"{stack.stack_name}.template.json").read_text())
    return Synth(stack=stack, template=template, outdir=outdir)

