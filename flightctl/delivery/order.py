"""Delivery orders, sites and vehicle profiles: validated data, no I/O (configs/ holds the files).

A customer's order is opaque to the aircraft except for where, how and how heavy. Every limit a safety
decision depends on (wind, battery, release speed and altitude) lives in the profile, with units in names.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Literal

from pydantic import Field, model_validator
from shapely.geometry import Point, Polygon

from flightctl.config import StrictModel, TimeZoneName
from flightctl.delivery.fixed_wing import FixedWingSettings
from flightctl.geo import AltFrame, Location, distance_m


class LatLon(StrictModel):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)

    def location(self, alt_m: float, frame: AltFrame) -> Location:
        return Location(self.lat, self.lon, alt_m, frame)


def _polygon(points: list[LatLon]) -> Polygon:
    return Polygon([(p.lon, p.lat) for p in points])


def _check_polygon(points: list[LatLon], what: str) -> None:
    if len(points) < 3:
        raise ValueError(f"{what} needs at least 3 points")
    if not _polygon(points).is_valid:
        raise ValueError(f"{what} is not a simple polygon (its edges cross)")


class DeliveryMethod(enum.StrEnum):
    PAYLOAD_PLACE = "payload_place"  # descend until touchdown, the autopilot releases (NAV_PAYLOAD_PLACE)
    RELEASE_AT_HEIGHT = "release_at_height"  # hover low, the controller opens the gripper
    WINCH = "winch"  # hover, lower on the winch, release, retract


# A drop zone smaller than GPS can hold a hover in is one no release can ever satisfy; one larger than this
# is not a drop zone but a district.
MIN_DROP_ZONE_RADIUS_M = 2.0
MAX_DROP_ZONE_EXTENT_M = 500.0


class DropZone(StrictModel):
    """Where a release is allowed: a circle around the drop point, or a polygon."""

    radius_m: float | None = Field(default=None, ge=MIN_DROP_ZONE_RADIUS_M, le=MAX_DROP_ZONE_EXTENT_M)
    polygon: list[LatLon] | None = None

    @model_validator(mode="after")
    def _one_shape(self) -> DropZone:
        if (self.radius_m is None) == (self.polygon is None):
            raise ValueError("give the drop zone as radius_m or as polygon, not both or neither")
        if self.polygon is not None:
            _check_polygon(self.polygon, "drop zone polygon")
        return self


class TimeWindow(StrictModel):
    not_before: datetime | None = None
    not_after: datetime | None = None

    @model_validator(mode="after")
    def _ordered_and_zoned(self) -> TimeWindow:
        for name, when in (("not_before", self.not_before), ("not_after", self.not_after)):
            if when is not None and when.tzinfo is None:
                raise ValueError(f"{name} {when} has no time zone: write it with one (e.g. 2026-11-28T10:00:00Z)")
        if self.not_before is not None and self.not_after is not None and self.not_before >= self.not_after:
            raise ValueError(
                f"not_before {self.not_before.isoformat()} is not before not_after {self.not_after.isoformat()}"
            )
        return self


class DeliveryOrder(StrictModel):
    order_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    drop: LatLon
    drop_zone: DropZone
    method: DeliveryMethod
    parcel_kg: float = Field(gt=0, le=25)
    window: TimeWindow | None = None

    def drop_location(self, alt_m: float = 0.0) -> Location:
        return self.drop.location(alt_m, AltFrame.RELATIVE)

    @model_validator(mode="after")
    def _zone_holds_the_drop(self) -> DeliveryOrder:
        polygon = self.drop_zone.polygon
        if polygon is not None:
            if not _polygon(polygon).contains(Point(self.drop.lon, self.drop.lat)):
                raise ValueError("drop_zone.polygon does not contain the drop point")
            farthest = max(distance_m(self.drop_location(), p.location(0.0, AltFrame.RELATIVE)) for p in polygon)
            if farthest > MAX_DROP_ZONE_EXTENT_M:
                raise ValueError(
                    f"drop_zone.polygon reaches {farthest:.0f} m from the drop point "
                    f"(at most {MAX_DROP_ZONE_EXTENT_M:g} m)"
                )
        return self


class NoFlyZone(StrictModel):
    name: str
    polygon: list[LatLon]

    @model_validator(mode="after")
    def _valid(self) -> NoFlyZone:
        _check_polygon(self.polygon, f"no-fly zone {self.name!r}")
        return self


class RallyPoint(StrictModel):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    alt_m: float = Field(gt=0, description="above home")


class Site(StrictModel):
    name: str
    depot: LatLon
    depot_alt_m: float = Field(description="ground at the depot, metres above mean sea level")
    operating_area: list[LatLon]
    no_fly: list[NoFlyZone] = Field(default_factory=list)
    rally: list[RallyPoint] = Field(default_factory=list)
    fence_alt_max_m: float = Field(default=120, gt=0)
    # The IANA zone the site's customers read times in (the tracking page): Europe/London for the Scottish and
    # Scilly sites.
    timezone: TimeZoneName = "Europe/London"

    @model_validator(mode="after")
    def _valid(self) -> Site:
        _check_polygon(self.operating_area, "operating area")
        if not _polygon(self.operating_area).contains(Point(self.depot.lon, self.depot.lat)):
            raise ValueError("the depot is outside the operating area")
        return self

    def home(self) -> Location:
        return self.depot.location(self.depot_alt_m, AltFrame.ABSOLUTE)


class EnergyModel(StrictModel):
    """Energy per unit of work, still air, from flight logs of the airframe (SITL's quad for the example)."""

    cruise_wh_per_km: float = Field(gt=0)
    parcel_wh_per_km_per_kg: float = Field(ge=0)
    hover_wh_per_min: float = Field(gt=0)
    parcel_hover_wh_per_min_per_kg: float = Field(ge=0)
    climb_and_landing_wh: float = Field(ge=0)


class DropSettings(StrictModel):
    approach_alt_m: float = Field(default=20, gt=0, description="where the vehicle waits for the go-ahead")
    payload_place_max_descent_m: float = Field(default=25, gt=0)
    release_height_m: float = Field(default=5, gt=0)
    winch_hover_alt_m: float = Field(default=15, gt=0)
    winch_length_m: float = Field(default=12, gt=0)
    winch_rate_m_s: float = Field(default=1.0, gt=0)
    gate_timeout_s: float = Field(default=90, gt=0, description="hold this long for the controller, then go home")
    release_confirm_timeout_s: float = Field(default=60, gt=0)


class ReleaseLimits(StrictModel):
    max_ground_speed_m_s: float = Field(default=1.0, gt=0)
    alt_tolerance_m: float = Field(default=2.0, gt=0)


class BatteryRules(StrictModel):
    """How go/no-go judges the pack. The abort voltage and energy rules are the in-flight abort's own."""

    # A pack the autopilot reports with no remaining capacity: NO-GO, unless the profile says to judge it by
    # the energy the autopilot counted as used since the pack was fitted.
    unreported_remaining: Literal["no-go", "judge_by_consumed"] = "no-go"


class WindRules(StrictModel):
    """What go/no-go and the in-flight rule need to know the wind rather than read a missing estimate as calm."""

    ground_measurement_max_age_s: float = Field(default=1800, gt=0)
    waive_ground_measurement: bool = False  # only for a test range with no weather station
    # The airframe's drag (as ArduPilot's EK3_DRAG_BCOEF / EK3_DRAG_MCOEF): our own wind estimate from lean
    # angle and ground velocity, so one wrong source cannot hide a gale. None: no estimate of our own.
    drag_bcoef_kg_m2: float | None = Field(default=None, gt=0)
    drag_mcoef_per_s: float = Field(default=0.0, ge=0)
    air_density_kg_m3: float = Field(default=1.225, gt=0)


class PositionTrustLimits(StrictModel):
    """When a position is trusted enough to release a parcel on."""

    settle_after_reset_s: float = Field(default=10, ge=0, description="no EKF reset or GPS glitch for this long")
    max_gps_hacc_m: float = Field(default=3.0, gt=0)
    max_gps_ekf_disagreement_m: float = Field(default=5.0, gt=0)
    max_hold_wander_m: float = Field(default=3.0, gt=0, description="spread of positions while holding")
    hold_window_s: float = Field(default=5.0, gt=0)


class VehicleKind(enum.StrEnum):
    """What the airframe is, and so how it delivers."""

    MULTIROTOR = "multirotor"  # hover at the drop point: payload place, release at height, winch
    FIXED_WING = "fixed-wing"  # airstrip to airstrip: the parcel is unloaded after landing
    VTOL = "vtol"  # an ArduPlane QuadPlane: cruise on the wing, land or hover at the destination


class RemoteIdLossRule(enum.StrEnum):
    """What the aircraft does when Remote ID stops working in flight (README, "Remote ID", gives the sources).

    ``return``: come back now, the delivery abandoned (the parcel kept): for a multirotor its depot, for an island
    leg the autopilot's RTL to the nearest landing sequence. ``land``: land where it is (a multirotor or a VTOL
    in hover; a fixed-wing aircraft cannot, and returns). Both follow "land as soon as practicable" (FAA 14 CFR
    89.110). ``continue``: fly on to the planned landing, the loss journaled and reported: only where the
    operator's operational authorisation says so (the Specific category's own procedures)."""

    RETURN = "return"
    LAND = "land"
    CONTINUE = "continue"

    def why(self) -> str:
        if self is RemoteIdLossRule.CONTINUE:
            return "continue to the planned landing, as the operational authorisation allows (Specific category)"
        return "land as soon as practicable once Remote ID fails (FAA 14 CFR 89.110; the operator's authorisation)"


class VehicleProfile(StrictModel):
    name: str
    kind: VehicleKind = VehicleKind.MULTIROTOR
    max_payload_kg: float = Field(gt=0)
    cruise_speed_m_s: float = Field(gt=0)
    cruise_alt_m: float = Field(gt=0)
    usable_battery_wh: float = Field(gt=0)
    reserve_fraction: float = Field(ge=0, lt=1)
    wind_limit_m_s: float = Field(gt=0)
    battery_abort_voltage_v: float = Field(gt=0)
    min_satellites: int = Field(default=8, ge=4)
    energy: EnergyModel
    drop: DropSettings = Field(default_factory=DropSettings)
    limits: ReleaseLimits = Field(default_factory=ReleaseLimits)
    battery: BatteryRules = Field(default_factory=BatteryRules)
    wind: WindRules = Field(default_factory=WindRules)
    position_trust: PositionTrustLimits = Field(default_factory=PositionTrustLimits)
    fixed_wing: FixedWingSettings | None = None  # required for the kinds that fly on a wing
    remote_id_lost: RemoteIdLossRule = RemoteIdLossRule.RETURN

    @model_validator(mode="after")
    def _wing_settings_for_a_wing(self) -> VehicleProfile:
        if self.kind is not VehicleKind.MULTIROTOR and self.fixed_wing is None:
            raise ValueError(f"a {self.kind.value} profile needs a fixed_wing section (take-off, climb, landing)")
        if self.kind is VehicleKind.MULTIROTOR and self.fixed_wing is not None:
            raise ValueError("a multirotor profile has no fixed_wing section: set kind to fixed-wing or vtol")
        return self


def zone_contains(order: DeliveryOrder, position: Location) -> bool:
    """Is ``position`` (horizontally) inside the order's drop zone?"""
    zone = order.drop_zone
    if zone.radius_m is not None:
        return bool(distance_m(order.drop_location(), position) <= zone.radius_m)
    assert zone.polygon is not None
    return bool(_polygon(zone.polygon).contains(Point(position.lon_deg, position.lat_deg)))


def area_contains(points: list[LatLon], position: Location) -> bool:
    return bool(_polygon(points).contains(Point(position.lon_deg, position.lat_deg)))
