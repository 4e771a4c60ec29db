"""MAVLink 2 signing with ArduCopter: install a key, fly commands over a signed link, see unsigned ones refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from flightctl.errors import CommandTimeout
from flightctl.vehicle.commands import CommandPolicy
from flightctl.vehicle.signing import install_signing_key, remove_signing_key, write_new_key
from flightctl.vehicle.vehicle import LinkOptions, Vehicle
from sitl.instance import SitlInstance

pytestmark = pytest.mark.sitl


async def test_signed_link_works_and_unsigned_commands_are_refused(sitl_copter: SitlInstance, tmp_path: Path) -> None:
    """Test that after installing a key (over SERIAL0), a link using the key gets answers, while the vehicle
    ignores an unsigned link's commands; and that the key can be removed again."""
    key_file = tmp_path / "vehicle.key"
    key = write_new_key(key_file)
    harness = sitl_copter.vehicle.connection
    await install_signing_key(harness, key)
    try:
        async with Vehicle.connect(sitl_copter.serial1_url, options=LinkOptions(signing_key_file=key_file)) as signed:
            assert (await signed.params.get("RTL_ALT")).value > 0
            assert signed.connection.stats().codec.unsigned_rejected == 0
        async with Vehicle.connect(sitl_copter.serial2_url, rates_hz=None) as unsigned:
            with pytest.raises(CommandTimeout):
                await unsigned.commands.long(
                    512, [148], policy=CommandPolicy(reply_timeout_s=0.5, attempts=2)
                )  # REQUEST_MESSAGE(AUTOPILOT_VERSION), unsigned: ignored
    finally:
        await remove_signing_key(harness)
    async with Vehicle.connect(sitl_copter.serial2_url, rates_hz=None) as unsigned_again:
        assert (await unsigned_again.params.get("RTL_ALT")).value > 0
