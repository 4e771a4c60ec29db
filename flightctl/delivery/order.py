"""Delivery orders, sites and vehicle profiles: validated data, no I/O (configs/ holds the files).

A customer's order is opaque to the aircraft except for where, how and how heavy. Every limit a safety
decision depends on (wind, battery, release speed and altitude) lives in the profile, with units in names.
"""

from __future__ import annotations

import enum
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator
from shapely.geometry import Point, Polygon

from flightctl.geo import AltFrame, Location, distance_m


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LatLon(_Model):
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


class DropZone(_Model):
    """Where a release is allowed: a circle around the drop point, or a polygon."""

    radius_m: float | None = Field(default=None, gt=0)
    polygon: list[LatLon] | None = None

    @model_validator(mode="after")
    def _one_shape(self) -> DropZone:
        if (self.radius_m is None) == (self.polygon is None):
            raise ValueError("give the drop zone as radius_m or as polygon, not both or neither")
        if self.polygon is not None:
            _check_polygon(self.polygon, "drop zone polygon")
        return self


class TimeWindow(_Model):
    not_before: datetime | None = None
    not_after: datetime | None = None


class DeliveryOrder(_Model):
    order_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    drop: LatLon
    drop_zone: DropZone
    method: DeliveryMethod
    parcel_kg: float = Field(gt=0, le=25)
    window: TimeWindow | None = None

    def drop_location(self, alt_m: float = 0.0) -> Location:
        return self.drop.location(alt_m, AltFrame.RELATIVE)


class NoFlyZone(_Model):
    name: str
    polygon: list[LatLon]

    @model_validator(mode="after")
    def _valid(self) -> NoFlyZone:
        _check_polygon(self.polygon, f"no-fly zone {self.name!r}")
        return self


class RallyPoint(_Model):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    alt_m: float = Field(gt=0, description="above home")


class Site(_Model):
    name: str
    depot: LatLon
    depot_alt_m: float = Field(description="ground at the depot, metres above mean sea level")
    operating_area: list[LatLon]
    no_fly: list[NoFlyZone] = Field(default_factory=list)
    rally: list[RallyPoint] = Field(default_factory=list)
    fence_alt_max_m: float = Field(default=120, gt=0)

    @model_validator(mode="after")
    def _valid(self) -> Site:
        _check_polygon(self.operating_area, "operating area")
        if not _polygon(self.operating_area).contains(Point(self.depot.lon, self.depot.lat)):
            raise ValueError("the depot is outside the operating area")
        return self

    def home(self) -> Location:
        return self.depot.location(self.depot_alt_m, AltFrame.ABSOLUTE)


class EnergyModel(_Model):
    """Energy per unit of work, still air, from flight logs of the airframe (SITL's quad for the example)."""

    cruise_wh_per_km: float = Field(gt=0)
    parcel_wh_per_km_per_kg: float = Field(ge=0)
    hover_wh_per_min: float = Field(gt=0)
    parcel_hover_wh_per_min_per_kg: float = Field(ge=0)
    climb_and_landing_wh: float = Field(ge=0)


class DropSettings(_Model):
    approach_alt_m: float = Field(default=20, gt=0, description="where the vehicle waits for the go-ahead")
    payload_place_max_descent_m: float = Field(default=25, gt=0)
    release_height_m: float = Field(default=5, gt=0)
    winch_hover_alt_m: float = Field(default=15, gt=0)
    winch_length_m: float = Field(default=12, gt=0)
    winch_rate_m_s: float = Field(default=1.0, gt=0)
    gate_timeout_s: float = Field(default=90, gt=0, description="hold this long for the controller, then go home")
    release_confirm_timeout_s: float = Field(default=60, gt=0)


class ReleaseLimits(_Model):
    max_ground_speed_m_s: float = Field(default=1.0, gt=0)
    alt_tolerance_m: float = Field(default=2.0, gt=0)


class VehicleProfile(_Model):
    name: str
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


def zone_contains(order: DeliveryOrder, position: Location) -> bool:
    """Is ``position`` (horizontally) inside the order's drop zone?"""
    zone = order.drop_zone
    if zone.radius_m is not None:
        return bool(distance_m(order.drop_location(), position) <= zone.radius_m)
    assert zone.polygon is not None
    return bool(_polygon(zone.polygon).contains(Point(position.lon_deg, position.lat_deg)))


def area_contains(points: list[LatLon], position: Location) -> bool:
    return bool(_polygon(points).contains(Point(position.lon_deg, position.lat_deg)))
