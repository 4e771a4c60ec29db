"""``flightctl telemetry``: a live view of a drone, from its autopilot (``--connect``) or from the broker."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.table import Table

from flightctl.cli.broker_options import (
    CaFileOption,
    PasswordFileOption,
    UsernameOption,
    drone_or_exit,
    endpoint_or_exit,
)
from flightctl.cli.common import DEFAULT_TIMEOUT_S, SigningOption, connect_vehicle, console, errors, fail, run
from flightctl.errors import ConfigError


def _remote_id(data: dict[str, Any]) -> str:
    """'ok (GOOD_TO_ARM)', or 'NOT healthy: ' and what is wrong; '-' for an aircraft without Remote ID."""
    report = data.get("remote_id")
    if not isinstance(report, dict):
        return "-"
    if report.get("healthy"):
        return f"ok ({report.get('transmitter')}, operator {report.get('operator_id')})"
    return "NOT healthy: " + "; ".join(str(problem) for problem in report.get("problems") or [])


ROWS = (
    ("position", lambda d: f"{d['lat_deg']}, {d['lon_deg']}" if d.get("lat_deg") is not None else "-"),
    ("altitude", lambda d: f"{d.get('relative_alt_m')} m above home, {d.get('alt_amsl_m')} m AMSL"),
    ("ground speed", lambda d: f"{d.get('ground_speed_m_s')} m/s, heading {d.get('heading_deg')}°"),
    ("battery", lambda d: f"{d.get('battery_v')} V, {d.get('battery_pct')} %"),
    ("mode", lambda d: f"{d.get('mode')}, {'ARMED' if d.get('armed') else 'disarmed'}"),
    ("GPS", lambda d: f"{d.get('gps_fix')}, {d.get('gps_satellites')} satellites"),
    ("EKF", lambda d: "ok" if d.get("ekf_ok") else "NOT ready"),
    ("delivery", lambda d: f"{d.get('order_id') or '-'} {d.get('delivery_state') or ''}"),
    ("to go", lambda d: f"{d.get('distance_to_go_m')} m" if d.get("distance_to_go_m") is not None else "-"),
    ("Remote ID", _remote_id),
)  # fmt: skip


def telemetry_table(source: str, data: dict[str, Any]) -> Table:
    table = Table(title=f"telemetry: {source}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    render: Callable[[dict[str, Any]], str]
    for name, render in ROWS:
        table.add_row(name, render(data))
    return table


def telemetry(
    connect: Annotated[
        str | None, typer.Option("--connect", "-c", help="Straight from the autopilot: udpin:H:P, tcp:H:P, ...")
    ] = None,
    broker: Annotated[
        str | None, typer.Option("--broker", help="From the broker: mqtt://... or mqtts://... (with --drone)")
    ] = None,
    drone: Annotated[str | None, typer.Option("--drone", help="The drone's id, with --broker.")] = None,
    username: UsernameOption = None,
    password_file: PasswordFileOption = None,
    ca_file: CaFileOption = None,
    signing_key: SigningOption = None,
    rate_hz: Annotated[float, typer.Option("--rate", min=0.2, max=10, help="Updates a second (with --connect).")] = 2.0,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line, for machines.")] = False,
    count: Annotated[int | None, typer.Option("--count", min=1, help="Stop after this many updates.")] = None,
) -> None:
    """A live view that updates in place (Ctrl-C stops); --json prints lines instead."""
    from pydantic import ValidationError

    from flightctl.config import validation_problems
    from flightctl.daemon.telemetry_feed import DeliveryStatus, telemetry_data
    from flightctl.mqtt.broker import tool_connection
    from flightctl.mqtt.consumer import NotAnEnvelope, read_envelope
    from flightctl.mqtt.contract import Topics
    from flightctl.mqtt.messages import TelemetryData, read_data

    if (connect is None) == (broker is None):
        raise fail(ConfigError("give --connect URL (the autopilot) or --broker URL --drone ID, one of the two"))
    shown = 0

    def show(live: Live | None, source: str, data: dict[str, Any]) -> bool:
        nonlocal shown
        if live is None:
            sys.stdout.write(json.dumps(data) + "\n")
            sys.stdout.flush()
        else:
            live.update(telemetry_table(source, data))
        shown += 1
        return count is not None and shown >= count

    async def from_autopilot(url: str, live: Live | None) -> None:
        async with connect_vehicle(url, signing_key, timeout_s=DEFAULT_TIMEOUT_S) as vehicle:
            async for state in vehicle.telemetry.states(min_interval_s=1.0 / rate_hz):
                if show(live, url, telemetry_data(state, DeliveryStatus(), time.time())):
                    return

    async def from_broker(url: str, drone_id: str, live: Live | None) -> None:
        endpoint = endpoint_or_exit(url, username, password_file, ca_file)
        topics = Topics(drone_id)
        async with tool_connection(endpoint, "telemetry") as client:
            await client.subscribe(topics.telemetry, qos=0)
            async for message in client.messages:
                try:
                    envelope = read_envelope(message.payload)
                    read_data(TelemetryData, envelope.data)  # the contract's bounds, before anything is shown
                except NotAnEnvelope as exc:
                    errors.print(f"not telemetry: {exc}")
                    continue
                except ValidationError as exc:
                    errors.print(f"not telemetry: {validation_problems(exc)}")
                    continue
                data = envelope.data if live is not None else envelope.model_dump(mode="json", by_alias=True)
                if show(live, f"{drone_id} via {endpoint}", data):
                    return

    async def go() -> None:
        live = None if as_json else Live(console=console, refresh_per_second=4, transient=False)
        try:
            if live is not None:
                live.start()
            if connect is not None:
                await from_autopilot(connect, live)
            else:
                if drone is None:
                    raise ConfigError("--broker needs --drone ID")
                await from_broker(broker or "", drone_or_exit(drone), live)
        finally:
            if live is not None:
                live.stop()

    run(go)
