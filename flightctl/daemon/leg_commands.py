"""The crew's and the weather's word on an island leg, as the daemon answers it: the unload confirmed, a new
surface wind at one of the flying leg's airstrips. Each becomes an answer (``LegAnswer``); the worker sends it
and, for a wind taken, hands it to the leg's sequencer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from flightctl.delivery.decide_leg import LegDelivery
from flightctl.delivery.journal import Journal
from flightctl.delivery.planner import DeliveryPlan
from flightctl.delivery.runway_choice import SurfaceWind
from flightctl.delivery.unload import confirm_unload
from flightctl.errors import ConfigError
from flightctl.mqtt.requests import CommandRequest


@dataclass(frozen=True)
class LegAnswer:
    ok: bool
    result: str
    order_id: str | None = None


async def unloaded(journal: Journal, request: CommandRequest) -> LegAnswer:
    """The ground crew's confirmation that a leg that ARRIVED is unloaded: journaled once (UNLOADED, which goes
    out as a state event), and required by the return leg's go/no-go."""
    order_id, by = request.order_id, request.by
    assert order_id is not None  # the request's validator saw to it
    assert by is not None
    try:
        await confirm_unload(journal, order_id, by=by)
    except ConfigError as exc:
        return LegAnswer(False, str(exc), order_id)
    return LegAnswer(True, f"{order_id}: unload confirmed by {by}", order_id)


def airstrip_wind(
    flying: DeliveryPlan | LegDelivery | None,
    order_id: str | None,
    held: Mapping[str, SurfaceWind],
    request: CommandRequest,
) -> LegAnswer:
    """Whether a surface wind newly measured at ``request.icao`` goes to the leg being flown (``flying``, with
    the winds reported since it was taken, ``held``): a destination it puts out of limits diverts the aircraft,
    by the leg's rule. One older than the wind already held for that airstrip changes nothing: messages can
    arrive out of order."""
    icao, wind = request.icao, request.wind
    assert icao is not None  # the request's validator saw to it
    assert wind is not None
    if not isinstance(flying, LegDelivery):
        return LegAnswer(False, "no island leg in progress")
    strips = flying.plan.airstrips
    icaos = (strips.origin.icao, strips.destination.icao, strips.alternate.icao)
    if icao not in icaos:
        return LegAnswer(False, f"{icao} is not an airstrip of leg {flying.plan.leg.name} ({', '.join(icaos)})")
    before = held.get(icao) or flying.winds.get(icao)
    before_at = before.measured_at if before is not None else None
    if before is not None and before_at is not None and wind.measured_at is not None and before_at > wind.measured_at:
        return LegAnswer(
            False, f"older than the {icao} wind already held ({before.text()}, measured {before_at.isoformat()})"
        )
    return LegAnswer(True, f"{icao} {wind.text()} passed to leg {order_id}", order_id)
