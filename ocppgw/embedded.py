"""The embedded default: gateway, in-process bus, processor, SQLite state and
the management API in one process."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass

from gateway import GatewayServer, InProcessBus
from gateway.tls import server_context
from ocppj import Downlink
from processor import Processor, Services, build_router
from processor.adapters import (
    Database,
    SqlitePendingCalls,
    SqliteRegistry,
    SqliteShadowStore,
    SqliteTransactions,
)
from processor.clock import SystemClock
from processor.commands import Commands
from processor.ports import ChargePointOffline, ShadowStore

from .answers import AnswerBoard
from .management import ManagementApi
from .settings import DevSettings, SettingsError, id_tokens

__all__ = ["EmbeddedSystem", "GatewayOutbound", "run_embedded"]

#: Seconds that queued frames get to reach the processor at shutdown.
DRAIN_TIMEOUT = 5.0


class GatewayOutbound:
    """The processor's outbound port, served by the gateway in the same process."""

    def __init__(self, gateway: GatewayServer) -> None:
        self._gateway = gateway

    async def subprotocol(self, charge_point_id: str) -> str | None:
        return self._gateway.subprotocol_of(charge_point_id)

    async def send(self, charge_point_id: str, downlink: Downlink) -> None:
        if not self._gateway.deliver(charge_point_id, downlink):
            raise ChargePointOffline(f"{charge_point_id} is not connected")


@dataclass(frozen=True, slots=True)
class EmbeddedSystem:
    gateway: GatewayServer
    bus: InProcessBus
    registry: SqliteRegistry
    services: Services
    commands: Commands
    management: ManagementApi

    @property
    def port(self) -> int:
        return self.gateway.port

    @property
    def shadows(self) -> ShadowStore:
        return self.services.shadows

    @property
    def management_port(self) -> int:
        return self.management.port


def _ssl_context(settings: DevSettings) -> ssl.SSLContext | None:
    config = settings.gateway
    if not config.tls:
        return None
    try:
        return server_context(
            config.tls_certificates,
            client_ca=config.tls_client_ca,
            require_client_cert=config.security_profile == 3,
        )
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise SettingsError(f"OCPP_TLS_CERTIFICATES / OCPP_TLS_CLIENT_CA: {exc}") from None


@contextlib.asynccontextmanager
async def run_embedded(settings: DevSettings) -> AsyncIterator[EmbeddedSystem]:
    """Run the whole system until the block exits, then shut it down in order:
    stop the API, stop accepting and close charge points, drain the bus, close
    the database."""
    tokens = id_tokens(settings.id_tokens_file)

    async with contextlib.AsyncExitStack() as stack:
        database = Database(settings.data_dir)
        stack.callback(database.close)
        clock = SystemClock()
        registry = SqliteRegistry(database)
        answers = AnswerBoard()

        # The processor sends commands through the gateway, which sends
        # frames to the processor through the bus: the bus gets its handler
        # last.
        bus = InProcessBus()
        gateway = GatewayServer(
            settings.gateway, registry.find, bus, ssl_context=_ssl_context(settings)
        )
        outbound = GatewayOutbound(gateway)
        services = Services.build(
            settings.processor,
            shadows=SqliteShadowStore(database, clock),
            id_tokens=tokens,
            transactions=SqliteTransactions(database),
            pending=SqlitePendingCalls(database),
            outbound=outbound,
            clock=clock,
        )
        bus.set_handler(Processor(build_router(), services, on_answer=answers.resolve).reply)
        commands = Commands(services)

        # Shutdown runs these in reverse: stop accepting and reading, let the
        # bus drain (answers still reach their chargers), then close the
        # chargers with 1001 so they reconnect elsewhere.
        stack.push_async_callback(gateway.shutdown)
        await bus.start(gateway.deliver, gateway.bus_drained)
        stack.push_async_callback(bus.close, DRAIN_TIMEOUT)
        await gateway.start()
        stack.callback(gateway.stop_accepting)
        management = ManagementApi(
            commands,
            registry=registry,
            shadows=services.shadows,
            outbound=outbound,
            answers=answers,
            call_timeout=settings.processor.call_timeout,
        )
        await management.start(settings.management_host, settings.management_port)
        stack.push_async_callback(management.close)
        yield EmbeddedSystem(gateway, bus, registry, services, commands, management)
