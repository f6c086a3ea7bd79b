"""``ocppgw``: run the system and manage its state from the command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from ocppj import (
    InvalidIdentity,
)
from processor.adapters import SqliteShadowStore
from processor.clock import SystemClock

from . import charge_point_commands, remote
from .embedded import run_embedded
from .gateway_service import GatewaySettings
from .logs import configure_logging
from .processes import run_gateways, run_workers, stop_on_signals
from .registry_commands import CommandError, UsageError
from .settings import (
    ENVIRONMENT,
    DevSettings,
    SettingsError,
)
from .worker import WorkerSettings

__all__ = ["main"]

log = logging.getLogger("ocppgw")


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run one ``ocppgw`` command; return its exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    args.environ = os.environ if environ is None else environ
    try:
        settings = DevSettings.from_env(args.environ)
    except SettingsError as exc:
        parser.error(str(exc))
    if getattr(args, "data_dir", None) is not None:
        settings = replace(settings, data_dir=args.data_dir)
    try:
        return int(args.command(args, settings))
    except SettingsError as exc:
        # A deployable's own settings, or what start-up makes of them (TLS
        # files, the id-token file): the message names the variable.
        parser.error(str(exc))
    except InvalidIdentity as exc:
        parser.error(f"invalid charge point identity: {exc}")
    except UsageError as exc:
        parser.error(str(exc))
    except CommandError as exc:
        print(f"ocppgw: error: {exc}", file=sys.stderr)
        return exc.status
    except OSError as exc:
        print(f"ocppgw: error: {exc}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    data = argparse.ArgumentParser(add_help=False)
    data.add_argument(
        "--data-dir",
        type=Path,
        help="folder of the SQLite state "
        f"(env OCPP_DATA_DIR, default {ENVIRONMENT['OCPP_DATA_DIR']})",
    )
    parser = argparse.ArgumentParser(
        prog="ocppgw",
        description="OCPP gateway: charge point WebSockets in, OCPP answers out.",
        epilog="Environment: "
        + ", ".join(f"{k} (default {v or 'unset'})" for k, v in ENVIRONMENT.items()),
    )
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    dev = commands.add_parser(
        "dev",
        parents=[data],
        help="run gateway and processor in one process (the embedded default)",
    )
    dev.add_argument(
        "--host", help="address to listen on (env OCPP_GATEWAY_HOST, default 127.0.0.1)"
    )
    dev.add_argument(
        "--port", type=_port, help="port to listen on (env OCPP_GATEWAY_PORT, default 8080)"
    )
    dev.set_defaults(command=_dev)

    gateway = commands.add_parser(
        "gateway",
        parents=[data],
        help="run the production gateway, relaying over MQTT (MQTT_URL or IOT_ENDPOINT)",
    )
    gateway.add_argument(
        "--host", help="address to listen on (env OCPP_GATEWAY_HOST, default 0.0.0.0)"
    )
    gateway.add_argument(
        "--port", type=_port, help="port to listen on (env OCPP_GATEWAY_PORT, default 8080)"
    )
    gateway.add_argument(
        "--workers",
        type=_positive,
        help="processes sharing the port (SO_REUSEPORT), one per core; env OCPP_GATEWAY_WORKERS",
    )
    gateway.set_defaults(command=_gateway)

    worker = commands.add_parser(
        "worker",
        parents=[data],
        help="run a processor worker on the MQTT bus, with the management API",
    )
    worker.set_defaults(command=_worker)

    charge_points = commands.add_parser(
        "charge-points",
        help="manage the charge point registry",
        description="Manage the charge point registry: the SQLite folder's (--data-dir), or, "
        "when DYNAMODB_CHARGE_POINT_TABLE is set, the AWS deployment's DynamoDB table.",
        epilog="Environment: DYNAMODB_CHARGE_POINT_TABLE (unset: the SQLite folder), "
        "AWS_REGION (the table's region), AWS_ENDPOINT_URL (optional, a local AWS stand-in); "
        "AWS credentials are found as by any AWS tool.",
    )
    registry = charge_points.add_subparsers(title="actions", required=True, metavar="ACTION")
    add = registry.add_parser(
        "add",
        parents=[data],
        help="register charge points",
        description="Register charge points, all or none: every identity is checked "
        "before any is written.",
    )
    add.add_argument("ids", nargs="*", metavar="ID", help="charge point identity")
    add.add_argument(
        "--file",
        type=Path,
        metavar="PATH",
        help="read identities from PATH, one a line (blank lines and lines starting "
        "with # are skipped; - is standard input)",
    )
    add.add_argument(
        "--password",
        action="store_true",
        help="give each new charge point a generated password (security profiles 1 and 2); "
        "prints ID<TAB>PASSWORD once, stores only a hash",
    )
    add.set_defaults(command=charge_point_commands.add)
    set_password = registry.add_parser(
        "set-password",
        parents=[data],
        help="give a charge point a new password (the old one stops working)",
    )
    set_password.add_argument("id", metavar="ID", help="charge point identity")
    set_password.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password (16 to 40 bytes, any bytes) from standard input "
        "instead of generating one; one trailing newline is dropped",
    )
    set_password.set_defaults(command=charge_point_commands.set_password)
    remove = registry.add_parser("remove", parents=[data], help="unregister charge points")
    remove.add_argument("ids", nargs="+", metavar="ID", help="charge point identity")
    remove.set_defaults(command=charge_point_commands.remove)
    listing = registry.add_parser("list", parents=[data], help="list registered charge points")
    listing.add_argument("--json", action="store_true", help="print a JSON array")
    listing.set_defaults(command=charge_point_commands.list_entries)

    shadow = commands.add_parser(
        "shadow", parents=[data], help="print a charge point's shadow as JSON"
    )
    shadow.add_argument("id", metavar="ID", help="charge point identity")
    shadow.set_defaults(command=_shadow)

    api = argparse.ArgumentParser(add_help=False)
    api.add_argument(
        "--api",
        metavar="URL",
        help="management API of the running system "
        "(default from OCPP_MANAGEMENT_HOST/PORT: http://127.0.0.1:8081)",
    )
    start = commands.add_parser(
        "remote-start", parents=[api], help="ask a charger to start a transaction"
    )
    start.add_argument("id", metavar="ID", help="charge point identity")
    start.add_argument("--id-tag", required=True, help="id token to start the transaction for")
    start.add_argument(
        "--evse", type=_non_negative, help="connector (1.6) or EVSE (2.0.1) to start on"
    )
    start.set_defaults(command=_remote_start)
    stop = commands.add_parser(
        "remote-stop", parents=[api], help="ask a charger to stop a transaction"
    )
    stop.add_argument("id", metavar="ID", help="charge point identity")
    stop.add_argument("--transaction-id", required=True, help="the transaction to stop")
    stop.set_defaults(command=_remote_stop)
    return parser


def _positive(text: str) -> int:
    number = _non_negative(text)
    if number == 0:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _non_negative(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"{number} is negative")
    return number


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a TCP port number (0-65535)")
    return port


# -- commands ----------------------------------------------------------------


def _gateway(args: argparse.Namespace, settings: DevSettings) -> int:
    gateway_settings = GatewaySettings.from_env(args.environ)
    config = gateway_settings.gateway
    if args.host is not None:
        config = replace(config, host=args.host)
    if args.port is not None:
        config = replace(config, port=args.port)
    if args.workers is not None:
        gateway_settings = replace(gateway_settings, workers=args.workers)
        if args.workers > 1:
            config = replace(config, reuse_port=True)
    if args.data_dir is not None:
        gateway_settings = replace(gateway_settings, data_dir=args.data_dir)
    configure_logging(gateway_settings.log_level)
    return run_gateways(replace(gateway_settings, gateway=config))


def _worker(args: argparse.Namespace, settings: DevSettings) -> int:
    worker_settings = WorkerSettings.from_env(args.environ)
    if args.data_dir is not None:
        worker_settings = replace(worker_settings, data_dir=args.data_dir)
    configure_logging(worker_settings.log_level)
    run_workers(worker_settings)
    return 0


def _dev(args: argparse.Namespace, settings: DevSettings) -> int:
    gateway = settings.gateway
    if args.host is not None:
        gateway = replace(gateway, host=args.host)
    if args.port is not None:
        gateway = replace(gateway, port=args.port)
    settings = replace(settings, gateway=gateway)
    configure_logging(settings.log_level)

    import uvloop  # noqa: PLC0415 - only the server needs it

    uvloop.run(_serve(settings))
    return 0


async def _serve(settings: DevSettings) -> None:
    stop = stop_on_signals()
    async with run_embedded(settings) as system:
        log.info(
            "ready: charge points connect to ws://%s:%d/{chargePointId}",
            settings.gateway.host,
            system.port,
            extra={"dataDir": str(settings.data_dir.resolve())},
        )
        await stop.wait()


def _shadow(args: argparse.Namespace, settings: DevSettings) -> int:
    with charge_point_commands.open_database(settings) as database:
        document = asyncio.run(SqliteShadowStore(database, SystemClock()).get(args.id))
    if document is None:
        print(
            f"ocppgw: error: {args.id} has no shadow yet (it has not booted or reported status)",
            file=sys.stderr,
        )
        return 1
    print(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
    return 0


def _remote_start(args: argparse.Namespace, settings: DevSettings) -> int:
    body: dict[str, Any] = {"chargePointId": args.id, "idTag": args.id_tag}
    if args.evse is not None:
        body["connectorId"] = args.evse
    return remote.command(args.api or settings.management_url, "/remote-start", body)


def _remote_stop(args: argparse.Namespace, settings: DevSettings) -> int:
    text = args.transaction_id
    # 1.6 ids are integers, 2.0.1 ids strings; the API converts as the charger needs.
    transaction_id: int | str = int(text) if text.isdigit() else text
    body = {"chargePointId": args.id, "transactionId": transaction_id}
    return remote.command(args.api or settings.management_url, "/remote-stop", body)
