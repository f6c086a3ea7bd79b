from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from processor import ProcessorConfig, Services
from processor.adapters.memory import (
    FixedClock,
    MemoryOutbound,
    MemoryPendingCalls,
    MemoryShadowStore,
    MemoryTransactions,
    SequentialIds,
)
from processor.adapters.static_id_tokens import StaticIdTokens
from processor.clock import SystemClock
from processor.ids import RandomIds


def build(**extra: Any) -> Services:
    return Services.build(
        ProcessorConfig(heartbeat_interval=60),
        shadows=MemoryShadowStore(SystemClock()),
        id_tokens=StaticIdTokens(None),
        transactions=MemoryTransactions(),
        pending=MemoryPendingCalls(),
        outbound=MemoryOutbound(),
        **extra,
    )


def test_a_deployable_gets_the_system_clock_and_random_ids_by_default() -> None:
    services = build()
    assert services.config.heartbeat_interval == 60
    assert isinstance(services.clock, SystemClock)
    assert isinstance(services.ids, RandomIds)


def test_a_clock_and_ids_given_are_kept() -> None:
    clock, ids = FixedClock(datetime(2026, 1, 1, tzinfo=UTC)), SequentialIds()
    services = build(clock=clock, ids=ids)
    assert (services.clock, services.ids) == (clock, ids)
