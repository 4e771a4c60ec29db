"""``flightctl order send`` and ``order leg``: a drop or an island leg ordered from a drone over MQTT, as dispatch
would send it, and the drone's answer."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from flightctl.cli.broker_options import (
    BrokersOption,
    CaFileOption,
    DroneOption,
    PasswordFileOption,
    UsernameOption,
    drone_or_exit,
    endpoints_or_exit,
)
from flightctl.cli.common import (
    AirstripWindOption,
    AloftOption,
    AnswerTimeoutOption,
    DepotWindOption,
    airstrip_winds_or_exit,
    console,
    depot_wind_or_exit,
    fail,
    run,
)

if TYPE_CHECKING:
    from flightctl.delivery.order import DeliveryOrder
    from flightctl.delivery.wind import GroundWind

order_app = typer.Typer(no_args_is_help=True, help="Orders to a drone over MQTT.")

REJECTED_EXIT = 2


OrderArgument = Annotated[str, typer.Argument(help="Order file, or a name in configs/orders/.")]


def order_and_wind_or_exit(order: str, depot_wind: str | None) -> tuple[DeliveryOrder, GroundWind | None]:
    """The order file and the depot wind, read before anything is sent; a bad one is one red line."""
    from flightctl.config import named_config, read_yaml_model
    from flightctl.delivery.order import DeliveryOrder
    from flightctl.errors import FlightctlError
    from flightctl.mqtt.requests import MAX_INBOUND_BYTES

    try:
        the_order = read_yaml_model(named_config("orders", order), DeliveryOrder, max_bytes=MAX_INBOUND_BYTES)
    except FlightctlError as exc:
        raise fail(exc) from None
    return the_order, depot_wind_or_exit(depot_wind)


def show_answer(answer: dict[str, Any], order_id: str, drone: str) -> None:
    """The drone's answer for people (accepted with its note, or rejected with every reason); exit 2 if rejected."""
    from flightctl.mqtt.contract import MessageType

    accepted = answer["type"] == MessageType.ORDER_ACCEPTED
    note = answer["data"].get("note")
    verdict = ("accepted", "bold green") if accepted else ("rejected", "bold red")
    console.print(Text.assemble(verdict, f": order {order_id} on drone {drone}", f" ({note})" if note else ""))
    for reason in answer["data"].get("reasons", []):
        console.print(Text(f"  - {reason}"))


def print_answer(answer: dict[str, Any], order_id: str, drone: str, *, as_json: bool) -> None:
    """The answer as its envelope's JSON, or for people; exit 2 unless accepted."""
    if as_json:
        sys.stdout.write(json.dumps(answer) + "\n")
    else:
        show_answer(answer, order_id, drone)
    exit_unless_accepted(answer)


def exit_unless_accepted(answer: dict[str, Any]) -> None:
    from flightctl.mqtt.contract import MessageType

    if answer["type"] != MessageType.ORDER_ACCEPTED:
        raise typer.Exit(REJECTED_EXIT)


@order_app.command("send")
def send(
    order: OrderArgument,
    broker: BrokersOption,
    drone: DroneOption,
    depot_wind: DepotWindOption = None,
    username: UsernameOption = None,
    password_file: PasswordFileOption = None,
    ca_file: CaFileOption = None,
    timeout_s: AnswerTimeoutOption = 60,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer's envelope as JSON.")] = False,
) -> None:
    """Publish ORDER to the drone and print its answer: exit 0 accepted, 2 rejected (with every reason), 1 no
    answer in time (the order stays with the broker and is answered when the drone comes back)."""
    from flightctl.ground.dispatch import send_order

    endpoints = endpoints_or_exit(broker, username, password_file, ca_file)
    drone = drone_or_exit(drone)
    the_order, wind = order_and_wind_or_exit(order, depot_wind)

    async def go() -> dict[str, Any]:
        answer = await send_order(endpoints, drone, the_order, wind=wind, timeout_s=timeout_s)
        return answer.model_dump(mode="json", by_alias=True)

    print_answer(run(go), the_order.order_id, drone, as_json=as_json)


@order_app.command("leg")
def leg(
    leg_name: Annotated[str, typer.Argument(metavar="LEG", help="The leg's name, as the aircraft's config lists it.")],
    order_id: Annotated[str, typer.Option("--order-id", help="The leg's opaque order id.")],
    parcel_kg: Annotated[float, typer.Option("--parcel-kg", min=0, max=1000, help="Mass of what is loaded, kg.")],
    aloft_wind: AloftOption,
    broker: BrokersOption,
    drone: DroneOption,
    wind: AirstripWindOption = None,
    follows: Annotated[
        str | None, typer.Option("--follows", help="A return leg: the order id of the leg it turns around from.")
    ] = None,
    username: UsernameOption = None,
    password_file: PasswordFileOption = None,
    ca_file: CaFileOption = None,
    timeout_s: AnswerTimeoutOption = 60,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer's envelope as JSON.")] = False,
) -> None:
    """Order the island leg LEG from the drone (a fixed-wing whose config lists it) and print its answer: exit 0
    accepted (at GO, before take-off), 2 rejected (every reason, each NO-GO with its numbers), 1 no answer in
    time. Each --airstrip-wind must say when it was measured (@TIME)."""
    from pydantic import ValidationError

    from flightctl.config import validation_problems
    from flightctl.delivery.runway_choice import SurfaceWind
    from flightctl.errors import ConfigError, FlightctlError
    from flightctl.ground.dispatch import new_request_id, request_message, send_request
    from flightctl.mqtt.contract import MessageType, Topics
    from flightctl.mqtt.requests import LegOrder, OrderRequest

    endpoints = endpoints_or_exit(broker, username, password_file, ca_file)
    drone = drone_or_exit(drone)
    winds = airstrip_winds_or_exit(wind, need_time=True)
    request_id = new_request_id()
    try:
        request = OrderRequest(
            request_id=request_id,
            leg=LegOrder(order_id=order_id, leg=leg_name, parcel_kg=parcel_kg, follows=follows),
            airstrip_winds=winds,
            wind_aloft=SurfaceWind.parse(aloft_wind),
        )
    except FlightctlError as exc:
        raise fail(exc) from None
    except ValidationError as exc:
        raise fail(ConfigError(f"leg {order_id}: {validation_problems(exc)}")) from None
    data = request.model_dump(mode="json", exclude_none=True)
    payload = request_message(drone, MessageType.ORDER, data, order_id)

    async def go() -> dict[str, Any]:
        answer = await send_request(
            endpoints, drone, Topics(drone).orders, payload, request_id, f"leg {order_id}", timeout_s=timeout_s
        )
        return answer.model_dump(mode="json", by_alias=True)

    print_answer(run(go), order_id, drone, as_json=as_json)
