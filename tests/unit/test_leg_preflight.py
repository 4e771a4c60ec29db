"""Go/no-go for an island leg, decided as data: winds at three airstrips, the aircraft on its runway, energy."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from flightctl.delivery.events import DeliveryState
from flightctl.delivery.leg_planner import LegPlan
from flightctl.delivery.leg_preflight import LegBefore, leg_checks
from flightctl.delivery.preflight import Check, GoNoGo
from flightctl.delivery.runway_choice import SurfaceWind
from flightctl.errors import ConfigError
from flightctl.vehicle.telemetry import EKF_NAV_READY, VehicleState
from tests.unit.test_island_legs import PLANE, airstrips_of, leg

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
LEG = leg("kirkwall-north-ronaldsay")
STRIPS = airstrips_of(LEG)
RUNWAY_27 = STRIPS.origin.ends()[1]


def measured(text: str, minutes_old: float = 10) -> SurfaceWind:
    return SurfaceWind.parse(text).model_copy(update={"measured_at": NOW - timedelta(minutes=minutes_old)})


def on_runway_27(**changes: Any) -> VehicleState:
    state = VehicleState(
        gps_fix_type=3,
        gps_satellites=12,
        ekf_flags=EKF_NAV_READY,
        position=RUNWAY_27.threshold,
        heading_deg=269.0,
        battery_voltage_v=12.6,
        battery_remaining_pct=100,
        battery_consumed_wh=0.5,
    )
    return dataclasses.replace(state, **changes)


def decide(
    state: VehicleState | None = None,
    *,
    aloft: str = "270/5",
    parcel_kg: float = 2.0,
    **winds: SurfaceWind | None,
) -> tuple[GoNoGo, LegPlan | None]:
    measured_winds = {"EGPA": measured("270/6"), "EGEN": measured("030/8"), "EGES": measured("030/8")} | winds
    present = {icao: wind for icao, wind in measured_winds.items() if wind is not None}
    return leg_checks(
        LEG,
        STRIPS,
        PLANE,
        state or on_runway_27(),
        winds=present,
        wind_aloft=SurfaceWind.parse(aloft),
        parcel_kg=parcel_kg,
        now_utc=NOW,
    )


def failed(result: GoNoGo) -> dict[str, str]:
    return {check.name: check.detail for check in result.failed}


def test_a_good_day_is_a_go_with_every_runway_and_figure_said() -> None:
    """Test the GO: departure 27 into a westerly, North Ronaldsay 03 into a north-easterly, the alternate, the
    aircraft lined up, and the energy with its margin."""
    result, plan = decide()
    assert result.go, result.report()
    assert plan is not None
    assert plan.departure.end.designator == "27"
    assert plan.landing.end.designator == "03"
    report = result.report()
    assert "GO    destination runway: EGEN runway 03 (030 deg): headwind +8.0 m/s, crosswind 0.1 m/s: usable" in report
    assert "GO    lined up: 0 m from the threshold of EGPA runway 27" in report
    assert "GO    energy: leg " in report
    assert "GO    wind at North Ronaldsay: 030 deg at 8 m/s, 10 min old (limit 30 min)" in report


def test_a_crosswind_at_the_destination_before_departure_is_a_no_go_with_the_runway_and_its_numbers() -> None:
    """Test that 10 m/s across North Ronaldsay's strip refuses the leg, naming each runway end, its crosswind
    and the limit, and that no plan comes back to fly."""
    result, plan = decide(EGEN=measured("120/10"))
    assert plan is None
    assert not result.go
    detail = failed(result)["destination runway"]
    assert (
        "EGEN runway 03 (030 deg): headwind -0.1 m/s, crosswind 10.0 m/s: crosswind 10.0 m/s over the limit" in detail
    )
    assert "of 8 m/s" in detail


def test_an_alternate_with_no_usable_runway_is_a_no_go() -> None:
    """Test that a leg whose alternate is out of limits does not go, though the destination is fine."""
    result, plan = decide(EGES=measured("300/12"))
    assert plan is None
    assert "no usable runway at Sanday (EGES)" in failed(result)["alternate runway"]


@pytest.mark.parametrize(
    ("wind", "problem"),
    [
        (None, "no measurement: a runway cannot be chosen"),
        (SurfaceWind.parse("030/8"), "but not when it was measured"),
        (measured("030/8", minutes_old=45), "45 min old (limit 30 min)"),
        (measured("030/8", minutes_old=-10), "measured in the future"),
    ],
)
def test_a_destination_wind_that_is_missing_timeless_old_or_from_the_future_is_a_no_go(
    wind: SurfaceWind | None, problem: str
) -> None:
    """Test that a runway is never chosen on a wind nobody measured recently."""
    result, _ = decide(EGEN=wind)
    assert not result.go
    assert problem in failed(result)["wind at North Ronaldsay"]


def test_an_aircraft_not_lined_up_on_its_departure_runway_is_a_no_go() -> None:
    """Test the two ways off: pointing down the wrong runway, and standing away from the threshold."""
    wrong_way, _ = decide(on_runway_27(heading_deg=89.0))
    assert "heading 089 deg against the runway's 270 (limit 10)" in failed(wrong_way)["lined up"]
    elsewhere, _ = decide(on_runway_27(position=STRIPS.origin.ends()[0].threshold))
    assert "1428 m from the threshold of EGPA runway 27" in failed(elsewhere)["lined up"]


def test_the_energy_counts_the_headwind_aloft_and_the_reserve_to_the_alternate() -> None:
    """Test that a strong headwind aloft along the 030 track turns a GO into a NO-GO on energy, with the
    figures, and that a pack the autopilot gives no capacity for is refused."""
    calm, _ = decide(aloft="030/0")
    assert calm.go
    gale, _ = decide(aloft="030/20")
    assert "margin -" in failed(gale)["energy"]
    assert "forecast aloft 030 deg at 20 m/s" in failed(gale)["energy"]
    unknown, _ = decide(on_runway_27(battery_remaining_pct=None))
    assert "reports no remaining capacity" in failed(unknown)["energy"]


def test_a_parcel_over_the_aircrafts_payload_is_a_no_go() -> None:
    result, _ = decide(parcel_kg=6)
    assert failed(result)["parcel mass"] == "6 kg (limit 5 kg)"


@pytest.mark.parametrize(
    "text", ["210", "x/3", "210/", "210/10g", "210/10@", "400/3", "nan/3", "210/10@2026-12-01T09:40"]
)
def test_a_mistyped_wind_is_refused_with_the_form_it_takes(text: str) -> None:
    """Test that each malformed wind names itself and the expected form."""
    with pytest.raises(ConfigError, match=r"wind .*\(e\.g\. 210/10 or 120/8g14@2026-12-01T09:40Z\)"):
        SurfaceWind.parse(text)


def test_a_return_leg_waits_for_the_unload_and_the_turnaround_time() -> None:
    """Test the turnaround check: the leg it follows not unloaded (or unknown) is a NO-GO saying so; unloaded
    but on the ground for less than the profile's turnaround time is a NO-GO with both figures; then GO."""
    wing = PLANE.fixed_wing
    assert wing is not None
    slow = PLANE.model_copy(update={"fixed_wing": wing.model_copy(update={"turnaround_min_s": 300})})
    back = leg("north-ronaldsay-kirkwall")
    strips = airstrips_of(back)
    runway = strips.origin.ends()[0]
    state = on_runway_27(position=runway.threshold, heading_deg=runway.heading_deg)
    winds = {"EGEN": measured("030/5"), "EGPA": measured("090/5"), "EGES": measured("030/5")}

    def turnaround(before: LegBefore) -> Check:
        verdict, _ = leg_checks(
            back, strips, slow, state, winds=winds, wind_aloft=SurfaceWind.parse("030/0"), parcel_kg=0.5,
            now_utc=NOW, after_leg=before,
        )  # fmt: skip
        return next(check for check in verdict.checks if check.name == "turnaround")

    assert turnaround(LegBefore("KWL-L1", DeliveryState.ARRIVED, 400)).detail == (
        "leg KWL-L1 is ARRIVED: its unload has not been confirmed"
    )
    assert not turnaround(LegBefore("KWL-L9", None, None)).ok
    early = turnaround(LegBefore("KWL-L1", DeliveryState.UNLOADED, 120))
    assert not early.ok
    assert early.detail == "leg KWL-L1 is UNLOADED, 120 s on the ground (turnaround at least 300 s)"
    assert turnaround(LegBefore("KWL-L1", DeliveryState.UNLOADED, 301)).ok


def test_the_leg_before_is_read_from_its_journal() -> None:
    """Test that a return leg's view of the leg it follows comes from that leg's journal: the state it ended in
    and the seconds since its ARRIVED was journaled; a journal that never saw it knows neither."""
    from flightctl.delivery.ground import leg_before
    from tests.unit.test_delivery_decide import entered, flown_to

    events = [*flown_to(DeliveryState.ARRIVED), entered(DeliveryState.UNLOADED)]
    before = leg_before("KWL-L1", events, datetime(2026, 11, 28, 0, 5, tzinfo=UTC))
    assert before == LegBefore("KWL-L1", DeliveryState.UNLOADED, 300.0)
    assert leg_before("KWL-L9", [], NOW) == LegBefore("KWL-L9", None, None)
