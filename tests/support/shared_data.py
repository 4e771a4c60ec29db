"""Fixtures kept in the steering repository's shared/testdata (real files from other tools, not ours to commit)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Where shared/ sits: beside this checkout on a developer's machine, or in the workplace's fixed place.
_CANDIDATES = [Path(__file__).resolve().parents[2].parent / "shared", Path("/work/shared")]


def _roots() -> list[Path]:
    return [Path(os.environ["FLIGHTCTL_SHARED"])] if "FLIGHTCTL_SHARED" in os.environ else _CANDIDATES


def shared_root() -> Path:
    """The shared/ folder itself (its ardupilot/ snapshot, its testdata/)."""
    for root in _roots():
        if root.is_dir():
            return root
    pytest.skip(f"shared/ not found in {', '.join(map(str, _roots()))} (set FLIGHTCTL_SHARED)")


def shared_testdata(*parts: str) -> Path:
    for root in _roots():
        path = root.joinpath("testdata", *parts)
        if path.exists():
            return path
    pytest.skip(
        f"shared test data {'/'.join(parts)} not found in {', '.join(map(str, _roots()))} (set FLIGHTCTL_SHARED)"
    )
