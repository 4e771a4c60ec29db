"""Fixtures that fly real ArduPilot SITL. Skipped, loudly, only when no SITL binary is built."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator, Generator

import pytest

from flightctl.errors import FlightctlError
from flightctl.vehicle.vehicle import Vehicle
from sitl.errors import SitlNotBuilt
from sitl.instance import SitlInstance
from sitl.locations import Home, resolve_home
from sitl.param_guard import ParamGuard
from sitl.paths import VehicleKind, sitl_binary
from tests.conftest import SITL_SKIP_MARK

log = logging.getLogger(__name__)

SPEEDUP = float(os.environ.get("FLIGHTCTL_SITL_SPEEDUP", "5"))
# Instances from 4 up, so a developer's own `flightctl sim up` on instance 0 keeps its ports.
INSTANCE_BASE = int(os.environ.get("FLIGHTCTL_SITL_INSTANCE", "4"))


def require_sitl(kind: VehicleKind) -> None:
    """Skip, loudly, without SITL; under CI (CI=true) a missing SITL fails the run: CI never passes unflown."""
    try:
        sitl_binary(kind)
    except SitlNotBuilt as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and no SITL to fly: {exc}", pytrace=False)
        pytest.skip(f"{SITL_SKIP_MARK}: {exc}")


@pytest.fixture(scope="session")
async def sitl_copter() -> AsyncIterator[SitlInstance]:
    """One ArduCopter SITL at Kirkwall with the delivery profile, shared by the session."""
    require_sitl("copter")
    async with SitlInstance(
        home=resolve_home("kirkwall"), vehicle="copter", instance=INSTANCE_BASE, speedup=SPEEDUP
    ) as sim:
        yield sim


@pytest.fixture
async def depot_sitl() -> AsyncIterator[SitlInstance]:
    """A fresh copter at the Kirkwall depot (full battery, empty gripper), at delivery test speed."""
    from tests.sitl.deliveries import DELIVERY_SPEEDUP, SITE

    require_sitl("copter")
    home = Home(lat_deg=SITE.depot.lat, lon_deg=SITE.depot.lon, alt_m=SITE.depot_alt_m, heading_deg=0)
    async with SitlInstance(home=home, instance=INSTANCE_BASE + 5, speedup=DELIVERY_SPEEDUP) as sim:
        yield sim


@pytest.fixture
async def copter(sitl_copter: SitlInstance) -> AsyncIterator[Vehicle]:
    """The shared copter, left on the ground and disarmed after the test whatever the test did."""
    yield sitl_copter.vehicle
    await _back_on_the_ground(sitl_copter)


@pytest.fixture
async def copter_params(copter: Vehicle) -> AsyncIterator[ParamGuard]:
    """Set parameters for one test; they are restored afterwards."""
    guard = ParamGuard(copter.params)
    yield guard
    await guard.restore()


async def _back_on_the_ground(sim: SitlInstance) -> None:
    vehicle = sim.vehicle
    if not vehicle.state.armed:
        return
    log.warning("test left the vehicle armed; landing it")
    try:
        await vehicle.commands.set_mode("LAND")
        await vehicle.telemetry.wait_until(lambda s: not s.armed, timeout_s=180, what="disarmed after test")
    except FlightctlError:
        log.exception("could not land the vehicle after the test; restarting SITL")
        await sim.restart()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport]:
    report: pytest.TestReport = yield
    if report.failed:
        funcargs = getattr(item, "funcargs", {})
        for value in funcargs.values():
            if isinstance(value, SitlInstance):
                with contextlib.suppress(Exception):
                    report.sections.append((f"SITL output {value!r}", value.output_tail(80)))
    return report
