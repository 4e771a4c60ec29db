"""``flightctl broker add-drone|add-relay|add-dispatch|add-operator|refresh-rules``: broker accounts and their
rules."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal, TextIO

import typer
from rich.text import Text

from flightctl.cli.common import JsonOption, console, errors, fail, report, run
from flightctl.errors import ConfigError

broker_app = typer.Typer(
    no_args_is_help=True,
    help="Broker accounts (passwords, client ids and per-account rules for mosquitto's dynamic-security plugin). "
    "Restart mosquitto afterwards.",
)

NameArgument = Annotated[str, typer.Argument(help="The account's user name (for a drone: its drone id).")]
DirOption = Annotated[
    Path, typer.Option("--dir", help="The accounts folder mosquitto reads (dynamic-security.json); made if missing.")
]
NewPasswordOption = Annotated[bool, typer.Option("--new-password", help="Give an existing account a new password.")]
SaveOption = Annotated[
    Path | None,
    typer.Option("--save-password", help="Write the password to this file (mode 0600) instead of printing it."),
]


def _add(
    kind_name: Literal["drone", "relay", "dispatch", "operator"],
    name: str,
    folder: Path,
    new_password: bool,
    save: Path | None,
    as_json: bool = False,
) -> None:
    from flightctl.ground.broker_accounts import AccountKind, BrokerAccounts  # here: `--help` stays quick

    kind = AccountKind(kind_name)
    accounts = BrokerAccounts(folder)
    # The file the password goes to is opened before the account is made: a password that could not be saved
    # would be lost for good (only its hash is kept).
    out = _open_secret_file(save) if save is not None else None
    try:
        password = run(lambda: accounts.add(name, kind, replace_password=new_password))
        if out is not None:
            out.write(password + "\n")
    finally:
        if out is not None:
            out.close()
    if as_json:
        record = {"account": name, "kind": kind.value, "accounts_file": str(accounts.config_path)}
        record |= {"password_file": str(save)} if save is not None else {"password": password}
        report(True, record, "")
    elif save is not None:
        errors.print(Text(f"{kind.value} account {name}: password written to {save}"))
    else:
        console.print(Text(password))
        errors.print(Text(f"{kind.value} account {name}: the password above is shown once; it is not stored"))
    if not as_json:
        errors.print(Text(f"accounts and rules in {accounts.config_path}; restart mosquitto to apply them"))


def _open_secret_file(path: Path) -> TextIO:
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    except OSError as exc:
        raise fail(ConfigError(f"--save-password: {path}: {exc.strerror}")) from None
    os.fchmod(descriptor, 0o600)  # an existing file keeps its mode through O_CREAT: make it ours alone
    os.ftruncate(descriptor, 0)
    return os.fdopen(descriptor, "w")


@broker_app.command("add-drone")
def add_drone(
    name: NameArgument,
    folder: DirOption,
    new_password: NewPasswordOption = False,
    save: SaveOption = None,
    as_json: JsonOption = False,
) -> None:
    """A drone: writes only its own events, telemetry and online; reads only its own orders and commands; connects
    only as client flightctl-NAME."""
    _add("drone", name, folder, new_password, save, as_json)


@broker_app.command("add-relay")
def add_relay(
    name: NameArgument,
    folder: DirOption,
    new_password: NewPasswordOption = False,
    save: SaveOption = None,
    as_json: JsonOption = False,
) -> None:
    """A status relay: reads every drone's events (plainly or through a shared subscription), nothing else;
    connects only as client flightctl-relay-NAME."""
    _add("relay", name, folder, new_password, save, as_json)


@broker_app.command("add-dispatch")
def add_dispatch(
    name: NameArgument,
    folder: DirOption,
    new_password: NewPasswordOption = False,
    save: SaveOption = None,
    as_json: JsonOption = False,
) -> None:
    """Dispatch: writes every drone's orders and reads their events (the answers)."""
    _add("dispatch", name, folder, new_password, save, as_json)


@broker_app.command("add-operator")
def add_operator(
    name: NameArgument,
    folder: DirOption,
    new_password: NewPasswordOption = False,
    save: SaveOption = None,
    as_json: JsonOption = False,
) -> None:
    """An operator: reads every drone's events, telemetry and online; sends commands (abort, status)."""
    _add("operator", name, folder, new_password, save, as_json)


@broker_app.command("refresh-rules")
def refresh_rules(folder: DirOption, as_json: JsonOption = False) -> None:
    """Rewrite every account's rules as this version makes them (after an upgrade), passwords untouched."""
    from flightctl.ground.broker_accounts import BrokerAccounts  # here: `--help` stays quick

    accounts = BrokerAccounts(folder)
    refreshed = run(accounts.refresh_rules)
    if as_json:
        names = [{"account": a.name, "kind": a.kind.value} for a in refreshed]
        report(True, {"accounts_file": str(accounts.config_path), "accounts": names}, "")
        return
    errors.print(
        Text(f"rules of {len(refreshed)} accounts rewritten in {accounts.config_path}; restart mosquitto to apply them")
    )
