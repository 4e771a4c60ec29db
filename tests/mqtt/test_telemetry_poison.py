"""`flightctl telemetry --broker` against a real mosquitto: telemetry whose Remote ID report is poison (deep
nesting, huge numbers, NaN, wrong types) is refused one message at a time, and the next good sample is shown."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from flightctl.mqtt.broker import make_client
from flightctl.mqtt.contract import Topics
from sitl.mosquitto import Mosquitto
from tests.mqtt.clients import endpoint
from tests.mqtt.conftest import ACCOUNTS, DRONE
from tests.support.hostile import deep

HEALTHY = {"healthy": True, "transmitter": "GOOD_TO_ARM", "transmitter_age_s": 0.4,
           "operator_id": "GBR87astrdge12k8", "problems": []}  # fmt: skip


def sample(remote_id: Any) -> dict[str, Any]:
    data = {
        "lat_deg": 58.95, "lon_deg": -2.95, "alt_amsl_m": 80.0, "relative_alt_m": 60.0, "ground_speed_m_s": 9.8,
        "heading_deg": 112.4, "battery_v": 15.6, "battery_pct": 81, "mode": "AUTO", "armed": True,
        "gps_fix": "3D_FIX", "gps_satellites": 14, "ekf_ok": True, "order_id": None, "delivery_state": None,
        "distance_to_go_m": None, "received_unix_s": 1795860240.18, "remote_id": remote_id,
    }  # fmt: skip
    return {"schema": 1, "drone": DRONE, "seq": None, "time": "2026-12-01T10:04:00.200Z", "time_source": "gps",
            "type": "telemetry", "order_id": None, "data": data}  # fmt: skip


POISON = {
    "remote_id nested a thousand deep": json.dumps(sample(None)).replace("null}}", deep(1000, "[", "]") + "}}"),
    "a transmitter age of 1e300": json.dumps(sample(HEALTHY | {"transmitter_age_s": 1e300})),
    "a transmitter age of NaN": json.dumps(sample(HEALTHY | {"transmitter_age_s": 0.5})).replace("0.5", "NaN"),
    "healthy as a string": json.dumps(sample(HEALTHY | {"healthy": "yes"})),
    "problems as a number": json.dumps(sample(HEALTHY | {"problems": 7})),
    "ten thousand problems": json.dumps(sample(HEALTHY | {"problems": ["x"] * 10_000})),
    "remote_id as a list": json.dumps(sample([1, 2, 3])),
}


async def test_poison_remote_id_telemetry_is_refused_and_the_next_sample_is_shown(
    broker: Mosquitto, tmp_path: Path
) -> None:
    password = tmp_path / "ground-password"
    password.write_text(ACCOUNTS["ground"] + "\n")
    viewer = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "flightctl", "telemetry", "--broker", broker.url, "--drone", DRONE,
        "--username", "ground", "--password-file", str(password), "--ca-file", str(broker.ca_file),
        "--json", "--count", "1", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    good = json.dumps(sample(HEALTHY)).encode()
    topic = Topics(DRONE).telemetry
    async with make_client(endpoint(broker, DRONE), client_id="flightctl-drone-a") as drone:
        wait = asyncio.ensure_future(viewer.communicate())
        while not wait.done():  # QoS 0: sent again until the viewer, once subscribed, has shown one sample
            for payload in POISON.values():
                await drone.publish(topic, payload.encode(), qos=0)
            await drone.publish(topic, good, qos=0)
            await asyncio.wait({wait}, timeout=0.5)
        out, err = wait.result()
    assert viewer.returncode == 0, err.decode()[-2000:]
    shown = json.loads(out.decode().strip().splitlines()[-1])
    assert shown["data"]["remote_id"] == HEALTHY
    refused = [line for line in err.decode().splitlines() if line.startswith("not telemetry:")]
    assert len(refused) >= len(POISON), err.decode()[-3000:]
