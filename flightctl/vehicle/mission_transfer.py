"""What the mission transfers share: their policy, their errors, their report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from flightctl.dialect import enum_name, mavlink
from flightctl.errors import FlightctlError, Refused, VehicleTimeout
from flightctl.link.connection import MavConnection
from flightctl.link.rtt import RttEstimator
from flightctl.missions.model import MissionType

Progress = Callable[[MissionType, int, int], None]

# NACKs that end a transfer but not the hope of the next one.
RETRYABLE = {
    mavlink.MAV_MISSION_NO_SPACE,
    mavlink.MAV_MISSION_OPERATION_CANCELLED,
    mavlink.MAV_MISSION_DENIED,
    mavlink.MAV_MISSION_ERROR,
}


@dataclass(frozen=True)
class TransferPolicy:
    reply_timeout_s: float = 1.5  # how long to wait for the vehicle's next message before acting
    # The shortest wait for a reply before asking (download) or sending (upload) again, however fast the link
    # looks; between the two, the wait follows the link's measured round trip.
    min_reply_timeout_s: float = 0.1
    # A transfer on a bad radio fails almost surely if each step gets a fixed number of tries while the link
    # still works; so it gives up only when the vehicle itself has gone silent (no heartbeat) for this long,
    # or when the transfer's deadline (base + per item) has passed.
    vehicle_silent_s: float = 10.0
    deadline_base_s: float = 60.0
    deadline_per_item_s: float = 1.0  # a real radio at 30 % loss: about one round trip in two gets through
    count_attempts: int = 6  # MISSION_CLEAR sends; a transfer's own requests are bounded by the rules above
    abandoned_after_s: float = 9.0  # nothing for an upload this long mid-way: the vehicle abandoned its side
    download_window: int = 4  # item requests in flight at once when downloading
    transfer_attempts: int = 4  # whole transfers after a NACK that ended one (NO_SPACE at boot, DENIED...)
    restart_delay_s: float = 2.0  # pause before a new transfer, growing with each attempt
    # Upload by writing ArduPilot's @MISSION file over MAVFTP when the vehicle offers it: six items per round
    # trip instead of one. The mission protocol stays the fallback, and is what names a refused item.
    use_ftp: bool = True
    # Which lists go as files: only the mission. ArduPilot applies an uploaded fence.dat or rally.dat on its
    # FTP thread with no lock against the main loop, which reads the fence (and re-indexes it) and the rally
    # points all the time: finish_upload_fence calls AC_PolyFence_loader::write_fence, which frees and
    # rebuilds the index the main loop reads (SITL segfaulted in that upload in our CI). The mission file is
    # applied under the mission's semaphore. Fence and rally lists are short, and the mission protocol is
    # handled on the main loop.
    ftp_types: frozenset[MissionType] = frozenset({MissionType.MISSION})
    ftp_rest_s: float = 60.0  # after MAVFTP went unanswered, use the mission protocol alone for this long


MISSION_RTT = "mission"


def mission_rtt(connection: MavConnection, policy: TransferPolicy) -> RttEstimator:
    """The link's mission-protocol round trip, shared by uploads, downloads and count reads: a transfer
    starts from what the last one measured instead of from the slowest radio's timeout."""
    return connection.rtt(MISSION_RTT, min_timeout_s=policy.min_reply_timeout_s, max_timeout_s=policy.reply_timeout_s)


def transfer_deadline_s(policy: TransferPolicy, items: int) -> float:
    return policy.deadline_base_s + policy.deadline_per_item_s * items


class MissionError(FlightctlError):
    """A mission transfer failed. ``stage``, ``seq`` and ``result`` say where and how."""

    def __init__(
        self,
        mission_type: MissionType,
        stage: str,
        detail: str,
        *,
        seq: int | None = None,
        result: int | None = None,
    ) -> None:
        self.mission_type = mission_type
        self.stage = stage
        self.seq = seq
        self.result = result
        where = f"{mission_type.label} {stage}" + (f", item {seq}" if seq is not None else "")
        outcome = f": vehicle answered {enum_name('MAV_MISSION_RESULT', result)}" if result is not None else ""
        super().__init__(f"{where}{outcome}: {detail}" if detail else f"{where}{outcome}")


class MissionRejected(MissionError, Refused):
    """The vehicle answered the transfer with a MAV_MISSION_RESULT other than ACCEPTED."""


class MissionTimeout(MissionError, VehicleTimeout):
    """The vehicle stopped answering during a transfer."""


@dataclass
class UploadReport:
    plan_hash: str  # the plan as written
    stored_hash: str  # the plan as ArduPilot stores it: what a verified vehicle holds
    vehicle_hash: str | None = None  # what was read back (all three types verified); equals stored_hash
    items: dict[MissionType, int] = field(default_factory=dict)
    transfers: int = 0  # transfers started, including restarts


class TransferEnded(Exception):
    """A NACK ended the vehicle's side of the transfer."""

    def __init__(self, result: int, seq: int | None, stage: str, texts: str) -> None:
        self.result, self.seq, self.stage, self.texts = result, seq, stage, texts
        super().__init__(enum_name("MAV_MISSION_RESULT", result))


class ListChanged(Exception):
    """The list changed on the vehicle while it was read (another station): read it again."""
