"""A PostgreSQL registry restarted under connected clients (a fleet fault; an operator's maintenance): the server
comes back on the same data at once, and a registry that held pool connections answers again, having kept
everything. Nothing in between hangs: the outage is a RegistryUnavailable, said and ridden out."""

from __future__ import annotations

import httpx
import pytest

from flightctl.ground.registry import Registry
from flightctl.ground.registry_store import RegistryUnavailable
from flightctl.ground.serving import serving
from flightctl.ground.tracking import FailedLookups, tracking_app
from sitl.mosquitto import free_port
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


async def test_page_views_during_a_registry_outage_are_not_counted_as_failed_guesses() -> None:
    """Test the tracking page while its PostgreSQL registry is down: each view fails (a server error, no page),
    none counts against the customer's failed look-ups, so once the registry is back their page shows at once
    instead of a minute of 429s."""
    require_program("/usr/lib/postgresql", "postgresql")
    async with PostgresServer() as pg, await Registry.open(pg.url) as registry:
        token = await registry.register("KWL-R3", "customer-3", "drone-a")
        app = tracking_app(registry, failed_lookups=FailedLookups(limit=3, window_s=3600))
        port = free_port()
        async with serving(app, "127.0.0.1", port), httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            assert (await client.get(f"/t/{token}")).status_code == 200
            await pg.stop()
            during = [(await client.get(f"/t/{token}")).status_code for _ in range(6)]
            assert all(code >= 500 for code in during), during
            await pg.start()
            after = []
            for _ in range(3):  # a pooled connection the outage closed may fail once more, then a new one is made
                after.append((await client.get(f"/t/{token}")).status_code)
                if after[-1] == 200:
                    break
            assert after[-1] == 200, after
