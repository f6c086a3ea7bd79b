"""The processor core with a fixed clock and the real SQLite shadow store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from ocppj import OcppVersion
from processor import (
    Context,
    HandlerSet,
    Processor,
    ProcessorConfig,
    Router,
    Services,
    build_router,
)
from processor.adapters import Database, SqliteShadowStore

NOW = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


class FixedClock:
    def now(self) -> datetime:
        return NOW


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    database = Database(tmp_path)
    try:
        clock = FixedClock()
        yield Services(
            ProcessorConfig(heartbeat_interval=42), SqliteShadowStore(database, clock), clock
        )
    finally:
        database.close()


async def handle(processor: Processor, protocol: str, frame: Any) -> Any:
    raw = frame if isinstance(frame, bytes) else orjson.dumps(frame)
    answer = await processor.handle("CP001", protocol, raw)
    return None if answer is None else orjson.loads(answer)


async def test_boot_answer_uses_the_clock_and_the_configured_interval(services: Services) -> None:
    processor = Processor(build_router(), services)
    boot = {"chargePointVendor": "V", "chargePointModel": "M"}
    answer = await handle(processor, "ocpp1.6", [2, "b", "BootNotification", boot])
    assert answer == [
        3,
        "b",
        {"status": "Accepted", "currentTime": "2026-03-01T12:30:00.000Z", "interval": 42},
    ]
    shadow = await services.shadows.get("CP001")
    assert shadow is not None
    assert shadow["state"]["reported"]["lastBoot"] == {"at": "2026-03-01T12:30:00.000Z"}
    assert shadow["timestamp"] == int(NOW.timestamp())


async def test_a_crashing_handler_is_an_internal_error_without_details(services: Services) -> None:
    broken = HandlerSet()

    @broken.on("Heartbeat", versions=[OcppVersion.V201])
    async def heartbeat(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("secret internals")

    router = Router()
    router.include(broken)
    answer = await handle(Processor(router, services), "ocpp2.0.1", [2, "h", "Heartbeat", {}])
    assert answer == [4, "h", "InternalError", "internal error", {}]


async def test_a_response_that_breaks_its_schema_is_not_sent(services: Services) -> None:
    wrong = HandlerSet()

    @wrong.on("Heartbeat", versions=[OcppVersion.V16])
    async def heartbeat(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
        return {"currentTime": 12}

    router = Router()
    router.include(wrong)
    answer = await handle(Processor(router, services), "ocpp1.6", [2, "h", "Heartbeat", {}])
    assert answer[:3] == [4, "h", "InternalError"]


async def test_frames_from_an_unknown_subprotocol_are_dropped(services: Services) -> None:
    processor = Processor(build_router(), services)
    assert await handle(processor, "ocpp9", [2, "h", "Heartbeat", {}]) is None


async def test_malformed_frames_are_answered_in_the_senders_version(services: Services) -> None:
    processor = Processor(build_router(), services)
    assert (await handle(processor, "ocpp1.6", b"{"))[:3] == [4, "-1", "FormationViolation"]
    assert (await handle(processor, "ocpp2.0", b"{"))[:3] == [4, "-1", "FormatViolation"]
    assert await handle(processor, "ocpp2.0.1", [3, "x"]) is None
