"""A simple energy model: enough to say no to a flight that cannot come home, with the numbers.

Cruise costs energy per kilometre flown *through the air*: a headwind ``w`` against cruise airspeed ``v``
stretches each ground kilometre to ``v / (v - w)`` air kilometres. We assume the measured wind is a headwind
on every leg, out and back, and that the parcel comes home (an aborted drop), so the estimate errs long.
"""

from __future__ import annotations

from dataclasses import dataclass

from flightctl.delivery.order import DeliveryMethod, VehicleProfile
from flightctl.vehicle.telemetry import VehicleState


@dataclass(frozen=True)
class EnergyEstimate:
    cruise_wh: float
    hover_wh: float
    climb_and_landing_wh: float
    reserve_wh: float
    available_wh: float

    @property
    def needed_wh(self) -> float:
        return self.cruise_wh + self.hover_wh + self.climb_and_landing_wh

    @property
    def margin_wh(self) -> float:
        return self.available_wh - self.needed_wh - self.reserve_wh

    @property
    def enough(self) -> bool:
        return self.margin_wh >= 0

    def summary(self) -> str:
        return (
            f"needs {self.needed_wh:.1f} Wh (cruise {self.cruise_wh:.1f}, hover {self.hover_wh:.1f}, "
            f"climb/landing {self.climb_and_landing_wh:.1f}) + reserve {self.reserve_wh:.1f} Wh, "
            f"has {self.available_wh:.1f} Wh"
        )


def air_km(ground_km: float, cruise_m_s: float, headwind_m_s: float) -> float:
    """Air distance for ``ground_km`` into a headwind; infinite when the wind is as fast as we fly."""
    if headwind_m_s >= cruise_m_s:
        return float("inf")
    return ground_km * cruise_m_s / (cruise_m_s - max(headwind_m_s, 0.0))


def cruise_wh(profile: VehicleProfile, ground_km: float, parcel_kg: float, headwind_m_s: float) -> float:
    per_km = profile.energy.cruise_wh_per_km + profile.energy.parcel_wh_per_km_per_kg * parcel_kg
    return air_km(ground_km, profile.cruise_speed_m_s, headwind_m_s) * per_km


def hover_minutes(profile: VehicleProfile, method: DeliveryMethod) -> float:
    """Expected time on station: settling at the gate, the drop itself, climbing back."""
    drop = profile.drop
    settle_s = 30.0
    if method is DeliveryMethod.PAYLOAD_PLACE:
        work_s = 2 * drop.approach_alt_m / 1.0  # ArduCopter places slowly (about 1 m/s) and climbs back
    elif method is DeliveryMethod.RELEASE_AT_HEIGHT:
        work_s = 2 * (drop.approach_alt_m - drop.release_height_m) / 1.5 + 10
    else:
        work_s = 2 * drop.winch_length_m / drop.winch_rate_m_s + 20
    return (settle_s + work_s) / 60.0


def delivery_energy(
    profile: VehicleProfile,
    *,
    method: DeliveryMethod,
    parcel_kg: float,
    outbound_km: float,
    return_km: float,
    headwind_m_s: float,
    available_wh: float | None = None,
) -> EnergyEstimate:
    energy = profile.energy
    hover = hover_minutes(profile, method) * (
        energy.hover_wh_per_min + energy.parcel_hover_wh_per_min_per_kg * parcel_kg
    )
    return EnergyEstimate(
        cruise_wh=cruise_wh(profile, outbound_km + return_km, parcel_kg, headwind_m_s),
        hover_wh=hover,
        climb_and_landing_wh=energy.climb_and_landing_wh,
        reserve_wh=profile.reserve_fraction * profile.usable_battery_wh,
        available_wh=profile.usable_battery_wh if available_wh is None else available_wh,
    )


def available_energy_wh(profile: VehicleProfile, state: VehicleState) -> float | None:
    """Energy left in the pack, by the measures go/no-go and the in-flight abort share.

    The usable energy less what the autopilot counted as used (BATTERY_STATUS.energy_consumed, since the
    pack was fitted or the autopilot booted), capped by its remaining-capacity figure when it gives one (a
    pack fitted part-charged, or reset with MAV_CMD_BATTERY_RESET): the lower of the two. None when the
    autopilot reports neither. (Go/no-go also requires the remaining-capacity figure, unless the profile
    allows judging by the consumed energy alone.)
    """
    consumed = state.battery_consumed_wh
    pct = state.battery_remaining_pct
    known = [
        value
        for value in (
            None if consumed is None else profile.usable_battery_wh - consumed,
            None if pct is None else profile.usable_battery_wh * pct / 100.0,
        )
        if value is not None
    ]
    return min(known) if known else None


def energy_to_home(profile: VehicleProfile, *, km_home: float, parcel_kg: float, headwind_m_s: float) -> float:
    """Energy to fly ``km_home`` into the wind and land."""
    return cruise_wh(profile, km_home, parcel_kg, headwind_m_s) + profile.energy.climb_and_landing_wh / 2
