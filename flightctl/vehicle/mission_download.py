"""Reading a list back with the mission protocol: its count, then several requests in flight, a reply timeout
that follows the measured round trip, and a restart (``ListChanged``) when another station changes the list."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

from flightctl.dialect import MAVLinkMessage, mavlink
from flightctl.errors import VehicleTimeout
from flightctl.link.connection import MavConnection
from flightctl.link.inbox import Inbox
from flightctl.missions.model import MissionItem, MissionType
from flightctl.vehicle.mission_transfer import (
    ListChanged,
    MissionRejected,
    MissionTimeout,
    Progress,
    TransferPolicy,
    mission_rtt,
    transfer_deadline_s,
)

_ACCEPTED = mavlink.MAV_MISSION_ACCEPTED


async def read_count(
    connection: MavConnection,
    for_us: Callable[[MAVLinkMessage], bool],
    mission_type: MissionType,
    request_list: MAVLinkMessage,
    policy: TransferPolicy,
) -> int:
    """How many items the vehicle holds in ``mission_type`` (for a mission: including home), asking again
    until the vehicle goes silent or the transfer's base deadline passes; an upload under way (DENIED) is
    waited for, with a growing pause."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    rtt = mission_rtt(connection, policy)
    resends = 0  # of the request now outstanding: its wait backs off with them (and Karn's rule)
    with connection.inbox(("MISSION_COUNT", "MISSION_ACK"), for_us, what="mission count") as replies:
        for attempt in itertools.count():
            if (silent_s := connection.silent_s()) >= policy.vehicle_silent_s:
                detail = f"no MISSION_COUNT: vehicle silent for {silent_s:.0f} s (no heartbeat either)"
                raise MissionTimeout(mission_type, "download count", detail)
            if loop.time() - started >= policy.deadline_base_s:
                detail = f"no MISSION_COUNT within {policy.deadline_base_s:g} s on this link"
                raise MissionTimeout(mission_type, "download count", detail)
            connection.send(request_list)
            sent_at = loop.time()
            deadline = sent_at + rtt.timeout_s(resends)
            resends += 1
            while (remaining := deadline - loop.time()) > 0:
                try:
                    reply = await replies.next(remaining)
                except VehicleTimeout:
                    break
                if reply.get_type() == "MISSION_COUNT":
                    if resends == 1:
                        rtt.sample(loop.time() - sent_at)
                    return int(reply.count)
                if reply.type == mavlink.MAV_MISSION_DENIED:  # someone is uploading: wait for them
                    await asyncio.sleep(policy.restart_delay_s * (attempt + 1))
                    resends = 0
                    break
                if reply.type == mavlink.MAV_MISSION_UNSUPPORTED:
                    raise MissionRejected(mission_type, "download count", "", result=reply.type)
                # any other ACK is a late answer to an earlier transfer
    raise AssertionError("unreachable: the loop above returns or raises")


async def download_items(
    connection: MavConnection,
    for_us: Callable[[MAVLinkMessage], bool],
    mission_type: MissionType,
    count: int,
    policy: TransferPolicy,
    progress: Progress | None,
) -> list[MissionItem]:
    """The ``count`` items of one list, read once; ``ListChanged`` when the list changes underneath."""
    types = ("MISSION_ITEM_INT", "MISSION_ACK", "MISSION_COUNT")
    with connection.inbox(types, for_us, what=f"{mission_type.label} download") as inbox:
        items = await _fetch_items(connection, inbox, count, mission_type, policy, progress)
        connection.send(
            mavlink.MAVLink_mission_ack_message(
                connection.target_system, connection.target_component, _ACCEPTED, mission_type
            )
        )
    if count == 0 and progress is not None:
        progress(mission_type, 0, 0)
    return items


async def read_first_item(
    connection: MavConnection,
    for_us: Callable[[MAVLinkMessage], bool],
    mission_type: MissionType,
    policy: TransferPolicy,
) -> MissionItem:
    """Item 0 alone (for the mission: home, as the vehicle holds it), asked without a list request: ArduPilot
    answers any item while no upload is under way (MissionItemProtocol::handle_mission_request_int)."""
    types = ("MISSION_ITEM_INT", "MISSION_ACK", "MISSION_COUNT")
    with connection.inbox(types, for_us, what=f"{mission_type.label} item 0") as inbox:
        return (await _fetch_items(connection, inbox, 1, mission_type, policy, None))[0]


async def _fetch_items(
    connection: MavConnection,
    inbox: Inbox,
    count: int,
    mission_type: MissionType,
    policy: TransferPolicy,
    progress: Progress | None,
) -> list[MissionItem]:
    """Request items with up to ``download_window`` requests in flight: on a link with latency or loss,
    waiting out each lost reply one at a time is what makes downloads slow."""
    loop = asyncio.get_running_loop()
    rtt = mission_rtt(connection, policy)
    items: dict[int, MissionItem] = {}
    in_flight: dict[int, float] = {}  # seq -> when last requested
    attempts: dict[int, int] = {}
    next_seq = 0

    started = loop.time()
    deadline_s = transfer_deadline_s(policy, count)

    def request(seq: int) -> None:
        # Asked again as often as it takes while the vehicle still talks: on a bad radio a fixed number of
        # requests per item makes a long download fail almost surely. Silence or the deadline end it.
        if (silent_s := connection.silent_s()) >= policy.vehicle_silent_s:
            detail = f"vehicle silent for {silent_s:.0f} s (no heartbeat either)"
            raise MissionTimeout(mission_type, "download", detail, seq=seq)
        if loop.time() - started >= deadline_s:
            detail = f"not finished within {deadline_s:g} s on this link ({len(items)} of {count} items)"
            raise MissionTimeout(mission_type, "download", detail, seq=seq)
        attempts[seq] = attempts.get(seq, 0) + 1
        connection.send(
            mavlink.MAVLink_mission_request_int_message(
                connection.target_system, connection.target_component, seq, mission_type
            )
        )
        in_flight[seq] = loop.time()

    while len(items) < count:
        while next_seq < count and len(in_flight) < policy.download_window:
            request(next_seq)
            next_seq += 1
        # Each request's own wait, backing off (boundedly) with how often it was already sent.
        due = {seq: asked_at + rtt.timeout_s(attempts[seq] - 1) for seq, asked_at in in_flight.items()}
        try:
            reply = await inbox.next(max(0.0, min(due.values()) - loop.time()))
        except VehicleTimeout:
            now = loop.time()
            for seq in sorted(seq for seq, at in due.items() if at <= now):
                request(seq)
            continue
        kind = reply.get_type()
        if kind == "MISSION_COUNT":
            if reply.count != count:  # ArduPilot's answer to a seq past the end: the list shrank
                raise ListChanged(f"the vehicle now holds {reply.count} items, not {count}")
        elif kind == "MISSION_ACK":
            if reply.type in (_ACCEPTED, mavlink.MAV_MISSION_ERROR):
                # ACCEPTED: a late ACK of our upload. ERROR: ArduPilot's answer to a duplicate item that
                # crossed the end of that upload. Neither is about this download; a real read error
                # would repeat until the item's attempts run out.
                continue
            if reply.type == mavlink.MAV_MISSION_INVALID_SEQUENCE:
                raise ListChanged("an item we asked for no longer exists")
            if reply.type == mavlink.MAV_MISSION_DENIED:
                raise ListChanged("another station started uploading")
            raise MissionRejected(mission_type, "download", "", seq=min(in_flight, default=None), result=reply.type)
        elif reply.seq in in_flight:
            asked_at = in_flight.pop(reply.seq)
            if attempts[reply.seq] == 1:
                rtt.sample(loop.time() - asked_at)
            items[reply.seq] = MissionItem.from_message(reply)
            if progress is not None:
                progress(mission_type, len(items), count)
        # else: a duplicate answer to a request already answered
    return [items[seq] for seq in range(count)]
