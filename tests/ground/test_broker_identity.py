"""A stolen drone's credentials against the shipped broker config (real mosquitto, accounts by `flightctl broker
add-*`): it cannot join the relays' shared subscription, subscribe outside its own topics, or take another
client's id, online or offline; and no event or queued order of anyone else is lost to it trying."""

from __future__ import annotations

import contextlib
import uuid

import pytest
from paho.mqtt.reasoncodes import ReasonCode

from flightctl.ground.broker_accounts import Account, AccountKind, client_id_of
from flightctl.mqtt.broker import BrokerError, BrokerRefused
from flightctl.mqtt.contract import Topics
from tests.ground.conftest import Fleet
from tests.ground.test_broker_isolation import B_EXACT, WILDCARDS, Listener, listening, publish

pytestmark = pytest.mark.mqtt
A, B = Topics("drone-a"), Topics("drone-b")
RELAYS_GROUP = "$share/relay/flightctl/v1/drones/+/events"


def refused(granted: object) -> bool:
    codes = list(granted) if isinstance(granted, list | tuple) else [granted]
    return all(isinstance(code, ReasonCode) and code.is_failure for code in codes)


async def test_a_drone_cannot_join_the_relays_shared_group_and_no_event_is_lost(fleet: Fleet) -> None:
    """Test that drone A's subscription to the relays' shared group (and to any other group on the events) is
    refused at SUBSCRIBE, and that the two relays together get every one of drone B's events while it tries."""
    async with (
        listening(fleet, "relay-1", [RELAYS_GROUP]) as one,
        listening(fleet, "relay-2", [RELAYS_GROUP]) as two,
        fleet.client("drone-a") as attacker,
    ):
        for group in (RELAYS_GROUP, "$share/other/flightctl/v1/drones/+/events", "$share/relay/#"):
            with pytest.raises(BrokerRefused, match="0x87"):
                await attacker.subscribe(group, qos=1)
        sent = [f"b-event-{n}-{uuid.uuid4().hex[:6]}".encode() for n in range(10)]
        async with fleet.client("drone-b") as drone_b:
            for payload in sent:
                await drone_b.publish_confirmed(B.events, payload, timeout_s=10)
        sentinel = b"last"
        await publish(fleet, "drone-b", B.events, sentinel)
        await both_saw(one, two, sentinel)
        received = [p for _t, p in one.received + two.received if p != sentinel]
    assert sorted(received) == sorted(sent), "every event reached a relay, once"


async def both_saw(one: Listener, two: Listener, sentinel: bytes) -> None:
    """The sentinel goes to one of the two; wait until whichever got it has it."""
    with contextlib.suppress(TimeoutError):
        await one.until(sentinel, timeout_s=5)
        return
    await two.until(sentinel, timeout_s=10)


@pytest.mark.parametrize("topic_filter", [*WILDCARDS, *B_EXACT, "$CONTROL/#", "$CONTROL/dynamic-security/v1", A.events])
async def test_a_drone_subscribing_outside_its_own_inbound_topics_is_refused(fleet: Fleet, topic_filter: str) -> None:
    """Test that drone A may subscribe to its own orders and commands and to nothing else: the broker refuses the
    subscription itself (SUBACK 0x87), not only the messages it would carry."""
    async with fleet.client("drone-a") as drone_a:
        assert not refused(await drone_a.subscribe(A.orders, qos=1))
        assert not refused(await drone_a.subscribe(A.commands, qos=1))
        with pytest.raises(BrokerRefused) as raised:
            await drone_a.subscribe(topic_filter, qos=1)
        assert raised.value.reason.value == 0x87, "SUBACK 0x87: not authorised"


@pytest.mark.parametrize("victim", ["relay-1", "drone-b"])
async def test_a_drone_cannot_take_an_online_clients_id(fleet: Fleet, victim: str) -> None:
    """Test that drone A connecting with the client id of a connected relay or drone is refused, and the client
    it tried to displace stays connected and keeps receiving."""
    kind = AccountKind.RELAY if victim.startswith("relay") else AccountKind.DRONE
    victim_id = client_id_of(Account(victim, kind))
    assert victim_id is not None
    watched, producer, topic = (
        (RELAYS_GROUP, "drone-b", B.events) if kind is AccountKind.RELAY else (B.orders, "dispatch-1", B.orders)
    )
    async with listening(fleet, victim, [watched]) as listener:
        with pytest.raises(BrokerError):
            async with fleet.client("drone-a", client_id=victim_id):
                pass
        sentinel = f"still-here-{uuid.uuid4().hex}".encode()
        await publish(fleet, producer, topic, sentinel)
        assert (topic, sentinel) in await listener.until(sentinel)


async def test_a_drone_cannot_take_an_away_drones_session_or_its_queued_order(fleet: Fleet) -> None:
    """Test that while drone B is away with an order queued in its session, drone A connecting as B's client id
    (a clean start, which would end B's session) is refused, and B gets its order when it is back."""
    async with fleet.client("drone-b", session_expiry_s=3600) as drone_b:
        await drone_b.subscribe(B.orders, qos=1)
    order = f"b-order-{uuid.uuid4().hex}".encode()
    await publish(fleet, "dispatch-1", B.orders, order)
    for session_expiry_s in (0, 3600):
        with pytest.raises(BrokerError):
            async with fleet.client("drone-a", client_id="flightctl-drone-b", session_expiry_s=session_expiry_s):
                pass
    async with listening(fleet, "drone-b", [], session_expiry_s=3600) as listener:  # its session has the filter
        assert (B.orders, order) in await listener.until(order)
