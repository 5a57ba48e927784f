"""The model's inputs come from side-effect-free modules and data files, checked by the stack's own code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cost_model.inputs import NEEDS, InputError, Provenance, read_after_config, read_stack_config
from infra.config import TEMP_EXPIRY_DAYS
from lambdas.detectors import NEEDS as DETECTOR_NEEDS


def test_detector_reads_are_the_detectors_own_table() -> None:
    # The handlers and the cost model import the same object: nothing is parsed out of handlers.py
    assert NEEDS is DETECTOR_NEEDS
    assert NEEDS["av_sync"] == (True, True) and NEEDS["freeze"] == (True, False)


def test_stack_context_is_read_through_the_stacks_config(tmp_path: Path) -> None:
    # Given a cdk.json whose context changes memory, frames and detectors (strings, as `-c` gives them)
    cdk = tmp_path / "cdk.json"
    cdk.write_text(
        json.dumps(
            {"context": {"detector_memory_mb": "512", "frames_per_second": 5, "detectors": "freeze,av_sync"}}
        )
    )
    stack = read_stack_config(Provenance(), cdk)
    assert (stack.detector_memory_mb, stack.frames_per_second, stack.detectors) == (
        512,
        5,
        ("freeze", "av_sync"),
    )
    assert stack.temp_expiry_days == TEMP_EXPIRY_DAYS
    # A context the stack would refuse is refused here too, with the stack's reason
    cdk.write_text(json.dumps({"context": {"seconds_per_execution": 0}}))
    with pytest.raises(InputError, match="seconds_per_execution"):
        read_stack_config(Provenance(), cdk)
    with pytest.raises(InputError, match="cannot read"):
        read_stack_config(Provenance(), tmp_path / "absent.json")


def test_after_context_is_read_through_the_after_stacks_config(tmp_path: Path) -> None:
    # Given a cdk.json whose context deploys 2 streams per task on c7g.xlarge behind NAT gateways
    cdk = tmp_path / "cdk.json"
    cdk.write_text(json.dumps({"context": {"after_concurrency": "2", "after_instance_type": "c7g.xlarge",
                                           "after_network": "nat"}}))
    after = read_after_config(Provenance(), cdk)
    assert (after.concurrency, after.instance_type, after.instance.architecture, after.network) == (
        2, "c7g.xlarge", "arm64", "nat")
    # A context the after stack would refuse is refused here too, with its reason
    cdk.write_text(json.dumps({"context": {"after_network": "vpn"}}))
    with pytest.raises(InputError, match="after_network must be one of public, nat, endpoints"):
        read_after_config(Provenance(), cdk)
    cdk.write_text(json.dumps({"context": {"after_concurrency": "four"}}))
    with pytest.raises(InputError, match="after_concurrency must be a whole number, got 'four'"):
        read_after_config(Provenance(), cdk)
    cdk.write_text("[]")
    with pytest.raises(InputError, match="cannot read"):
        read_after_config(Provenance(), cdk)
