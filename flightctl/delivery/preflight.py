"""Go/no-go before anything is uploaded. Every check is evaluated (not just up to the first failure) so a
NO-GO says everything that is wrong, each with its numbers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from flightctl.delivery.energy import available_energy_wh
from flightctl.delivery.order import VehicleProfile, area_contains
from flightctl.delivery.planner import DeliveryPlan
from flightctl.delivery.wind import GroundWind
from flightctl.geo import distance_m
from flightctl.vehicle.remote_id import RemoteIdStatus, arm_status_name
from flightctl.vehicle.telemetry import VehicleState

# Home reported by the vehicle must be this close to the site's depot (a wrong home means a wrong return).
HOME_TOLERANCE_M = 30.0


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    # The figures behind the line, journaled beside it for reports to plot (the energy budget, in Wh).
    numbers: Mapping[str, float] = field(default_factory=dict)

    def line(self) -> str:
        return f"{'GO   ' if self.ok else 'NO-GO'} {self.name}: {self.detail}"


@dataclass(frozen=True)
class GoNoGo:
    checks: tuple[Check, ...]

    @property
    def go(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [check for check in self.checks if not check.ok]

    def report(self) -> str:
        return "\n".join(check.line() for check in self.checks)


def preflight_checks(
    plan: DeliveryPlan,
    state: VehicleState,
    *,
    parcel_gripped: bool,
    now_utc: datetime,
    ground_wind: GroundWind | None = None,
    vehicle_estimates_wind: bool = False,
) -> GoNoGo:
    """Every check, with its numbers. ``ground_wind``: the depot's measurement; ``vehicle_estimates_wind``:
    whether the autopilot can estimate wind in flight (drag fusion configured)."""
    profile, order, site = plan.profile, plan.order, plan.site
    checks: list[Check] = []

    checks += navigation_checks(profile, state)
    if state.home is None:
        checks.append(Check("home", False, "the vehicle has reported no home position"))
    else:
        offset_m = distance_m(state.home, site.home())
        checks.append(
            Check(
                "home", offset_m <= HOME_TOLERANCE_M, f"{offset_m:.1f} m from the depot (limit {HOME_TOLERANCE_M:g} m)"
            )
        )
    checks.append(
        Check("parcel gripped", parcel_gripped, "gripper grab confirmed" if parcel_gripped else "not gripped")
    )
    checks.append(
        Check(
            "parcel mass",
            order.parcel_kg <= profile.max_payload_kg,
            f"{order.parcel_kg:g} kg (limit {profile.max_payload_kg:g} kg)",
        )
    )
    checks.append(battery_voltage_check(profile, state))
    wind_check, wind = _ground_wind(profile, ground_wind, now_utc)
    checks.append(wind_check)
    checks.append(_wind_in_flight(profile, vehicle_estimates_wind))
    available = energy_on_board(profile, state)
    if isinstance(available, Check):
        checks.append(available)
    else:
        # The measured ground wind as a headwind on every leg. An unknown wind is already a NO-GO of its own
        # (unless waived); the energy is then planned in still air, and says so.
        energy = plan.energy(headwind_m_s=wind or 0.0, available_wh=available)
        still = " (wind unknown: planned in still air)" if wind is None else ""
        line = f"{energy.summary()}, margin {energy.margin_wh:.1f} Wh{still}"
        budget = {"needed_wh": energy.needed_wh, "reserve_wh": energy.reserve_wh, "available_wh": energy.available_wh}
        checks.append(Check("energy", energy.enough, line, {k: round(v, 2) for k, v in budget.items()}))
    outside = [
        f"{seq} ({location.lat_deg:.5f},{location.lon_deg:.5f})"
        for seq, _item, location in plan.mission.route()
        if (location.lat_e7, location.lon_e7) != (0, 0) and not area_contains(site.operating_area, location)
    ]
    checks.append(
        Check(
            "operating area",
            not outside,
            "route and drop point inside" if not outside else f"items outside: {', '.join(outside)}",
        )
    )
    if order.window is not None:
        starts, ends = order.window.not_before, order.window.not_after
        inside = (starts is None or now_utc >= starts) and (ends is None or now_utc <= ends)
        span = f"{starts.isoformat() if starts else '...'} to {ends.isoformat() if ends else '...'}"
        checks.append(Check("time window", inside, f"now {now_utc.isoformat(timespec='seconds')}, window {span}"))
    return GoNoGo(tuple(checks))


def remote_id_check(status: RemoteIdStatus, autopilot_says: str | None, port_problem: str | None = None) -> Check:
    """Remote ID as the law needs it before take-off: the operator's part configured and sent, the autopilot
    configured to pass it to a transmitter, and the transmitter reporting GOOD_TO_ARM. A NO-GO lists every
    missing piece and quotes the autopilot's reason."""
    problems = ([port_problem] if port_problem else []) + status.problems()
    if not problems:
        settings = status.settings
        assert settings is not None  # no settings is a problem of its own
        sent = status.age_s(status.operator_location_sent_ms)
        return Check(
            "remote id",
            True,
            f"transmitter {arm_status_name(status.arm_status)}, operator {settings.operator_id}, "
            f"UAS {settings.uas_id}, operator location sent {sent or 0:.1f} s ago",
        )
    quoted = f"; autopilot: {autopilot_says}" if autopilot_says else ""
    return Check("remote id", False, "; ".join(problems) + quoted)


def navigation_checks(profile: VehicleProfile, state: VehicleState) -> list[Check]:
    """GPS and EKF: whether the vehicle knows where it is well enough to fly."""
    fix, sats = state.gps_fix_type or 0, state.gps_satellites or 0
    return [
        Check(
            "gps",
            fix >= 3 and sats >= profile.min_satellites,
            f"fix {state.gps_fix_name}, {sats} satellites (need 3D fix and {profile.min_satellites})",
        ),
        Check(
            "ekf",
            state.ekf_nav_ready,
            f"flags 0x{state.ekf_flags or 0:x} ({'navigating' if state.ekf_nav_ready else 'not navigating'})",
        ),
    ]


def energy_on_board(profile: VehicleProfile, state: VehicleState) -> float | Check:
    """The energy go/no-go may plan with, or the NO-GO that says why it cannot be judged."""
    available = available_energy_wh(profile, state)
    unreported = state.battery_remaining_pct is None and profile.battery.unreported_remaining == "no-go"
    if available is None or unreported:
        return Check(
            "energy",
            False,
            "the autopilot reports no remaining capacity for the pack, so the energy for the route cannot be "
            "judged (profile battery.unreported_remaining: no-go)",
        )
    return available


def battery_voltage_check(profile: VehicleProfile, state: VehicleState) -> Check:
    limit = profile.battery_abort_voltage_v
    voltage = state.battery_voltage_v
    if voltage is None:
        return Check("battery voltage", False, "the autopilot reports no battery voltage")
    # The in-flight abort's own threshold: a GO is never followed at once by an abort on the same reading.
    return Check("battery voltage", voltage >= limit, f"{voltage:.2f} V (abort below {limit:g} V)")


def _ground_wind(profile: VehicleProfile, wind: GroundWind | None, now_utc: datetime) -> tuple[Check, float | None]:
    """The depot's measured wind against the limit; (check, the speed to plan with, None when unknown)."""
    rules, limit = profile.wind, profile.wind_limit_m_s
    if wind is None:
        if rules.waive_ground_measurement:
            return Check("ground wind", True, "no measurement; waived by the profile"), None
        return Check("ground wind", False, "no ground wind measurement for the depot: the wind is unknown"), None
    age_s = wind.age_s(now_utc)
    if age_s > rules.ground_measurement_max_age_s:
        detail = f"the last measurement ({wind.source}) is {age_s / 60:.0f} min old"
        return Check("ground wind", False, f"{detail} (limit {rules.ground_measurement_max_age_s / 60:g} min)"), None
    detail = f"{wind.speed_m_s:.1f} m/s (limit {limit:g} m/s), {wind.source}, {age_s / 60:.0f} min old"
    measured = {"measured_m_s": round(wind.speed_m_s, 2)}
    return Check("ground wind", wind.speed_m_s <= limit, detail, measured), wind.speed_m_s


def _wind_in_flight(profile: VehicleProfile, vehicle_estimates_wind: bool) -> Check:
    own = profile.wind.drag_bcoef_kg_m2 is not None
    sources = [
        s
        for s, ok in (("the autopilot (drag fusion or airspeed sensor)", vehicle_estimates_wind), ("our own", own))
        if ok
    ]
    if not sources:
        return Check(
            "wind in flight",
            False,
            "nothing can estimate the wind in flight: EK3_DRAG_BCOEF_X/Y unset, no airspeed sensor in use "
            "(ARSPD_USE) and no drag model in the profile",
        )
    return Check("wind in flight", True, f"estimated by {' and '.join(sources)}")
