"""A real nginx in front of the tracking page, on a free port, everything it writes kept in one folder.

Two of them: ``TrackingProxy`` runs the site we ship (configs/nginx/tracking.conf), as a deployment would;
``CachingProxy`` switches ``proxy_cache`` on, the shared cache that, in front of a personal page, is a common way
one customer gets another's page. It keeps nginx's own rules for what it may cache (it honours Cache-Control,
Vary and Set-Cookie), as a deployment would, and reports ``X-Cache-Status`` so a test can see that nothing
personal was ever served from the cache."""

from __future__ import annotations

import asyncio
import getpass
import shutil
from pathlib import Path
from typing import Self

from flightctl.config import configs_dir
from sitl.errors import SitlError
from sitl.mosquitto import free_port
from sitl.processes import accepts_tcp, end_process

START_TIMEOUT_S = 15.0
SHIPPED_SITE = configs_dir() / "nginx" / "tracking.conf"


class NginxError(SitlError):
    """nginx is missing, or did not start."""


def nginx_binary() -> str:
    for candidate in (shutil.which("nginx"), "/usr/sbin/nginx"):
        if candidate and Path(candidate).exists():
            return candidate
    raise NginxError("nginx is not installed (Debian: apt-get install nginx-light or nginx)")


class _Nginx:
    def __init__(self, folder: Path, upstream_port: int) -> None:
        self.folder = folder
        self.upstream_port = upstream_port
        self.port = free_port()
        self._process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _http_block(self) -> str:
        raise NotImplementedError

    def _config(self) -> str:
        f = self.folder
        return f"""
user {getpass.getuser()};
worker_processes 1;
pid {f}/nginx.pid;
error_log {f}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    client_body_temp_path {f}/body; proxy_temp_path {f}/proxy; fastcgi_temp_path {f}/fastcgi;
    uwsgi_temp_path {f}/uwsgi; scgi_temp_path {f}/scgi;
{self._http_block()}
}}
"""

    async def __aenter__(self) -> Self:
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self.folder / "nginx.conf"
        config.write_text(self._config())
        self._process = await asyncio.create_subprocess_exec(
            nginx_binary(), "-c", str(config), "-p", str(self.folder), "-g", "daemon off;",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                while not await accepts_tcp(self.port):
                    if self._process.returncode is not None:
                        errors = (self.folder / "error.log").read_text(errors="replace")[-2000:]
                        raise NginxError(f"nginx exited with {self._process.returncode}: {errors}")
                    await asyncio.sleep(0.05)
        except TimeoutError:
            await self.__aexit__()
            raise NginxError(f"nginx did not listen on {self.port} within {START_TIMEOUT_S:g} s") from None
        return self

    async def __aexit__(self, *_exc: object) -> None:
        process, self._process = self._process, None
        await end_process(process)


class TrackingProxy(_Nginx):
    """The shipped site, its placeholders filled in for this folder and port."""

    @property
    def access_log(self) -> Path:
        return self.folder / "tracking.access.log"

    def _http_block(self) -> str:
        return (
            SHIPPED_SITE.read_text()
            .replace("@LISTEN@", f"127.0.0.1:{self.port}")
            .replace("@RELAY@", f"127.0.0.1:{self.upstream_port}")
            .replace("@ACCESS_LOG@", str(self.access_log))
            .replace("@ERROR_LOG@", str(self.folder / "tracking.error.log"))
        )


class CachingProxy(_Nginx):
    def _http_block(self) -> str:
        f = self.folder
        return f"""
    access_log {f}/access.log;
    proxy_cache_path {f}/cache levels=1:2 keys_zone=pages:10m max_size=100m inactive=60m;
    server {{
        listen 127.0.0.1:{self.port};
        location / {{
            proxy_pass http://127.0.0.1:{self.upstream_port};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_cache pages;
            proxy_cache_valid 200 301 404 10m;
            proxy_cache_key $scheme$host$request_uri;
            proxy_buffering off;
            add_header X-Cache-Status $upstream_cache_status always;
        }}
    }}
"""
