from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from flightctl.link.connection import MavConnection
from tests.support.peer import ScriptedPeer


@pytest.fixture
async def peer() -> AsyncIterator[ScriptedPeer]:
    scripted = ScriptedPeer()
    yield scripted
    scripted.stop()


@pytest.fixture
async def connection(peer: ScriptedPeer) -> AsyncIterator[MavConnection]:
    """A connection to the scripted peer that has already heard its heartbeat."""
    async with MavConnection(peer.transport, heartbeat_period_s=0.1, link_timeout_s=0.5) as conn:
        peer.start_heartbeats()
        await conn.wait_vehicle(timeout_s=2.0)
        yield conn
