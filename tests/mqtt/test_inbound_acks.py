"""Orders are acknowledged to the broker only once the delivery side has them in its journal: a daemon that dies
between receiving an order and recording it gets the order again from its session, so nothing is lost."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from flightctl.daemon.mqtt_link import BrokerLink
from flightctl.daemon.outbox_pump import OutboxPump
from flightctl.daemon.settings import BrokerSection, TelemetrySection
from flightctl.daemon.telemetry_feed import DeliveryStatus, TelemetrySampler
from flightctl.delivery.journal import Journal
from flightctl.ground.dispatch import order_message
from flightctl.mqtt.broker import json_properties, make_client
from flightctl.mqtt.contract import MessageType, Topics
from flightctl.mqtt.requests import CommandRequest, OrderRequest, Refused
from flightctl.vehicle.telemetry import VehicleState
from sitl.mosquitto import Mosquitto
from tests.mqtt.clients import endpoint
from tests.mqtt.conftest import DRONE
from tests.sitl.deliveries import order
from tests.support.conditions import eventually

pytestmark = pytest.mark.mqtt
TOPICS = Topics(DRONE)


class Desk:
    """The delivery side as the broker side sees it. ``dies_before_recording``: it takes the order and never
    gets as far as the journal (the daemon is killed at that moment)."""

    def __init__(self, *, dies_before_recording: bool) -> None:
        self.dies_before_recording = dies_before_recording
        self.arrived: list[str] = []
        self.recorded: list[str] = []
        self.changed = asyncio.Event()

    def status(self) -> DeliveryStatus:
        return DeliveryStatus()

    async def take_order(self, request: OrderRequest) -> None:
        self.arrived.append(request.order.order_id)
        self.changed.set()
        if self.dies_before_recording:
            await asyncio.Event().wait()
        self.recorded.append(request.order.order_id)
        self.changed.set()

    async def refuse(self, what: MessageType, refused: Refused) -> None:
        raise AssertionError(f"a good {what} was refused: {refused}")

    async def command(self, request: CommandRequest) -> None:
        raise AssertionError(f"no command was sent: {request}")

    async def until(self, count: int, of: list[str]) -> None:
        async with asyncio.timeout(30):
            while len(of) < count:
                self.changed.clear()
                await self.changed.wait()


@contextlib.asynccontextmanager
async def daemon_link(broker: Mosquitto, journal: Journal, desk: Desk) -> AsyncIterator[BrokerLink]:
    """The daemon's broker side as ``flightctl run`` wires it, with ``desk`` as its delivery side."""
    link = BrokerLink(
        DRONE,
        [endpoint(broker, DRONE)],
        BrokerSection(url=broker.url, reconnect_min_s=0.2, reconnect_max_s=1),
        TelemetrySection(),
        worker=desk,
        pump=OutboxPump(journal, TOPICS, publish_timeout_s=5),
        sampler=TelemetrySampler(VehicleState, desk.status, rate_hz=1, size=10),
        clock=journal.clock,
    )
    task = asyncio.create_task(link.run())
    try:
        # Connected means subscribed: an order published before that would find no session to wait in.
        await eventually(lambda: link.connections > 0, timeout_s=30)
        yield link
    finally:
        task.cancel()
        await asyncio.wait({task})


async def send(broker: Mosquitto, order_id: str) -> None:
    """Dispatch's publish: QoS 1, to the drone's session whether or not the drone is connected."""
    the_order = order("kirkwall-1500m-place").model_copy(update={"order_id": order_id})
    async with make_client(endpoint(broker, "ground"), client_id="dispatch") as dispatch:
        payload = order_message(DRONE, the_order, f"req-{order_id}", None)
        await dispatch.publish_confirmed(TOPICS.orders, payload, timeout_s=10, properties=json_properties())


async def test_an_order_received_but_not_recorded_comes_again_after_a_restart(
    broker: Mosquitto, tmp_path: Path
) -> None:
    """Test that the daemon acknowledges an order only after recording it: stopped in between, it gets the order
    again when it is back, and takes it; once recorded, it is never sent again."""
    async with await Journal.open(tmp_path / "j.sqlite") as journal:
        dying = Desk(dies_before_recording=True)
        async with daemon_link(broker, journal, dying):
            await send(broker, "KWL-ACK-1")
            await dying.until(1, dying.arrived)
        assert dying.recorded == []

        back = Desk(dies_before_recording=False)
        async with daemon_link(broker, journal, back):
            await back.until(1, back.recorded)
        assert back.recorded == ["KWL-ACK-1"]

        # The broker sends a session's unacknowledged messages first when it resumes: had KWL-ACK-1 not been
        # acknowledged, it would arrive before the next order does.
        again = Desk(dies_before_recording=False)
        async with daemon_link(broker, journal, again):
            await send(broker, "KWL-ACK-2")
            await again.until(1, again.recorded)
        assert again.arrived == ["KWL-ACK-2"]
