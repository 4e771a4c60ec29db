"""Typed errors, grouped by what the caller does next. Catch the group you handle, not ``FlightctlError``.

- ``Unavailable``: something we depend on is not there now (the autopilot link, an answer from the vehicle,
  the broker, the registry); wait and try again. ``LinkError`` and ``VehicleTimeout`` are its kinds.
- ``Refused``: the other side answered no (a NACK, a MAV_RESULT, a PUBACK reason code); the same request again
  will not help.
- ``ConfigError``: our own input is wrong (a file, a URL, an order, a plan); fix it, nothing was sent.
- ``MustStop``: going on would be unsafe (the journal cannot be written, a transition the machine forbids):
  stop acting and let the vehicle's own fallback take over. Never retried, never turned into a note.

Errors from other libraries (sqlite3, OSError, paho, pydantic) are mapped to these where they cross into
our code, with ``raise ... from``.
"""

from __future__ import annotations


class FlightctlError(Exception):
    """Base of every error flightctl raises on purpose."""


class Unavailable(FlightctlError):
    """Something we depend on is not there now: wait and try again."""


class Refused(FlightctlError):
    """The other side answered no: the same request again will not help."""


class MustStop(FlightctlError):
    """Going on would be unsafe: stop acting (the vehicle's own fallback takes over)."""


class ConfigError(FlightctlError):
    """Configuration, a file or a URL we were given is invalid. Nothing was sent to the vehicle."""


class LinkError(Unavailable):
    """The MAVLink link itself failed."""


class TransportError(LinkError):
    """A transport could not be opened or failed while in use."""


class LinkClosed(LinkError):
    """The connection was closed while something still waited on it."""


class VehicleTimeout(Unavailable, TimeoutError):
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


class NotConnected(Unavailable):
    """A precondition, not a timeout: no vehicle heartbeat has been heard yet, so nothing can be addressed."""


class ConditionTimeout(VehicleTimeout):
    """A condition on the vehicle's state did not become true in time (e.g. wait_armed)."""


class VehicleRejected(Refused):
    """The vehicle answered a command with a MAV_RESULT other than ACCEPTED."""

    def __init__(self, result: int, command: str, detail: str = "") -> None:
        self.result = result
        from flightctl.dialect import enum_name  # here, not at import: the CLI's start-up stays free of pymavlink

        self.result_name = enum_name("MAV_RESULT", result)
        self.command = command
        message = f"{command}: vehicle answered {self.result_name}"
        super().__init__(f"{message} ({detail})" if detail else message)


class ParamError(Refused):
    """A parameter does not exist or did not take the value we set."""


class ModeError(Refused):
    """A flight mode name is unknown for this vehicle type, or the vehicle did not enter it."""
