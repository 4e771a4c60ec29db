"""A real mosquitto per test: a free port, a config the test writes, passwords, TLS with a CA made now."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sitl.mosquitto import Mosquitto

DRONE = "drone-a"
ACCOUNTS = {DRONE: "drone-a-secret", "ground": "ground-secret"}


def require_mosquitto() -> None:
    """Skip without mosquitto; under CI (CI=true) its absence fails the run instead."""
    if shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists():
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("CI=true and mosquitto is not installed", pytrace=False)
    pytest.skip("mosquitto is not installed (apt-get install mosquitto)")


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Mosquitto]:
    require_mosquitto()
    async with Mosquitto(tmp_path / "broker", accounts=dict(ACCOUNTS)) as mosquitto:
        yield mosquitto
