"""``vehicle.payload``: the gripper and the winch, and the evidence that a parcel really left.

Evidence of a release is either ArduPilot's own report ("Gripper load released", from AP_Gripper_Servo) or
the gripper's servo output standing at its release PWM. The winch has no model in SITL and no feedback on
a PWM winch in general: what we can verify is that its servo output moved when we commanded it.
"""

from __future__ import annotations

from dataclasses import dataclass

from flightctl.dialect import enum_name, mavlink
from flightctl.errors import ConditionTimeout, ConfigError, FlightctlError, Refused
from flightctl.vehicle.commands import Commands
from flightctl.vehicle.params import Params
from flightctl.vehicle.telemetry import Clock, Telemetry, VehicleState

_SERVO_FUNCTION_GRIPPER = 28
_SERVO_FUNCTION_WINCH = 88
_PWM_TOLERANCE_US = 10


class PayloadError(FlightctlError):
    """Base of the payload's errors."""


class PayloadSetupError(PayloadError, ConfigError):
    """The payload hardware is not configured as a delivery needs (a parameter says so): fix the vehicle's
    configuration; trying again will not help."""


class PayloadDidNotMove(PayloadError, Refused):
    """The payload was commanded and its servo output did not move: a hardware or wiring fault in flight."""


@dataclass(frozen=True)
class PayloadSetup:
    gripper_channel: int | None  # 1-based servo output
    grab_pwm: int
    release_pwm: int
    winch_channel: int | None


@dataclass(frozen=True)
class ReleaseEvidence:
    source: str  # "status text" or "servo output"
    detail: str


class Payload:
    def __init__(self, commands: Commands, params: Params, telemetry: Telemetry) -> None:
        self._commands = commands
        self._params = params
        self._telemetry = telemetry
        self.setup: PayloadSetup | None = None

    async def discover(self) -> PayloadSetup:
        """Which servo outputs drive the gripper and the winch, and the gripper's PWMs (from parameters)."""
        functions = {n: (await self._params.get(f"SERVO{n}_FUNCTION")).value for n in range(1, 17)}
        gripper = next((n for n, f in functions.items() if f == _SERVO_FUNCTION_GRIPPER), None)
        winch = next((n for n, f in functions.items() if f == _SERVO_FUNCTION_WINCH), None)
        grab = int((await self._params.get("GRIP_GRAB")).value)
        release = int((await self._params.get("GRIP_RELEASE")).value)
        self.setup = PayloadSetup(gripper, grab, release, winch)
        return self.setup

    def _need_setup(self) -> PayloadSetup:
        if self.setup is None:
            raise PayloadSetupError("payload not discovered yet: call discover() first")
        return self.setup

    def servo_us(self, state: VehicleState, channel: int | None) -> int | None:
        if channel is None or len(state.servo_outputs_us) < channel:
            return None
        return state.servo_outputs_us[channel - 1]

    def gripper_at(self, state: VehicleState, pwm: int) -> bool:
        value = self.servo_us(state, self._need_setup().gripper_channel)
        return value is not None and abs(value - pwm) <= _PWM_TOLERANCE_US

    def release_evidence(self, state: VehicleState, texts_after: int) -> ReleaseEvidence | None:
        for entry in self._telemetry.texts_since(texts_after):
            if "Gripper load released" in entry.text:
                return ReleaseEvidence("status text", entry.text)
        setup = self._need_setup()
        if self.gripper_at(state, setup.release_pwm):
            return ReleaseEvidence("servo output", f"gripper servo {setup.gripper_channel} at {setup.release_pwm} us")
        return None

    async def grab(self, *, timeout_s: float = 10.0) -> None:
        """Close the gripper on the parcel and wait until the servo (or ArduPilot) says it is closed."""
        setup = self._need_setup()
        if setup.gripper_channel is None:
            raise PayloadSetupError("no servo output has SERVOn_FUNCTION 28 (gripper)")
        texts_after = self._telemetry.status_count
        await self._commands.long(mavlink.MAV_CMD_DO_GRIPPER, [1, mavlink.GRIPPER_ACTION_GRAB], label="gripper grab")

        def grabbed(state: VehicleState) -> bool:
            said = any("Gripper load grabbed" in t.text for t in self._telemetry.texts_since(texts_after))
            return said or self.gripper_at(state, setup.grab_pwm)

        await self._telemetry.wait_until(grabbed, timeout_s=timeout_s, what="gripper closed on the parcel")

    async def command_release(self) -> None:
        """Tell the gripper to open; the evidence that it did is ``release_evidence``'s to find."""
        await self._commands.long(
            mavlink.MAV_CMD_DO_GRIPPER, [1, mavlink.GRIPPER_ACTION_RELEASE], label="gripper release"
        )

    async def winch(self, action: int, *, length_m: float = 0.0, rate_m_s: float = 0.0, timeout_s: float = 5.0) -> int:
        """Command the winch and return its servo output once it has moved from where it was."""
        setup = self._need_setup()
        if setup.winch_channel is None:
            raise PayloadSetupError("no servo output has SERVOn_FUNCTION 88 (winch)")
        before = self.servo_us(self._telemetry.state, setup.winch_channel)
        label = f"winch {enum_name('WINCH_ACTIONS', action).removeprefix('WINCH_').lower()}"
        await self._commands.long(mavlink.MAV_CMD_DO_WINCH, [1, action, length_m, rate_m_s], label=label)

        def moved(state: VehicleState) -> bool:
            now = self.servo_us(state, setup.winch_channel)
            return now is not None and now != before

        try:
            state = await self._telemetry.wait_until(
                moved, timeout_s=timeout_s, what=f"{label}: servo moving", clock=Clock.VEHICLE
            )
        except ConditionTimeout:
            raise PayloadDidNotMove(f"{label}: winch servo {setup.winch_channel} stayed at {before} us") from None
        value = self.servo_us(state, setup.winch_channel)
        assert value is not None
        return value
