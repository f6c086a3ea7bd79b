"""In-memory adapters: for tests, benchmarks and single-process tools.

They keep the same rules as the durable adapters (shadow update semantics,
idempotent history, pending-call expiry), so a test of a handler over them
holds for SQLite and DynamoDB too.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ocppj import Downlink

from ..ports import ChargePointOffline, Clock, PendingCall, TransactionEvent
from ..shadow import apply_update

__all__ = [
    "FixedClock",
    "MemoryOutbound",
    "MemoryPendingCalls",
    "MemoryShadowStore",
    "MemoryTransactions",
    "SequentialIds",
]


class MemoryShadowStore:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.documents: dict[str, dict[str, Any]] = {}

    async def get(self, thing: str) -> dict[str, Any] | None:
        return self.documents.get(thing)

    async def update(self, thing: str, state: dict[str, Any]) -> None:
        timestamp = int(self._clock.now().timestamp())
        self.documents[thing] = apply_update(self.documents.get(thing), state, timestamp)

    async def update_if(
        self,
        thing: str,
        condition: Callable[[dict[str, Any] | None], bool],
        state: dict[str, Any],
    ) -> bool:
        # update() never suspends, so nothing can come between read and write.
        if not condition(self.documents.get(thing)):
            return False
        await self.update(thing, state)
        return True


class MemoryTransactions:
    def __init__(self) -> None:
        self._events: dict[tuple[str, str], dict[str, TransactionEvent]] = {}
        self._starts: dict[tuple[str, str], int] = {}
        self._applied: set[tuple[str, str, str]] = set()
        self._ids = itertools.count(1)

    async def append(self, event: TransactionEvent) -> bool:
        history = self._events.setdefault((event.charge_point_id, event.transaction_id), {})
        if event.event_key in history:
            return False
        history[event.event_key] = event
        return True

    async def mark_applied(self, event: TransactionEvent) -> None:
        self._applied.add((event.charge_point_id, event.transaction_id, event.event_key))

    async def is_applied(self, event: TransactionEvent) -> bool:
        return (event.charge_point_id, event.transaction_id, event.event_key) in self._applied

    async def events(self, charge_point_id: str, transaction_id: str) -> list[TransactionEvent]:
        return list(self._events.get((charge_point_id, transaction_id), {}).values())

    async def allocate_id(self, charge_point_id: str, start_key: str) -> tuple[int, bool]:
        key = (charge_point_id, start_key)
        if key in self._starts:
            return self._starts[key], False
        self._starts[key] = next(self._ids)
        return self._starts[key], True


class MemoryPendingCalls:
    def __init__(self) -> None:
        self._calls: dict[tuple[str, str], PendingCall] = {}

    async def add(self, call: PendingCall) -> None:
        self._calls[call.charge_point_id, call.message_id] = call

    async def take(self, charge_point_id: str, message_id: str, now: float) -> PendingCall | None:
        call = self._calls.pop((charge_point_id, message_id), None)
        return None if call is None or call.expires_at < now else call


class MemoryOutbound:
    """Connected charge points by subprotocol; frames sent are kept in ``sent``."""

    def __init__(self, connections: dict[str, str] | None = None) -> None:
        self.connections = dict(connections or {})
        self.sent: list[tuple[str, bytes]] = []

    async def subprotocol(self, charge_point_id: str) -> str | None:
        return self.connections.get(charge_point_id)

    async def send(self, charge_point_id: str, downlink: Downlink) -> None:
        if charge_point_id not in self.connections:
            raise ChargePointOffline(f"{charge_point_id} is not connected")
        self.sent.append((charge_point_id, downlink.frame))


class SequentialIds:
    """Predictable ids for tests: ``msg-1``, ``msg-2``, ... and 1001, 1002, ..."""

    def __init__(self) -> None:
        self._messages = itertools.count(1)
        self._starts = itertools.count(1001)

    def message_id(self) -> str:
        return f"msg-{next(self._messages)}"

    def remote_start_id(self) -> int:
        return next(self._starts)


class FixedClock:
    """A clock that says what it is told; set ``moment`` to move it."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def now(self) -> datetime:
        return self.moment
