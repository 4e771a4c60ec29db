"""Poison messages, as data: the bounded reader refuses each with a reason, the relay dead-letters each and goes on,
and an event whose handling sets off a bug is dead-lettered too. No broker (tests/mqtt sends them through one)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from flightctl.ground.customer_status import CustomerStatus, StatusUpdate, customer_update
from flightctl.ground.registry import EventToKeep, Registry
from flightctl.ground.relay import StatusRelay
from flightctl.mqtt.answer_budget import AnswerBudget
from flightctl.mqtt.broker import Message
from flightctl.mqtt.consumer import MAX_JSON_DEPTH, NotAnEnvelope, json_depth, read_envelope
from flightctl.mqtt.contract import Envelope
from flightctl.mqtt.dead_letters import EXCERPT_BYTES, DeadLetterBox, excerpt
from flightctl.mqtt.endpoint import BrokerEndpoint
from flightctl.mqtt.requests import Refused, parse_command, parse_order
from tests.support.hostile import NOT_A_COUNT, NOT_A_TIME, NOT_AN_ID, NOT_AN_OBJECT, HostilePayloads, deep

DRONE = "drone-a"
TOPIC = f"flightctl/v1/drones/{DRONE}/events"


def state_event(seq: int = 1, **changes: Any) -> dict[str, Any]:
    event = {
        "schema": 1, "drone": DRONE, "seq": seq, "time": "2026-11-30T10:00:00.000Z", "time_source": "gps",
        "type": "state", "order_id": "KWL-1", "data": {"state": "ENROUTE", "detail": {"outbound_time_s": 120.0}},
    }  # fmt: skip
    return event | changes


def text(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


# The poison messages of the attack that stopped the relay for good (issue 18), and the daemon's deep document.
RELAY_POISON = {
    "a sequence number beyond 64 bits": text(state_event(seq=2**64)),
    "detail that is not an object": text(state_event(data={"state": "ENROUTE", "detail": "boom"})),
    "an outbound time of 1e300": text(state_event(data={"state": "ENROUTE", "detail": {"outbound_time_s": 1e300}})),
    "an outbound time of NaN": text(state_event()).replace(b"120.0", b"NaN"),
    "a timestamp in year 9999": text(state_event(time="9999-12-31T23:59:59Z")),
    "a document a thousand levels deep": deep(1000).encode(),
}
# Envelopes in bounds that are still not this drone's events: the relay itself refuses them.
NOT_THIS_DRONES_EVENT = {
    "an event of another drone": text(state_event(drone="drone-b")),
    "an event without a sequence number": text(state_event(seq=None)),
}


def customer_update_of(payload: bytes) -> StatusUpdate | None:
    return customer_update(read_envelope(payload))


@pytest.mark.parametrize("payload", list(RELAY_POISON.values()), ids=list(RELAY_POISON))
def test_the_relays_poison_messages_are_refused_with_a_reason(payload: bytes) -> None:
    """Test that each poison message fails as NotAnEnvelope (what a consumer dead-letters), never as anything
    else, at reading or at mapping to a customer status."""
    with pytest.raises(NotAnEnvelope, match=r"\w"):
        customer_update_of(payload)


def test_nesting_is_bounded_before_anything_walks_it() -> None:
    """Test the depth limit at its edge, both for documents the parser takes and for ones it gives up on."""
    assert json_depth({}) == 1
    assert json_depth({"a": [1, {"b": []}]}) == 4
    assert json_depth([1, "[[[["]) == 1
    nested_ok = '{"x":' + deep(MAX_JSON_DEPTH - 1) + "}"
    with pytest.raises(NotAnEnvelope, match=r"schema|drone"):  # deep enough to pass, then not an envelope
        read_envelope(nested_ok)
    with pytest.raises(NotAnEnvelope, match="nests 17 levels"):
        read_envelope('{"x":' + deep(MAX_JSON_DEPTH) + "}")
    with pytest.raises(NotAnEnvelope, match="nests deeper"):
        read_envelope(deep(5000))  # 10 KB: under the size limit, over what the parser recurses through


@pytest.mark.parametrize("payload", [deep(1000).encode(), b'{"data":' + deep(5000).encode() + b"}"])
def test_the_daemons_deep_documents_are_refused_not_raised(payload: bytes) -> None:
    """Test that the 2 KB document a thousand levels deep that raised RecursionError in the daemon is refused."""
    assert isinstance(parse_order(payload, DRONE), Refused)
    assert isinstance(parse_command(payload, DRONE), Refused)


def test_an_envelope_keeps_its_time_and_sequence_in_bounds() -> None:
    good = read_envelope(text(state_event(seq=2**63 - 1)))
    assert good.seq == 2**63 - 1
    for seq in NOT_A_COUNT:
        with pytest.raises(NotAnEnvelope):
            read_envelope(text(state_event(seq=seq)))
    for when in NOT_A_TIME:
        with pytest.raises(NotAnEnvelope):
            read_envelope(text(state_event(time=when)))


def test_a_good_departure_still_gives_its_estimate() -> None:
    update = customer_update(read_envelope(text(state_event())))
    assert isinstance(update, StatusUpdate)
    assert update.status is CustomerStatus.DEPARTED
    assert update.eta is not None
    assert (update.eta - update.at).total_seconds() == 120 + 90


def test_a_dead_letter_keeps_only_a_printable_excerpt() -> None:
    assert excerpt(b"\xff\x00abc") == "\\\\xff\\x00abc"
    long = excerpt(b"x" * 10_000)
    assert long.endswith("...")
    assert len(long) == EXCERPT_BYTES + 3


class BuggyRegistry(Registry):
    """A registry whose record_many() sets off a bug for one order (what an unexpected exception looks like): a
    batch holding it fails whole, as a transaction would."""

    async def record_many(self, events: Sequence[EventToKeep]) -> list[bool]:
        if any(event.order_id == "KWL-BUG" for event in events):
            raise RuntimeError("a bug this event sets off")
        return await super().record_many(events)


def message(payload: bytes, topic: str = TOPIC, mid: int = 1) -> Message:
    return Message(topic, payload, qos=1, retain=False, mid=mid)


async def test_the_relay_dead_letters_each_poison_message_and_takes_the_next_event(tmp_path: Path) -> None:
    """Test that every poison message, a bug set off by one, and a message on a topic that is not an events topic
    are each dead-lettered (counted, kept in the registry with topic, sender and reason), and that a good event
    sent afterwards is taken."""
    opened = await Registry.open(str(tmp_path / "registry.sqlite"))
    async with BuggyRegistry(opened._backend, opened.description) as registry:
        await registry.register("KWL-1", "customer-1", DRONE)
        relay = StatusRelay(registry, [BrokerEndpoint.from_url("mqtt://127.0.0.1:1")], name="relay-1")
        poison = [*RELAY_POISON.values(), *NOT_THIS_DRONES_EVENT.values()]
        for payload in poison:
            await relay.handle(message(payload))
        await relay.handle(message(text(state_event(seq=5, order_id="KWL-BUG"))))
        await relay.handle(message(text(state_event()), topic="flightctl/v1/drones/drone-a/events/extra"))
        bad = len(poison) + 2
        assert relay.stats.dead_letters == bad
        assert relay.dead_letters.total == bad
        kept = await registry.dead_letters(limit=100)
        assert len(kept) == bad
        assert {letter["sender"] for letter in kept} == {DRONE, None}
        assert any("RuntimeError: a bug this event sets off" in letter["reason"] for letter in kept)
        assert any("outbound_time_s" in letter["reason"] for letter in kept)

        await relay.handle(message(text(state_event(seq=1))))
        assert relay.stats.taken == 1
        assert [s.status for s in await registry.statuses("KWL-1")] == [CustomerStatus.DEPARTED]


async def test_a_batch_with_one_event_the_registry_refuses_keeps_the_others(tmp_path: Path) -> None:
    """Test a relay's batch (what arrived together, one transaction) holding one event that sets off a bug and one
    that is not JSON: those two are dead-lettered, every other event of the batch is taken once, and a repeat of
    one of them in the same batch is a duplicate."""
    opened = await Registry.open(str(tmp_path / "registry.sqlite"))
    async with BuggyRegistry(opened._backend, opened.description) as registry:
        await registry.register("KWL-1", "customer-1", DRONE)
        relay = StatusRelay(registry, [BrokerEndpoint.from_url("mqtt://127.0.0.1:1")], name="relay-1")
        batch = [
            message(text(state_event(seq=1)), mid=1),
            message(b"not json", mid=2),
            message(text(state_event(seq=2, order_id="KWL-BUG")), mid=3),
            message(text(state_event(seq=3)), mid=4),
            message(text(state_event(seq=1)), mid=5),
        ]
        await relay.handle_batch(batch)
        assert (relay.stats.taken, relay.stats.duplicates, relay.stats.dead_letters) == (2, 1, 2)
        assert await registry.missing_events(DRONE) == [2]
        assert [s.status for s in await registry.statuses("KWL-1")] == [CustomerStatus.DEPARTED]


async def test_the_relay_survives_ten_thousand_hostile_events(tmp_path: Path) -> None:
    """Test the relay's failure boundary with 10,000 hostile payloads (no broker: tests/mqtt does it through one):
    each is dead-lettered, only a budget of them is kept, and a good event afterwards is taken."""
    bounded: dict[tuple[str, ...], list[Any]] = {
        ("schema",): [2, 0, "1", None, [], 1e300],
        ("drone",): [*NOT_AN_ID, "drone-b", None],
        ("seq",): NOT_A_COUNT,
        ("time",): NOT_A_TIME,
        ("time_source",): ["", "radio", None, 5],
        ("type",): ["", "ordre", None, 3],
        ("order_id",): [x for x in NOT_AN_ID if x is not None],
        ("data",): [*NOT_AN_OBJECT, None],
        ("data", "state"): [None, 5, "x" * 100, []],
        ("data", "detail"): NOT_AN_OBJECT,
        ("data", "detail", "outbound_time_s"): [-1, 1e300, 86_401, "120", True, [], {}],
    }
    hostile = HostilePayloads(state_event(), bounded, max_bytes=64 * 1024, seed=18).take(10_000)
    async with await Registry.open(str(tmp_path / "registry.sqlite")) as registry:
        await registry.register("KWL-1", "customer-1", DRONE)
        relay = StatusRelay(registry, [BrokerEndpoint.from_url("mqtt://127.0.0.1:1")], name="relay-1")
        # A budget that does not refill while the test runs: exactly its burst is kept, however long it takes.
        budget = AnswerBudget(per_minute=1e-9, burst=60)
        relay.dead_letters = DeadLetterBox("relay-1", budget=budget, keep=relay.dead_letters.keep)
        for n, payload in enumerate(hostile):
            await relay.handle(message(payload, mid=n + 1))
        assert relay.stats.dead_letters == len(hostile)
        assert relay.stats.taken == 0
        assert len(await registry.dead_letters(limit=100_000)) == 60
        await relay.handle(message(text(state_event(seq=1))))
        assert relay.stats.taken == 1


def test_a_good_envelope_round_trips_through_the_bounded_reader() -> None:
    sent = Envelope(
        drone=DRONE, seq=3, time=datetime(2026, 11, 30, 10, tzinfo=UTC), time_source="gps", type="state",
        order_id="KWL-1", data={"state": "LANDED", "detail": {"released": True}},
    )  # fmt: skip
    assert read_envelope(sent.to_json()) == sent
    assert customer_update(sent) is None
