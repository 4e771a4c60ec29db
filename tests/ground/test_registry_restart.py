"""A PostgreSQL registry restarted under connected clients (a fleet fault; an operator's maintenance): the server
comes back on the same data at once, and a registry that held pool connections answers again, having kept
everything. Nothing in between hangs: the outage is a RegistryUnavailable, said and ridden out."""

from __future__ import annotations

import pytest

from flightctl.ground.registry import Registry
from flightctl.ground.registry_store import RegistryUnavailable
from sitl.postgres import PostgresServer
from tests.ground.conftest import require_program

pytestmark = pytest.mark.mqtt


async def test_a_restarted_server_is_back_at_once_and_a_connected_registry_answers_again_with_its_data() -> None:
    require_program("/usr/lib/postgresql", "postgresql")
    async with PostgresServer() as pg, await Registry.open(pg.url) as registry:
        first = await registry.register("KWL-R1", "customer-1", "drone-a")
        # With the registry's pool connected: a smart shutdown would wait for it to leave, and the new server would
        # find the old one still holding the data folder (PostgresError); the fast one drops the connections.
        await pg.restart()
        failures = 0
        while True:
            try:
                second = await registry.register("KWL-R2", "customer-2", "drone-a")
                break
            except RegistryUnavailable:  # a pooled connection the restart closed: said, then a new one is made
                failures += 1
                assert failures <= 3, "the registry does not answer again"
        assert await registry.order_for_token(first) == "KWL-R1", "what was there before the restart is kept"
        assert await registry.order_for_token(second) == "KWL-R2"
