"""The shipped mosquitto config and the accounts `flightctl broker add-*` makes, attacked on a real mosquitto:
one drone's credentials reach nothing of another's, anonymous and wrong passwords are refused, and ground
accounts can do only their own job."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from flightctl.errors import ConfigError
from flightctl.ground.broker_accounts import AccountKind, BrokerAccounts
from flightctl.mqtt.broker import BrokerError, BrokerRefused, MqttClient
from flightctl.mqtt.contract import Topics
from sitl.mosquitto import Mosquitto
from tests.ground.conftest import SHIPPED, Fleet

pytestmark = pytest.mark.mqtt
A, B = Topics("drone-a"), Topics("drone-b")


@dataclass
class Listener:
    client: MqttClient
    received: list[tuple[str, bytes]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        async for message in self.client.messages:
            assert isinstance(message.payload, bytes)
            self.received.append((str(message.topic), message.payload))
            self.arrived.set()

    async def until(self, payload: bytes, timeout_s: float = 10) -> list[tuple[str, bytes]]:
        """Everything received up to and including ``payload`` (a sentinel sent last)."""
        async with asyncio.timeout(timeout_s):
            while not any(p == payload for _t, p in self.received):
                self.arrived.clear()
                await self.arrived.wait()
        return self.received


@contextlib.asynccontextmanager
async def listening(
    fleet: Fleet, user: str, filters: list[str], *, session_expiry_s: int = 0
) -> AsyncIterator[Listener]:
    """``user`` receiving on ``filters``; with ``session_expiry_s`` (and no filters) back in its persistent session."""
    async with fleet.client(user, session_expiry_s=session_expiry_s) as client:
        for topic_filter in filters:
            with contextlib.suppress(BrokerError):  # a refused subscription is one way to get nothing
                await client.subscribe(topic_filter, qos=1)
        listener = Listener(client)
        task = asyncio.create_task(listener.run())
        try:
            yield listener
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, BrokerError):
                await task


async def publish(fleet: Fleet, user: str, topic: str, payload: bytes, *, retain: bool = False) -> None:
    async with fleet.client(user) as client:
        await client.publish_confirmed(topic, payload, timeout_s=10, retain=retain)


WILDCARDS = [
    "#", "+/#", "$SYS/#", "$share/g/#", "$share/g/flightctl/#", "$share/g/flightctl/v1/drones/#",
    "$share/g/flightctl/v1/drones/+/events", "flightctl/v1/drones/+/events", "flightctl/v1/drones/+/orders",
    "flightctl/v1/drones/#",
]  # fmt: skip
B_EXACT = [B.orders, B.commands, B.events, B.telemetry, B.online]


async def test_one_drone_receives_nothing_of_another(fleet: Fleet) -> None:
    """Test drone A's credentials subscribed to every wildcard and to drone B's exact topics: all of B's traffic
    (its own events, telemetry and retained online; its orders and commands from dispatch and operators) reaches
    A not at all, while A's own order (the sentinel, sent last) does."""
    await publish(fleet, "drone-b", B.online, b"b-online-retained", retain=True)
    async with listening(fleet, "drone-a", WILDCARDS + B_EXACT + [A.orders]) as drone_a:
        for topic in (B.events, B.telemetry, B.online):
            await publish(fleet, "drone-b", topic, b"b-" + topic.rsplit("/", 1)[1].encode())
        await publish(fleet, "dispatch-1", B.orders, b"b-order")
        await publish(fleet, "operator-1", B.commands, b"b-command")
        sentinel = f"a-order-{uuid.uuid4().hex}".encode()
        await publish(fleet, "dispatch-1", A.orders, sentinel)
        received = await drone_a.until(sentinel)
    # Overlapping subscriptions (#, +/#, the exact topic) may each deliver the sentinel: only it, once or more.
    assert set(received) == {(A.orders, sentinel)}


async def test_a_drone_cannot_write_to_another_drones_orders_or_commands(fleet: Fleet) -> None:
    """Test that drone A publishing to B's orders, commands and events is refused (PUBACK 0x87) and B receives
    none of it, while a real order from dispatch (the sentinel) reaches B."""
    async with listening(fleet, "drone-b", [B.orders, B.commands]) as drone_b:
        async with fleet.client("drone-a") as drone_a:
            for topic in (B.orders, B.commands, B.events, A.orders):
                with pytest.raises(BrokerRefused, match="0x87"):
                    await drone_a.publish_confirmed(topic, b"forged", timeout_s=10)
        sentinel = f"b-order-{uuid.uuid4().hex}".encode()
        await publish(fleet, "dispatch-1", B.orders, sentinel)
        received = await drone_b.until(sentinel)
    assert received == [(B.orders, sentinel)]


@pytest.mark.parametrize(
    ("user", "password"),
    [(None, None), ("drone-a", "wrong"), ("drone-a", ""), ("nobody", "x"), ("drone-a/#", "x"), ("drone-+", "x"),
     ("drone-#", "x"), ("%u", "x"), ("drone-a%", "x")],
)  # fmt: skip
async def test_anonymous_wrong_passwords_and_wildcard_names_are_refused(
    fleet: Fleet, user: str | None, password: str | None
) -> None:
    """Test that the broker refuses a connection without credentials, with a wrong password, or with a user name
    carrying MQTT wildcards, '/' or '%'."""
    with pytest.raises(BrokerError):
        async with fleet.client(user, password if password is not None else ""):
            pass


@pytest.mark.parametrize("name", ["drone-a/#", "drone+", "drone#", "%u", "a%c", "", "x" * 65, "dröne"])
async def test_accounts_with_wildcard_names_cannot_be_made(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError, match="letters, digits"):
        await BrokerAccounts(tmp_path).add(name, AccountKind.DRONE)


async def test_ground_accounts_do_only_their_job(fleet: Fleet) -> None:
    """Test that the relay reads events through its plain subscription (shared ones: test_broker_identity) and
    cannot read telemetry or orders, or publish orders or commands; dispatch cannot send commands; an operator
    cannot send orders."""
    relay_filter = "flightctl/v1/drones/+/events"
    async with listening(fleet, "relay-1", [relay_filter, B.telemetry, B.orders]) as relay:
        async with fleet.client("relay-2") as client:  # relay-1's one client id is the listener's
            for topic in (B.orders, B.commands, B.events):
                with pytest.raises(BrokerRefused):
                    await client.publish_confirmed(topic, b"forged", timeout_s=10)
        await publish(fleet, "drone-b", B.telemetry, b"not for the relay")
        await publish(fleet, "dispatch-1", B.orders, b"not for the relay either")
        await publish(fleet, "drone-b", B.events, b"b-event")
        assert await relay.until(b"b-event") == [(B.events, b"b-event")]
    async with fleet.client("dispatch-1") as dispatch:
        with pytest.raises(BrokerRefused):
            await dispatch.publish_confirmed(B.commands, b"forged", timeout_s=10)
    async with fleet.client("operator-1") as operator:
        with pytest.raises(BrokerRefused):
            await operator.publish_confirmed(B.orders, b"forged", timeout_s=10)


async def test_the_command_makes_accounts_and_shows_the_password_once(tmp_path: Path) -> None:
    """Test `flightctl broker add-drone`: the password printed once and stored only hashed, the drone bound to its
    client id with its own rules and no pattern that names other accounts, a second add refused without
    --new-password."""
    folder = tmp_path / "accounts"

    async def flightctl(*args: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "flightctl", "broker", *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await process.communicate()
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()

    code, out, err = await flightctl("add-drone", "orkney-07", "--dir", str(folder))
    assert code == 0, err
    assert len(out.strip()) >= 32
    assert "shown once" in err
    stored = (folder / "dynamic-security.json").read_text()
    config = json.loads(stored)
    (client,) = config["clients"]
    assert client["username"] == "orkney-07"
    assert client["clientid"] == "flightctl-orkney-07"
    (role,) = config["roles"]
    assert {"acltype": "publishClientSend", "topic": "flightctl/v1/drones/orkney-07/events", "priority": 0,
            "allow": True} in role["acls"]  # fmt: skip
    assert all("orkney-07" in acl["topic"] for acl in role["acls"])
    assert config["defaultACLAccess"] == {
        "publishClientSend": False, "publishClientReceive": False, "subscribe": False, "unsubscribe": True,
    }  # fmt: skip
    assert "%" not in stored
    assert out.strip() not in stored
    assert (folder / "dynamic-security.json").stat().st_mode & 0o777 == 0o640
    code, _out, err = await flightctl("add-drone", "orkney-07", "--dir", str(folder))
    assert code == 1
    assert "--new-password" in err


async def test_concurrent_adds_lose_no_account_and_the_broker_takes_every_one(tmp_path: Path) -> None:
    """Test eight `flightctl broker add-drone` runs at the same moment (a provisioning script in parallel): each
    says its password, and every account is in the file with a password the broker accepts."""
    folder = tmp_path / "accounts"
    names = [f"orkney-{n:02d}" for n in range(8)]

    async def add(name: str) -> tuple[str, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "flightctl", "broker", "add-drone", name, "--dir", str(folder),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        return name, out.decode().strip()

    passwords = dict(await asyncio.gather(*(add(name) for name in names)))
    accounts = BrokerAccounts(folder)
    assert sorted(a.name for a in accounts.accounts()) == names
    async with Mosquitto(tmp_path / "broker", template=SHIPPED, accounts_folder=folder) as broker:
        fleet = Fleet(broker, passwords, accounts)
        for name in names:
            async with fleet.client(name) as client:
                await client.publish_confirmed(Topics(name).events, b"here", timeout_s=10)


async def test_refresh_rules_gives_an_older_accounts_file_todays_rules_and_keeps_every_password(
    tmp_path: Path,
) -> None:
    """Test `flightctl broker refresh-rules` on a file whose relay role is as older versions made it (shared
    subscriptions only): refused a plain subscription before, granted it after, every password and client id as
    it was, and the drone still refused everyone's events."""
    folder = tmp_path / "accounts"
    accounts = BrokerAccounts(folder)
    passwords = {"relay-1": await accounts.add("relay-1", AccountKind.RELAY)}
    passwords["drone-a"] = await accounts.add("drone-a", AccountKind.DRONE)
    document = json.loads(accounts.config_path.read_text())
    (relay_role,) = [role for role in document["roles"] if "relay" in role["rolename"]]
    relay_role["acls"] = [acl for acl in relay_role["acls"] if acl["topic"] != "flightctl/v1/drones/+/events"
                          or acl["acltype"] != "subscribePattern"]  # fmt: skip
    accounts.config_path.write_text(json.dumps(document))
    clients_before = document["clients"]
    everyone = "flightctl/v1/drones/+/events"

    async with Mosquitto(tmp_path / "broker", template=SHIPPED, accounts_folder=folder) as broker:
        fleet = Fleet(broker, passwords, accounts)
        async with fleet.client("relay-1") as relay:
            with pytest.raises(BrokerRefused, match="0x87"):
                await relay.subscribe(everyone, qos=1)

        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "flightctl", "broker", "refresh-rules", "--dir", str(folder), "--json",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        assert [a["account"] for a in json.loads(out)["accounts"]] == ["drone-a", "relay-1"]
        assert json.loads(accounts.config_path.read_text())["clients"] == clients_before
        await broker.restart()

        async with fleet.client("relay-1") as relay:
            await relay.subscribe(everyone, qos=1)
        async with fleet.client("drone-a") as drone:
            with pytest.raises(BrokerRefused, match="0x87"):
                await drone.subscribe(everyone, qos=1)
