"""Whether a position may carry a release: glitches, jumps, GPS against EKF, a steady hold. Data only."""

from __future__ import annotations

from flightctl.delivery.actions import Abort, AbortHow, RecordInterlocks
from flightctl.delivery.decide import Observed, Persistence, decide
from flightctl.delivery.events import AbortCause, DeliveryState
from flightctl.delivery.order import PositionTrustLimits
from flightctl.delivery.position_trust import PositionWatch, position_doubts
from flightctl.dialect import mavlink
from flightctl.geo import AltFrame, Location, offset
from flightctl.vehicle.telemetry import EKF_NAV_READY, StatusText, VehicleState
from tests.unit.test_delivery_decide import PLACE, PROFILE, flown_to, flying, history_of

LIMITS = PositionTrustLimits()
DROP = Location(58.956664, -2.952736, 40.0, AltFrame.ABSOLUTE)


def hovering_at(ms: int, where: Location = DROP, **changes: object) -> VehicleState:
    state = VehicleState(
        armed=True,
        time_boot_ms=ms,
        position_time_ms=ms,
        position=where,
        gps_position=where,
        velocity_ned_m_s=(0.0, 0.0, 0.0),
        gps_fix_type=3,
        gps_satellites=12,
        gps_hacc_m=0.5,
        ekf_flags=EKF_NAV_READY,
    )
    for name, value in changes.items():
        setattr(state, name, value)
    return state


def watch_hover(
    watch: PositionWatch, start_ms: int, end_ms: int, where: Location = DROP, **changes: object
) -> VehicleState:
    state = hovering_at(start_ms, where, **changes)
    for ms in range(start_ms, end_ms + 1, 200):
        state = hovering_at(ms, where, **changes)
        watch.update(state, [])
    return state


def doubts(watch: PositionWatch, state: VehicleState) -> list[str]:
    return position_doubts(LIMITS, state, watch.figures(), min_satellites=6)


def test_a_steady_hold_on_a_good_fix_is_trusted() -> None:
    """Test that after the hold window of steady positions nothing is in doubt."""
    watch = PositionWatch(LIMITS)
    state = watch_hover(watch, 10_000, 16_000)
    assert doubts(watch, state) == []


def test_a_hold_must_last_its_window_first() -> None:
    """Test that the first seconds at the gate are not yet a steady hold."""
    watch = PositionWatch(LIMITS)
    state = watch_hover(watch, 10_000, 11_000)
    assert doubts(watch, state) == ["not yet holding for 5 s"]


def test_a_jump_that_stays_is_never_trusted_again() -> None:
    """Test that a 20 m jump with no velocity to explain it (the EKF following a GPS glitch) is remembered:
    settled or not, the position is not trusted while the jump stands."""
    watch = PositionWatch(LIMITS)
    watch_hover(watch, 10_000, 16_000)
    moved = offset(DROP, bearing_deg=90, distance_m=20)
    state = watch_hover(watch, 16_200, 60_000, moved)
    assert doubts(watch, state) == ["the position jumped 20 m since take-off without moving there"]


def test_a_jump_that_comes_back_is_trusted_after_the_settle_time() -> None:
    """Test that a glitch that came and went sums to nothing, and is trusted once it has settled."""
    watch = PositionWatch(LIMITS)
    watch_hover(watch, 10_000, 16_000)
    watch_hover(watch, 16_200, 20_000, offset(DROP, bearing_deg=90, distance_m=20))
    state = watch_hover(watch, 20_200, 25_000)
    assert doubts(watch, state)[0].startswith("GPS glitch or position jump 5 s ago")
    state = watch_hover(watch, 25_200, 31_000)
    assert doubts(watch, state) == []


def test_moving_where_the_velocity_says_is_not_a_jump() -> None:
    """Test that cruising at 10 m/s is explained by the velocity and adds no doubt."""
    watch = PositionWatch(LIMITS)
    where = DROP
    for step in range(100):
        where = offset(where, bearing_deg=45, distance_m=2.0) if step else where
        watch.update(hovering_at(10_000 + step * 200, where, velocity_ned_m_s=(7.071, 7.071, 0.0)), [])
    assert watch.figures().unexplained_m < 0.5
    assert watch.figures().last_doubt_ms is None


def test_glitch_flags_and_texts_start_the_settle_time() -> None:
    """Test that the EKF's GPS-glitching flag and ArduPilot's glitch text each put the position in doubt."""
    watch = PositionWatch(LIMITS)
    watch_hover(watch, 10_000, 16_000)
    watch.update(hovering_at(16_200, ekf_flags=EKF_NAV_READY | mavlink.EKF_GPS_GLITCHING), [])
    state = watch_hover(watch, 16_400, 20_000)
    assert doubts(watch, state) == ["GPS glitch or position jump 4 s ago (settle 10 s)"]
    watch = PositionWatch(LIMITS)
    watch_hover(watch, 10_000, 16_000)
    watch.update(hovering_at(16_200), [StatusText(1, 2, "GPS Glitch or Compass error")])
    assert doubts(watch, watch_hover(watch, 16_400, 18_000))[0].startswith("GPS glitch or position jump")


def test_gps_against_ekf_accuracy_and_satellites() -> None:
    """Test each receiver-side doubt, with its numbers."""
    watch = PositionWatch(LIMITS)
    state = watch_hover(watch, 10_000, 16_000)
    apart = hovering_at(16_000, gps_position=offset(DROP, bearing_deg=0, distance_m=8))
    assert doubts(watch, apart) == ["GPS and EKF positions 8.0 m apart (> 5 m)"]
    assert doubts(watch, hovering_at(16_000, gps_hacc_m=4.5)) == ["GPS accuracy 4.5 m > 3 m"]
    assert doubts(watch, hovering_at(16_000, gps_satellites=4)) == ["4 GPS satellites (< 6)"]
    assert doubts(watch, state) == []


def test_the_gate_holds_then_returns_home_when_the_position_is_in_doubt() -> None:
    """Test that position doubts are interlock failures: the gate waits out its settle time, then brings the
    parcel home, recording why."""
    history = history_of(flown_to(DeliveryState.ON_STATION, 5_000))
    doubt = ("the position jumped 20 m since take-off without moving there",)
    on_the_spot = flying(PLACE, 10_000, relative_alt_m=PROFILE.drop.approach_alt_m)
    assert decide(PLACE, history, Observed(on_the_spot, position_doubts=doubt), Persistence()) == []
    later = flying(PLACE, 26_000, relative_alt_m=PROFILE.drop.approach_alt_m)
    verdict, abort = decide(PLACE, history, Observed(later, position_doubts=doubt), Persistence())
    assert isinstance(verdict, RecordInterlocks)
    assert not verdict.ok
    assert verdict.line == "position not trusted: the position jumped 20 m since take-off without moving there"
    assert abort == Abort(
        "release interlock violated at the gate: no release", AbortHow.RETURN_ALONG_ROUTE, AbortCause.DROP_POINT
    )


def test_a_clock_moved_on_by_other_messages_is_not_a_jump() -> None:
    """Test that only new position reports count: between them the vehicle clock moves on with other messages,
    and timing a cruising step by that clock would look like a jump."""
    watch = PositionWatch(LIMITS)
    cruising = (10.0, 0.0, 0.0)
    where = DROP
    for report in range(50):
        where = offset(where, bearing_deg=0, distance_m=2.0) if report else where
        for extra_ms in (0, 50, 120):  # attitude and system time in between
            state = hovering_at(10_000 + report * 200, where, velocity_ned_m_s=cruising)
            state.time_boot_ms = 10_000 + report * 200 + extra_ms
            watch.update(state, [])
    assert watch.figures().unexplained_m < 0.5
    assert watch.figures().last_doubt_ms is None
