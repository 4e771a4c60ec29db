"""Round-trip time estimation for request/reply protocols (RFC 6298's smoothed RTT and variance).

A fixed reply timeout must suit the slowest radio, so on a fast link every lost reply wastes most of it.
Waiting ``srtt + 4 * rttvar`` instead (within configured bounds) retries as soon as a reply is really late.
Samples come only from requests answered on their first sending (Karn's rule), or from sendings a protocol
can tell apart (MAVFTP writes, each with its own sequence number), so a late answer to a resent request
cannot fake a short round trip.

Backoff: each resend of the same request doubles its wait (RFC 6298 section 5.5), but at most
``MAX_DOUBLINGS`` times. RFC 6298 backs off without bound because it shares a network with others; a
telemetry radio carries only us, and on a lossy one an unbounded backoff turns three losses in a row (one
chance in 30 at 30 % loss each way) into seconds of waiting for nothing.
"""

from __future__ import annotations

MAX_DOUBLINGS = 2  # a resend waits at most 4x the estimate (and never past the estimator's bound)
_PROBE_FRACTION = 0.25  # with nothing measured, the first wait is this share of the bound, then doubling


class RttEstimator:
    def __init__(self, *, min_timeout_s: float, max_timeout_s: float) -> None:
        self.min_timeout_s = min_timeout_s
        self.max_timeout_s = max_timeout_s
        self.srtt_s: float | None = None
        self.rttvar_s = 0.0

    @property
    def measured(self) -> bool:
        return self.srtt_s is not None

    def sample(self, rtt_s: float) -> None:
        if self.srtt_s is None:
            self.srtt_s, self.rttvar_s = rtt_s, rtt_s / 2
            return
        self.rttvar_s = 0.75 * self.rttvar_s + 0.25 * abs(self.srtt_s - rtt_s)
        self.srtt_s = 0.875 * self.srtt_s + 0.125 * rtt_s

    def start_from(self, other: RttEstimator) -> None:
        """Take ``other``'s estimate when this one has none: another protocol on the same link crosses the
        same radio, which is most of a round trip. Its own samples then take over."""
        if self.srtt_s is None and other.srtt_s is not None:
            self.srtt_s, self.rttvar_s = other.srtt_s, other.rttvar_s

    def timeout_s(self, resends: int = 0) -> float:
        """How long to wait for the answer to a request already sent ``resends`` times before this sending.

        Unmeasured, the wait probes upwards from a quarter of the bound: a link fast enough to answer within
        it is then not held to the slowest radio's timeout, and a slow one reaches the bound by the third
        sending."""
        if self.srtt_s is None:
            return min(self.max_timeout_s, self.max_timeout_s * _PROBE_FRACTION * 2.0 ** min(resends, MAX_DOUBLINGS))
        base = min(self.max_timeout_s, max(self.min_timeout_s, self.srtt_s + 4 * self.rttvar_s))
        return min(self.max_timeout_s, base * 2.0 ** min(resends, MAX_DOUBLINGS))
