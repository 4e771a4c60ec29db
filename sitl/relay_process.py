"""`flightctl relay` as a process, as it is deployed, with a config file written for a broker and a registry: for
tests, benches and `sim fleet`."""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sitl.errors import SitlError
from sitl.mosquitto import free_port
from sitl.processes import end_process

START_TIMEOUT_S = 30.0


class RelayProcess:
    def __init__(
        self,
        folder: Path,
        name: str,
        *,
        broker_url: str,
        peer_urls: Sequence[str] = (),
        ca_file: Path,
        password: str,
        registry_url: str,
        failed_lookups_per_minute: int = 20,
        share_group: str | None = None,
    ) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "mqtt-password").write_text(password)
        self.ops = ("ops", secrets.token_hex(12))
        (folder / "ops-password").write_text(self.ops[1])
        self.port = free_port()
        self.ops_port = free_port()
        self.config = folder / "relay.toml"
        self.config.write_text(
            f'name = "{name}"\nregistry = "{registry_url}"\n'
            + ("" if share_group is None else f'share_group = "{share_group}"\n')
            + f'\n[broker]\nurl = "{broker_url}"\npeer_urls = {json.dumps(list(peer_urls))}\n'
            f'username = "{name}"\npassword_file = "{folder / "mqtt-password"}"\nca_file = "{ca_file}"\n\n'
            f"[http]\nport = {self.port}\nfailed_lookups_per_minute = {failed_lookups_per_minute}\n\n"
            f'[ops]\nusername = "ops"\npassword_file = "{folder / "ops-password"}"\nport = {self.ops_port}\n'
        )
        self.log = folder / "relay.log"
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _subscriptions(self) -> int:
        return self.log.read_text(errors="replace").count("following") if self.log.exists() else 0

    async def start(self, *, brokers: int = 1) -> None:
        """Start it and return once it follows the drones' events on ``brokers`` brokers (its log says so)."""
        before = self._subscriptions() + brokers - 1
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "flightctl", "relay", "--config", str(self.config), stdout=log, stderr=log
            )
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                while self._subscriptions() <= before:
                    if self.process.returncode is not None:
                        raise SitlError(f"flightctl relay exited with {self.process.returncode}: see {self.log}")
                    await asyncio.sleep(0.05)
        except TimeoutError:
            raise SitlError(f"flightctl relay did not subscribe within {START_TIMEOUT_S:g} s: see {self.log}") from None

    async def kill(self) -> None:
        await end_process(self.process, signal.SIGKILL)

    async def stop(self) -> None:
        await end_process(self.process)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def ops_view(self) -> dict[str, Any] | None:
        """The relay's /ops view (this run's counts, the registry's dead letters); None when it does not answer."""
        import httpx  # here: a test and bench dependency, which `sim fleet` (importing this module) does without

        try:
            async with httpx.AsyncClient(timeout=10) as client:
                response = await client.get(f"http://127.0.0.1:{self.ops_port}/ops", auth=self.ops)
            view: dict[str, Any] = response.json()
        except (httpx.HTTPError, ValueError):
            return None
        return view

    async def taken(self) -> int | None:
        """Events this run of the relay took first; None when it does not answer."""
        view = await self.ops_view()
        return None if view is None else int(view["taken"])
