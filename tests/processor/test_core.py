"""The processor core: routing, validation and error answers."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from ocppj import OcppVersion
from processor import Context, HandlerSet, Processor, Router, build_router

from .conftest import NOW, NOW_TEXT, Harness


async def test_boot_answer_uses_the_clock_and_the_configured_interval(harness: Harness) -> None:
    boot = {"chargePointVendor": "V", "chargePointModel": "M"}
    answer = await harness.send("ocpp1.6", [2, "b", "BootNotification", boot])
    assert answer == [3, "b", {"status": "Accepted", "currentTime": NOW_TEXT, "interval": 42}]
    document = await harness.shadows.get("CP001")
    assert document is not None
    assert document["state"]["reported"]["lastBoot"] == {"at": NOW_TEXT}
    assert document["timestamp"] == int(NOW.timestamp())


async def test_a_crashing_handler_is_an_internal_error_without_details(harness: Harness) -> None:
    broken = HandlerSet()

    @broken.on("Heartbeat", versions=[OcppVersion.V201])
    async def heartbeat(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("secret internals")

    router = Router()
    router.include(broken)
    harness.processor = Processor(router, harness.services)
    answer = await harness.send("ocpp2.0.1", [2, "h", "Heartbeat", {}])
    assert answer == [4, "h", "InternalError", "internal error", {}]


async def test_a_response_that_breaks_its_schema_is_not_sent(harness: Harness) -> None:
    wrong = HandlerSet()

    @wrong.on("Heartbeat", versions=[OcppVersion.V16])
    async def heartbeat(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
        return {"currentTime": 12}

    router = Router()
    router.include(wrong)
    harness.processor = Processor(router, harness.services)
    answer = await harness.send("ocpp1.6", [2, "h", "Heartbeat", {}])
    assert answer == [4, "h", "InternalError", "internal error", {}]


async def test_frames_from_an_unknown_subprotocol_are_dropped(harness: Harness) -> None:
    assert await harness.send("ocpp9", [2, "h", "Heartbeat", {}]) is None


async def test_malformed_frames_are_answered_in_the_senders_version(harness: Harness) -> None:
    assert (await harness.send("ocpp1.6", b"{"))[:3] == [4, "-1", "FormationViolation"]
    assert (await harness.send("ocpp2.0", b"{"))[:3] == [4, "-1", "FormatViolation"]
    assert await harness.send("ocpp2.0.1", [3, "x"]) is None


async def test_an_answer_to_no_command_is_ignored(harness: Harness) -> None:
    assert await harness.send("ocpp2.0.1", [3, "nobody-asked", {"status": "Accepted"}]) is None
    assert harness.answers == []
    assert await harness.shadows.get("CP001") is None


class BrokenShadows:
    async def get(self, thing: str) -> dict[str, Any] | None:
        raise ConnectionError("store unreachable")

    async def update(self, thing: str, state: dict[str, Any]) -> None:
        raise ConnectionError("store unreachable")


async def test_a_failing_store_is_an_internal_error_or_raised_for_a_retry(
    harness: Harness,
) -> None:
    services = replace(harness.services, shadows=BrokenShadows())
    boot = [2, "b", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}]
    harness.processor = Processor(build_router(), services)
    assert (await harness.send("ocpp1.6", boot))[:3] == [4, "b", "InternalError"]
    harness.processor = Processor(build_router(), services, raise_failures=True)
    with pytest.raises(ConnectionError):
        await harness.send("ocpp1.6", boot)
    # A charger's mistake is still answered, never raised.
    assert (await harness.send("ocpp1.6", [2, "x", "Heartbeat", {"a": 1}]))[
        2
    ] == "FormationViolation"
