"""``flightctl dispatch``: register an order against its customer, send it to a drone, print the tracking link.

The customer stays on the ground: the registry maps the order to the customer and a tracking token; the drone
gets the order alone.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
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
from flightctl.cli.common import AnswerTimeoutOption, DepotWindOption, console, fail, run
from flightctl.cli.order import (
    OrderArgument,
    exit_unless_accepted,
    order_and_wind_or_exit,
    show_answer,
)

if TYPE_CHECKING:
    from flightctl.delivery.order import Site
    from flightctl.ground.logbook import LogbookRow


def dispatch(
    order: OrderArgument,
    customer: Annotated[str, typer.Option("--customer", help="The customer's id (kept in the registry only).")],
    broker: BrokersOption,
    drone: DroneOption,
    registry: Annotated[
        str,
        typer.Option(
            "--registry",
            help="SQLite file, or postgresql://user@host/db shared by several relays (no password in it: "
            "--registry-password-file, PGPASSWORD or ~/.pgpass).",
        ),
    ] = "flightctl-registry.sqlite",
    registry_password_file: Annotated[
        Path | None, typer.Option("--registry-password-file", help="The PostgreSQL password, in a file.")
    ] = None,
    tracking_url: Annotated[
        str, typer.Option("--tracking-url", help="Where the relay's tracking page is served.")
    ] = "http://127.0.0.1:8080",
    site: Annotated[
        str | None,
        typer.Option(
            "--site",
            help="The order's site (a name in configs/sites/, or a file): its time zone is the one the customer's "
            "page shows times in. Without it, the relay's.",
        ),
    ] = None,
    depot_wind: DepotWindOption = None,
    username: UsernameOption = None,
    password_file: PasswordFileOption = None,
    ca_file: CaFileOption = None,
    timeout_s: AnswerTimeoutOption = 60,
    as_json: Annotated[bool, typer.Option("--json", help="Print the link and the answer as JSON.")] = False,
) -> None:
    """Register ORDER for --customer, send it to --drone, print the customer's tracking link and the drone's
    answer. Exit 0 accepted, 2 rejected (the customer's page then says so), 1 no answer in time (the order went
    out: the drone answers when it is back, and the link, printed all the same, works)."""
    from flightctl.config import read_secret
    from flightctl.ground.dispatch import send_order
    from flightctl.ground.registry import Registry

    endpoints = endpoints_or_exit(broker, username, password_file, ca_file)
    drone = drone_or_exit(drone)
    the_order, wind = order_and_wind_or_exit(order, depot_wind)
    timezone = None if site is None else site_or_exit(site).timezone

    sent = Announcement(as_json)

    async def go() -> dict[str, Any]:
        password = read_secret(registry_password_file, "--registry-password-file") if registry_password_file else None
        async with await Registry.open(registry, password=password) as the_registry:
            refuse_if_defective(drone, await the_registry.open_defects(drone))
            token = await the_registry.register(the_order.order_id, customer, drone, timezone=timezone)
            sent.link = f"{tracking_url.rstrip('/')}/t/{token}"
            sent.customer = customer
            try:
                answer = await send_order(
                    endpoints, drone, the_order, wind=wind, timeout_s=timeout_s, on_sent=sent.order_sent
                )
            except BaseException:
                if not sent.sent:  # never sent (no broker, refused, interrupted): it may be dispatched again
                    await the_registry.forget(the_order.order_id)
                raise
        return answer.model_dump(mode="json", by_alias=True)

    try:
        answer = run(go)
    except BaseException:
        sent.unless_said()  # an order that went out keeps its link, whatever came after (no answer, Ctrl-C)
        raise
    if as_json:
        sys.stdout.write(json.dumps({"tracking_link": sent.link, "answer": answer}) + "\n")
    else:
        show_answer(answer, the_order.order_id, drone)
    exit_unless_accepted(answer)


def refuse_if_defective(drone: str, defects: list[LogbookRow]) -> None:
    """An aircraft with an open defect in the logbook is sent no order (nothing is registered): the crew's repair
    closes it first. Fails closed: the registry that cannot say is an error, not a yes."""
    if defects:
        from flightctl.errors import ConfigError

        said = "; ".join(f"record {row.n}: {row.kept().get('text')} ({row.kept().get('by')}, {row.recorded_utc})"
                         for row in defects)  # fmt: skip
        raise ConfigError(
            f"NO-GO: {drone} has an open defect in the logbook ({said}); nothing was sent. "
            f"Once mended: flightctl logbook repair {drone} --defect N --text ... --by ..."
        )


def site_or_exit(name: str) -> Site:
    from flightctl.config import named_config, read_yaml_model
    from flightctl.delivery.order import Site
    from flightctl.errors import FlightctlError

    try:
        return read_yaml_model(named_config("sites", name), Site)
    except FlightctlError as exc:
        raise fail(exc) from None


class Announcement:
    """The customer's tracking link, said once the order has gone out: a token is stored only hashed, so a link
    not said then is lost for good (and the order id cannot be dispatched again)."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.link: str | None = None
        self.customer: str | None = None
        self.sent = False
        self._said = False

    def order_sent(self) -> None:
        self.sent = True
        if not self.as_json:
            self._say()

    def unless_said(self) -> None:
        """After a failure or an interruption: the link of an order that went out, as a line of JSON (text said it
        the moment the order went out)."""
        if self.sent and not self._said and self.as_json:
            sys.stdout.write(json.dumps({"tracking_link": self.link, "answer": None}) + "\n")
            sys.stdout.flush()
            self._said = True

    def _say(self) -> None:
        console.print(Text(f"tracking link for {self.customer}: {self.link}"), soft_wrap=True)  # one line, whole
        self._said = True
