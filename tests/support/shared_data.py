"""Fixtures kept in the steering repository's shared/testdata (real files from other tools)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def shared_testdata(*parts: str) -> Path:
    root = Path(os.environ.get("FLIGHTCTL_SHARED", Path(__file__).resolve().parents[2].parent / "shared"))
    path = root.joinpath("testdata", *parts)
    if not path.exists():
        pytest.skip(f"shared test data not present at {path} (set FLIGHTCTL_SHARED to the shared/ folder)")
    return path
