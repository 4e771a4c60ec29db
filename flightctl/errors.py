"""Typed errors, grouped by what the caller does next.

- ``LinkError``: the path to the autopilot is broken; wait for it or give up the flight leg.
- ``VehicleTimeout``: the vehicle did not answer in time; retrying may help.
- ``VehicleRejected``: the vehicle answered no; retrying the same thing will not help.
- ``ConfigError``: our own input is wrong; fix the file, nothing was sent.
"""

from __future__ import annotations

from flightctl.dialect import enum_name


class FlightctlError(Exception):
    """Base of every error flightctl raises on purpose."""


class ConfigError(FlightctlError):
    """Configuration, a file or a URL we were given is invalid. Nothing was sent to the vehicle."""


class LinkError(FlightctlError):
    """The MAVLink link itself failed."""


class TransportError(LinkError):
    """A transport could not be opened or failed while in use."""


class LinkClosed(LinkError):
    """The connection was closed while something still waited on it."""


class VehicleTimeout(FlightctlError, TimeoutError):
    """The vehicle did not do or say something within the time allowed."""


class CommandTimeout(VehicleTimeout):
    """No final COMMAND_ACK for a command after every attempt."""

    def __init__(self, command: str, attempts: int, timeout_s: float) -> None:
        self.command = command
        self.attempts = attempts
        self.timeout_s = timeout_s
        super().__init__(f"{command}: no COMMAND_ACK after {attempts} attempt(s) of {timeout_s:g} s each")


class ParamTimeout(VehicleTimeout):
    """A parameter read or write got no PARAM_VALUE back."""


class NotConnected(FlightctlError):
    """A precondition, not a timeout: no vehicle heartbeat has been heard yet, so nothing can be addressed."""


class ConditionTimeout(VehicleTimeout):
    """A condition on the vehicle's state did not become true in time (e.g. wait_armed)."""


class VehicleRejected(FlightctlError):
    """The vehicle answered a command with a MAV_RESULT other than ACCEPTED."""

    def __init__(self, result: int, command: str, detail: str = "") -> None:
        self.result = result
        self.result_name = enum_name("MAV_RESULT", result)
        self.command = command
        message = f"{command}: vehicle answered {self.result_name}"
        super().__init__(f"{message} ({detail})" if detail else message)


class ParamError(FlightctlError):
    """A parameter does not exist or did not take the value we set."""


class ModeError(FlightctlError):
    """A flight mode name is unknown for this vehicle type, or the vehicle did not enter it."""
