"""ArduPlane through the same code path as the copter: modes by Plane's names, arming, parameters."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from flightctl.errors import ModeError
from sitl.instance import SitlInstance
from sitl.locations import resolve_home
from tests.sitl.conftest import INSTANCE_BASE, SPEEDUP, require_sitl

pytestmark = pytest.mark.sitl


@pytest.fixture(scope="module")
async def plane() -> AsyncIterator[SitlInstance]:
    require_sitl("plane")
    async with SitlInstance(
        home=resolve_home("kirkwall"), vehicle="plane", instance=INSTANCE_BASE + 1, speedup=SPEEDUP
    ) as sim:
        yield sim


async def test_plane_modes_arm_and_disarm(plane: SitlInstance) -> None:
    """Test that ArduPlane is recognised, takes Plane mode names, arms and disarms on the ground."""
    vehicle = plane.vehicle
    assert vehicle.connection.vehicle is not None
    assert vehicle.connection.vehicle.type_name == "FIXED_WING"
    for mode in ("FBWA", "CRUISE", "MANUAL"):
        await vehicle.commands.set_mode(mode)
        assert vehicle.commands.current_mode() == mode
    with pytest.raises(ModeError, match="unknown flight mode 'ALT_HOLD'"):
        await vehicle.commands.set_mode("ALT_HOLD")  # a Copter mode
    await vehicle.commands.arm()
    assert vehicle.state.armed
    await vehicle.commands.disarm()
    assert not vehicle.state.armed
    assert (await vehicle.params.get("GRIP_ENABLE")).value == 1, "the plane delivery profile is loaded"
