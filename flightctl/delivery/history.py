"""What the journal says happened to one order: the facts every decision and the outcome are rebuilt from.

``History`` is folded from journal events, one at a time, both when a controller starts (reading the file)
and while it runs (each event it writes is applied as it is written), so the two can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flightctl.delivery.events import Command, DeliveryState, EventKind, Observation
from flightctl.delivery.journal import JournalEvent
from flightctl.geo import AltFrame, Location


@dataclass
class History:
    state: DeliveryState | None = None
    state_entered_ms: int | None = None  # vehicle time of the last transition
    mission_hash: str | None = None
    armed_by_us: bool = False
    mission_started: bool = False
    release_authorised: bool = False
    released: bool = False
    release_point: Location | None = None
    released_ms: int | None = None  # vehicle time of the RELEASED transition
    release_error_m: float | None = None
    abort_reason: str | None = None
    rtl_commanded: bool = False
    arrived: bool = False  # an island leg landed at its destination: delivered
    link_lost: bool = False
    remote_id_lost: bool = False
    resumed_count: int = 0
    nogo: list[str] = field(default_factory=list)
    energy_at_start_wh: float | None = None
    vehicle_estimates_wind: bool = False
    energy_at_landing_wh: float | None = None
    # Vehicle time each command was last journaled at (before it was sent), and the run (resume count) then.
    commanded_ms: dict[Command, int | None] = field(default_factory=dict)
    commanded_run: dict[Command, int] = field(default_factory=dict)
    # Commands journaled since the last transition, less those whose step failed (to be tried again).
    commands_in_state: set[Command] = field(default_factory=set)
    phase_times_s: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, events: list[JournalEvent]) -> History:
        history = cls()
        for event in events:
            history.apply(event)
        return history

    def commanded(self, command: Command) -> bool:
        return command in self.commanded_ms

    def commanded_in_this_run(self, command: Command) -> bool:
        """True when ``command`` was journaled by this run of the controller (not only before a restart)."""
        return self.commanded_run.get(command) == self.resumed_count

    def apply(self, event: JournalEvent) -> None:
        self._time_phase(event)
        self.state = event.state
        detail = event.detail
        if (entered := event.entered) is not None:
            self.state = entered
            self.state_entered_ms = event.vehicle_ms
            self.commands_in_state = set()
            if entered is DeliveryState.RELEASED:
                self.released = True
                self.released_ms = event.vehicle_ms
                if "lat_deg" in detail:
                    self.release_point = Location(detail["lat_deg"], detail["lon_deg"], 0.0, AltFrame.ABSOLUTE)
                    self.release_error_m = detail.get("error_m")
            elif entered is DeliveryState.ABORTING:
                self.abort_reason = detail.get("reason", self.abort_reason)
            elif entered is DeliveryState.OUT_OF_CONTACT and self.abort_reason is None:
                self.abort_reason = detail.get("reason")
            elif entered in (DeliveryState.LANDED, DeliveryState.ARRIVED):
                self.energy_at_landing_wh = detail.get("consumed_wh")
                self.arrived = entered is DeliveryState.ARRIVED
            elif entered is DeliveryState.DIVERTING:
                self.abort_reason = detail.get("reason", self.abort_reason)
            elif entered is DeliveryState.FAILED and self.abort_reason is None and detail.get("reason") != "NO-GO":
                self.abort_reason = detail.get("reason")
        elif (command := event.command) is not None:
            self.commanded_ms[command] = event.vehicle_ms
            self.commanded_run[command] = self.resumed_count
            self.commands_in_state.add(command)
            if command is Command.ARM:
                self.armed_by_us = True
            elif command is Command.RELEASE_AUTHORISED:
                self.release_authorised = True
            elif command is Command.GRIPPER_RELEASE and event.state is DeliveryState.ON_STATION:
                self.release_authorised = True  # journals of the first version released from the gate state
            elif command is Command.SET_MODE and detail.get("mode") == "RTL":
                self.rtl_commanded = True
        elif (observation := event.observation) is not None:
            self._observe(observation, event)
        elif event.kind is EventKind.CHECK and detail.get("stage") == "preflight" and not detail.get("ok", True):
            self.nogo.append(str(detail.get("line", event.name)))

    def _observe(self, observation: Observation, event: JournalEvent) -> None:
        detail = event.detail
        if observation is Observation.WIND_SOURCES:
            self.vehicle_estimates_wind = bool(detail.get("vehicle"))
        elif observation is Observation.UPLOADED:
            self.mission_hash = detail.get("mission_hash")
        elif observation is Observation.ENERGY_AT_START:
            self.energy_at_start_wh = detail.get("consumed_wh")
        elif observation is Observation.MISSION_STARTED:
            self.mission_started = True
        elif observation is Observation.RESUMED:
            self.resumed_count += 1
            self.link_lost = False
        elif observation is Observation.LINK_LOST:
            self.link_lost = True
        elif observation is Observation.LINK_RECOVERED:
            self.link_lost = False
        elif observation in (Observation.REMOTE_ID_LOST, Observation.REMOTE_ID_RECOVERED):
            self.remote_id_lost = observation is Observation.REMOTE_ID_LOST
        elif observation is Observation.STEP_FAILED and detail.get("command") in set(Command):
            self.commands_in_state.discard(Command(detail["command"]))

    def _time_phase(self, event: JournalEvent) -> None:
        """Add the vehicle time since the last transition to the phase it ended (time per state, for reports)."""
        if event.entered is None or event.vehicle_ms is None or self.state is None or self.state_entered_ms is None:
            return
        seconds = (event.vehicle_ms - self.state_entered_ms) / 1000.0
        if seconds >= 0:  # an autopilot that rebooted restarts its clock: that phase is not timed
            self.phase_times_s[self.state] = self.phase_times_s.get(self.state, 0.0) + seconds

    @property
    def energy_used_wh(self) -> float | None:
        if self.energy_at_start_wh is None or self.energy_at_landing_wh is None:
            return None
        return self.energy_at_landing_wh - self.energy_at_start_wh
