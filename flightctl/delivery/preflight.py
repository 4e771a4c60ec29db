"""Go/no-go before anything is uploaded. Every check is evaluated (not just up to the first failure) so a
NO-GO says everything that is wrong, each with its numbers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flightctl.delivery.order import area_contains
from flightctl.delivery.planner import DeliveryPlan
from flightctl.geo import distance_m
from flightctl.vehicle.telemetry import VehicleState

# Home reported by the vehicle must be this close to the site's depot (a wrong home means a wrong return).
HOME_TOLERANCE_M = 30.0


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

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


def preflight_checks(plan: DeliveryPlan, state: VehicleState, *, parcel_gripped: bool, now_utc: datetime) -> GoNoGo:
    profile, order, site = plan.profile, plan.order, plan.site
    checks: list[Check] = []

    fix, sats = state.gps_fix_type or 0, state.gps_satellites or 0
    checks.append(
        Check(
            "gps",
            fix >= 3 and sats >= profile.min_satellites,
            f"fix {state.gps_fix_name}, {sats} satellites (need 3D fix and {profile.min_satellites})",
        )
    )
    checks.append(
        Check(
            "ekf",
            state.ekf_nav_ready,
            f"flags 0x{state.ekf_flags or 0:x} ({'navigating' if state.ekf_nav_ready else 'not navigating'})",
        )
    )
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
    wind = state.wind_speed_m_s or 0.0
    checks.append(
        Check("wind", wind <= profile.wind_limit_m_s, f"{wind:.1f} m/s (limit {profile.wind_limit_m_s:g} m/s)")
    )
    energy = plan.energy(headwind_m_s=wind)
    checks.append(Check("energy", energy.enough, f"{energy.summary()}, margin {energy.margin_wh:.1f} Wh"))
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
