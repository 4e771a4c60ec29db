"""The MAVLink mission protocol (https://mavlink.io/en/services/mission.html) for mission, fence and rally,
built for radio links that lose, duplicate and reorder messages.

Upload: we send MISSION_COUNT, the vehicle asks for each item (MISSION_REQUEST_INT, or ArduPilot's older
MISSION_REQUEST; we always answer with MISSION_ITEM_INT so positions keep their 1e7 precision), then sends
MISSION_ACK. What ArduPilot does on the other side (libraries/GCS_MAVLink/MissionItemProtocol.cpp) shapes
the recovery rules here:

- it re-requests an item itself after 1 s of silence, and abandons the transfer after 8 s
  (OPERATION_CANCELLED); a new MISSION_COUNT from the same sender restarts a transfer cleanly;
- an item it did not ask for gets INVALID_SEQUENCE, which is only a warning (our duplicate crossed its
  request): the transfer goes on;
- an item sent when it is not receiving gets ERROR, so after the last item we never resend: a lost final
  ACK is settled by asking for the count;
- any other NACK ends its transfer: we either restart the whole transfer after a pause (NO_SPACE right
  after boot, OPERATION_CANCELLED, DENIED while another station uploads) or fail with the stage and item.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from flightctl.dialect import MAVLinkMessage, enum_name, mavlink
from flightctl.errors import ConditionTimeout, FlightctlError, VehicleTimeout
from flightctl.link.connection import Inbox, MavConnection
from flightctl.link.request import NoReply, RetryPolicy, explanation, request
from flightctl.link.rtt import RttEstimator
from flightctl.missions import ardupilot_files
from flightctl.missions.ardupilot import Firmware, describe_difference, stored_form
from flightctl.missions.model import MissionItem, MissionPlan, MissionType
from flightctl.vehicle.commands import Commands
from flightctl.vehicle.ftp import FtpError, FtpTimeout, MavFtp

log = logging.getLogger(__name__)

Progress = Callable[[MissionType, int, int], None]

_ACCEPTED = mavlink.MAV_MISSION_ACCEPTED
# NACKs that end a transfer but not the hope of the next one.
_RETRYABLE = {
    mavlink.MAV_MISSION_NO_SPACE,
    mavlink.MAV_MISSION_OPERATION_CANCELLED,
    mavlink.MAV_MISSION_DENIED,
    mavlink.MAV_MISSION_ERROR,
}


@dataclass(frozen=True)
class TransferPolicy:
    reply_timeout_s: float = 1.5  # how long to wait for the vehicle's next message before acting
    min_reply_timeout_s: float = 0.1  # the shortest wait for a download reply, however fast the link looks
    count_attempts: int = 6  # MISSION_COUNT / MISSION_REQUEST_LIST sends before giving up
    silent_limit: int = 6  # consecutive reply timeouts tolerated in the middle of a transfer
    item_attempts: int = 8  # requests per item when downloading
    download_window: int = 4  # item requests in flight at once when downloading
    transfer_attempts: int = 4  # whole transfers tried after a NACK that ended one
    restart_delay_s: float = 2.0  # pause before a new transfer, growing with each attempt
    # Upload by writing ArduPilot's @MISSION file over MAVFTP when the vehicle offers it: six items per round
    # trip instead of one. The mission protocol stays the fallback, and is what names a refused item.
    use_ftp: bool = True
    ftp_rest_s: float = 60.0  # after MAVFTP went unanswered, use the mission protocol alone for this long


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


class MissionTimeout(MissionError, VehicleTimeout):
    """The vehicle stopped answering during a transfer."""


@dataclass(frozen=True)
class Mismatch:
    mission_type: MissionType
    seq: int
    detail: str


class MissionVerifyError(FlightctlError):
    """What the vehicle holds is not what we planned."""

    def __init__(self, mismatches: list[Mismatch]) -> None:
        self.mismatches = mismatches
        lines = [f"{m.mission_type.label} item {m.seq}: {m.detail}" for m in mismatches[:10]]
        more = f" (and {len(mismatches) - 10} more)" if len(mismatches) > 10 else ""
        super().__init__("vehicle holds a different plan: " + "; ".join(lines) + more)


@dataclass
class UploadReport:
    plan_hash: str  # the plan as written
    stored_hash: str  # the plan as ArduPilot stores it: what a verified vehicle holds
    vehicle_hash: str | None = None  # what was read back (all three types verified); equals stored_hash
    items: dict[MissionType, int] = field(default_factory=dict)
    transfers: int = 0  # transfers started, including restarts


class _TransferEnded(Exception):
    """A NACK ended the vehicle's side of the transfer."""

    def __init__(self, result: int, seq: int | None, stage: str, texts: str) -> None:
        self.result, self.seq, self.stage, self.texts = result, seq, stage, texts
        super().__init__(enum_name("MAV_MISSION_RESULT", result))


class MissionProtocol:
    """``vehicle.mission``: upload, download, clear and set-current for each mission type."""

    def __init__(
        self,
        connection: MavConnection,
        commands: Commands,
        policy: TransferPolicy | None = None,
        *,
        ftp: MavFtp | None = None,
    ) -> None:
        self._connection = connection
        self._commands = commands
        self.policy = policy or TransferPolicy()
        self._ftp = ftp
        # Set once the vehicle says it is ArduPilot and serves MAVFTP (AUTOPILOT_VERSION capabilities).
        self.mission_files = False
        self._ftp_rest_until = 0.0  # loop time before which MAVFTP is not tried (it went unanswered)
        self._lock = asyncio.Lock()  # one transfer at a time: the vehicle keeps one transfer state per type
        self._uploaded_count: int | None = None  # mission items (with home) we last put on the vehicle
        self._reported_total: int | None = None  # MISSION_CURRENT.total: the vehicle's items, without home
        connection.add_listener("MISSION_CURRENT", self._mission_current)

    def _mission_current(self, message: MAVLinkMessage) -> None:
        if self._connection.is_from_vehicle(message):
            self._reported_total = int(message.total)

    def changed_elsewhere(self) -> bool:
        """True when the vehicle reports a mission length other than the one we uploaded: another ground
        station (or a pilot's tablet) has touched the mission since. MISSION_CURRENT.total excludes home."""
        if self._uploaded_count is None or self._reported_total is None:
            return False
        return self._reported_total != max(self._uploaded_count - 1, 0)

    # ---- helpers ---------------------------------------------------------------------------------------

    def _for_us(self, mission_type: MissionType) -> Callable[[MAVLinkMessage], bool]:
        ours = (self._connection.codec.system_id, self._connection.codec.component_id)

        def matches(message: MAVLinkMessage) -> bool:
            addressed = (message.target_system, message.target_component)
            return bool(message.mission_type == mission_type and addressed in (ours, (0, 0)))

        return matches

    def _item_message(self, item: MissionItem, seq: int, mission_type: MissionType) -> MAVLinkMessage:
        c = self._connection
        return item.message(seq, mission_type, c.target_system, c.target_component)

    def _count_message(self, count: int, mission_type: MissionType) -> MAVLinkMessage:
        c = self._connection
        return mavlink.MAVLink_mission_count_message(c.target_system, c.target_component, count, mission_type)

    def _request_list_message(self, mission_type: MissionType) -> MAVLinkMessage:
        c = self._connection
        return mavlink.MAVLink_mission_request_list_message(c.target_system, c.target_component, mission_type)

    # ---- upload ----------------------------------------------------------------------------------------

    async def upload(
        self, items: list[MissionItem], mission_type: MissionType, *, progress: Progress | None = None
    ) -> int:
        """Put ``items`` on the vehicle as its ``mission_type`` list. Returns how many transfers it took."""
        async with self._lock:
            if items and await self._upload_as_file(items, mission_type, progress):
                self._uploaded(items, mission_type)
                return 1
            last: _TransferEnded | None = None
            for attempt in range(1, self.policy.transfer_attempts + 1):
                try:
                    await self._upload_once(items, mission_type, progress)
                except _TransferEnded as ended:
                    last = ended
                    capacity = "items are supported" in ended.texts  # ArduPilot: "Only N items are supported"
                    if ended.result not in _RETRYABLE or capacity or attempt == self.policy.transfer_attempts:
                        break
                    delay_s = self.policy.restart_delay_s * attempt
                    log.warning(
                        "%s upload: vehicle ended the transfer at item %s with %s; starting again in %.1f s",
                        mission_type.label, ended.seq, ended, delay_s,
                    )  # fmt: skip
                    await asyncio.sleep(delay_s)
                else:
                    self._uploaded(items, mission_type)
                    return attempt
            assert last is not None
            raise MissionError(mission_type, last.stage, last.texts, seq=last.seq, result=last.result)

    def _uploaded(self, items: list[MissionItem], mission_type: MissionType) -> None:
        if mission_type is MissionType.MISSION:
            self._uploaded_count = len(items)
            self._reported_total = None  # what the vehicle said before no longer applies

    async def _upload_as_file(
        self, items: list[MissionItem], mission_type: MissionType, progress: Progress | None
    ) -> bool:
        """Write the list as ArduPilot's @MISSION file; True once the vehicle holds that many items.

        False (after a warning) whenever that cannot be shown, and the caller uses the mission protocol.
        ArduPilot acknowledges the file's close even when it refuses the content, so the count read back is
        what says the file was taken: it refuses a file whole only when it is malformed (magic, length, an
        all-zero item), which ours is not once every write was acknowledged under MAVLink's CRC, and any
        item it refuses after clearing the list leaves it shorter. ``upload_plan`` reads everything back.
        """
        if self._ftp is None or not self.mission_files or not self.policy.use_ftp:
            return False
        loop = asyncio.get_running_loop()
        if loop.time() < self._ftp_rest_until:
            return False
        data = ardupilot_files.encode(items, mission_type)
        header = len(data) - len(items) * ardupilot_files.ITEM_SIZE

        def written(done: int, _total: int) -> None:
            self._report(progress, mission_type, max(done - header, 0) // ardupilot_files.ITEM_SIZE, len(items))

        path = ardupilot_files.PATHS[mission_type]
        try:
            # ArduPilot applies an abandoned @MISSION file whenever its session is next closed, even much
            # later, if the header is right: the header goes last, so only a whole file can ever apply.
            await self._ftp.write_file(path, data, progress=written, first_chunk_last=True)
            held = await self.count(mission_type)
        except FtpTimeout as exc:
            # A server that stopped answering (ArduPilot's FTP worker can stall on another link's full
            # buffer) would cost every upload its timeouts: leave it alone for a while.
            self._ftp_rest_until = loop.time() + self.policy.ftp_rest_s
            log.warning(
                "%s upload as %s failed (%s); using the mission protocol, and only it for %g s",
                mission_type.label, path, exc, self.policy.ftp_rest_s,
            )  # fmt: skip
            return False
        except (FtpError, MissionError) as exc:
            log.warning("%s upload as %s failed (%s); using the mission protocol", mission_type.label, path, exc)
            return False
        if held != len(items):
            log.warning(
                "%s upload: the vehicle holds %d items after writing %d to %s; using the mission protocol, which "
                "names any item it refuses", mission_type.label, held, len(items), path,
            )  # fmt: skip
            return False
        self._report(progress, mission_type, len(items), len(items))
        return True

    async def _upload_once(
        self, items: list[MissionItem], mission_type: MissionType, progress: Progress | None
    ) -> None:
        connection = self._connection
        count = len(items)
        types = ("MISSION_REQUEST_INT", "MISSION_REQUEST", "MISSION_ACK")
        with (
            connection.inbox(types, self._for_us(mission_type), what=f"{mission_type.label} upload") as inbox,
            connection.inbox("STATUSTEXT", what="mission status texts", maxsize=32) as texts,
        ):
            connection.send(self._count_message(count, mission_type))
            count_sends, silent = 1, 0
            highest = -1  # highest seq the vehicle asked for
            last_sent = count == 0  # the final item went out (then we wait for the ACK only)
            settling_queries = 0  # our MISSION_REQUEST_LISTs whose DENIED answer is expected
            while True:
                try:
                    message = await inbox.next(self.policy.reply_timeout_s)
                except VehicleTimeout:
                    silent += 1
                    if last_sent and count > 0:
                        if await self._vehicle_count_is(count, mission_type):
                            self._report(progress, mission_type, count, count)
                            return
                        settling_queries += 1
                    elif highest < 0:
                        if count_sends >= self.policy.count_attempts:
                            raise MissionTimeout(
                                mission_type, "upload", f"no request after {count_sends} MISSION_COUNT messages"
                            ) from None
                        connection.send(self._count_message(count, mission_type))
                        count_sends += 1
                        continue
                    if silent >= self.policy.silent_limit:
                        raise MissionTimeout(
                            mission_type,
                            "upload",
                            f"vehicle silent for {silent} x {self.policy.reply_timeout_s:g} s",
                            seq=max(highest, 0),
                        ) from None
                    continue
                silent = 0
                if message.get_type() != "MISSION_ACK":
                    seq = message.seq
                    if not 0 <= seq < count:
                        log.info("%s upload: ignoring request for item %d of %d", mission_type.label, seq, count)
                        continue
                    connection.send(self._item_message(items[seq], seq, mission_type))
                    if seq > highest:
                        highest = seq
                        self._report(progress, mission_type, seq, count)
                    last_sent = last_sent or seq == count - 1
                    continue
                result = message.type
                if result == _ACCEPTED:
                    if last_sent:
                        self._report(progress, mission_type, count, count)
                        return
                    log.info(
                        "%s upload: ignoring an early ACCEPTED (left over from another transfer)", mission_type.label
                    )
                elif result == mavlink.MAV_MISSION_INVALID_SEQUENCE:
                    log.info(
                        "%s upload: INVALID_SEQUENCE after item %d (a duplicate crossed)", mission_type.label, highest
                    )
                elif result == mavlink.MAV_MISSION_DENIED and settling_queries > 0:
                    settling_queries -= 1  # the vehicle still receives: our count query was refused
                elif last_sent and result == mavlink.MAV_MISSION_ERROR:
                    log.info("%s upload: ERROR after the last item; settling by count", mission_type.label)
                else:
                    stage = "upload" if highest >= 0 else "upload start"
                    raise _TransferEnded(
                        result, highest if highest >= 0 else None, stage, await explanation(texts, keep=3)
                    )

    async def _vehicle_count_is(self, count: int, mission_type: MissionType) -> bool:
        """Settle a lost final ACK: if the vehicle now reports our count, the transfer completed."""
        with self._connection.inbox("MISSION_COUNT", self._for_us(mission_type), what="mission count") as counts:
            self._connection.send(self._request_list_message(mission_type))
            try:
                reported = (await counts.next(self.policy.reply_timeout_s)).count
            except VehicleTimeout:
                return False
        if reported == count:
            log.info("%s upload: final ACK lost, vehicle reports all %d items", mission_type.label, count)
        return bool(reported == count)

    @staticmethod
    def _report(progress: Progress | None, mission_type: MissionType, done: int, total: int) -> None:
        if progress is not None:
            progress(mission_type, done, total)

    # ---- download --------------------------------------------------------------------------------------

    async def count(self, mission_type: MissionType) -> int:
        """How many items the vehicle holds (for a mission: including home)."""
        for_us = self._for_us(mission_type)
        loop = asyncio.get_running_loop()
        with self._connection.inbox(("MISSION_COUNT", "MISSION_ACK"), for_us, what="mission count") as replies:
            for attempt in range(self.policy.count_attempts):
                self._connection.send(self._request_list_message(mission_type))
                deadline = loop.time() + self.policy.reply_timeout_s
                while (remaining := deadline - loop.time()) > 0:
                    try:
                        reply = await replies.next(remaining)
                    except VehicleTimeout:
                        break
                    if reply.get_type() == "MISSION_COUNT":
                        return int(reply.count)
                    if reply.type == mavlink.MAV_MISSION_DENIED:  # someone is uploading: wait for them
                        await asyncio.sleep(self.policy.restart_delay_s * (attempt + 1))
                        break
                    if reply.type == mavlink.MAV_MISSION_UNSUPPORTED:
                        raise MissionError(mission_type, "download count", "", result=reply.type)
                    # any other ACK is a late answer to an earlier transfer
        raise MissionTimeout(
            mission_type, "download count", f"no MISSION_COUNT after {self.policy.count_attempts} requests"
        )

    async def download(self, mission_type: MissionType, *, progress: Progress | None = None) -> list[MissionItem]:
        """Read the vehicle's ``mission_type`` list. Restarts if the list changes underneath (another GCS)."""
        async with self._lock:
            for _attempt in range(self.policy.transfer_attempts):
                try:
                    return await self._download_once(mission_type, progress)
                except _ListChanged as changed:
                    log.warning("%s download: %s; reading it again", mission_type.label, changed)
            raise MissionError(mission_type, "download", "the list kept changing while it was read")

    async def _download_once(self, mission_type: MissionType, progress: Progress | None) -> list[MissionItem]:
        count = await self.count(mission_type)
        connection = self._connection
        types = ("MISSION_ITEM_INT", "MISSION_ACK", "MISSION_COUNT")
        with connection.inbox(types, self._for_us(mission_type), what=f"{mission_type.label} download") as inbox:
            items = await self._fetch_items(inbox, count, mission_type, progress)
            connection.send(
                mavlink.MAVLink_mission_ack_message(
                    connection.target_system, connection.target_component, _ACCEPTED, mission_type
                )
            )
        if count == 0:
            self._report(progress, mission_type, 0, 0)
        return items

    async def _fetch_items(
        self, inbox: Inbox, count: int, mission_type: MissionType, progress: Progress | None
    ) -> list[MissionItem]:
        """Request items with up to ``download_window`` requests in flight: on a link with latency or loss,
        waiting out each lost reply one at a time is what makes downloads slow."""
        connection = self._connection
        loop = asyncio.get_running_loop()
        rtt = RttEstimator(min_timeout_s=self.policy.min_reply_timeout_s, max_timeout_s=self.policy.reply_timeout_s)
        items: dict[int, MissionItem] = {}
        in_flight: dict[int, float] = {}  # seq -> when last requested
        attempts: dict[int, int] = {}
        next_seq = 0

        def request(seq: int) -> None:
            attempts[seq] = attempts.get(seq, 0) + 1
            if attempts[seq] > self.policy.item_attempts:
                raise MissionTimeout(
                    mission_type, "download", f"no answer after {self.policy.item_attempts} requests", seq=seq
                )
            connection.send(
                mavlink.MAVLink_mission_request_int_message(
                    connection.target_system, connection.target_component, seq, mission_type
                )
            )
            in_flight[seq] = loop.time()

        while len(items) < count:
            while next_seq < count and len(in_flight) < self.policy.download_window:
                request(next_seq)
                next_seq += 1
            timeout_s = rtt.timeout_s()
            wait_s = max(0.0, min(in_flight.values()) + timeout_s - loop.time())
            try:
                reply = await inbox.next(wait_s)
            except VehicleTimeout:
                now = loop.time()
                for seq, asked_at in sorted(in_flight.items()):
                    if now - asked_at >= timeout_s:
                        request(seq)
                continue
            kind = reply.get_type()
            if kind == "MISSION_COUNT":
                if reply.count != count:  # ArduPilot's answer to a seq past the end: the list shrank
                    raise _ListChanged(f"the vehicle now holds {reply.count} items, not {count}")
            elif kind == "MISSION_ACK":
                if reply.type in (_ACCEPTED, mavlink.MAV_MISSION_ERROR):
                    # ACCEPTED: a late ACK of our upload. ERROR: ArduPilot's answer to a duplicate item that
                    # crossed the end of that upload. Neither is about this download; a real read error
                    # would repeat until the item's attempts run out.
                    continue
                if reply.type == mavlink.MAV_MISSION_INVALID_SEQUENCE:
                    raise _ListChanged("an item we asked for no longer exists")
                if reply.type == mavlink.MAV_MISSION_DENIED:
                    raise _ListChanged("another station started uploading")
                raise MissionError(mission_type, "download", "", seq=min(in_flight, default=None), result=reply.type)
            elif reply.seq in in_flight:
                asked_at = in_flight.pop(reply.seq)
                if attempts[reply.seq] == 1:
                    rtt.sample(loop.time() - asked_at)
                items[reply.seq] = MissionItem.from_message(reply)
                self._report(progress, mission_type, len(items), count)
            # else: a duplicate answer to a request already answered
        return [items[seq] for seq in range(count)]

    # ---- clear, set current ----------------------------------------------------------------------------

    async def clear(self, mission_type: MissionType) -> None:
        connection = self._connection
        message = mavlink.MAVLink_mission_clear_all_message(
            connection.target_system, connection.target_component, mission_type
        )
        async with self._lock:
            with connection.inbox(
                "MISSION_ACK", self._for_us(mission_type), what=f"{mission_type.label} clear"
            ) as acks:
                policy = RetryPolicy(self.policy.reply_timeout_s, self.policy.count_attempts)
                try:
                    ack, _attempt = await request(connection, message, acks, policy)
                except NoReply:
                    raise MissionTimeout(
                        mission_type, "clear", f"no MISSION_ACK after {policy.attempts} requests"
                    ) from None
        if ack.type != _ACCEPTED:
            raise MissionError(mission_type, "clear", "", result=ack.type)

    async def set_current(self, seq: int, *, timeout_s: float = 5.0) -> None:
        """Make ``seq`` the current mission item (MAV_CMD_DO_SET_MISSION_CURRENT), confirmed by MISSION_CURRENT."""
        with self._connection.inbox(
            "MISSION_CURRENT", lambda m: m.seq == seq, what=f"mission current {seq}"
        ) as current:
            await self._commands.long(mavlink.MAV_CMD_DO_SET_MISSION_CURRENT, [seq], label=f"set_current({seq})")
            try:
                await current.next(timeout_s)
            except VehicleTimeout:
                raise ConditionTimeout(f"mission current item not {seq} within {timeout_s:g} s") from None

    # ---- plans -----------------------------------------------------------------------------------------

    async def upload_plan(
        self,
        plan: MissionPlan,
        *,
        firmware: Firmware,
        verify: bool = True,
        types: list[MissionType] | None = None,
        progress: Progress | None = None,
        verify_progress: Progress | None = None,
    ) -> UploadReport:
        """Upload each list of ``plan`` (all three by default, an empty list clears that type), then read
        everything back and compare with what ArduPilot can hold. Refuses before sending anything if an
        item could not be stored."""
        types = types or list(MissionType)
        expected = expected_on_vehicle(plan, firmware)  # raises Unstorable before any transfer
        report = UploadReport(plan_hash=plan.content_hash(), stored_hash=expected.content_hash())
        for mission_type in types:
            items = plan.items(mission_type)
            report.transfers += await self.upload(items, mission_type, progress=progress)
            report.items[mission_type] = len(items)
        if verify:
            downloaded = await self.download_plan(types, progress=verify_progress)
            mismatches = compare_plans(expected, downloaded, types)
            if mismatches:
                raise MissionVerifyError(mismatches)
            report.vehicle_hash = downloaded.content_hash() if set(types) == set(MissionType) else None
        return report

    async def download_plan(
        self, types: list[MissionType] | None = None, *, progress: Progress | None = None
    ) -> MissionPlan:
        plan = MissionPlan()
        for mission_type in types or list(MissionType):
            plan = plan.with_items(mission_type, await self.download(mission_type, progress=progress))
        return plan


class _ListChanged(Exception):
    pass


def expected_on_vehicle(plan: MissionPlan, firmware: Firmware) -> MissionPlan:
    """Each item as ArduPilot will store and return it (home kept as planned: the vehicle owns it)."""
    expected = MissionPlan(name=plan.name)
    for mission_type in MissionType:
        items = plan.items(mission_type)
        stored = [
            item
            if (mission_type is MissionType.MISSION and seq == 0)
            else stored_form(item, seq, mission_type, firmware)
            for seq, item in enumerate(items)
        ]
        expected = expected.with_items(mission_type, stored)
    return expected


def compare_plans(expected: MissionPlan, actual: MissionPlan, types: list[MissionType]) -> list[Mismatch]:
    mismatches: list[Mismatch] = []
    for mission_type in types:
        want, got = expected.items(mission_type), actual.items(mission_type)
        if len(want) != len(got):
            mismatches.append(Mismatch(mission_type, len(got), f"vehicle holds {len(got)} items, planned {len(want)}"))
            continue
        for seq, (planned, held) in enumerate(zip(want, got, strict=True)):
            if mission_type is MissionType.MISSION and seq == 0:
                continue  # home: the vehicle's own
            if planned.canonical() != held.canonical():
                mismatches.append(Mismatch(mission_type, seq, describe_difference(planned, held)))
    return mismatches
