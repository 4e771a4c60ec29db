"""What the CLI shows people (rich) and machines (JSON) about a vehicle."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:  # the CLI imports this module at start-up: pymavlink only once a vehicle is shown
    from flightctl.link.connection import LinkStats
    from flightctl.vehicle.vehicle import Vehicle


def status_record(vehicle: Vehicle) -> dict[str, Any]:
    """A JSON-ready summary of the vehicle and the link."""
    state = vehicle.state
    link: LinkStats = vehicle.connection.stats()
    identity = vehicle.connection.vehicle
    position = state.position
    return {
        "url": vehicle.connection.transport.url,
        "vehicle": None
        if identity is None
        else {"system_id": identity.system_id, "component_id": identity.component_id, "type": identity.type_name},
        "link": {
            "state": link.state.value,
            "quality_pct": None if link.quality_pct is None else round(link.quality_pct, 1),
            "losses": link.losses,
            "frames": link.codec.frames,
            "bad_crc": link.codec.bad_crc,
            "garbage_bytes": link.codec.garbage_bytes,
        },
        "software_version": vehicle.software_version,
        # The vehicle's own figures, named as telemetry names them (MQTT and `telemetry --json`): one vocabulary.
        "mode": state.mode,
        "armed": state.armed,
        "ready_to_arm": state.ready_to_arm,
        "prearm_checks_ok": state.prearm_ok,
        "lat_deg": None if position is None else position.lat_deg,
        "lon_deg": None if position is None else position.lon_deg,
        "alt_amsl_m": None if position is None else position.alt_m,
        "relative_alt_m": state.relative_alt_m,
        "ground_speed_m_s": state.groundspeed_m_s,
        "heading_deg": state.heading_deg,
        "battery_v": state.battery_voltage_v,
        "battery_a": state.battery_current_a,
        "battery_pct": state.battery_remaining_pct,
        "gps_fix": state.gps_fix_name,
        "gps_satellites": state.gps_satellites,
        "gps_hdop": state.gps_hdop,
        "ekf_ok": None if state.ekf_flags is None else state.ekf_nav_ready,
        "ekf_flags": state.ekf_flags,
        "wind_from_deg": state.wind_direction_deg,
        "wind_speed_m_s": state.wind_speed_m_s,
        "time_boot_ms": state.time_boot_ms,
        "telemetry_rates": None
        if vehicle.rates is None
        else [
            {"message": r.message, "requested_hz": r.requested_hz, "measured_hz": r.measured_hz, "request": r.status}
            for r in vehicle.rates.report()
        ],
    }


def _flag(ok: bool | None, yes: str = "OK", no: str = "NOT OK") -> Text:
    if ok is None:
        return Text("unknown", style="yellow")
    return Text(yes, style="green") if ok else Text(no, style="bold red")


def format_number(value: float | int | None, unit: str = "", digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}{unit}"


def status_table(vehicle: Vehicle) -> Table:
    state = vehicle.state
    link = vehicle.connection.stats()
    identity = vehicle.connection.vehicle
    table = Table(title=f"flightctl status  {vehicle.connection.transport.url}", show_header=False, min_width=56)
    table.add_column("what", style="bold")
    table.add_column("value")
    from flightctl.link.connection import LinkState

    link_text = Text(link.state.value.upper(), style="green" if link.state is LinkState.CONNECTED else "bold red")
    if link.quality_pct is not None:
        link_text.append(f"  {link.quality_pct:.0f}% of frames received")
    table.add_row("link", link_text)
    table.add_row("vehicle", "-" if identity is None else f"{identity.type_name} (system {identity.system_id})")
    table.add_row("software", vehicle.software_version or "-")
    table.add_row("mode", state.mode or "-")
    table.add_row("armed", Text("ARMED", style="bold yellow") if state.armed else Text("disarmed"))
    table.add_row("ready to arm", _flag(state.ready_to_arm, "yes", "no"))
    gps = Text(f"{state.gps_fix_name}, {state.gps_satellites if state.gps_satellites is not None else '-'} sats")
    if state.gps_hdop is not None:
        gps.append(f", hdop {state.gps_hdop:.2f}")
    table.add_row("GPS", gps)
    table.add_row(
        "EKF", _flag(None if state.ekf_flags is None else state.ekf_nav_ready, "navigating", "not navigating")
    )
    table.add_row("pre-arm checks", _flag(state.prearm_ok, "passing", "failing"))
    table.add_row(
        "battery",
        f"{format_number(state.battery_voltage_v, ' V', 2)}  {format_number(state.battery_current_a, ' A')}  "
        f"{format_number(state.battery_remaining_pct, ' %', 0)}",
    )
    if state.position is not None:
        table.add_row(
            "position",
            f"{state.position.lat_deg:.6f}, {state.position.lon_deg:.6f}  "
            f"{format_number(state.relative_alt_m, ' m')} rel / {state.position.alt_m:.1f} m AMSL",
        )
    table.add_row("ground speed", format_number(state.groundspeed_m_s, " m/s"))
    return table
