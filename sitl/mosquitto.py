"""A real mosquitto for tests and for an engineer's laptop: started on a free port with a config we write, password
authentication (anonymous off), TLS with a CA made on the spot, optional ACL, persistence so a restart keeps
sessions and queued messages. Stop it, kill it, start it again on the same port: what a broker outage looks like.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import shutil
import signal
import socket
from dataclasses import dataclass, field
from pathlib import Path

import trustme

from sitl.errors import SitlError
from sitl.processes import accepts_tcp, end_process

START_TIMEOUT_S = 15.0
# Not "all": logging every message slows mosquitto down several times under a test's tens of thousands.
LOG_TYPES = ["log_type error", "log_type warning", "log_type notice", "log_type information"]


class MosquittoError(SitlError):
    """mosquitto is missing, or did not start or stop as asked."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def dynamic_security_plugin() -> Path:
    """mosquitto's dynamic-security plugin, where Debian's package puts it (its folder names the machine)."""
    found = sorted(Path("/usr/lib").glob("*/mosquitto_dynamic_security.so"))
    found += sorted(Path("/usr/lib").glob("mosquitto_dynamic_security.so"))
    if not found:
        raise MosquittoError("mosquitto's dynamic-security plugin is not installed (Debian: apt-get install mosquitto)")
    return found[0]


def mosquitto_binary() -> str:
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if candidate and Path(candidate).exists():
            return candidate
    raise MosquittoError("mosquitto is not installed (Debian: apt-get install mosquitto)")


@dataclass
class Mosquitto:
    """One broker in ``folder``. ``accounts`` maps user names to passwords; ``acl`` is an ACL file's text."""

    folder: Path
    accounts: dict[str, str] = field(default_factory=dict)
    acl: str | None = None
    tls: bool = True
    port: int = field(default_factory=free_port)
    # A shipped config (configs/mosquitto/flightctl.conf) filled in for this broker, with the accounts folder its
    # dynamic-security file comes from (``flightctl broker add-*``), instead of ``accounts`` and ``acl``.
    template: Path | None = None
    accounts_folder: Path | None = None
    _process: asyncio.subprocess.Process | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def log_path(self) -> Path:
        return self.folder / "mosquitto.log"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def __aenter__(self) -> Mosquitto:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Start (or start again, same port, same persistence) and return once it accepts connections."""
        if self.running:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        config = await self._write_config()
        self._process = await asyncio.create_subprocess_exec(
            mosquitto_binary(), "-c", str(config), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                while not await accepts_tcp(self.port):
                    if self._process.returncode is not None:
                        raise MosquittoError(f"mosquitto exited with {self._process.returncode}: {self.log_tail()}")
                    await asyncio.sleep(0.05)
        except TimeoutError:
            await self.kill()
            raise MosquittoError(f"mosquitto did not listen on {self.port} within {START_TIMEOUT_S:g} s") from None

    async def stop(self) -> None:
        """A clean stop (SIGTERM): mosquitto writes its persistence file, sessions survive a start."""
        await self._end(signal.SIGTERM)

    async def restart(self) -> None:
        """Stop and start again on the same port: how a change of accounts is applied (the plugin reads its file
        only when mosquitto starts). Sessions and queued messages survive it."""
        await self.stop()
        await self.start()

    async def kill(self) -> None:
        await self._end(signal.SIGKILL)

    async def _end(self, signum: int) -> None:
        process, self._process = self._process, None
        await end_process(process, signum)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    async def add_account(self, username: str, password: str) -> None:
        self.accounts[username] = password
        if self.running:
            await self._write_config()
            assert self._process is not None
            self._process.send_signal(signal.SIGHUP)  # mosquitto re-reads its password and ACL files

    async def _write_config(self) -> Path:
        if self.template is not None:
            return self._write_from_template(self.template)
        folder = self.folder
        lines = [
            "per_listener_settings false",
            "allow_anonymous false",
            f"listener {self.port} 127.0.0.1",
            "persistence true",
            f"persistence_location {folder}/",
            "autosave_interval 1",
            f"log_dest file {self.log_path}",
            *LOG_TYPES,
            "log_timestamp_format %H:%M:%S",
            "max_queued_messages 100000",
            # Started as root, mosquitto would switch to the 'mosquitto' user, who cannot read a test's files.
            f"user {getpass.getuser()}",
        ]
        passwords = folder / "passwords"
        passwords.write_text("")
        for username, password in self.accounts.items():
            await _run("mosquitto_passwd", "-b", str(passwords), username, password)
        lines.append(f"password_file {passwords}")
        if self.acl is not None:
            (folder / "acl").write_text(self.acl)
            lines.append(f"acl_file {folder / 'acl'}")
        if self.tls:
            lines += self._tls_lines()
        config = folder / "mosquitto.conf"
        config.write_text("\n".join(lines) + "\n")
        return config

    def _write_from_template(self, template: Path) -> Path:
        assert self.accounts_folder is not None, "a template takes its passwords and ACL from an accounts folder"
        self._tls_lines()  # makes the CA and the server certificate
        text = (
            template.read_text()
            .replace("@PORT@", f"{self.port} 127.0.0.1")
            .replace("@PLUGIN@", str(dynamic_security_plugin()))
            .replace("@ACCOUNTS@", str(self.accounts_folder))
            .replace("@TLS@", str(self.folder))
            .replace("@DATA@", f"{self.folder}/")
            .replace("@LOG@", str(self.log_path))
        )
        text += "\n".join(["", *LOG_TYPES, f"user {getpass.getuser()}", ""])
        config = self.folder / "mosquitto.conf"
        config.write_text(text)
        return config

    def _tls_lines(self) -> list[str]:
        folder = self.folder
        if not self.ca_file.exists():
            ca = trustme.CA()
            server = ca.issue_cert("127.0.0.1", "localhost")
            ca.cert_pem.write_to_path(str(self.ca_file))
            server.private_key_pem.write_to_path(str(folder / "server.key"))
            server.cert_chain_pems[0].write_to_path(str(folder / "server.pem"))
            os.chmod(folder / "server.key", 0o600)
        return [f"cafile {self.ca_file}", f"certfile {folder / 'server.pem'}", f"keyfile {folder / 'server.key'}"]


async def _run(*command: str) -> None:
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await process.communicate()
    if process.returncode != 0:
        said = output.decode(errors="replace")
        raise MosquittoError(f"{' '.join(command[:2])} failed ({process.returncode}): {said}")
