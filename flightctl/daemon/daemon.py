"""``flightctl run``: the onboard daemon. One asyncio program holding the autopilot link, the journal and the
broker connection; orders in, one delivery at a time, events and telemetry out.

The wiring only: the delivery side (``daemon.worker``) never imports the broker side (``daemon.mqtt_link``);
they meet in the journal's outbox (events) and in two callbacks that set events (the outbox has rows, the
current order changed). The autopilot link outlives autopilot reboots and radio drops (``MavConnection``), the
broker link outlives broker outages (``BrokerLink``), and the journal outlives the daemon: a daemon started
again with the same journal resumes the delivery in flight. Stopping (SIGTERM) leaves the vehicle alone: a
delivery in flight carries on to its gate, holds, and goes home on the mission's own timeout if nobody returns.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from flightctl.daemon.clock import vehicle_clock
from flightctl.daemon.mqtt_link import BrokerLink
from flightctl.daemon.outbox_pump import OutboxPump
from flightctl.daemon.settings import DaemonConfig
from flightctl.daemon.telemetry_feed import TelemetrySampler
from flightctl.daemon.worker import DeliveryWorker
from flightctl.delivery.decide import Limits
from flightctl.delivery.journal import Journal
from flightctl.delivery.leg_files import LegSite
from flightctl.delivery.order import Site, VehicleProfile
from flightctl.delivery.routing import LocalFrame
from flightctl.errors import LinkError, VehicleTimeout
from flightctl.gc_pauses import GcPauses, freeze_startup
from flightctl.loop_stalls import LoopStalls
from flightctl.mqtt.answer_budget import AnswerBudget
from flightctl.mqtt.contract import Topics
from flightctl.vehicle.vehicle import LinkOptions, Vehicle

log = logging.getLogger(__name__)

AUTOPILOT_RETRY_S = 5.0


class Daemon:
    def __init__(
        self,
        config: DaemonConfig,
        site: Site,
        profile: VehicleProfile,
        rates_hz: Mapping[str, float],
        *,
        legs: Mapping[str, LegSite] | None = None,
    ) -> None:
        self.config = config
        self.site = site
        self.profile = profile
        self.legs = legs or {}
        # The position stream must be at least as fast as the telemetry asked for.
        position_hz = max(rates_hz.get("GLOBAL_POSITION_INT", 0.0), config.telemetry.rate_hz)
        self.rates_hz = {**rates_hz, "GLOBAL_POSITION_INT": position_hz}
        self.endpoints = config.broker_endpoints()
        self._link: BrokerLink | None = None
        self._stop_requested = False

    def request_stop(self) -> None:
        """Called as a deliberate stop (SIGTERM) begins, before the daemon is cancelled: the drone then says
        "stopped" rather than leaving its last will to say "connection lost"."""
        self._stop_requested = True
        if self._link is not None:
            self._link.stop_requested = True

    async def run(self) -> None:
        config = self.config
        async with await Journal.open(config.journal) as journal:
            await journal.belongs_to(config.drone_id)
            while True:
                connected = False
                try:
                    async with Vehicle.connect(
                        config.autopilot.url,
                        options=LinkOptions(signing_key_file=config.autopilot.signing_key),
                        heartbeat_timeout_s=config.autopilot.heartbeat_timeout_s,
                        rates_hz=self.rates_hz,
                    ) as vehicle:
                        connected = True
                        async with vehicle.remote_id.broadcasting(config.remote_id):
                            await self._serve(journal, vehicle)
                        return
                except (LinkError, VehicleTimeout) as exc:
                    if connected:
                        raise
                    log.warning("autopilot %s: %s; trying again", config.autopilot.url, exc)
                await asyncio.sleep(AUTOPILOT_RETRY_S)

    async def _serve(self, journal: Journal, vehicle: Vehicle) -> None:
        config = self.config
        journal.clock = vehicle_clock(lambda: vehicle.state)
        worker = DeliveryWorker(
            vehicle,
            journal,
            self.site,
            self.profile,
            depot_radius_m=config.depot_radius_m,
            limits=Limits(link_lost_give_up_s=config.autopilot.link_lost_timeout_s),
            budget=AnswerBudget(
                per_minute=config.unwanted_answers_per_minute, burst=config.unwanted_answers_per_minute
            ),
            tlog_folder=config.journal.parent,
            legs=self.legs,
        )
        sampler = TelemetrySampler(
            lambda: vehicle.state, worker.status, rate_hz=config.telemetry.rate_hz, size=config.telemetry.queue
        )
        pump = OutboxPump(journal, Topics(config.drone_id), publish_timeout_s=config.broker.publish_timeout_s)
        link = BrokerLink(
            config.drone_id,
            self.endpoints,
            config.broker,
            config.telemetry,
            worker=worker,
            pump=pump,
            sampler=sampler,
            clock=journal.clock,
        )
        link.stop_requested = self._stop_requested
        self._link = link
        journal.on_outbox = link.outbox_wake.set
        worker.on_change = link.order_changed.set
        worker.extra_status = link.status
        remove = vehicle.connection.add_listener("GLOBAL_POSITION_INT", sampler.on_position)
        pauses = GcPauses()
        stalls = LoopStalls.configured()
        try:
            await worker.resume_open_order()
            # Start-up is over: what it built is never walked by a collection again (gc_pauses.py: a full
            # collection of it held the loop for tens of milliseconds, and telemetry waited it out).
            # The depot's local projection made now (routing.py keeps it), not under the first order's telemetry:
            # it took 40 ms of the loop, the one slow sample in bench/telemetry.py.
            LocalFrame(self.site.home())
            frozen = freeze_startup()
            pauses.install()
            stalls.start()  # anything else that holds the loop is named in the log (loop_stalls.py)
            log.info(
                "flightctl daemon for drone %s: autopilot %s, broker %s (%d start-up objects frozen)",
                config.drone_id,
                vehicle,
                " or ".join(map(str, self.endpoints)),
                frozen,
            )
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(worker.run(), name="deliveries")
                tasks.create_task(link.run(), name="broker")
        finally:
            stalls.stop()
            pauses.remove()
            remove()
