"""Connect, wait ready, take off in GUIDED, land: through flightctl's API only, over TCP and over a serial port."""

from __future__ import annotations

import pytest

from flightctl.link.connection import LinkState
from flightctl.vehicle.telemetry import VehicleState
from flightctl.vehicle.vehicle import Vehicle
from sitl.instance import SitlInstance
from sitl.pty_bridge import pty_bridge

pytestmark = pytest.mark.sitl

TAKEOFF_ALT_M = 10.0


async def take_off_and_land(vehicle: Vehicle) -> VehicleState:
    await vehicle.wait_ready(timeout_s=120)
    await vehicle.commands.set_mode("GUIDED")
    await vehicle.commands.arm()
    await vehicle.commands.takeoff(TAKEOFF_ALT_M)
    at_altitude = await vehicle.telemetry.wait_until(
        lambda s: (
            s.relative_alt_m is not None and s.relative_alt_m > TAKEOFF_ALT_M - 0.5 and abs(s.climb_m_s or 0) < 0.3
        ),
        timeout_s=60,
        what=f"climb to {TAKEOFF_ALT_M:g} m",
    )
    await vehicle.commands.land()
    await vehicle.telemetry.wait_until(lambda s: not s.armed, timeout_s=120, what="disarmed after landing")
    return at_altitude


async def test_takeoff_and_land_over_tcp(sitl_copter: SitlInstance) -> None:
    """Test that over SITL's TCP SERIAL1 the copter takes off to 10 m (+-1 m by telemetry), lands and disarms."""
    async with Vehicle.connect(sitl_copter.serial1_url) as vehicle:
        at_altitude = await take_off_and_land(vehicle)
        assert at_altitude.relative_alt_m == pytest.approx(TAKEOFF_ALT_M, abs=1.0)
        assert at_altitude.mode == "GUIDED"
        assert at_altitude.armed
        assert not vehicle.state.armed
        assert vehicle.connection.state is LinkState.CONNECTED


async def test_takeoff_and_land_over_serial(sitl_copter: SitlInstance) -> None:
    """Test the same flight over a real tty (pyserial), bridged by socat to SITL's SERIAL2."""
    port = int(sitl_copter.serial2_url.rsplit(":", 1)[1])
    async with pty_bridge("127.0.0.1", port) as tty, Vehicle.connect(f"serial:{tty}:115200") as vehicle:
        at_altitude = await take_off_and_land(vehicle)
        assert at_altitude.relative_alt_m == pytest.approx(TAKEOFF_ALT_M, abs=1.0)
        assert not vehicle.state.armed
        assert vehicle.connection.stats().codec.frames > 100


async def test_parameter_set_round_trips_on_arducopter(copter: Vehicle) -> None:
    """Test that an integer and a float parameter set on ArduCopter read back exactly, then restore them."""
    original_int = await copter.params.get("RTL_ALT")
    original_float = await copter.params.get("WPNAV_SPEED")
    try:
        assert (await copter.params.set("RTL_ALT", 3456)).value == 3456
        assert (await copter.params.get("RTL_ALT")).value == 3456
        assert (await copter.params.set("WPNAV_SPEED", 733.5)).value == pytest.approx(733.5)
    finally:
        await copter.params.set("RTL_ALT", original_int.value)
        await copter.params.set("WPNAV_SPEED", original_float.value)


async def test_fetch_all_parameters_from_arducopter(copter: Vehicle) -> None:
    """Test that the whole parameter list arrives, with progress reaching the vehicle's count."""
    progress: list[tuple[int, int]] = []
    params = await copter.params.fetch_all(progress=lambda done, total: progress.append((done, total)))
    assert len(params) > 500
    assert progress[-1] == (len(params), len(params))
    assert params["GRIP_ENABLE"].value == 1, "the delivery profile is loaded"
    assert params["SIM_GRPS_PIN"].value == 8


async def test_arming_refused_without_a_mission_is_explained(copter: Vehicle) -> None:
    """Test that a refused command raises VehicleRejected carrying the vehicle's own reason."""
    from flightctl.errors import VehicleRejected

    await copter.commands.set_mode("AUTO")  # AUTO with no mission: ArduCopter refuses to arm
    with pytest.raises(VehicleRejected) as caught:
        await copter.commands.arm()
    assert caught.value.command == "arm()"
    assert caught.value.result_name.startswith("MAV_RESULT_")
    assert "mission" in str(caught.value).lower(), "ArduPilot's own reason travels with the error"
    await copter.commands.set_mode("STABILIZE")


async def test_param_guard_restores_what_a_test_changed(copter: Vehicle) -> None:
    """Test that parameters set through ParamGuard are back to their old values after restore()."""
    from sitl.param_guard import ParamGuard

    before = (await copter.params.get("RTL_ALT")).value, (await copter.params.get("WPNAV_SPEED")).value
    guard = ParamGuard(copter.params)
    await guard.set_many({"RTL_ALT": 2500, "WPNAV_SPEED": 321})
    await guard.set("RTL_ALT", 2600)
    assert (await copter.params.get("RTL_ALT")).value == 2600
    await guard.restore()
    after = (await copter.params.get("RTL_ALT")).value, (await copter.params.get("WPNAV_SPEED")).value
    assert after == before
    assert guard.changed == {}
