"""A SITL that crashes in a test says where: its crash report (every thread's stack, through gdb) is in the
output the test failure shows."""

from __future__ import annotations

import os
import shutil
import signal

import pytest

from sitl.instance import CRASH_REPORT_START, SitlInstance
from sitl.locations import Home
from tests.sitl.conftest import INSTANCE_BASE, require_sitl
from tests.sitl.deliveries import SITE

pytestmark = pytest.mark.sitl


async def test_a_segfault_in_sitl_comes_with_its_stacks() -> None:
    require_sitl("copter")
    if shutil.which("gdb") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true and gdb is not installed", pytrace=False)
        pytest.skip("gdb is not installed (apt-get install gdb)")
    home = Home(lat_deg=SITE.depot.lat, lon_deg=SITE.depot.lon, alt_m=SITE.depot_alt_m, heading_deg=0)
    async with SitlInstance(home=home, instance=INSTANCE_BASE + 7, speedup=1) as sim:
        assert sim.pid is not None
        os.kill(sim.pid, signal.SIGSEGV)  # what a bad pointer does: SITL's own handler takes it from here
        await sim.wait_exit(timeout_s=120)
        report = sim.output_tail(40)
    assert "segmentation fault" in report
    assert CRASH_REPORT_START in report
    assert "Thread 1" in report  # gdb's "thread apply all bt": each thread's stack
    assert "#0 " in report
