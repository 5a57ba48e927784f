"""Fixtures for the stack tests (helpers live in infra_helpers.py)."""

from __future__ import annotations

import pytest
from infra_helpers import Synth, synth


@pytest.fixture(scope="session")
def synthesized() -> Synth:
    return synth()
