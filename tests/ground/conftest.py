"""A fleet's broker as shipped (configs/mosquitto/flightctl.conf, accounts made by `flightctl broker add-*`)."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from flightctl.config import configs_dir
from flightctl.ground.broker_accounts import AccountKind, BrokerAccounts, client_id_of
from flightctl.mqtt.broker import MqttClient, make_client
from flightctl.mqtt.endpoint import BrokerEndpoint
from sitl.mosquitto import Mosquitto
from tests.mqtt.conftest import require_mosquitto

SHIPPED = configs_dir() / "mosquitto" / "flightctl.conf"


@dataclass
class Fleet:
    broker: Mosquitto
    passwords: dict[str, str] = field(default_factory=dict)
    accounts: BrokerAccounts | None = None

    async def add(self, name: str, kind: AccountKind) -> None:
        """Another account, loaded by restarting the broker (as an operator applies one)."""
        assert self.accounts is not None
        self.passwords[name] = await self.accounts.add(name, kind)
        await self.broker.restart()

    def endpoint(self, user: str | None, password: str | None = None) -> BrokerEndpoint:
        secret = password if password is not None else self.passwords.get(user or "", "")
        return BrokerEndpoint.from_url(self.broker.url, username=user, password=secret, ca_file=self.broker.ca_file)

    def client(
        self, user: str | None, password: str | None = None, *, client_id: str | None = None, session_expiry_s: int = 0
    ) -> MqttClient:
        """A client of ``user``: a drone's or a relay's with the one id its account may use, unless told another."""
        if client_id is None:
            kinds = {a.name: a for a in self.accounts.accounts()} if self.accounts is not None else {}
            bound = client_id_of(kinds[user]) if user in kinds else None
            client_id = bound or f"t-{uuid.uuid4().hex[:10]}"
        return make_client(self.endpoint(user, password), client_id=client_id, session_expiry_s=session_expiry_s)


@contextlib.asynccontextmanager
async def open_fleet(folder: Path) -> AsyncIterator[Fleet]:
    """The shipped broker config with two drones, two relays, dispatch and an operator."""
    require_mosquitto()
    accounts = BrokerAccounts(folder / "accounts")
    passwords = {}
    for name, kind in [
        ("drone-a", AccountKind.DRONE), ("drone-b", AccountKind.DRONE), ("relay-1", AccountKind.RELAY),
        ("relay-2", AccountKind.RELAY), ("dispatch-1", AccountKind.DISPATCH), ("operator-1", AccountKind.OPERATOR),
    ]:  # fmt: skip
        passwords[name] = await accounts.add(name, kind)
    async with Mosquitto(folder / "broker", template=SHIPPED, accounts_folder=accounts.folder) as broker:
        yield Fleet(broker, passwords, accounts)


@pytest.fixture
async def fleet(tmp_path: Path) -> AsyncIterator[Fleet]:
    async with open_fleet(tmp_path) as opened:
        yield opened


def require_program(path: str, package: str) -> None:
    """Skip without a program the test names; under CI (CI=true) its absence fails the run instead."""
    if shutil.which(path) or Path(path).exists():
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {path} is not installed (apt-get install {package})", pytrace=False)
    pytest.skip(f"{path} is not installed (apt-get install {package})")
