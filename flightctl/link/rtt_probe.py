"""The link's round trip measured as soon as the vehicle is heard, with TIMESYNC, so the first transfer on a
lossy radio does not start blind.

A request's round trip can only be sampled when its answer is known to answer that sending (Karn's rule): on a
radio that loses the first AUTOPILOT_VERSION request, the link then has no measurement, and the first MAVFTP
open probes upwards from a quarter of its bound (0.25 s, 0.5 s, 1 s): seconds of a 100-item upload at 30 %
loss. TIMESYNC has no such ambiguity. ArduPilot answers a request (tc1 = 0) at once with its own time in tc1
and our ts1 echoed (GCS_MAVLINK::handle_timesync), so each request carries its own ts1 and every answer is a
sample of the sending it names. The samples go to the connection's ``LINK_RTT`` estimator, which every
sub-protocol not yet measured starts from (``MavConnection.rtt``).
"""

from __future__ import annotations

import asyncio
import itertools
import time

from flightctl.dialect import MAVLinkMessage, mavlink
from flightctl.link.connection import MavConnection

LINK_RTT = "link"
SAMPLES = 3  # enough for a smoothed estimate and a variance
SENDS = 10  # at most, one per SPACING_S: through 30 % loss each way about half are answered
SPACING_S = 0.1


async def probe_round_trip(connection: MavConnection, *, samples: int = SAMPLES, sends: int = SENDS) -> int:
    """Send TIMESYNC requests, ``SPACING_S`` apart, until ``samples`` were answered or ``sends`` went out, then
    wait one spacing more for the last answers. Returns the samples taken. Never raises for the vehicle's
    silence: an unanswered probe only leaves the link as it was."""
    loop = asyncio.get_running_loop()
    estimator = connection.rtt(LINK_RTT, min_timeout_s=0.01, max_timeout_s=5.0)
    sent_at: dict[int, float] = {}
    taken = 0
    # Unique per request and never 0: an answer names exactly one sending.
    stamps = itertools.count(time.monotonic_ns() | 1)

    def answered(message: MAVLinkMessage) -> None:
        nonlocal taken
        if message.tc1 == 0 or message.get_srcSystem() != connection.target_system:
            return  # a request (the vehicle's own), or another system's answer
        at = sent_at.pop(int(message.ts1), None)
        if at is None:
            return  # not ours, or a duplicate of an answer already taken
        estimator.sample(loop.time() - at)
        taken += 1

    remove = connection.add_listener("TIMESYNC", answered)
    try:
        for _ in range(sends):
            if taken >= samples:
                break
            stamp = next(stamps)
            sent_at[stamp] = loop.time()
            connection.send(mavlink.MAVLink_timesync_message(0, stamp))
            await asyncio.sleep(SPACING_S)
    finally:
        remove()
    return taken
