"""Shared fixtures: the real clips in media/ and small synthetic frames."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MEDIA = REPO / "media"


@pytest.fixture(scope="session")
def chaplin() -> Path:
    return MEDIA / "chaplin.mp4"


@pytest.fixture(scope="session")
def bigbuckbunny() -> Path:
    return MEDIA / "bigbuckbunny.mp4"
