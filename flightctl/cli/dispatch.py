"""``flightctl dispatch``: register an order against its customer, send it to a drone, print the tracking link.

The customer stays on the ground: the registry maps the order to the customer and a tracking token; the drone
gets the order alone.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.text import Text

from flightctl.cli.broker_options import (
    BrokerOption,
    CaFileOption,
    DroneOption,
    PasswordFileOption,
    UsernameOption,
    drone_or_exit,
    endpoint_or_exit,
)
from flightctl.cli.common import console, fail, run
from flightctl.config import named_config, read_yaml_model
from flightctl.delivery.order import DeliveryOrder
from flightctl.delivery.wind import GroundWind
from flightctl.errors import FlightctlError
from flightctl.ground.dispatch import send_order
from flightctl.ground.registry import Registry
from flightctl.status.contract import MessageType

REJECTED_EXIT = 2


def dispatch(
    order: Annotated[str, typer.Argument(help="Order file, or a name in configs/orders/.")],
    customer: Annotated[str, typer.Option("--customer", help="The customer's id (kept in the registry only).")],
    broker: BrokerOption,
    drone: DroneOption,
    registry: Annotated[
        str, typer.Option("--registry", help="SQLite file, or postgresql://... shared by several relays.")
    ] = "flightctl-registry.sqlite",
    tracking_url: Annotated[
        str, typer.Option("--tracking-url", help="Where the relay's tracking page is served.")
    ] = "http://127.0.0.1:8080",
    depot_wind: Annotated[
        str | None, typer.Option("--depot-wind", help="The depot's wind for go/no-go: SPEED or SPEED@TIME.")
    ] = None,
    username: UsernameOption = None,
    password_file: PasswordFileOption = None,
    ca_file: CaFileOption = None,
    timeout_s: Annotated[
        float, typer.Option("--timeout", min=1, max=3600, help="Seconds to wait for the answer.")
    ] = 60,
    as_json: Annotated[bool, typer.Option("--json", help="Print the link and the answer as JSON.")] = False,
) -> None:
    """Register ORDER for --customer, send it to --drone, print the customer's tracking link and the drone's
    answer. Exit 0 accepted, 2 rejected (the customer's page then says so), 1 no answer in time."""
    endpoint = endpoint_or_exit(broker, username, password_file, ca_file)
    drone = drone_or_exit(drone)
    try:
        the_order = read_yaml_model(named_config("orders", order), DeliveryOrder)
        wind = None if depot_wind is None else GroundWind.parse(depot_wind, now=datetime.now(UTC))
    except FlightctlError as exc:
        raise fail(exc) from None

    async def go() -> tuple[str, dict[str, object]]:
        async with await Registry.open(registry) as the_registry:
            token = await the_registry.register(the_order.order_id, customer, drone)
        answer = await send_order(endpoint, drone, the_order, wind=wind, timeout_s=timeout_s)
        return f"{tracking_url.rstrip('/')}/t/{token}", answer.model_dump(mode="json", by_alias=True)

    link, answer = run(go)
    accepted = answer["type"] == MessageType.ORDER_ACCEPTED
    if as_json:
        sys.stdout.write(json.dumps({"tracking_link": link, "answer": answer}) + "\n")
    else:
        console.print(Text(f"tracking link for {customer}: {link}"))
        verdict = ("accepted", "bold green") if accepted else ("rejected", "bold red")
        console.print(Text.assemble(verdict, f": order {the_order.order_id} on drone {drone}"))
        data = answer["data"]
        assert isinstance(data, dict)
        for reason in data.get("reasons", []):
            console.print(Text(f"  - {reason}"))
    if not accepted:
        raise typer.Exit(REJECTED_EXIT)
