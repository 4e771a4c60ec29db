"""`flightctl relay` as a process, with a config file written for a test broker and registry."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx

from sitl.mosquitto import free_port
from tests.ground.conftest import Fleet
from tests.support.conditions import eventually

OPS = ("ops", "ops-test-secret")


class RelayProcess:
    def __init__(self, folder: Path, name: str, fleet: Fleet, registry_url: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "mqtt-password").write_text(fleet.passwords[name])
        (folder / "ops-password").write_text(OPS[1])
        self.port = free_port()
        self.config = folder / "relay.toml"
        self.config.write_text(
            f'name = "{name}"\nregistry = "{registry_url}"\n\n[broker]\nurl = "{fleet.broker.url}"\n'
            f'username = "{name}"\npassword_file = "{folder / "mqtt-password"}"\nca_file = "{fleet.broker.ca_file}"\n\n'
            f'[http]\nport = {self.port}\n\n[ops]\nusername = "ops"\npassword_file = "{folder / "ops-password"}"\n'
        )
        self.log = folder / "relay.log"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "flightctl", "relay", "--config", str(self.config), stdout=log, stderr=log
            )
        await eventually(
            lambda: "following" in self.log.read_text(errors="replace").rsplit("started", 1)[-1], timeout_s=30
        )

    async def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        await self.process.wait()
        with self.log.open("a") as log:
            log.write("\n--- killed; started again ---\n")

    async def taken(self) -> int:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(f"http://127.0.0.1:{self.port}/ops", auth=OPS)
        return int(response.json()["taken"])

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()
