"""Poison through a real mosquitto (the shipped config, accounts by `flightctl broker add-*`), for each consumer:
the relay, the daemon's broker side and dispatch. 10,000 hostile payloads each, sent by an account the broker
lets publish there; afterwards the consumer still runs, acknowledged every message once (a new connection to the
same session gets none of them again), counted every one as a dead letter, and handles a good message."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from flightctl.daemon.mqtt_link import BrokerLink
from flightctl.daemon.outbox_pump import OutboxPump
from flightctl.daemon.settings import BrokerSection, TelemetrySection
from flightctl.daemon.telemetry_feed import DeliveryStatus, TelemetrySampler
from flightctl.delivery.journal import Journal
from flightctl.ground.dispatch import order_message, send_order
from flightctl.ground.registry import Registry
from flightctl.ground.relay import StatusRelay
from flightctl.mqtt.broker import MqttClient
from flightctl.mqtt.contract import Envelope, MessageType, TimeSource, Topics
from flightctl.mqtt.dead_letters import DeadLetterBox
from flightctl.mqtt.requests import MAX_INBOUND_BYTES, CommandRequest, OrderRequest, Refused
from flightctl.vehicle.telemetry import VehicleState
from sitl.relay_process import RelayProcess
from tests.ground.conftest import Fleet
from tests.sitl.deliveries import order
from tests.support.conditions import eventually, eventually_true
from tests.support.hostile import NOT_A_COUNT, NOT_A_TIME, NOT_AN_ID, NOT_AN_OBJECT, HostilePayloads, deep

pytestmark = pytest.mark.mqtt
A, B = Topics("drone-a"), Topics("drone-b")
HOSTILE = 10_000


def counting_acks(client: MqttClient, acks: list[int]) -> MqttClient:
    """``client``, with every acknowledgement it sends noted (the message id)."""
    ack = client.ack

    def noted(message: Any) -> None:
        acks.append(message.mid)
        ack(message)

    client.ack = noted  # type: ignore[method-assign]
    return client


async def publish_all(fleet: Fleet, user: str, topic: str, payloads: list[bytes]) -> None:
    async with fleet.client(user) as client:
        await publish_with(client, topic, payloads)


async def publish_with(client: MqttClient, topic: str, payloads: list[bytes], batch: int = 100) -> None:
    """QoS 1, each confirmed, a batch in flight at a time (in order: the broker keeps one client's order)."""
    for start in range(0, len(payloads), batch):
        await asyncio.gather(
            *(client.publish_confirmed(topic, p, timeout_s=30) for p in payloads[start : start + batch])
        )


# ---- the relay -----------------------------------------------------------------------------------------------


def event(seq: int, **changes: Any) -> dict[str, Any]:
    record = {
        "schema": 1, "drone": "drone-b", "seq": seq, "time": "2026-11-30T10:00:00.000Z", "time_source": "gps",
        "type": "state", "order_id": "KWL-P1", "data": {"state": "ENROUTE", "detail": {"outbound_time_s": 120.0}},
    }  # fmt: skip
    return record | changes


ENVELOPE_BOUNDS: dict[tuple[str, ...], list[Any]] = {
    ("schema",): [2, 0, "1", None, [], 1e300],
    ("drone",): [*NOT_AN_ID, None],
    ("seq",): NOT_A_COUNT,
    ("time",): NOT_A_TIME,
    ("type",): ["", "ordre", None, 3],
    ("data",): [*NOT_AN_OBJECT, None],
}
EVENT_BOUNDS: dict[tuple[str, ...], list[Any]] = {
    **ENVELOPE_BOUNDS,
    ("drone",): [*NOT_AN_ID, None, "drone-a"],  # drone A's event on drone B's topic
    ("data", "state"): [None, 5, "x" * 100, []],
    ("data", "detail"): NOT_AN_OBJECT,
    ("data", "detail", "outbound_time_s"): [-1, 1e300, 86_401, "120", True, [], {}],
}
# The poison events, each of which stopped `flightctl relay` for good.
POISON_EVENTS = [
    json.dumps(event(2**64)).encode(),
    json.dumps(event(2, data={"state": "ENROUTE", "detail": "boom"})).encode(),
    json.dumps(event(2, data={"state": "ENROUTE", "detail": {"outbound_time_s": 1e300}})).encode(),
    json.dumps(event(2)).replace("120.0", "NaN").encode(),
    json.dumps(event(2, time="9999-12-31T23:59:59Z")).encode(),
]


@contextlib.asynccontextmanager
async def running_relay(fleet: Fleet, registry: Registry, acks: list[int]) -> AsyncIterator[StatusRelay]:
    relay = StatusRelay(registry, [fleet.endpoint("relay-1")], name="relay-1")
    new_client = relay._client
    relay._client = lambda endpoint: counting_acks(new_client(endpoint), acks)  # type: ignore[method-assign]
    task = asyncio.create_task(relay.run())
    try:
        await eventually(lambda: relay.stats.connections > 0, timeout_s=30)
        yield relay
        assert not task.done(), "the relay stopped"
    finally:
        task.cancel()
        await asyncio.wait({task})


async def test_the_relay_survives_the_poison_events_and_ten_thousand_more(fleet: Fleet, tmp_path: Path) -> None:
    hostile = POISON_EVENTS + HostilePayloads(event(2), EVENT_BOUNDS, max_bytes=MAX_INBOUND_BYTES, seed=1).take(HOSTILE)
    async with await Registry.open(str(tmp_path / "registry.sqlite")) as registry:
        await registry.register("KWL-P1", "customer-p", "drone-b")
        acks: list[int] = []
        async with running_relay(fleet, registry, acks) as relay:
            await publish_all(fleet, "drone-b", B.events, [*hostile, json.dumps(event(1)).encode()])
            await eventually(lambda: relay.stats.taken == 1, timeout_s=120)
            assert relay.stats.dead_letters == len(hostile)
            assert len(acks) == len(hostile) + 1
        again: list[int] = []
        async with running_relay(fleet, registry, again) as relay:
            await publish_all(fleet, "drone-b", B.events, [json.dumps(event(3, data={"state": "ON_STATION"})).encode()])
            await eventually(lambda: relay.stats.taken == 1, timeout_s=30)
            assert relay.stats.dead_letters == 0, "nothing was handed over again"
            assert len(again) == 1
        assert [s.status.value for s in await registry.statuses("KWL-P1")] == ["DEPARTED", "ARRIVING"]
        kept = await registry.dead_letters(limit=1000)
        assert kept
        assert {k["sender"] for k in kept} == {"drone-b"}
        assert {k["topic"] for k in kept} == {B.events}


async def test_the_relay_process_takes_poison_without_a_crash_loop(fleet: Fleet, tmp_path: Path) -> None:
    """Test `flightctl relay` as deployed, given the issue's poison events (each stopped it for good, and it
    crash-looped on them after every restart): it keeps running, shows them as dead letters on /ops, takes the
    good event after them, and once restarted is handed none of them again."""
    registry_path = tmp_path / "registry.sqlite"
    async with await Registry.open(str(registry_path)) as registry:
        await registry.register("KWL-P1", "customer-p", "drone-b")
    relay = RelayProcess(
        tmp_path / "relay", "relay-1", broker_url=fleet.broker.url, ca_file=fleet.broker.ca_file,
        password=fleet.passwords["relay-1"], registry_url=str(registry_path),
    )  # fmt: skip
    await relay.start()
    try:
        await publish_all(fleet, "drone-b", B.events, [*POISON_EVENTS, json.dumps(event(1)).encode()])
        await eventually_true(lambda: took_one(relay), timeout_s=30)
        view = await relay.ops_view()
        assert view is not None
        assert view["dead_letters"] == len(POISON_EVENTS)
        assert len(view["recent_dead_letters"]) == len(POISON_EVENTS)
        assert relay.running
        await relay.stop()
        await relay.start()
        await publish_all(fleet, "drone-b", B.events, [json.dumps(event(3, data={"state": "ON_STATION"})).encode()])
        await eventually_true(lambda: took_one(relay), timeout_s=30)
        view = await relay.ops_view()
        assert view is not None
        assert view["dead_letters"] == 0, "none of them was handed over again"
    finally:
        await relay.stop()


async def took_one(relay: RelayProcess) -> bool:
    return await relay.taken() == 1


# ---- the daemon's broker side ----------------------------------------------------------------------------------


class Desk:
    """The delivery side as the broker side sees it, noting what it was given; an order numbered ``KWL-BUG-...``
    sets off a bug in it."""

    def __init__(self) -> None:
        self.taken: list[str] = []
        self.refused: list[Refused] = []
        self.commands: list[CommandRequest] = []

    def status(self) -> DeliveryStatus:
        return DeliveryStatus()

    async def take_order(self, request: OrderRequest) -> None:
        if request.order_id.startswith("KWL-BUG"):
            raise RuntimeError("a bug this order sets off")
        self.taken.append(request.order_id)

    async def refuse(self, what: MessageType, refused: Refused) -> None:
        self.refused.append(refused)

    async def command(self, request: CommandRequest) -> None:
        self.commands.append(request)


def order_document(order_id: str = "KWL-D1") -> dict[str, Any]:
    the_order = order("kirkwall-1500m-place").model_copy(update={"order_id": order_id})
    document: dict[str, Any] = json.loads(order_message("drone-a", the_order, f"req-{order_id}", None))
    return document


ORDER_BOUNDS: dict[tuple[str, ...], list[Any]] = {
    ("schema",): [2, 0, "1", None, []],
    ("drone",): [*NOT_AN_ID, "drone-b", None],
    ("time",): NOT_A_TIME,
    ("type",): ["", "state", "command", None, 3],
    ("data",): [*NOT_AN_OBJECT, None],
    ("data", "request_id"): [*NOT_AN_ID, None],
    ("data", "order"): [*NOT_AN_OBJECT, None],
    ("data", "order", "order_id"): [*NOT_AN_ID, None],
    ("data", "order", "parcel_kg"): [0, -1, 26, 1e300, "heavy", None, [], {}],
}


@contextlib.asynccontextmanager
async def daemon_link(fleet: Fleet, journal: Journal, desk: Desk, acks: list[int]) -> AsyncIterator[BrokerLink]:
    link = BrokerLink(
        "drone-a",
        [fleet.endpoint("drone-a")],
        BrokerSection(url=fleet.broker.url, reconnect_min_s=0.2, reconnect_max_s=1),
        TelemetrySection(),
        worker=desk,
        pump=OutboxPump(journal, A, publish_timeout_s=5),
        sampler=TelemetrySampler(VehicleState, desk.status, rate_hz=1, size=10),
        clock=journal.clock,
    )
    new_client = link._new_client
    link._new_client = lambda: counting_acks(new_client(), acks)  # type: ignore[method-assign]
    task = asyncio.create_task(link.run())
    try:
        await eventually(lambda: link.connections > 0, timeout_s=30)
        yield link
        assert not task.done(), "the daemon's broker side stopped"
    finally:
        task.cancel()
        await asyncio.wait({task})


async def test_the_daemon_survives_deep_documents_a_bug_and_ten_thousand_hostile_orders(
    fleet: Fleet, tmp_path: Path
) -> None:
    """Test the daemon's broker side with the document a thousand levels deep (it raised RecursionError and
    stopped the daemon for good), an order that sets off a bug, and 10,000 hostile orders and commands: each is
    dead-lettered and answered as refused, the link never drops, and a good order afterwards is taken."""
    deep_documents = [deep(1000).encode(), b'{"data":' + deep(1000).encode() + b"}"]
    hostile = HostilePayloads(order_document(), ORDER_BOUNDS, max_bytes=MAX_INBOUND_BYTES, seed=2).take(HOSTILE)
    bug = json.dumps(order_document("KWL-BUG-1")).encode()
    async with await Journal.open(tmp_path / "journal.sqlite") as journal:
        desk, acks = Desk(), []
        async with daemon_link(fleet, journal, desk, acks) as link:
            await publish_all(fleet, "operator-1", A.commands, deep_documents)
            await publish_all(fleet, "dispatch-1", A.orders, [*deep_documents, bug, *hostile])
            await publish_all(fleet, "dispatch-1", A.orders, [json.dumps(order_document()).encode()])
            await eventually(lambda: desk.taken == ["KWL-D1"], timeout_s=120)
            sent = 2 + 2 + 1 + len(hostile)
            assert link.dead_letters.total == sent
            assert len(desk.refused) == sent, "each was answered (the real worker rations the answers)"
            assert any("could not be handled: RuntimeError" in r.reasons[0] for r in desk.refused)
            assert len(acks) == sent + 1
            assert link.connections == 1, "one message never dropped the connection"
        again_desk, again = Desk(), []
        async with daemon_link(fleet, journal, again_desk, again) as link:
            await publish_all(fleet, "dispatch-1", A.orders, [json.dumps(order_document("KWL-D2")).encode()])
            await eventually(lambda: again_desk.taken == ["KWL-D2"], timeout_s=30)
            assert link.dead_letters.total == 0, "nothing was handed over again"


WIND = {"from_deg": 30, "speed_m_s": 5, "measured_at": "2026-12-01T09:35:00Z"}
NOT_A_WIND: list[Any] = [
    *NOT_AN_OBJECT, None, {"from_deg": 30, "speed_m_s": 5}, {**WIND, "from_deg": 361}, {**WIND, "speed_m_s": 1e300},
    {**WIND, "speed_m_s": "5"}, {**WIND, "measured_at": "2026-12-01T09:35:00"}, {**WIND, "extra": 1},
]  # fmt: skip


def leg_document(order_id: str = "NRL-D1") -> dict[str, Any]:
    data = {
        "request_id": f"req-{order_id}",
        "leg": {"order_id": order_id, "leg": "kirkwall-north-ronaldsay", "parcel_kg": 2.0},
        "airstrip_winds": {"EGPA": WIND, "EGEN": WIND, "EGES": WIND},
        "wind_aloft": {"from_deg": 250, "speed_m_s": 10},
    }
    return json.loads(Envelope(
        drone="drone-a", time=datetime.now(UTC), time_source=TimeSource.SENDER, type=MessageType.ORDER,
        order_id=order_id, data=data,
    ).to_json())  # fmt: skip


LEG_BOUNDS: dict[tuple[str, ...], list[Any]] = {
    **{path: values for path, values in ORDER_BOUNDS.items() if path[:2] != ("data", "order")},
    ("data", "leg"): [*NOT_AN_OBJECT, None],
    ("data", "leg", "order_id"): [*NOT_AN_ID, None],
    ("data", "leg", "leg"): ["../../etc/passwd", "", "A", "x" * 100, None, 5, []],
    ("data", "leg", "parcel_kg"): [-1, 1e300, "heavy", None, []],
    ("data", "leg", "follows"): NOT_AN_ID,
    ("data", "airstrip_winds"): [*NOT_AN_OBJECT, {"egen": WIND}, {f"EGA{c}": WIND for c in "ABCD"}],
    ("data", "airstrip_winds", "EGEN"): NOT_A_WIND,
    ("data", "wind_aloft"): [*NOT_AN_OBJECT, None, {"from_deg": -1, "speed_m_s": 1}],
}


def command_document(**data: Any) -> dict[str, Any]:
    return json.loads(Envelope(
        drone="drone-a", time=datetime.now(UTC), time_source=TimeSource.SENDER, type=MessageType.COMMAND,
        data={"request_id": "ops-1", **data},
    ).to_json())  # fmt: skip


UNLOADED_BOUNDS: dict[tuple[str, ...], list[Any]] = {
    ("data", "command"): ["", "unload", None, 3, []],
    ("data", "order_id"): [*NOT_AN_ID, None],
    ("data", "by"): ["", "crew\nFORGED LOG LINE", "x" * 81, "\u0007", None, 5, [], "\ud800"],
    ("data", "icao"): ["EGEN"],  # a field unloaded does not take
}
WIND_BOUNDS: dict[tuple[str, ...], list[Any]] = {
    ("data", "command"): ["", "wind", None, 3, []],
    ("data", "icao"): ["egen", "EGENX", "", None, 5, [], "../x"],
    ("data", "wind"): NOT_A_WIND,
    ("data", "by"): ["crew"],  # a field airstrip_wind does not take
}


async def test_the_daemon_refuses_hostile_legs_and_leg_commands_and_takes_the_good_one_after(
    fleet: Fleet, tmp_path: Path
) -> None:
    """Test the leg order and the leg commands (unloaded, airstrip_wind) through a real mosquitto: 6,000 hostile
    ones (paths for leg names, forged log lines for the crew, winds of unknown age, NaN, deep nesting) are each
    dead-lettered and answered as refused, the link never drops, and a good leg and good commands after them
    are taken."""
    hostile_legs = HostilePayloads(leg_document(), LEG_BOUNDS, max_bytes=MAX_INBOUND_BYTES, seed=4).take(2000)
    unloaded = command_document(command="unloaded", order_id="NRL-D1", by="NRL crew 2")
    reported = command_document(command="airstrip_wind", icao="EGEN", wind=WIND)
    hostile_commands = [
        *HostilePayloads(unloaded, UNLOADED_BOUNDS, max_bytes=MAX_INBOUND_BYTES, seed=5).take(2000),
        *HostilePayloads(reported, WIND_BOUNDS, max_bytes=MAX_INBOUND_BYTES, seed=6).take(2000),
    ]
    async with await Journal.open(tmp_path / "journal.sqlite") as journal:
        desk, acks = Desk(), []
        async with daemon_link(fleet, journal, desk, acks) as link:
            await publish_all(fleet, "dispatch-1", A.orders, [*hostile_legs, json.dumps(leg_document()).encode()])
            await publish_all(fleet, "operator-1", A.commands, [*hostile_commands, *(
                json.dumps(good).encode() for good in (unloaded, reported)
            )])  # fmt: skip
            await eventually(lambda: len(desk.commands) == 2, timeout_s=120)
            assert desk.taken == ["NRL-D1"]
            assert [(c.command, c.order_id, c.by, c.icao) for c in desk.commands] == [
                ("unloaded", "NRL-D1", "NRL crew 2", None),
                ("airstrip_wind", None, None, "EGEN"),
            ]
            sent = len(hostile_legs) + len(hostile_commands)
            assert link.dead_letters.total == sent
            assert len(desk.refused) == sent
            assert len(acks) == sent + 3
            assert link.connections == 1, "one message never dropped the connection"


# ---- dispatch -------------------------------------------------------------------------------------------------


async def answer_with_poison_first(
    fleet: Fleet, payloads: list[bytes], answered: Callable[[bytes], bytes], subscribed: asyncio.Event
) -> None:
    """Drone A as a hostile one: reads the order, sends ``payloads`` on its events, then the real answer."""
    async with fleet.client("drone-a") as drone:
        await drone.subscribe(A.orders, qos=1)
        subscribed.set()
        async for message in drone.messages:
            assert isinstance(message.payload, bytes)
            await publish_with(drone, A.events, payloads)
            await publish_with(drone, A.events, [answered(message.payload)])  # after every one of them
            return


async def test_dispatch_waits_through_poison_for_its_answer(fleet: Fleet) -> None:
    """Test that dispatch, waiting for a drone's answer, takes 10,000 hostile payloads on that drone's events as
    dead letters (counted) and returns the real answer that follows them."""
    # Dispatch reads envelopes, and passes over any that is not its answer: the hostile ones are not envelopes.
    hostile = HostilePayloads(event(2, drone="drone-a"), ENVELOPE_BOUNDS, max_bytes=MAX_INBOUND_BYTES, seed=3).take(
        HOSTILE
    )

    def accepted(order_payload: bytes) -> bytes:
        request = json.loads(order_payload)["data"]
        return Envelope(
            drone="drone-a", seq=1, time=datetime.now(UTC), time_source=TimeSource.GPS,
            type=MessageType.ORDER_ACCEPTED, order_id=request["order"]["order_id"],
            data={"request_id": request["request_id"]},
        ).to_json()  # fmt: skip

    subscribed = asyncio.Event()
    drone = asyncio.create_task(answer_with_poison_first(fleet, hostile, accepted, subscribed))
    box = DeadLetterBox("dispatch")
    try:
        async with asyncio.timeout(30):
            await subscribed.wait()
        answer = await send_order(
            [fleet.endpoint("dispatch-1")], "drone-a", order("kirkwall-1500m-place"),
            wind=None, timeout_s=120, dead_letters=box,
        )  # fmt: skip
    finally:
        drone.cancel()
        await asyncio.wait({drone})
    assert answer.type is MessageType.ORDER_ACCEPTED
    assert box.total == len(hostile)
