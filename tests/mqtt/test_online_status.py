"""Death is visible: the retained online status of a daemon that crashes goes offline by its last will within the
will delay; one stopped on purpose says "stopped" at once; the will names no order that may have gone stale."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from flightctl.daemon.mqtt_link import STOPPED_REASON, WILL_REASON, BrokerLink
from flightctl.daemon.outbox_pump import OutboxPump
from flightctl.daemon.settings import BrokerSection, TelemetrySection
from flightctl.daemon.telemetry_feed import DeliveryStatus, TelemetrySampler
from flightctl.delivery.journal import Journal
from flightctl.mqtt.contract import Envelope, Topics
from flightctl.vehicle.telemetry import VehicleState
from sitl.mosquitto import Mosquitto
from tests.mqtt.clients import Collector, collecting, endpoint
from tests.mqtt.conftest import DRONE
from tests.mqtt.test_inbound_acks import Desk

pytestmark = pytest.mark.mqtt
TOPICS = Topics(DRONE)
WILL_DELAY_S = 2
KEEPALIVE_S = 5


class FlyingDesk(Desk):
    """A delivery side in the middle of an order (so the online status names one)."""

    def status(self) -> DeliveryStatus:
        return DeliveryStatus(order_id="KWL-FLYING")


@contextlib.asynccontextmanager
async def daemon(
    broker: Mosquitto, journal: Journal, deliveries: Callable[[], Awaitable[None]]
) -> AsyncIterator[tuple[BrokerLink, asyncio.Task[None]]]:
    """The daemon's two halves as `flightctl run` composes them (status.daemon): the deliveries and the broker
    link in one task group, so a failure of either ends both."""
    desk = FlyingDesk(dies_before_recording=False)
    link = BrokerLink(
        DRONE,
        [endpoint(broker, DRONE)],
        BrokerSection(
            url=broker.url, reconnect_min_s=0.2, reconnect_max_s=1, will_delay_s=WILL_DELAY_S, keepalive_s=KEEPALIVE_S
        ),
        TelemetrySection(),
        worker=desk,
        pump=OutboxPump(journal, TOPICS, publish_timeout_s=5),
        sampler=TelemetrySampler(VehicleState, desk.status, rate_hz=1, size=10),
        clock=journal.clock,
    )

    async def run() -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(deliveries(), name="deliveries")
            tasks.create_task(link.run(), name="broker")

    task = asyncio.create_task(run())
    try:
        yield link, task
    finally:
        task.cancel()
        await asyncio.wait({task})


async def online_states(online: Collector, count: int, timeout_s: float) -> list[tuple[float, Envelope]]:
    await online.wait_for(count, timeout_s=timeout_s)
    return list(zip(online.arrival_s, online.received, strict=True))


async def test_a_daemon_that_crashes_is_shown_offline_by_its_will_naming_no_order(
    broker: Mosquitto, tmp_path: Path
) -> None:
    """Test that when the deliveries fail with an unhandled exception (the task group then cancels the broker link,
    as in the daemon), the retained status goes offline with the will's reason within the will delay (plus a
    second), and the will names no order, while the online status had named the order in flight."""
    crash = asyncio.Event()

    async def deliveries() -> None:
        await crash.wait()
        raise RuntimeError("a bug in the deliveries")

    async with (
        collecting(broker, TOPICS.online, client_id="ops-online") as online,
        await Journal.open(tmp_path / "journal.sqlite") as journal,
        daemon(broker, journal, deliveries) as (link, task),
    ):
        (_t, up), *_ = await online_states(online, 1, timeout_s=30)
        assert up.data["online"] is True
        assert up.order_id == "KWL-FLYING"
        crash.set()
        crashed_at = asyncio.get_running_loop().time()
        await asyncio.wait({task}, timeout=10)
        assert isinstance(task.exception(), BaseExceptionGroup)
        states = await online_states(online, 2, timeout_s=WILL_DELAY_S + 10)
    offline_at, down = states[1]
    assert down.data == {"online": False, "version": down.data["version"], "order_id": None, "reason": WILL_REASON}
    assert down.order_id is None
    assert WILL_DELAY_S - 0.5 <= offline_at - crashed_at <= WILL_DELAY_S + 1.5
    assert link.connections == 1


async def test_a_daemon_stopped_on_purpose_says_stopped_at_once_and_the_will_stays_unsaid(
    broker: Mosquitto, tmp_path: Path
) -> None:
    """Test that a stop asked for (SIGTERM: the stop is requested, then the daemon cancelled) publishes "stopped"
    before the will delay could pass, and that the will never follows it."""

    async def deliveries() -> None:
        await asyncio.Event().wait()

    async with (
        collecting(broker, TOPICS.online, client_id="ops-online") as online,
        await Journal.open(tmp_path / "journal.sqlite") as journal,
    ):
        async with daemon(broker, journal, deliveries) as (link, task):
            await online_states(online, 1, timeout_s=30)
            link.stop_requested = True
            stopped_at = asyncio.get_running_loop().time()
            task.cancel()
            await asyncio.wait({task})
        (_t, up), (said_at, stopped) = await online_states(online, 2, timeout_s=10)
        assert said_at - stopped_at < WILL_DELAY_S
        assert stopped.data["reason"] == STOPPED_REASON
        assert stopped.data["online"] is False
        # The will would have come by now (its delay, plus a margin): the clean DISCONNECT discarded it.
        with pytest.raises(TimeoutError):
            await online.wait_for(3, timeout_s=WILL_DELAY_S + 2)
    assert up.data["online"] is True
