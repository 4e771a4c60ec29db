"""The journal's outbox (schema 2): each transition and its outbox row in one transaction, sequence numbers that
never repeat or go back across reopening, and journals of version 1 gaining the outbox on open."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from flightctl.delivery.events import Command, DeliveryState
from flightctl.delivery.journal import SCHEMA_VERSION, Journal
from tests.unit.test_delivery_safety import _old_journal


async def test_transitions_go_to_the_outbox_and_commands_do_not(tmp_path: Path) -> None:
    async with await Journal.open(tmp_path / "j.sqlite") as journal:
        await journal.record_state("KWL-1", DeliveryState.PREFLIGHT, {"why": "start"}, vehicle_ms=1)
        await journal.record_command("KWL-1", DeliveryState.PREFLIGHT, Command.GRIPPER_GRAB, vehicle_ms=2)
        await journal.enqueue("KWL-1", "order_accepted", {"request_id": "r"})
        unsent = await journal.unsent()
    assert [(e.seq, e.type) for e in unsent] == [(1, "state"), (2, "order_accepted")]
    assert unsent[0].data == {"state": "PREFLIGHT", "detail": {"why": "start"}}
    assert unsent[0].time_source == "companion"


async def test_sequence_numbers_carry_on_after_a_reopen_and_are_never_reused(tmp_path: Path) -> None:
    """Test that after rows are sent and the journal reopened (a restart), new rows get higher numbers."""
    path = tmp_path / "j.sqlite"
    async with await Journal.open(path) as journal:
        for n in range(3):
            await journal.enqueue(None, "command_result", {"n": n})
        for entry in await journal.unsent():
            await journal.mark_sent(entry.seq)
        assert await journal.outbox_backlog() == 0
    gps = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    async with await Journal.open(path, clock=lambda: (gps, "gps")) as journal:
        await journal.enqueue(None, "command_result", {"n": 3})
        [entry] = await journal.unsent()
    assert entry.seq == 4
    assert (entry.at_utc, entry.time_source) == ("2026-11-28T10:00:00.000Z", "gps")


async def test_a_version_1_journal_gains_the_outbox_and_the_orders(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    _old_journal(path)
    async with await Journal.open(path) as journal:
        await journal.record_state("KWL-1", DeliveryState.LANDED, {}, vehicle_ms=None)
        record = await journal.receive_order("KWL-9", "req-9", {"order": {"order_id": "KWL-9"}})
        assert (record.request_id, record.answer) == ("req-9", None)
        await journal.answer_order("KWL-9", "rejected", ["NO-GO: wind"])
        assert (await journal.order("KWL-9")) is not None
        assert [e.seq for e in await journal.unsent()] == [1]
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()


async def test_an_order_received_twice_keeps_its_first_record(tmp_path: Path) -> None:
    async with await Journal.open(tmp_path / "j.sqlite") as journal:
        await journal.receive_order("KWL-1", "first", {"order": {"v": 1}})
        again = await journal.receive_order("KWL-1", "second", {"order": {"v": 2}})
    assert (again.request_id, again.body) == ("first", {"order": {"v": 1}})
