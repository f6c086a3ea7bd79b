"""The processor core over in-memory adapters, with a fixed clock and ids."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from processor import Processor, ProcessorConfig, Services, build_router
from processor.adapters.memory import (
    FixedClock,
    MemoryOutbound,
    MemoryPendingCalls,
    MemoryShadowStore,
    MemoryTransactions,
    SequentialIds,
)
from processor.adapters.static_id_tokens import StaticIdTokens
from processor.commands import CommandAnswer
from processor.ports import ShadowStore, Transactions

NOW = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
NOW_TEXT = "2026-03-01T12:30:00.000Z"


class Harness:
    """A processor and everything around it, as a test sees them."""

    def __init__(
        self,
        id_tokens: dict[str, str] | None = None,
        *,
        transactions: Transactions | None = None,
        wrap_shadows: Callable[[MemoryShadowStore], ShadowStore] | None = None,
        shadow_transaction_readings: bool = False,
    ) -> None:
        """``transactions`` replaces the in-memory history; ``wrap_shadows``
        puts something between the processor and the shadows (``self.shadows``
        stays the store itself); ``shadow_transaction_readings`` is the
        processor's setting of that name."""
        self.clock = FixedClock(NOW)
        self.shadows = MemoryShadowStore(self.clock)
        self.transactions: Transactions = transactions or MemoryTransactions()
        self.outbound = MemoryOutbound()
        self.answers: list[CommandAnswer] = []
        self.services = Services(
            config=ProcessorConfig(
                heartbeat_interval=42,
                call_timeout=30,
                shadow_transaction_readings=shadow_transaction_readings,
            ),
            shadows=self.shadows if wrap_shadows is None else wrap_shadows(self.shadows),
            clock=self.clock,
            ids=SequentialIds(),
            id_tokens=StaticIdTokens(id_tokens),
            transactions=self.transactions,
            pending=MemoryPendingCalls(),
            outbound=self.outbound,
        )
        self.processor = Processor(build_router(), self.services, on_answer=self.answers.append)

    async def send(self, protocol: str, frame: Any, charge_point_id: str = "CP001") -> Any:
        raw = frame if isinstance(frame, bytes) else orjson.dumps(frame)
        answer = await self.processor.handle(charge_point_id, protocol, raw)
        return None if answer is None else orjson.loads(answer)

    async def call(self, protocol: str, action: str, payload: dict[str, Any]) -> Any:
        """Send a CALL; return the CALLRESULT payload, failing on a CALLERROR."""
        answer = await self.send(protocol, [2, "m1", action, payload])
        assert answer[0] == 3, answer
        return answer[2]

    async def reported(self, charge_point_id: str = "CP001") -> dict[str, Any]:
        document = await self.shadows.get(charge_point_id)
        assert document is not None, f"{charge_point_id} has no shadow"
        reported: dict[str, Any] = document["state"]["reported"]
        return reported

    async def version(self, charge_point_id: str = "CP001") -> int:
        document = await self.shadows.get(charge_point_id)
        return 0 if document is None else int(document["version"])


@pytest.fixture
def harness() -> Harness:
    return Harness()
