"""`flightctl run` as a process, with a config file written for a SITL vehicle and a broker: for tests, benches
and fleet simulation. The daemon is run exactly as systemd runs it (its own process, SIGTERM to stop)."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from flightctl.config import configs_dir


def write_daemon_config(
    folder: Path,
    *,
    drone_id: str,
    autopilot_url: str,
    broker_url: str,
    peer_urls: Sequence[str] = (),
    username: str,
    password: str,
    ca_file: Path | None,
    will_delay_s: int = 10,
    rate_hz: float = 2,
    keepalive_s: int = 5,
    link_lost_timeout_s: float = 60,
    unwanted_answers_per_minute: int = 60,
    remote_id: bool = False,
    profile: str = "sitl-quad",
    legs: Sequence[Path] = (),
) -> Path:
    """A daemon config in ``folder`` (journal and password file beside it); its path. ``remote_id``: with the
    shipped SITL config's ``[remote_id]`` (the operator's part of Remote ID, which the daemon then sends).
    ``legs``: the island legs the aircraft flies (with a fixed-wing ``profile``), as files."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mqtt-password").write_text(password + "\n")
    (folder / "mqtt-password").chmod(0o600)
    ca_line = f'ca_file = "{ca_file}"' if ca_file is not None else ""
    path = folder / "daemon.toml"
    path.write_text(
        f"""drone_id = "{drone_id}"
site = "kirkwall"
profile = "{profile}"
legs = {json.dumps([str(leg) for leg in legs])}
journal = "journal.sqlite"
unwanted_answers_per_minute = {unwanted_answers_per_minute}

[autopilot]
url = "{autopilot_url}"
link_lost_timeout_s = {link_lost_timeout_s}

[broker]
url = "{broker_url}"
peer_urls = {json.dumps(list(peer_urls))}
username = "{username}"
password_file = "mqtt-password"
{ca_line}
keepalive_s = {keepalive_s}
will_delay_s = {will_delay_s}
reconnect_min_s = 0.5
reconnect_max_s = 2

[telemetry]
rate_hz = {rate_hz}
{_sitl_remote_id() if remote_id else ""}"""
    )
    return path


def _sitl_remote_id() -> str:
    """The ``[remote_id]`` section of configs/onboard/sitl.toml, as written there (its last section)."""
    text = (configs_dir() / "onboard" / "sitl.toml").read_text()
    return "\n" + text[text.index("[remote_id]") :]


STOP_TIMEOUT_S = 30.0


@dataclass
class DaemonProcess:
    config: Path
    process: asyncio.subprocess.Process | None = None
    starts: int = 0

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def log_path(self) -> Path:
        return self.config.parent / f"daemon-{self.starts}.log"

    async def start(self) -> None:
        self.starts += 1
        with self.log_path.open("wb") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "flightctl", "-v", "run", "--config", str(self.config), stdout=log, stderr=log
            )

    async def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> int:
        """SIGTERM, as systemd stops it; the exit code. A daemon still there after ``STOP_TIMEOUT_S`` is killed
        and reported with its log: it bounds its own stop well within that."""
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(STOP_TIMEOUT_S):
                return await self.process.wait()
        except TimeoutError:
            await self.kill()
            raise AssertionError(
                f"the daemon did not stop within {STOP_TIMEOUT_S:g} s of SIGTERM:\n{self.log_tail()}"
            ) from None

    def log_tail(self, lines: int = 60) -> str:
        text = "\n".join(p.read_text(errors="replace") for p in sorted(self.config.parent.glob("daemon-*.log")))
        return "\n".join(text.splitlines()[-lines:])
