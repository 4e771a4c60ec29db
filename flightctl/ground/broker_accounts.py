"""Broker accounts and their access rules, made by a command (``flightctl broker add-*``), never by hand.

mosquitto enforces them through the dynamic-security plugin it ships (``mosquitto_dynamic_security.so``), whose
one file (``dynamic-security.json`` in the accounts folder) this module writes. Not the plain ``acl_file``: in
mosquitto 2.0 it grants every SUBSCRIBE and checks only at delivery (``src/security_default.c``: "FIXME -
implement ACL subscription strings"), so a drone account could join the relays' shared subscription, be handed
a share of every drone's events, and have them dropped as unauthorised: lost. The plugin checks a subscription
when it is made, shared ones with their ``$share/<group>/`` prefix (``plugins/dynamic-security/acl.c``), and
binds an account to its client id (``auth.c``: a client with a ``clientid`` may connect with that id only).
See https://mosquitto.org/documentation/dynamic-security/.

What each kind of account may do (the defaults deny everything else, ``$SYS`` and ``$CONTROL`` included):

- drone ID: write its own events, telemetry and online; subscribe to and read its own orders and commands;
  connects only as client ``flightctl-ID``, so it can neither take another client's id (a relay's, another
  drone's: their session and the orders queued in it) nor be displaced by anyone else's account;
- relay NAME: subscribe to every drone's events, plainly or through a shared subscription
  (``$share/<any group>/...``), and read them; connects only as ``flightctl-relay-NAME``;
- dispatch: write every drone's orders; subscribe to and read every drone's events (the answers);
- operator: subscribe to and read every drone's events, telemetry and online; write every drone's commands.

Dispatch and operator accounts are not bound to one client id: each command opens a connection of its own, and
several run at once. They are ground accounts that never leave the operator's systems.

Passwords are 192 random bits, stored as mosquitto stores them (PBKDF2-HMAC-SHA512, 12 bytes of salt, base64).
Names are letters, digits, ``_`` and ``-`` only: no MQTT wildcard, separator or ``%`` reaches a rule. The file is
rewritten whole, atomically, under a lock, so concurrent ``add-*`` never lose an account. mosquitto reads it
when it starts (a SIGHUP does not reload a plugin): restart it to apply a change.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import enum
import fcntl
import grp
import hashlib
import json
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flightctl.errors import ConfigError
from flightctl.files import write_atomically
from flightctl.mqtt.contract import DRONE_ID_PATTERN, TOPIC_ROOT, drone_client_id, relay_client_id

# 24 random bytes: 192 bits, far beyond guessing; URL-safe so it can sit in a URL or a config file.
PASSWORD_BYTES = 24
# mosquitto's own parameters (src/password_mosq.h: SALT_LEN 12, PW_DEFAULT_ITERATIONS 101). Random passwords of
# 192 bits need no stretching; a broker checking hundreds of reconnecting drones at once needs it cheap.
SALT_BYTES = 12
ITERATIONS = 101
CONFIG_FILE = "dynamic-security.json"
BROKER_GROUP = "mosquitto"  # Debian's mosquitto runs as this user and group


class AccountKind(enum.StrEnum):
    DRONE = "drone"
    RELAY = "relay"
    DISPATCH = "dispatch"
    OPERATOR = "operator"


@dataclass(frozen=True)
class Account:
    name: str
    kind: AccountKind


class AccountError(ConfigError):
    """An account could not be made (a bad name, one that exists, a folder that is not an accounts folder)."""


def check_name(name: str) -> str:
    if not re.fullmatch(DRONE_ID_PATTERN, name):
        raise ConfigError(
            f"account name {name!r}: letters, digits, '_' and '-' only, 1 to 64 (no MQTT wildcards, '/' or '%')"
        )
    return name


def client_id_of(account: Account) -> str | None:
    """The one client id an account may connect with, or None for a ground tool's (any id)."""
    if account.kind is AccountKind.DRONE:
        return drone_client_id(account.name)
    if account.kind is AccountKind.RELAY:
        return relay_client_id(account.name)
    return None


def _acl(acltype: str, topic: str) -> dict[str, Any]:
    return {"acltype": acltype, "topic": topic, "priority": 0, "allow": True}


def _reads(topic: str) -> list[dict[str, Any]]:
    return [_acl("subscribePattern", topic), _acl("publishClientReceive", topic)]


def rules_for(account: Account) -> list[dict[str, Any]]:
    """The dynamic-security ACLs of one account's role."""
    every = f"{TOPIC_ROOT}/+"
    if account.kind is AccountKind.DRONE:
        own = f"{TOPIC_ROOT}/{account.name}"
        return [
            *(_acl("publishClientSend", f"{own}/{leaf}") for leaf in ("events", "telemetry", "online")),
            *(_acl(kind, f"{own}/{leaf}") for leaf in ("orders", "commands")
              for kind in ("subscribeLiteral", "publishClientReceive")),
        ]  # fmt: skip
    if account.kind is AccountKind.RELAY:
        return [
            _acl("subscribePattern", f"{every}/events"),
            _acl("subscribePattern", f"$share/+/{every}/events"),
            _acl("publishClientReceive", f"{every}/events"),
        ]
    if account.kind is AccountKind.DISPATCH:
        return [_acl("publishClientSend", f"{every}/orders"), *_reads(f"{every}/events")]
    return [
        *_reads(f"{every}/events"),
        *_reads(f"{every}/telemetry"),
        *_reads(f"{every}/online"),
        _acl("publishClientSend", f"{every}/commands"),
    ]


def _role_name(account: Account) -> str:
    return f"flightctl-{account.kind.value}-{account.name}"


def password_record(password: str) -> dict[str, Any]:
    """What the plugin stores of a password (``plugins/dynamic-security/auth.c``, ``dynsec_auth__pw_hash``)."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, ITERATIONS, dklen=64)
    return {
        "salt": base64.b64encode(salt).decode(),
        "password": base64.b64encode(digest).decode(),
        "iterations": ITERATIONS,
    }


class BrokerAccounts:
    """The accounts folder: ``dynamic-security.json`` (what mosquitto reads) and a lock file."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @property
    def config_path(self) -> Path:
        return self.folder / CONFIG_FILE

    def accounts(self) -> list[Account]:
        return [account for account, _record in self._clients(self._read())]

    async def add(self, name: str, kind: AccountKind, *, replace_password: bool = False) -> str:
        """Make (or, with ``replace_password``, re-key) an account; its new password, shown once."""
        check_name(name)
        return await asyncio.to_thread(self._add, Account(name, kind), replace_password)

    def _add(self, account: Account, replace_password: bool) -> str:
        with self._locked():
            config = self._read()
            clients = self._clients(config)
            existing = next((a for a, _r in clients if a.name == account.name), None)
            if existing is not None and existing.kind is not account.kind:
                raise AccountError(f"{account.name!r} is already a {existing.kind.value} account")
            if existing is not None and not replace_password:
                raise AccountError(f"{account.name!r} exists; use --new-password to give it a new password")
            password = secrets.token_urlsafe(PASSWORD_BYTES)
            records = {a.name: record for a, record in clients}
            records[account.name] = self._client(account) | password_record(password)
            self._write(self._document(records))
            return password

    async def refresh_rules(self) -> list[Account]:
        """Write every account's rules as this flightctl makes them, passwords and client ids untouched: how an
        accounts file made by an older flightctl gets rules a newer one needs. The accounts, in name order."""
        return await asyncio.to_thread(self._refresh_rules)

    def _refresh_rules(self) -> list[Account]:
        with self._locked():
            if not self.config_path.exists():
                raise AccountError(f"{self.config_path}: no accounts to refresh (make them: flightctl broker add-*)")
            clients = self._clients(self._read())
            records = {account.name: record | self._client(account) for account, record in clients}
            self._write(self._document(records))
            return sorted((account for account, _record in clients), key=lambda a: a.name)

    def _client(self, account: Account) -> dict[str, Any]:
        client: dict[str, Any] = {
            "username": account.name,
            "textname": f"flightctl {account.kind.value}",
            "roles": [{"rolename": _role_name(account), "priority": 0}],
        }
        if (client_id := client_id_of(account)) is not None:
            client["clientid"] = client_id
        return client

    def _document(self, records: dict[str, dict[str, Any]]) -> dict[str, Any]:
        accounts = [self._account(record) for record in records.values()]
        return {
            "defaultACLAccess": {
                "publishClientSend": False,
                "publishClientReceive": False,
                "subscribe": False,
                "unsubscribe": True,
            },
            "clients": [records[name] for name in sorted(records)],
            "groups": [],
            "roles": [
                {"rolename": _role_name(account), "acls": rules_for(account)}
                for account in sorted(accounts, key=lambda a: a.name)
            ],
        }

    def _read(self) -> dict[str, Any]:
        if not self.config_path.exists():
            old = [self.folder / n for n in ("accounts.json", "passwords", "acl") if (self.folder / n).exists()]
            if old:
                raise AccountError(
                    f"{self.folder} holds accounts in the old password-file format ({', '.join(p.name for p in old)}), "
                    "which cannot refuse a subscription: make the accounts again in a new folder"
                )
            return {"clients": []}
        try:
            document = json.loads(self.config_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise AccountError(f"{self.config_path}: not an accounts file this flightctl wrote ({exc})") from None
        if not isinstance(document, dict) or not isinstance(document.get("clients"), list):
            raise AccountError(f"{self.config_path}: not an accounts file this flightctl wrote (no list of clients)")
        return document

    def _clients(self, document: dict[str, Any]) -> list[tuple[Account, dict[str, Any]]]:
        clients = []
        for record in document["clients"]:
            try:
                clients.append((self._account(record), record))
            except (ValueError, KeyError, TypeError, ConfigError) as exc:
                raise AccountError(f"{self.config_path}: an account this flightctl did not write ({exc})") from None
        return clients

    @staticmethod
    def _account(record: dict[str, Any]) -> Account:
        kind = AccountKind(str(record["textname"]).removeprefix("flightctl "))
        return Account(check_name(record["username"]), kind)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One writer at a time (two operators, a provisioning script running in parallel): the lock dies with
        its process, so a killed command never leaves the folder locked."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            os.chmod(self.folder, 0o750)
            descriptor = os.open(self.folder / ".lock", os.O_WRONLY | os.O_CREAT, 0o600)
        except OSError as exc:
            raise AccountError(f"accounts folder {self.folder}: {exc.strerror}") from None
        _share_with_broker(self.folder)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)

    def _write(self, document: dict[str, Any]) -> None:
        text = json.dumps(document, indent=1) + "\n"
        write_atomically(self.config_path, text, mode=0o640, before_replace=_share_with_broker)


def _share_with_broker(path: Path) -> None:
    """Group-readable by mosquitto (it reads the file after dropping to its own user), when we may say so."""
    with contextlib.suppress(KeyError, PermissionError):
        os.chown(path, -1, grp.getgrnam(BROKER_GROUP).gr_gid)
