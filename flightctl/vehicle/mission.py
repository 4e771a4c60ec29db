"""The MAVLink mission protocol (https://mavlink.io/en/services/mission.html) for mission, fence and rally,
built for radio links that lose, duplicate and reorder messages: the I/O around the decisions.

Upload: on ArduPilot with MAVFTP, the list is written as its own @MISSION file; otherwise (and as the
fallback) MISSION_COUNT, the vehicle's requests, MISSION_ACK, each step decided by
``missions.upload_transfer`` (pure). ArduPilot re-requests an item itself after 1 s of silence and abandons
its side after 8 s; a NACK that ends a transfer (NO_SPACE right after boot, OPERATION_CANCELLED, DENIED while
another station uploads) is followed by a fresh transfer after a pause, any other fails naming the stage and
item. Download: ``vehicle.mission_download``. Verification: ``missions.verify``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
from collections import deque
from collections.abc import Callable

from flightctl.dialect import MAVLinkMessage, mavlink
from flightctl.errors import ConditionTimeout, VehicleTimeout
from flightctl.link.connection import MavConnection
from flightctl.link.request import NoReply, RetryPolicy, explanation, request
from flightctl.missions import ardupilot_files
from flightctl.missions.ardupilot import Firmware
from flightctl.missions.formats.errors import MissionFileError
from flightctl.missions.model import MissionItem, MissionPlan, MissionType
from flightctl.missions.upload_transfer import (
    Done,
    Ended,
    QueryCount,
    SendCount,
    SendItem,
    UploadLimits,
    UploadTransfer,
)
from flightctl.missions.verify import MissionVerifyError, compare_plans, expected_on_vehicle
from flightctl.vehicle.commands import Commands
from flightctl.vehicle.ftp import FtpError, FtpTimeout, MavFtp, ardupilot_crc32
from flightctl.vehicle.mission_download import download_items, read_count, read_first_item
from flightctl.vehicle.mission_transfer import (
    RETRYABLE,
    ListChanged,
    MissionError,
    MissionRejected,
    MissionTimeout,
    Progress,
    TransferEnded,
    TransferPolicy,
    UploadReport,
    mission_rtt,
    transfer_deadline_s,
)

log = logging.getLogger(__name__)

_ACCEPTED = mavlink.MAV_MISSION_ACCEPTED
_CAPACITY = re.compile(r"Only (\d+) items are supported")


def _items_in(file_bytes: int) -> int:
    """Whole items in the first ``file_bytes`` of an @MISSION file."""
    return max(file_bytes - ardupilot_files.HEADER_SIZE, 0) // ardupilot_files.ITEM_SIZE


def at_capacity(texts: str) -> bool:
    """ArduPilot's NO_SPACE explained as "Only N items are supported": a real limit, not worth a retry. "Only 0"
    is a vehicle whose mission storage is not ready yet (seconds after boot): that one is waited out."""
    found = _CAPACITY.search(texts)
    return found is not None and int(found.group(1)) > 0


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
            last: TransferEnded | None = None
            started = asyncio.get_running_loop().time()
            deadline_s = transfer_deadline_s(self.policy, len(items))
            for attempt in itertools.count(1):
                try:
                    await self._upload_once(items, mission_type, progress, started=started, deadline_s=deadline_s)
                except TransferEnded as ended:
                    last = ended
                    # NACKs are limited in number; a restart because the radio lost the vehicle's requests is
                    # limited only by the deadline (the transfer's own rule), however many it takes.
                    # OPERATION_CANCELLED is ArduPilot giving up after 8 s without our items ("Mission upload
                    # timeout"): on a lossy radio, that is the loss, not a refusal.
                    lost_on_the_way = ended.result == mavlink.MAV_MISSION_OPERATION_CANCELLED
                    nacks_exhausted = attempt >= self.policy.transfer_attempts and not lost_on_the_way
                    past_deadline = asyncio.get_running_loop().time() - started >= deadline_s
                    if ended.result not in RETRYABLE or at_capacity(ended.texts) or nacks_exhausted or past_deadline:
                        break
                    delay_s = min(self.policy.restart_delay_s * attempt, 8.0)
                    log.warning(
                        "%s upload: vehicle ended the transfer at item %s with %s; starting again in %.1f s",
                        mission_type.label, ended.seq, ended, delay_s,
                    )  # fmt: skip
                    await asyncio.sleep(delay_s)
                else:
                    self._uploaded(items, mission_type)
                    return attempt
            assert last is not None
            raise MissionRejected(mission_type, last.stage, last.texts, seq=last.seq, result=last.result)

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
        if self._ftp is None or not self._ftp_usable(mission_type):
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
            self._rest_ftp(f"{mission_type.label} upload as {path}", exc)
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

    def _ftp_usable(self, mission_type: MissionType) -> bool:
        return (
            self.mission_files
            and self.policy.use_ftp
            and mission_type in self.policy.ftp_types
            and asyncio.get_running_loop().time() >= self._ftp_rest_until
        )

    def _rest_ftp(self, what: str, exc: FtpTimeout) -> None:
        """A server that stopped answering (ArduPilot's FTP worker can stall on another link's full buffer)
        would cost every transfer its timeouts: leave it alone for a while."""
        self._ftp_rest_until = asyncio.get_running_loop().time() + self.policy.ftp_rest_s
        log.warning(
            "%s failed (%s); using the mission protocol, and only it for %g s", what, exc, self.policy.ftp_rest_s
        )

    async def _download_as_file(self, mission_type: MissionType, progress: Progress | None) -> list[MissionItem] | None:
        """The list read as ArduPilot's @MISSION file (one burst read, then only the chunks the radio lost),
        or None (after a warning) when that cannot be done and the caller uses the mission protocol.

        ArduPilot writes the file's header when it is opened and each item as it is read, from the same
        storage the mission protocol reads (AP_Filesystem_Mission.cpp); an item count that does not match
        the bytes that follow means the list changed underneath."""
        if self._ftp is None or not self._ftp_usable(mission_type):
            return None
        path = ardupilot_files.PATHS[mission_type]

        def read(done: int, total: int | None) -> None:
            if total is not None:
                self._report(progress, mission_type, _items_in(done), _items_in(total))

        try:
            data = await self._ftp.read_file(path, progress=read)
            kind, items = ardupilot_files.decode(data, path)
        except FtpTimeout as exc:
            self._rest_ftp(f"{mission_type.label} download as {path}", exc)
            return None
        except (FtpError, MissionFileError) as exc:
            log.warning("%s download as %s failed (%s); using the mission protocol", mission_type.label, path, exc)
            return None
        if kind is not mission_type:
            log.warning("%s download: %s holds a %s list; using the mission protocol", mission_type.label, path, kind)
            return None
        self._report(progress, mission_type, len(items), len(items))
        return items

    async def held_if_checksum_matches(
        self, expected: list[MissionItem], mission_type: MissionType
    ) -> list[MissionItem] | None:
        """The vehicle's list, when ArduPilot's CRC-32 of its @MISSION file shows it is ``expected`` byte for
        byte (home aside: the vehicle's own, read as item 0); None when that cannot be shown, and the caller
        reads the list back. Two round trips however long the list: the vehicle works the checksum out from
        the same storage a read would (AP_Filesystem::crc32 reads the file ArduPilot generates), and the file
        it generates is byte for byte the one ``ardupilot_files.encode`` makes of the items it holds."""
        if self._ftp is None or not self._ftp_usable(mission_type) or not expected:
            return None
        path = ardupilot_files.PATHS[mission_type]
        try:
            held = list(expected)
            if mission_type is MissionType.MISSION:
                held[0] = await read_first_item(self._connection, self._for_us(mission_type), mission_type, self.policy)
            wanted = ardupilot_crc32(ardupilot_files.encode(held, mission_type))
            checksum = await self._ftp.crc32(path)
        except FtpTimeout as exc:
            self._rest_ftp(f"{mission_type.label} checksum of {path}", exc)
            return None
        except (FtpError, MissionError) as exc:
            log.warning("%s checksum of %s failed (%s); reading the list back", mission_type.label, path, exc)
            return None
        if checksum != wanted:
            log.info("%s: the vehicle's checksum differs from the plan's; reading the list back", mission_type.label)
            return None
        return held

    async def _upload_once(
        self,
        items: list[MissionItem],
        mission_type: MissionType,
        progress: Progress | None,
        *,
        started: float,
        deadline_s: float,
    ) -> None:
        """One transfer, as ``UploadTransfer`` decides it: this only sends, waits and reports."""
        connection = self._connection
        loop = asyncio.get_running_loop()
        count = len(items)
        limits = UploadLimits(self.policy.vehicle_silent_s, deadline_s, self.policy.abandoned_after_s)
        transfer = UploadTransfer(count, limits)
        # How long to wait for the next request before resending follows the link's round trip: the time
        # from an item sent once to the request for the next (Karn: a resent item gives no sample).
        rtt = mission_rtt(connection, self.policy)
        item_sent_at: float | None = None
        heard_at = loop.time()
        types = ("MISSION_REQUEST_INT", "MISSION_REQUEST", "MISSION_ACK")
        with (
            connection.inbox(types, self._for_us(mission_type), what=f"{mission_type.label} upload") as inbox,
            connection.inbox("STATUSTEXT", what="mission status texts", maxsize=32) as texts,
        ):
            actions = deque(transfer.start())
            while True:
                while actions:
                    action = actions.popleft()
                    if isinstance(action, SendCount):
                        connection.send(self._count_message(action.count, mission_type))
                    elif isinstance(action, SendItem):
                        connection.send(self._item_message(items[action.seq], action.seq, mission_type))
                        item_sent_at = loop.time() if action.first_request else None
                        if action.first_request:
                            self._report(progress, mission_type, action.seq, count)
                    elif isinstance(action, QueryCount):
                        actions.extend(transfer.on_count(await self._vehicle_count(mission_type)))
                    elif isinstance(action, Done):
                        self._report(progress, mission_type, count, count)
                        return
                    elif isinstance(action, Ended):
                        said = await explanation(texts, keep=3)
                        raise TransferEnded(action.result, action.seq, action.stage, said)
                    else:
                        raise MissionTimeout(mission_type, "upload", action.detail, seq=action.seq)
                mid_way = transfer.highest >= 0 and not transfer.last_sent
                try:
                    message = await inbox.next(rtt.timeout_s() if mid_way else self.policy.reply_timeout_s)
                except VehicleTimeout:
                    now = loop.time()
                    actions.extend(
                        transfer.on_silence(
                            vehicle_silent_s=connection.silent_s(), elapsed_s=now - started, quiet_s=now - heard_at
                        )
                    )
                    continue
                heard_at = loop.time()
                if message.get_type() == "MISSION_ACK":
                    actions.extend(transfer.on_ack(message.type))
                else:
                    if item_sent_at is not None and message.seq == transfer.highest + 1:
                        rtt.sample(heard_at - item_sent_at)
                    actions.extend(transfer.on_request(message.seq))

    async def _vehicle_count(self, mission_type: MissionType) -> int | None:
        """Settle a lost final ACK: the count the vehicle reports now, or None if it did not answer."""
        with self._connection.inbox("MISSION_COUNT", self._for_us(mission_type), what="mission count") as counts:
            self._connection.send(self._request_list_message(mission_type))
            try:
                return int((await counts.next(self.policy.reply_timeout_s)).count)
            except VehicleTimeout:
                return None

    @staticmethod
    def _report(progress: Progress | None, mission_type: MissionType, done: int, total: int) -> None:
        if progress is not None:
            progress(mission_type, done, total)

    # ---- download --------------------------------------------------------------------------------------

    async def count(self, mission_type: MissionType) -> int:
        """How many items the vehicle holds (for a mission: including home)."""
        request_list = self._request_list_message(mission_type)
        return await read_count(self._connection, self._for_us(mission_type), mission_type, request_list, self.policy)

    async def download(self, mission_type: MissionType, *, progress: Progress | None = None) -> list[MissionItem]:
        """Read the vehicle's ``mission_type`` list. Restarts if the list changes underneath (another GCS)."""
        async with self._lock:
            if (items := await self._download_as_file(mission_type, progress)) is not None:
                return items
            for _attempt in range(self.policy.transfer_attempts):
                try:
                    count = await self.count(mission_type)
                    return await download_items(
                        self._connection, self._for_us(mission_type), mission_type, count, self.policy, progress
                    )
                except ListChanged as changed:
                    log.warning("%s download: %s; reading it again", mission_type.label, changed)
            raise MissionError(mission_type, "download", "the list kept changing while it was read")

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
            raise MissionRejected(mission_type, "clear", "", result=ack.type)

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
            # A list whose checksum shows it is the plan needs no reading back; any other is read and compared
            # item by item, which names what differs.
            held = MissionPlan()
            for mission_type in types:
                checked = await self.held_if_checksum_matches(expected.items(mission_type), mission_type)
                if checked is not None:
                    self._report(verify_progress, mission_type, len(checked), len(checked))
                items = checked if checked is not None else await self.download(mission_type, progress=verify_progress)
                held = held.with_items(mission_type, items)
            mismatches = compare_plans(expected, held, types)
            if mismatches:
                raise MissionVerifyError(mismatches)
            report.vehicle_hash = held.content_hash() if set(types) == set(MissionType) else None
        return report

    async def download_plan(
        self, types: list[MissionType] | None = None, *, progress: Progress | None = None
    ) -> MissionPlan:
        plan = MissionPlan()
        for mission_type in types or list(MissionType):
            plan = plan.with_items(mission_type, await self.download(mission_type, progress=progress))
        return plan
