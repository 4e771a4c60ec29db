from __future__ import annotations

from flightctl.errors import FlightctlError


class SitlError(FlightctlError):
    """SITL could not be found, started, or made ready. The message carries the tail of its output."""


class SitlNotBuilt(SitlError):
    """No SITL binary where we looked; tests skip (loudly) on this and nothing else."""


class SitlInstallError(SitlError):
    """``flightctl sim install`` could not fetch, check or build ArduPilot; the prefix is left as it was."""
