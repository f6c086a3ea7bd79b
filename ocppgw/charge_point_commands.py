"""``ocppgw charge-points``: add, set-password, remove and list.

They work on the SQLite folder's registry, or on the AWS deployment's
DynamoDB ``ChargePointTable`` when ``DYNAMODB_CHARGE_POINT_TABLE`` names it
(``registry_commands.DynamoDbCommands``), with the same output and exit
codes either way.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import orjson

from ocppj import (
    InvalidIdentity,
    check_identity,
    check_password_length,
    generate_password,
    hash_password,
)
from processor.adapters import Database, SqliteRegistry

from .registry_commands import CommandError, DynamoDbCommands, Registry, UsageError
from .settings import DevSettings, DynamoDbRegistrySettings, SettingsError

__all__ = [
    "add",
    "list_entries",
    "open_database",
    "open_registry",
    "remove",
    "set_password",
]


def add(args: argparse.Namespace, settings: DevSettings) -> int:
    ids = [check_identity(cp) for cp in args.ids]
    if args.file is not None:
        ids.extend(_identities_from_file(args.file))
    if not ids:
        raise UsageError("no charge point identity given (as arguments or with --file)")
    ids = list(dict.fromkeys(ids))  # once each, in the order given
    # Passwords live only in this process's memory until printed; the registry
    # gets their hashes.
    passwords = {cp: generate_password() for cp in ids} if args.password else {}
    hashes = {cp: hash_password(password.encode()) for cp, password in passwords.items()}
    failure = None
    with open_registry(args, settings) as registry:
        try:
            added = set(registry.add(ids, datetime.now(UTC), passwords=hashes))
        except CommandError as exc:
            # DynamoDB writes one identity at a time: report those written
            # (and their passwords, never to be seen again) before the error.
            failure, added = exc, set(exc.done)
            ids = [cp for cp in ids if cp in added]
    _report_added(args, ids, added, passwords)
    if failure is not None:
        raise failure
    return 0


def _report_added(
    args: argparse.Namespace, ids: Sequence[str], added: set[str], passwords: Mapping[str, str]
) -> None:
    if not args.password:
        for cp in ids:
            print(f"registered {cp}" if cp in added else f"{cp} was already registered")
        return
    for cp in ids:
        if cp in added:
            print(f"{cp}\t{passwords[cp]}")
        else:
            print(
                f"ocppgw: {cp} was already registered; its password is unchanged "
                "(charge-points set-password gives it a new one)",
                file=sys.stderr,
            )
    if added:
        _password_notice()


def _identities_from_file(path: Path) -> list[str]:
    """Identities of a UTF-8 file (a byte-order mark is allowed), one a line;
    an invalid one names its line."""
    name = "<stdin>" if str(path) == "-" else str(path)
    data = sys.stdin.buffer.read() if name == "<stdin>" else path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{name}: not UTF-8 text (byte {exc.start})") from None
    return _identities(text.splitlines(), name)


def _identities(lines: Iterable[str], name: str) -> list[str]:
    ids = []
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            ids.append(check_identity(text))
        except InvalidIdentity as exc:
            raise InvalidIdentity(f"{name} line {number}: {exc}") from None
    return ids


def set_password(args: argparse.Namespace, settings: DevSettings) -> int:
    if args.password_stdin:
        password = _password_from_stdin()
        try:
            check_password_length(password)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    else:
        password = generate_password().encode()
    with open_registry(args, settings) as registry:
        changed = registry.set_password_hash(args.id, hash_password(password))
    if not changed:
        print(f"ocppgw: error: {args.id} is not registered", file=sys.stderr)
        return 1
    if args.password_stdin:
        print(f"password of {args.id} set")
    else:
        print(f"{args.id}\t{password.decode()}")
        _password_notice()
    return 0


def _password_from_stdin() -> bytes:
    """Standard input as bytes (a password need not be text), less one trailing newline."""
    data = sys.stdin.buffer.read()
    for ending in (b"\r\n", b"\n"):
        if data.endswith(ending):
            return data[: -len(ending)]
    return data


def _password_notice() -> None:
    print(
        "ocppgw: passwords are not stored (only their hashes) and cannot be shown again; "
        "configure each charger now (AuthorizationKey / BasicAuthPassword)",
        file=sys.stderr,
    )


def remove(args: argparse.Namespace, settings: DevSettings) -> int:
    with open_registry(args, settings) as registry:
        removed = set(registry.remove(args.ids))
    missing = [cp for cp in args.ids if cp not in removed]
    for cp in args.ids:
        if cp in removed:
            print(f"removed {cp}")
    for cp in missing:
        print(f"ocppgw: error: {cp} is not registered", file=sys.stderr)
    return 1 if missing else 0


def list_entries(args: argparse.Namespace, settings: DevSettings) -> int:
    with open_registry(args, settings) as registry:
        rows = registry.entries()
    if args.json:
        entries = [
            {"chargePointId": cp, "registrationTime": at, "hasPassword": has_password}
            for cp, at, has_password in rows
        ]
        print(orjson.dumps(entries, option=orjson.OPT_INDENT_2).decode())
    else:
        for cp, at, has_password in rows:
            print(f"{cp}\t{at}\t{'password' if has_password else '-'}")
    return 0


@contextlib.contextmanager
def open_registry(args: argparse.Namespace, settings: DevSettings) -> Iterator[Registry]:
    """The registry to work on: the DynamoDB table that DYNAMODB_CHARGE_POINT_TABLE
    names, or else the SQLite folder's."""
    try:
        table = DynamoDbRegistrySettings.from_env(args.environ)
    except SettingsError as exc:
        raise CommandError(str(exc), status=2) from None
    if table is None:
        with open_database(settings) as database:
            yield SqliteRegistry(database)
        return
    if args.data_dir is not None:
        # Two registries named: refuse rather than pick one, since writing the
        # wrong one (production for a test folder) would go unnoticed.
        raise UsageError(
            "--data-dir names a SQLite registry, but DYNAMODB_CHARGE_POINT_TABLE is set; "
            "unset one of them"
        )
    yield DynamoDbCommands(table)


@contextlib.contextmanager
def open_database(settings: DevSettings) -> Iterator[Database]:
    database = Database(settings.data_dir)
    try:
        yield database
    finally:
        database.close()
