"""The MQTT contract as data: what the daemon reads from its orders and commands topics, what it writes, and how
a consumer de-duplicates. No broker."""

from __future__ import annotations

import json
import re
import typing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from flightctl.config import named_config, read_yaml_model
from flightctl.daemon.clock import message_time
from flightctl.daemon.telemetry_feed import DeliveryStatus, DropOldestQueue, telemetry_data
from flightctl.delivery.order import DeliveryOrder
from flightctl.mqtt.consumer import NotAnEnvelope, SequenceTracker, read_envelope
from flightctl.mqtt.contract import Envelope, MessageType, TimeSource, Topics
from flightctl.mqtt.messages import (
    DATA_MODELS,
    CommandResult,
    DaemonStatus,
    OnlineData,
    OrderAccepted,
    OrderRejected,
    StateDetail,
    TelemetryData,
    contract_data,
)
from flightctl.mqtt.requests import (
    MAX_INBOUND_BYTES,
    CommandRequest,
    OrderRequest,
    Refused,
    parse_command,
    parse_order,
)
from flightctl.vehicle.telemetry import VehicleState

DRONE = "orkney-07"
ORDER = read_yaml_model(named_config("orders", "kirkwall-1500m-place"), DeliveryOrder)


def message(data: Any, *, type_: str = "order", drone: str = DRONE, **envelope: Any) -> bytes:
    record = {"schema": 1, "drone": drone, "time": "2026-11-28T10:00:00Z", "time_source": "sender", "type": type_}
    return json.dumps(record | envelope | {"data": data}).encode()


def order_data(**changes: Any) -> dict[str, Any]:
    return {"request_id": "r-1", "order": ORDER.model_dump(mode="json", exclude_none=True)} | changes


def test_a_good_order_is_read_with_its_request_id_and_depot_wind() -> None:
    """Test that an order in the configs/orders schema plus a request id and the depot's wind is read as one."""
    wind = {"speed_m_s": 4.5, "measured_at": "2026-11-28T09:55:00Z"}
    request = parse_order(message(order_data(depot_wind=wind)), DRONE)
    assert isinstance(request, OrderRequest)
    assert request.order == ORDER
    assert request.request_id == "r-1"
    assert request.depot_wind is not None
    assert request.depot_wind.ground_wind().speed_m_s == 4.5


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"schema": 1, "drone": ', "not JSON"),
        (b"\xff\xfe\x00{}", "not UTF-8"),
        (b"[1, 2, 3]", "not an object"),
        (b"{" + b" " * MAX_INBOUND_BYTES + b"}", "over the limit"),
        (message(order_data(), drone="other-drone"), "addressed to 'other-drone'"),
        (message(order_data(), type_="command"), "on the orders topic"),
        (message(order_data(), schema=2), "schema"),
        (message(order_data(), extra="x"), "extra: Extra inputs are not permitted"),
        (message(order_data(customer="Ann")), "data.customer: Extra inputs are not permitted"),
        (message({"order": order_data()["order"]}), "data.request_id: Field required"),
        (message(order_data(request_id="a/b#")), "data.request_id"),
        (message(order_data(depot_wind={"speed_m_s": 3, "measured_at": "2026-11-28T09:55:00"})), "time with its zone"),
        (message(order_data()).replace(b'"parcel_kg": 1.2', b'"parcel_kg": NaN'), "not a number JSON allows"),
        (
            message(order_data()).replace(b'"parcel_kg": 1.2', b'"parcel_kg": "1.2"'),
            "data.order.parcel_kg: Input should be a valid number",
        ),
        (
            message(order_data(depot_wind={"speed_m_s": "3", "measured_at": "2026-11-28T09:55:00Z"})),
            "data.depot_wind.speed_m_s",
        ),
    ],
)
def test_a_bad_order_is_refused_with_the_reason(payload: bytes, reason: str) -> None:
    """Test that malformed, oversized, non-UTF-8, misaddressed and unknown-field payloads are refused, each with a
    reason naming what is wrong."""
    refused = parse_order(payload, DRONE)
    assert isinstance(refused, Refused)
    assert any(reason in r for r in refused.reasons), refused.reasons


def test_a_refusal_echoes_only_a_safe_request_id() -> None:
    """Test that a refused order's request and order ids are echoed for the sender to match, unless they are not
    plain short ids (an answer never carries a hostile string back out)."""
    refused = parse_order(message(order_data(order={**order_data()["order"], "parcel_kg": -1})), DRONE)
    assert isinstance(refused, Refused)
    assert (refused.request_id, refused.order_id) == ("r-1", ORDER.order_id)
    hostile = parse_order(message(order_data(request_id="<script>" * 3, order={"order_id": "x" * 500})), DRONE)
    assert isinstance(hostile, Refused)
    assert (hostile.request_id, hostile.order_id) == (None, None)


def test_commands_are_abort_or_status() -> None:
    """Test that abort (with a reason) and status are read, and anything else is refused naming the command."""
    abort = parse_command(
        message({"request_id": "c1", "command": "abort", "reason": "weather"}, type_="command"), DRONE
    )
    assert abort == CommandRequest(request_id="c1", command="abort", reason="weather")
    refused = parse_command(message({"request_id": "c2", "command": "self_destruct"}, type_="command"), DRONE)
    assert isinstance(refused, Refused)
    assert refused.request_id == "c2"
    assert "data.command" in refused.reasons[0]


def test_the_envelope_round_trips_with_a_utc_time() -> None:
    """Test that an envelope written by the drone reads back the same, with its time in UTC ('Z')."""
    sent = Envelope(
        drone=DRONE, seq=7, time=datetime(2026, 11, 28, 10, 0, 1, 500_000, tzinfo=UTC),
        time_source=TimeSource.GPS, type=MessageType.STATE, order_id="KWL-1", data={"state": "ENROUTE"},
    )  # fmt: skip
    text = sent.to_json()
    assert json.loads(text)["time"] == "2026-11-28T10:00:01.500Z"
    assert json.loads(text)["schema"] == 1
    assert read_envelope(text) == sent
    with pytest.raises(NotAnEnvelope):
        read_envelope(b"telemetry?")
    with pytest.raises(NotAnEnvelope):
        read_envelope(None)


def test_topics_live_under_the_drone_and_a_version() -> None:
    topics = Topics(DRONE)
    assert topics.orders == "flightctl/v1/drones/orkney-07/orders"
    assert {topics.events, topics.telemetry, topics.online, topics.commands} == {
        f"flightctl/v1/drones/orkney-07/{leaf}" for leaf in ("events", "telemetry", "online", "commands")
    }


def test_a_consumer_sees_each_event_once_and_names_the_gaps() -> None:
    """Test that duplicates (a re-send after a lost PUBACK) are dropped, and events that never came are named."""
    tracker = SequenceTracker(start_after=0)
    assert [tracker.accept(n) for n in (1, 2, 2, 1, 3)] == [True, True, False, False, True]
    assert tracker.accept(6)
    assert tracker.missing() == [4, 5]
    assert tracker.accept(4)
    assert tracker.accept(5)
    assert not tracker.accept(6)
    assert tracker.missing() == []
    assert tracker.highest == 6
    joined = SequenceTracker()
    assert joined.accept(40)
    assert not joined.accept(39), "older than where this consumer joined the stream"


def test_the_telemetry_queue_drops_the_oldest_and_counts() -> None:
    queue: DropOldestQueue[int] = DropOldestQueue(3)
    for n in range(5):
        queue.put(n)
    assert queue.dropped == 2
    assert len(queue) == 3


async def test_the_telemetry_queue_hands_out_the_newest_kept() -> None:
    queue: DropOldestQueue[int] = DropOldestQueue(2)
    for n in range(4):
        queue.put(n)
    assert [await queue.get(), await queue.get()] == [2, 3]


def test_message_time_is_the_autopilots_gps_time_when_fresh() -> None:
    """Test that the autopilot's GPS-derived UTC, advanced by its age, is used while fresh, and the companion's clock
    (said so) when it is stale or missing."""
    gps = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    state = VehicleState(utc_us=int(gps.timestamp() * 1e6), utc_received_monotonic_s=100.0)
    when, source = message_time(state, 102.5)
    assert (when, source) == (gps + timedelta(seconds=2.5), "gps")
    assert message_time(state, 200.0)[1] == "companion"
    assert message_time(VehicleState(), 0.0)[1] == "companion"


def test_telemetry_is_json_safe_even_from_a_bad_packet() -> None:
    """Test that a NaN from a corrupt message is sent as null, never as a NaN no JSON parser accepts."""
    state = VehicleState(groundspeed_m_s=float("nan"), relative_alt_m=12.345, armed=True, mode="AUTO")
    data = telemetry_data(state, DeliveryStatus("KWL-1"), 1.0)
    assert data["ground_speed_m_s"] is None
    assert data["relative_alt_m"] == 12.35
    json.dumps(data, allow_nan=False)


def test_every_example_in_the_contract_document_is_a_valid_message() -> None:
    """Test that each JSON example in docs/mqtt.md reads as an envelope, and its orders and commands as the daemon
    reads them, so the document and the code cannot drift apart."""
    text = Path("docs/mqtt.md").read_text()
    examples = re.findall(r"```json\n(.*?)```", text, flags=re.DOTALL)
    assert len(examples) >= 9
    types = set()
    for example in examples:
        envelope = read_envelope(example)
        types.add(envelope.type)
        if envelope.type is MessageType.ORDER:
            assert isinstance(parse_order(example.encode(), envelope.drone), OrderRequest)
        elif envelope.type is MessageType.COMMAND:
            assert isinstance(parse_command(example.encode(), envelope.drone), CommandRequest)
        model = DATA_MODELS[envelope.type]
        model.model_validate(envelope.data)
        assert undeclared(model, envelope.data) == [], f"{envelope.type}: fields the contract does not name"
    assert types == set(MessageType), f"a message type without an example: {set(MessageType) - types}"


def undeclared(model: type[BaseModel], data: object, where: str = "data") -> list[str]:
    """The keys of ``data`` (at any depth) that ``model`` does not declare: a document naming a field no model has
    is out of date, even though readers ignore unknown keys."""
    if not isinstance(data, dict):
        return []
    found = []
    for key, value in data.items():
        field = model.model_fields.get(key)
        if field is None:
            found.append(f"{where}.{key}")
            continue
        for inner in _models_in(field.annotation):
            if _is_mapping(field.annotation) and isinstance(value, dict):  # keyed by data (airstrip_winds by ICAO)
                for name, item in value.items():
                    found += undeclared(inner, item, f"{where}.{key}.{name}")
            else:
                found += undeclared(inner, value, f"{where}.{key}")
    return found


def _is_mapping(annotation: object) -> bool:
    return typing.get_origin(annotation) is dict or any(_is_mapping(arg) for arg in typing.get_args(annotation))


def _models_in(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in typing.get_args(annotation) for model in _models_in(arg)]


def test_every_field_the_contract_names_is_in_the_document() -> None:
    """Test the other direction: each field of each event's model (and of a transition's detail) is written in
    docs/mqtt.md, so a field added in code is documented in the same change."""
    text = Path("docs/mqtt.md").read_text()
    for model in (StateDetail, OrderAccepted, OrderRejected, CommandResult, DaemonStatus, TelemetryData, OnlineData):
        for name in model.model_fields:
            assert f"`{name}`" in text or f'"{name}"' in text, f"{model.__name__}.{name} is not in docs/mqtt.md"


@pytest.mark.parametrize(
    ("type_", "data", "leaves"),
    [
        (MessageType.STATE, {"state": "RELEASED", "detail": {"error_m": 0.5, "debug_trace": "x"}},
         {"state": "RELEASED", "detail": {"error_m": 0.5}}),
        (MessageType.ORDER_ACCEPTED, {"request_id": "r1", "internal": 1}, {"request_id": "r1"}),
        (MessageType.STATE, {"state": "FAILED", "detail": {"reason": "e" * 5000}},
         {"state": "FAILED", "detail": {"reason": "e" * 999 + "…"}}),
    ],
    ids=["detail-not-in-contract", "answer-field-not-in-contract", "long-reason-clipped"],
)  # fmt: skip
def test_a_journal_detail_not_in_the_contract_does_not_leave_the_aircraft(
    type_: MessageType, data: dict[str, Any], leaves: dict[str, Any]
) -> None:
    assert contract_data(type_, data) == leaves


def test_a_value_the_contract_cannot_carry_is_refused_on_the_way_out() -> None:
    with pytest.raises(ValidationError, match="how"):
        contract_data(MessageType.STATE, {"state": "ABORTING", "detail": {"how": "somehow"}})


@pytest.mark.parametrize("order_id", ["KWL.1", "KWL:1", "x" * 65, "ÅLAND-1", 17])
def test_a_refused_order_id_that_is_no_order_id_is_not_echoed(order_id: object) -> None:
    """Test that an order id only a request id could be (or none at all) is never put in an answer's envelope,
    where it would make the answer itself invalid."""
    refused = parse_order(message(order_data(order={**order_data()["order"], "order_id": order_id})), DRONE)
    assert isinstance(refused, Refused)
    assert refused.order_id is None
    assert refused.request_id == "r-1"
