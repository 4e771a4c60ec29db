"""Round-trip time estimation for request/reply protocols (RFC 6298's smoothed RTT and variance).

A fixed reply timeout must suit the slowest radio, so on a fast link every lost reply wastes most of it.
Waiting ``srtt + 4 * rttvar`` instead (within configured bounds) retries as soon as a reply is really late.
Samples come only from requests answered on their first sending (Karn's rule), so a late answer to a
resent request cannot fake a short round trip.
"""

from __future__ import annotations


class RttEstimator:
    def __init__(self, *, min_timeout_s: float, max_timeout_s: float) -> None:
        self.min_timeout_s = min_timeout_s
        self.max_timeout_s = max_timeout_s
        self.srtt_s: float | None = None
        self.rttvar_s = 0.0

    def sample(self, rtt_s: float) -> None:
        if self.srtt_s is None:
            self.srtt_s, self.rttvar_s = rtt_s, rtt_s / 2
            return
        self.rttvar_s = 0.75 * self.rttvar_s + 0.25 * abs(self.srtt_s - rtt_s)
        self.srtt_s = 0.875 * self.srtt_s + 0.125 * rtt_s

    def timeout_s(self) -> float:
        if self.srtt_s is None:
            return self.max_timeout_s
        return min(self.max_timeout_s, max(self.min_timeout_s, self.srtt_s + 4 * self.rttvar_s))
