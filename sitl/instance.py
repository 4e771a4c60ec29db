"""One ArduPilot SITL process: start it, connect to it, wait until it could arm, stop exactly it.

Ports for instance N (``-I N``): SERIAL0 is sent as UDP to our harness port (``--serial0 udpclient``), so the
simulation never waits for a client and never stalls on a reader that went away; SERIAL1 and SERIAL2 stay
TCP servers on 5762+10N and 5763+10N for other clients (``flightctl status``, MAVProxy, a serial bridge).
With ``remote_id=True`` the instance flies as a UK aircraft must: OpenDroneID on and enforced at arming
(configs/params/remote-id.parm), SERIAL5 sent as UDP to a simulated transmitter module on 14565+10N
(sitl/remote_id_tx.py). ``companion``: the operator's Remote ID settings the harness link sends, as the
companion computer would; without them nothing arms until the code under test sends them.
SITL's own console output goes straight to a file in its working directory: nothing to drain, nothing to
block, and the tail is at hand when something fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import tempfile
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import TypeVar

from flightctl.config import configs_dir, load_telemetry_config
from flightctl.errors import FlightctlError
from flightctl.tasks import cancel_and_wait
from flightctl.vehicle.ftp import FtpError
from flightctl.vehicle.remote_id_settings import RemoteIdSettings
from flightctl.vehicle.telemetry import stream_rates
from flightctl.vehicle.vehicle import LinkOptions, Vehicle
from sitl.errors import SitlError
from sitl.locations import Home
from sitl.paths import (
    VehicleKind,
    ardupilot_defaults,
    ardupilot_home,
    delivery_params,
    model_defaults,
    sitl_binary,
    sitl_model,
)
from sitl.remote_id_tx import SimulatedTransmitter

log = logging.getLogger(__name__)

T = TypeVar("T")

HARNESS_UDP_BASE = 14560
TRANSMITTER_UDP_BASE = 14565
SERIAL1_TCP_BASE = 5762
SERIAL2_TCP_BASE = 5763


CRASH_REPORT_START = "begin dumpstack.sh output"
CRASH_REPORT_LINES = 150


class SitlInstance:
    """``async with SitlInstance(...) as sim: sim.vehicle ...`` starts SITL and returns once it is ready."""

    def __init__(
        self,
        *,
        home: Home,
        vehicle: VehicleKind = "copter",
        model: str | None = None,
        instance: int = 0,
        speedup: float = 1.0,
        params: Sequence[Path] | None = None,
        workdir: Path | None = None,
        ready_timeout_s: float = 180.0,
        remote_id: bool = False,
        companion: RemoteIdSettings | None = None,
    ) -> None:
        if not 0 <= instance <= 50:
            raise SitlError(f"SITL instance {instance} is outside 0..50")
        # ``model``: a SITL model other than the binary's default (``quadplane`` runs on ArduPlane), with
        # ArduPilot's defaults for it and ours on top.
        defaults = [ardupilot_defaults(vehicle), delivery_params(vehicle)]
        if model is not None:
            vehicle, ardupilot_file, ours = model_defaults(model)
            defaults = [ardupilot_file, ours]
        self.kind: VehicleKind = vehicle
        self.model = model or sitl_model(vehicle)
        self.instance = instance
        self.speedup = speedup
        self.home = home
        self.binary = sitl_binary(vehicle)
        self.param_files = list(params) if params is not None else defaults
        self.remote_id = remote_id or companion is not None
        if self.remote_id:
            self.param_files.append(configs_dir() / "params" / "remote-id.parm")
        self.companion = companion
        self._transmitter: SimulatedTransmitter | None = None
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix=f"flightctl-sitl-{vehicle}-{instance}-"))
        self.ready_timeout_s = ready_timeout_s
        self._process: asyncio.subprocess.Process | None = None
        self._exits = contextlib.AsyncExitStack()
        self._exits_transmitter = contextlib.AsyncExitStack()  # outlives restarts, like the module on the port
        self._vehicle: Vehicle | None = None

    # ---- addresses -------------------------------------------------------------------------------------

    @property
    def harness_url(self) -> str:
        return f"udpin:127.0.0.1:{HARNESS_UDP_BASE + 10 * self.instance}"

    @property
    def serial1_url(self) -> str:
        return f"tcp:127.0.0.1:{SERIAL1_TCP_BASE + 10 * self.instance}"

    @property
    def serial2_url(self) -> str:
        return f"tcp:127.0.0.1:{SERIAL2_TCP_BASE + 10 * self.instance}"

    @property
    def transmitter_url(self) -> str:
        return f"udpin:127.0.0.1:{TRANSMITTER_UDP_BASE + 10 * self.instance}"

    @property
    def transmitter(self) -> SimulatedTransmitter:
        if self._transmitter is None:
            raise SitlError("this SITL instance runs without Remote ID (SitlInstance(remote_id=True))")
        return self._transmitter

    @property
    def log_path(self) -> Path:
        return self.workdir / "sitl.log"

    @property
    def vehicle(self) -> Vehicle:
        if self._vehicle is None:
            raise SitlError("SITL instance is not started")
        return self._vehicle

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    async def wait_exit(self, timeout_s: float) -> int:
        """The exit code once the process has ended (a crash, a stop): SitlError if it is still there."""
        if self._process is None:
            raise SitlError("SITL was never started")
        try:
            async with asyncio.timeout(timeout_s):
                return await self._process.wait()
        except TimeoutError:
            raise SitlError(f"SITL still running {timeout_s:g} s later") from None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    # ---- lifecycle -------------------------------------------------------------------------------------

    async def __aenter__(self) -> SitlInstance:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    def command_line(self) -> list[str]:
        for path in self.param_files:
            if not path.is_file():
                raise SitlError(f"SITL parameter file not found: {path}")
        remote_id = ["--serial5", f"udpclient:127.0.0.1:{TRANSMITTER_UDP_BASE + 10 * self.instance}"]
        return [
            str(self.binary),
            "--model",
            self.model,
            "--speedup",
            f"{self.speedup:g}",
            "--home",
            self.home.sitl_arg(),
            "--defaults",
            ",".join(str(path) for path in self.param_files),
            "-I",
            str(self.instance),
            "--serial0",
            f"udpclient:127.0.0.1:{HARNESS_UDP_BASE + 10 * self.instance}",
            *(remote_id if self.remote_id else []),
        ]

    async def start(self) -> None:
        """Start SITL from a clean state (no eeprom.bin), connect on SERIAL0, wait until it could arm."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "eeprom.bin").unlink(missing_ok=True)
        if self.remote_id and self._transmitter is None:
            self._transmitter = await self._exits_transmitter.enter_async_context(
                SimulatedTransmitter(self.transmitter_url)
            )
        await self.spawn()
        await self._connect_primary()

    async def spawn(self) -> None:
        """Only the process; keeps eeprom.bin (parameters survive a restart, as on a real autopilot)."""
        args = self.command_line()
        self._offer_crash_scripts()
        log.info("starting SITL: %s (in %s)", " ".join(args), self.workdir)
        with self.log_path.open("ab") as output:
            self._process = await asyncio.create_subprocess_exec(
                *args,
                cwd=self.workdir,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=output,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() kills it and only it
            )

    def _offer_crash_scripts(self) -> None:
        """SITL answers a crash (a segfault, a panic) by running ArduPilot's dumpstack.sh, which prints every
        thread's stack through gdb, from ``Tools/scripts`` under its working directory: link them there, so a
        crash in a test says where it happened. Without gdb installed, the crash is still reported, bare."""
        scripts = ardupilot_home() / "Tools" / "scripts"
        link = self.workdir / "Tools" / "scripts"
        if scripts.is_dir() and not link.exists():
            link.parent.mkdir(exist_ok=True)
            link.symlink_to(scripts, target_is_directory=True)

    async def _connect_primary(self) -> None:
        vehicle = await self._exits.enter_async_context(
            Vehicle.connect(
                self.harness_url,
                options=LinkOptions(link_timeout_s=5.0),
                heartbeat_timeout_s=60.0,
                rates_hz=stream_rates(load_telemetry_config().rates_hz),
            )
        )
        self._vehicle = vehicle
        if self.remote_id and self.companion is None:
            # The autopilot's pre-arm checks fail until somebody sends the operator's part: the code under test.
            await self.guard(
                vehicle.telemetry.wait_until(
                    lambda s: s.ekf_nav_ready and (s.gps_fix_type or 0) >= 3 and s.home is not None,
                    timeout_s=self.ready_timeout_s,
                    what="EKF navigating and a 3D fix (Remote ID left to the code under test)",
                ),
                "waiting for SITL to navigate",
            )
        else:
            await self._exits.enter_async_context(vehicle.remote_id.broadcasting(self.companion))
            await self.guard(vehicle.wait_ready(timeout_s=self.ready_timeout_s), "waiting for SITL to be ready to arm")
        if vehicle.mission.mission_files:
            # ArduPilot's FTP worker checks for send space on the link that used FTP first, whoever it
            # answers (GCS_FTP.cpp, send_ftp_reply). A TCP port nobody drains any more (a CLI that came and
            # went) would stall FTP for every link; the harness link is UDP, always drained, so it goes first.
            await self.guard(_ping_ftp(vehicle), "asking SITL's MAVFTP server for an answer")

    async def guard(self, work: Awaitable[T], doing: str) -> T:
        """Run ``work``; if SITL dies meanwhile, or ``work`` fails, raise SitlError with SITL's last words."""
        process = self._process
        if process is None:
            raise SitlError("SITL is not running")
        work_task = asyncio.ensure_future(work)
        exit_task = asyncio.ensure_future(process.wait())
        try:
            done, _ = await asyncio.wait({work_task, exit_task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            exit_task.cancel()
        if work_task in done:
            try:
                return work_task.result()
            except FlightctlError as exc:
                raise SitlError(f"{doing}: {exc}\n--- SITL output (tail) ---\n{self.output_tail()}") from exc
        failed = await cancel_and_wait(work_task)
        if failed is not None and not isinstance(failed, FlightctlError):
            raise failed
        raise SitlError(
            f"{doing}: SITL exited with code {process.returncode}\n--- SITL output (tail) ---\n{self.output_tail()}"
        )

    async def restart(self) -> None:
        """Stop and start the process keeping its parameters (eeprom.bin), then reconnect and wait ready."""
        await self._disconnect()
        await self._terminate()
        await self.spawn()
        await self._connect_primary()

    async def stop(self) -> None:
        await self._disconnect()
        await self._terminate()
        await self._exits_transmitter.aclose()
        self._transmitter = None
        if self._own_workdir and os.environ.get("FLIGHTCTL_KEEP_SITL") is None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    async def _disconnect(self) -> None:
        await self._exits.aclose()
        self._exits = contextlib.AsyncExitStack()
        self._vehicle = None

    async def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        for sig, grace_s in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace_s):
                    await process.wait()
            if process.returncode is not None:
                return
        raise SitlError(f"SITL process {process.pid} did not exit after SIGKILL")

    def output_tail(self, lines: int = 40) -> str:
        """SITL's last ``lines`` of output, after the start of its crash report if it crashed (the crashing
        thread's stack comes first in it; the whole report is in ``log_path``)."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            return f"(no SITL output: {exc})"
        all_lines = text.splitlines()
        crash = next((n for n, line in enumerate(all_lines) if CRASH_REPORT_START in line), None)
        tail = "\n".join(all_lines[-lines:])
        if crash is None or crash >= len(all_lines) - lines:
            return tail
        report = "\n".join(all_lines[max(crash - 5, 0) : crash + CRASH_REPORT_LINES])
        return f"{report}\n[... the crash report goes on in SITL's log ...]\n{tail}"

    def __repr__(self) -> str:
        state = "RUNNING" if self.running else "STOPPED"
        return f"<SitlInstance {self.model} -I {self.instance} x{self.speedup:g} [{state}]>"


async def _ping_ftp(vehicle: Vehicle) -> None:
    try:
        await vehicle.ftp.ping()
    except FtpError as exc:
        log.warning("SITL's MAVFTP server did not answer (%s); uploads will use the mission protocol", exc)
