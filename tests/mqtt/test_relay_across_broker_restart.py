"""A broker restarted while the relay is connected, and a drone that reaches it again before the relay does: what
the drone sent meanwhile was acknowledged, so it must reach the registry. mosquitto 2.0 routes nothing to a
shared subscription restored from its persistence file (every one of these events would be lost); the relay's
plain subscription, its default, is restored with its queue."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest

from flightctl.ground.registry import Registry
from flightctl.ground.relay import StatusRelay
from flightctl.mqtt.broker import BrokerUnavailable, make_client
from flightctl.mqtt.contract import Topics
from sitl.mosquitto import Mosquitto
from tests.mqtt.clients import endpoint
from tests.mqtt.conftest import ACCOUNTS, DRONE, require_mosquitto
from tests.sitl.daemon_support import relaying
from tests.support.conditions import eventually_true

pytestmark = pytest.mark.mqtt
EVENTS = 20


def state_event(seq: int) -> bytes:
    return json.dumps({
        "schema": 1, "drone": DRONE, "seq": seq, "time": "2026-12-01T10:00:00.000Z", "time_source": "gps",
        "type": "state", "order_id": "KWL-R1", "data": {"state": "ENROUTE", "detail": {}},
    }).encode()  # fmt: skip


async def test_events_sent_to_a_restarted_broker_before_the_relay_is_back_all_reach_the_registry(
    tmp_path: Path,
) -> None:
    """Test that the relay's session, subscribed and connected when the broker stops, holds the 20 events a drone
    sends after the broker starts again and before the relay reconnects: the registry gets each, none missing."""
    require_mosquitto()
    async with (
        Mosquitto(tmp_path / "broker", accounts=dict(ACCOUNTS)) as broker,
        await Registry.open(str(tmp_path / "registry.sqlite")) as registry,
    ):
        relay = StatusRelay(registry, [endpoint(broker, "ground")], name="relay-1")
        ground = endpoint(broker, "ground")
        # The relay's own session, connected and subscribed as its run makes it, when the broker stops under it.
        with contextlib.suppress(BrokerUnavailable):
            async with make_client(ground, client_id=relay.client_id(ground), session_expiry_s=86400) as client:
                await client.subscribe(relay.subscription, qos=1)
                await broker.stop()
        await broker.start()
        async with make_client(endpoint(broker, DRONE), client_id=f"flightctl-{DRONE}") as drone:
            for seq in range(1, EVENTS + 1):
                await drone.publish_confirmed(Topics(DRONE).events, state_event(seq), timeout_s=10)

        async def held_all() -> bool:
            drones = await registry.drones()
            return bool(drones) and drones[0]["events"] == EVENTS

        async with relaying(relay):
            await eventually_true(held_all, timeout_s=20)
        assert await registry.missing_events(DRONE) == []
        assert relay.stats.dead_letters == 0
