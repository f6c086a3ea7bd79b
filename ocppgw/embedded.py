"""The embedded default: gateway, in-process bus, processor and SQLite in one process."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from gateway import GatewayServer, InProcessBus
from processor import Processor, Services, build_router
from processor.adapters import Database, SqliteRegistry, SqliteShadowStore
from processor.clock import SystemClock

from .settings import DevSettings

__all__ = ["EmbeddedSystem", "run_embedded"]

#: Seconds that queued frames get to reach the processor at shutdown.
DRAIN_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class EmbeddedSystem:
    gateway: GatewayServer
    bus: InProcessBus
    registry: SqliteRegistry
    shadows: SqliteShadowStore

    @property
    def port(self) -> int:
        return self.gateway.port


@contextlib.asynccontextmanager
async def run_embedded(settings: DevSettings) -> AsyncIterator[EmbeddedSystem]:
    """Run the whole system until the block exits, then shut it down in order:
    stop accepting and close charge points, drain the bus, close the database."""
    async with contextlib.AsyncExitStack() as stack:
        database = Database(settings.data_dir)
        stack.callback(database.close)
        clock = SystemClock()
        shadows = SqliteShadowStore(database, clock)
        registry = SqliteRegistry(database)
        processor = Processor(build_router(), Services(settings.processor, shadows, clock))

        bus = InProcessBus(processor.handle)
        gateway = GatewayServer(settings.gateway, registry, bus)
        await bus.start(gateway.deliver)
        stack.push_async_callback(bus.close, DRAIN_TIMEOUT)
        await gateway.start()
        stack.push_async_callback(gateway.shutdown)
        yield EmbeddedSystem(gateway, bus, registry, shadows)
