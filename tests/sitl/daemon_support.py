"""`flightctl run` as it runs on the aircraft (a process, a config file, a journal), a real mosquitto, and a
ground station that sends orders and commands and reads events and the online topic as dispatch would."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flightctl.delivery.order import DeliveryOrder
from flightctl.ground.relay import StatusRelay
from flightctl.mqtt.consumer import SequenceTracker
from flightctl.mqtt.contract import Envelope, MessageType, TimeSource, Topics
from sitl.daemon import write_daemon_config
from sitl.mosquitto import Mosquitto
from tests.mqtt.clients import Collector, collecting, endpoint
from tests.mqtt.conftest import ACCOUNTS
from tests.support.conditions import eventually

DRONE = "drone-a"
TOPICS = Topics(DRONE)


def write_config(
    folder: Path,
    *,
    autopilot_url: str,
    broker_url: str,
    ca_file: Path,
    link_lost_timeout_s: float = 60,
    remote_id: bool = False,
    profile: str = "sitl-quad",
    legs: Sequence[Path] = (),
) -> Path:
    return write_daemon_config(
        folder,
        drone_id=DRONE,
        autopilot_url=autopilot_url,
        broker_url=broker_url,
        username=DRONE,
        password=ACCOUNTS[DRONE],
        ca_file=ca_file,
        link_lost_timeout_s=link_lost_timeout_s,
        remote_id=remote_id,
        profile=profile,
        legs=legs,
    )


@dataclass
class Ground:
    """Dispatch's and the operator's view of one drone, de-duplicating events by sequence number."""

    broker: Mosquitto
    events: Collector
    online: Collector
    telemetry: Collector

    def unique_events(self) -> list[Envelope]:
        tracker, unique = SequenceTracker(start_after=0), []
        for envelope in self.events.received:
            assert envelope.seq is not None
            if tracker.accept(envelope.seq):
                unique.append(envelope)
        return unique

    def states(self, order_id: str) -> list[str]:
        return [e.data["state"] for e in self.unique_events() if e.type == "state" and e.order_id == order_id]

    def story(self, order_id: str) -> str:
        """Every state the order went through, with its detail: what a failed assertion should show."""
        return "\n".join(
            f"{e.data['state']}: {e.data.get('detail')}"
            for e in self.unique_events()
            if e.type == "state" and e.order_id == order_id
        )

    async def publish(self, topic: str, *payloads: bytes) -> None:
        from flightctl.mqtt.broker import make_client

        async with make_client(endpoint(self.broker, "ground"), client_id=f"dispatch-{uuid.uuid4().hex[:8]}") as c:
            for payload in payloads:
                await c.publish_confirmed(topic, payload, timeout_s=10)

    async def send_order(self, order: DeliveryOrder, *, wind_m_s: float = 0.0, request_id: str | None = None) -> str:
        request_id = request_id or f"req-{uuid.uuid4().hex[:10]}"
        data: dict[str, Any] = {
            "request_id": request_id,
            "order": order.model_dump(mode="json", exclude_none=True),
            "depot_wind": {"speed_m_s": wind_m_s, "measured_at": datetime.now(UTC).isoformat()},
        }
        await self.publish(TOPICS.orders, envelope(MessageType.ORDER, data, order.order_id))
        return request_id

    async def command(self, command: str, reason: str | None = None, **more: Any) -> str:
        request_id = f"cmd-{uuid.uuid4().hex[:10]}"
        data = {"request_id": request_id, "command": command, "reason": reason, **more}
        await self.publish(TOPICS.commands, envelope(MessageType.COMMAND, data))
        return request_id

    async def send_leg(self, leg: dict[str, Any], winds: dict[str, Any], wind_aloft: dict[str, Any]) -> str:
        """An island leg order as dispatch sends it: the leg, each airstrip's measured wind, the wind aloft."""
        request_id = f"req-{uuid.uuid4().hex[:10]}"
        data = {"request_id": request_id, "leg": leg, "airstrip_winds": winds, "wind_aloft": wind_aloft}
        await self.publish(TOPICS.orders, envelope(MessageType.ORDER, data, leg["order_id"]))
        return request_id

    async def answer(self, request_id: str, timeout_s: float = 120) -> Envelope:
        return await self.event(lambda e: e.data.get("request_id") == request_id, f"answer to {request_id}", timeout_s)

    async def state(self, order_id: str, state: str, timeout_s: float = 600) -> Envelope:
        def entered(e: Envelope) -> bool:
            return e.type == "state" and e.order_id == order_id and e.data["state"] == state

        return await self.event(entered, f"{order_id} {state}", timeout_s)

    async def event(self, match: Any, what: str, timeout_s: float) -> Envelope:
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    for e in self.unique_events():
                        if match(e):
                            return e
                    self.events.changed.clear()
                    await self.events.changed.wait()
        except TimeoutError:
            seen = [(e.seq, e.type, e.data.get("state")) for e in self.unique_events()][-15:]
            raise AssertionError(f"no event: {what} within {timeout_s:g} s; last events {seen}") from None

    async def vehicle_reported(self, timeout_s: float) -> Envelope:
        """The first telemetry with a position and a navigating EKF: the daemon can judge an order now."""
        async with asyncio.timeout(timeout_s):
            while True:
                for sample in self.telemetry.received:
                    if sample.data["lat_deg"] is not None and sample.data["ekf_ok"]:
                        return sample
                self.telemetry.changed.clear()
                await self.telemetry.changed.wait()

    def online_history(self) -> list[tuple[float, bool]]:
        """(monotonic arrival time, online?) for each message on the online topic, in order."""
        return [(t, bool(e.data["online"])) for t, e in zip(self.online.arrival_s, self.online.received, strict=True)]

    async def online_is(self, online: bool, timeout_s: float, *, after_s: float = 0.0) -> float:
        """Wait until the online topic says ``online`` (in a message that arrived after ``after_s``); when."""
        async with asyncio.timeout(timeout_s):
            while True:
                for when, value in self.online_history():
                    if value is online and when >= after_s:
                        return when
                self.online.changed.clear()
                await self.online.changed.wait()


def envelope(type_: MessageType, data: dict[str, Any], order_id: str | None = None) -> bytes:
    return Envelope(
        drone=DRONE, time=datetime.now(UTC), time_source=TimeSource.SENDER, type=type_, order_id=order_id, data=data
    ).to_json()


@contextlib.asynccontextmanager
async def ground_station(broker: Mosquitto) -> AsyncIterator[Ground]:
    async with (
        collecting(broker, TOPICS.events, client_id="ground-events") as events,
        collecting(broker, TOPICS.online, client_id="ground-online") as online,
        collecting(broker, TOPICS.telemetry, client_id="ground-telemetry") as telemetry,
    ):
        yield Ground(broker, events, online, telemetry)


def cli_broker_args(broker: Mosquitto, folder: Path) -> list[str]:
    """What an engineer passes to `order send`, `events` and `telemetry`: the URL, an account, the CA."""
    password_file = folder / "ground-password"
    password_file.write_text(ACCOUNTS["ground"])
    return [
        "--broker", broker.url, "--drone", DRONE, "--username", "ground",
        "--password-file", str(password_file), "--ca-file", str(broker.ca_file),
    ]  # fmt: skip


async def flightctl(*args: str, timeout_s: float = 120) -> tuple[int, str, str]:
    """A flightctl command as a user runs it: (exit code, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "flightctl", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=timeout_s)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


@contextlib.asynccontextmanager
async def following(*args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """A following command (`events`, `telemetry`), returned once it says on stderr that it is subscribed."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "flightctl", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    assert process.stderr is not None
    try:
        async with asyncio.timeout(30):
            while b"following" not in (line := await process.stderr.readline()):
                assert line, "the command ended before it subscribed"
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@contextlib.asynccontextmanager
async def relaying(relay: StatusRelay) -> AsyncIterator[StatusRelay]:
    """The relay, turning the drone's events into the customer's statuses, for as long as the block runs."""
    task = asyncio.create_task(relay.run())
    try:
        # Subscribed on every broker before the drone speaks: a first subscription never sees what came before it.
        await eventually(
            lambda: len(relay.stats.connections_by_broker) == len(relay.endpoints) or task.done(), timeout_s=30
        )
        assert not task.done(), "the relay stopped before it subscribed"
        yield relay
        assert not task.done(), "the relay stopped"
    finally:
        task.cancel()
        await asyncio.wait({task})
