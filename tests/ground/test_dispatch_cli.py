"""`flightctl dispatch` never loses a customer's tracking link: an order that went out but got no answer in time
(the drone away) still prints its link, as text and as JSON, and the link finds the order; an order that never
reached the broker leaves no registration behind, so it may be dispatched again; an aircraft with an open defect
in the logbook is sent nothing until its repair is entered."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from flightctl.ground.logbook import MaintenanceEntry
from flightctl.ground.registry import Registry
from tests.ground.conftest import Fleet
from tests.sitl.deliveries import order

pytestmark = pytest.mark.mqtt


async def dispatch(
    fleet: Fleet, folder: Path, order_id: str, *more: str, broker_url: str | None = None
) -> tuple[int, str, str]:
    password = folder / "dispatch-password"
    password.write_text(fleet.passwords["dispatch-1"])
    order_file = folder / f"{order_id}.yaml"
    the_order = order("kirkwall-1500m-place").model_copy(update={"order_id": order_id})
    order_file.write_text(json.dumps(the_order.model_dump(mode="json", exclude_none=True)))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "flightctl", "dispatch", str(order_file), "--customer", "C-1042", "--drone", "drone-a",
        "--broker", broker_url or fleet.broker.url, "--username", "dispatch-1", "--password-file", str(password),
        "--ca-file", str(fleet.broker.ca_file), "--registry", str(folder / "registry.sqlite"),
        "--tracking-url", "https://track.example.net", "--depot-wind", "0", "--answer-timeout", "2", *more,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def order_of_link(folder: Path, link: str) -> str | None:
    async with await Registry.open(str(folder / "registry.sqlite")) as registry:
        return await registry.order_for_token(link.rsplit("/t/", 1)[1])


async def test_an_order_with_no_answer_in_time_still_gives_its_tracking_link(fleet: Fleet, tmp_path: Path) -> None:
    code, out, err = await dispatch(fleet, tmp_path, "KWL-AWAY-1")
    assert code == 1, err
    assert "did not answer" in err
    (line,) = [x for x in out.splitlines() if "tracking link for C-1042" in x]
    assert await order_of_link(tmp_path, line.split(": ", 1)[1]) == "KWL-AWAY-1"

    code, out, err = await dispatch(fleet, tmp_path, "KWL-AWAY-2", "--json", "--site", "kirkwall")
    assert code == 1, err
    said = json.loads(out.strip().splitlines()[-1])
    assert said["answer"] is None
    assert await order_of_link(tmp_path, said["tracking_link"]) == "KWL-AWAY-2"
    async with await Registry.open(str(tmp_path / "registry.sqlite")) as registry:
        tracked = await registry.tracked_order(said["tracking_link"].rsplit("/t/", 1)[1])
    assert tracked is not None
    assert str(tracked.zone) == "Europe/London", "the site's zone, from configs/sites/kirkwall.yaml"

    code, out, err = await dispatch(fleet, tmp_path, "KWL-AWAY-3", "--site", "atlantis")
    assert code == 1
    assert "atlantis" in err
    code, out, err = await dispatch(fleet, tmp_path, "KWL-AWAY-3", "--json")  # nothing was registered before
    assert code == 1, err
    assert await order_of_link(tmp_path, json.loads(out.strip().splitlines()[-1])["tracking_link"]) == "KWL-AWAY-3"


async def test_an_order_that_never_reached_the_broker_leaves_no_registration(fleet: Fleet, tmp_path: Path) -> None:
    code, out, err = await dispatch(fleet, tmp_path, "KWL-NOBROKER", broker_url="mqtts://127.0.0.1:9")
    assert code == 1
    assert "Traceback" not in err
    assert "tracking link" not in out
    async with await Registry.open(str(tmp_path / "registry.sqlite")) as registry:
        assert await registry.overview() == []


async def test_an_aircraft_with_an_open_defect_is_sent_nothing_until_it_is_repaired(
    fleet: Fleet, tmp_path: Path
) -> None:
    async with await Registry.open(str(tmp_path / "registry.sqlite")) as registry:
        defect = await registry.add_maintenance("drone-a", MaintenanceEntry(
            entry="defect", text="motor 3 runs hot", by="J. Rendall", at_utc="2026-12-02T04:00:00Z"))  # fmt: skip
    code, out, err = await dispatch(fleet, tmp_path, "KWL-DEFECT-1")
    assert code == 1
    said = " ".join(err.split())
    assert "NO-GO: drone-a has an open defect in the logbook (record 1: motor 3 runs hot (J. Rendall," in said
    assert "nothing was sent" in said
    assert "tracking link" not in out
    async with await Registry.open(str(tmp_path / "registry.sqlite")) as registry:
        assert await registry.overview() == [], "nothing registered for the customer"
        await registry.add_maintenance("drone-a", MaintenanceEntry(
            entry="repair", text="motor 3 replaced", by="J. Rendall", at_utc="2026-12-02T05:00:00Z",
            defect_n=defect.n))  # fmt: skip
        assert await registry.open_defects("drone-a") == []
    code, out, err = await dispatch(fleet, tmp_path, "KWL-DEFECT-1")
    assert code == 1, err
    assert "did not answer" in err, "sent this time (the drone is away)"
    (line,) = [x for x in out.splitlines() if "tracking link for C-1042" in x]
    assert await order_of_link(tmp_path, line.split(": ", 1)[1]) == "KWL-DEFECT-1"
