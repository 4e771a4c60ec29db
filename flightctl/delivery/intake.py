"""An order against the site and the aircraft, before any vehicle is touched: what no plan can fix.

The order file's own shape is checked by its model (``delivery.order``); these are the checks that need the
site, the profile or the clock. Each problem is named with its numbers; the in-flight interlocks stay the
last line of defence.
"""

from __future__ import annotations

from datetime import datetime

from flightctl.delivery.order import DeliveryOrder, Site, VehicleProfile, area_contains
from flightctl.geo import distance_m

# A drop this close to the depot is not a delivery (and would release over the depot's own people).
MIN_DROP_DISTANCE_M = 50.0


def intake_problems(order: DeliveryOrder, site: Site, profile: VehicleProfile, now_utc: datetime) -> list[str]:
    problems: list[str] = []
    drop = order.drop_location()
    from_depot = distance_m(site.home(), drop)
    if from_depot < MIN_DROP_DISTANCE_M:
        problems.append(f"the drop point is {from_depot:.0f} m from the depot (at least {MIN_DROP_DISTANCE_M:g} m)")
    if not area_contains(site.operating_area, drop):
        problems.append(
            f"the drop point is outside the operating area of {site.name}, {from_depot / 1000:.1f} km from the depot"
        )
    for zone in site.no_fly:
        if area_contains(zone.polygon, drop):
            problems.append(f"the drop point is inside the no-fly zone {zone.name!r}")
    if order.parcel_kg > profile.max_payload_kg:
        problems.append(f"parcel {order.parcel_kg:g} kg is over the payload limit of {profile.max_payload_kg:g} kg")
    window = order.window
    if window is not None and window.not_after is not None and window.not_after <= now_utc:
        problems.append(f"the delivery window closed at {window.not_after.isoformat()}")
    return problems
