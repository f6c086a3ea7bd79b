"""The management API and the remote commands of the CLI, against the running
embedded system and real chargers that answer commands."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import websockets

from ocppgw import EmbeddedSystem, run_embedded
from ocppgw.cli import main

from ..conftest import _EPOCH, REGISTERED, dev_settings

Answerer = Callable[[str, dict[str, Any]], list[Any]]


def answer_status(status: str) -> Answerer:
    """A charger that answers every command with ``{"status": status}``."""
    return lambda action, payload: [3, None, {"status": status}]


@contextlib.asynccontextmanager
async def answering_charger(
    system: EmbeddedSystem, cp: str, protocol: str, answer: Answerer | None
) -> AsyncIterator[list[list[Any]]]:
    """Connect a charger that answers each CALL it gets with ``answer``
    (never, if None); yields the list of CALLs it received."""
    received: list[list[Any]] = []
    url = f"ws://127.0.0.1:{system.port}/{cp}"
    async with websockets.connect(url, subprotocols=[protocol]) as ws:  # type: ignore[list-item]

        async def serve() -> None:
            async for raw in ws:
                call = orjson.loads(raw)
                received.append(call)
                if answer is not None:
                    reply = answer(call[2], call[3])
                    reply[1] = call[1]
                    await ws.send(orjson.dumps(reply).decode())

        task = asyncio.create_task(serve())
        try:
            yield received
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def post(system: EmbeddedSystem, path: str, body: Any) -> tuple[int, Any]:
    url = f"http://127.0.0.1:{system.management_port}{path}"
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    async with aiohttp.ClientSession() as session, session.post(url, data=data) as response:
        return response.status, orjson.loads(await response.read())


async def get(system: EmbeddedSystem, path: str) -> tuple[int, Any]:
    url = f"http://127.0.0.1:{system.management_port}{path}"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, orjson.loads(await response.read())


@pytest.mark.parametrize(
    ("protocol", "action", "payload"),
    [
        (
            "ocpp2.0.1",
            "RequestStartTransaction",
            {"idToken": {"idToken": "user-123", "type": "ISO14443"}, "evseId": 1},
        ),
        ("ocpp1.6", "RemoteStartTransaction", {"idTag": "user-123", "connectorId": 1}),
    ],
)
async def test_remote_start_accepted(
    system: EmbeddedSystem, protocol: str, action: str, payload: dict[str, Any]
) -> None:
    async with answering_charger(system, "CP001", protocol, answer_status("Accepted")) as calls:
        body = {"chargePointId": "CP001", "idTag": "user-123", "connectorId": 1}
        status, outcome = await post(system, "/remote-start", body)
    assert status == 200
    assert outcome["outcome"] == "Accepted"
    assert outcome["action"] == action
    assert outcome["response"] == {"status": "Accepted"}
    assert len(calls) == 1
    assert calls[0][1] == outcome["messageId"] and calls[0][2] == action
    sent = calls[0][3]
    sent.pop("remoteStartId", None)
    assert sent == payload
    shadow = await system.shadows.get("CP001")
    assert shadow is not None
    result = shadow["state"]["reported"]["lastCallResult"]
    assert result["messageId"] == outcome["messageId"]
    assert result["payload"] == {"status": "Accepted"}


async def test_remote_stop_of_an_unknown_transaction_is_rejected(system: EmbeddedSystem) -> None:
    async with answering_charger(system, "CP001", "ocpp1.6", answer_status("Rejected")) as calls:
        status, outcome = await post(
            system, "/remote-stop", {"chargePointId": "CP001", "transactionId": 999}
        )
    assert (status, outcome["outcome"]) == (200, "Rejected")
    assert calls[0][2:] == ["RemoteStopTransaction", {"transactionId": 999}]


async def test_a_callerror_answer_is_reported(system: EmbeddedSystem) -> None:
    def refuse(action: str, payload: dict[str, Any]) -> list[Any]:
        return [4, None, "NotSupported", "no remote start here", {}]

    async with answering_charger(system, "CP001", "ocpp2.0.1", refuse):
        status, outcome = await post(
            system, "/remote-start", {"chargePointId": "CP001", "idTag": "t"}
        )
    assert (status, outcome["outcome"]) == (200, "error")
    assert outcome["error"] == {"code": "NotSupported", "description": "no remote start here"}


async def test_offline_charger_gets_409(system: EmbeddedSystem) -> None:
    status, outcome = await post(system, "/remote-start", {"chargePointId": "CP002", "idTag": "t"})
    assert status == 409
    assert outcome == {"outcome": "offline", "error": "CP002 is not connected"}


async def test_no_answer_times_out_with_504(tmp_path: Path) -> None:
    async with run_embedded(dev_settings(tmp_path, OCPP_CALL_TIMEOUT="0.3")) as system:
        system.registry.add(["CP001"], _EPOCH)
        async with answering_charger(system, "CP001", "ocpp2.0.1", None) as calls:
            status, outcome = await post(
                system, "/remote-stop", {"chargePointId": "CP001", "transactionId": "tx-1"}
            )
        assert status == 504
        assert outcome["outcome"] == "timed out"
        assert calls[0][2:] == ["RequestStopTransaction", {"transactionId": "tx-1"}]


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        ("/remote-start", b"{not json", 400, "body"),
        ("/remote-start", [], 400, "body"),
        ("/remote-start", {"chargePointId": "CP001"}, 400, "idTag"),
        ("/remote-start", {"chargePointId": "CP001", "idTag": "t", "connectorId": "1"}, 400,
         "connectorId"),
        ("/remote-start", {"idTag": "t"}, 400, "chargePointId"),
        ("/remote-start", {"chargePointId": "NOPE", "idTag": "t"}, 404, "chargePointId"),
        ("/remote-stop", {"chargePointId": "CP001"}, 400, "transactionId"),
        ("/remote-stop", {"chargePointId": "CP001", "transactionId": 1.5}, 400, "transactionId"),
    ],
)  # fmt: skip
async def test_bad_requests_name_the_field(
    system: EmbeddedSystem, path: str, body: Any, status: int, field: str
) -> None:
    got_status, answer = await post(system, path, body)
    assert (got_status, answer["field"]) == (status, field)
    assert answer["error"].startswith(field)


async def test_a_16_charger_needs_an_integer_transaction_id(system: EmbeddedSystem) -> None:
    async with answering_charger(system, "CP001", "ocpp1.6", answer_status("Accepted")) as calls:
        status, answer = await post(
            system, "/remote-stop", {"chargePointId": "CP001", "transactionId": "abc"}
        )
    assert (status, answer["field"]) == (400, "transactionId")
    assert calls == []


async def test_charge_points_and_shadows(system: EmbeddedSystem) -> None:
    async with answering_charger(system, "CP001", "ocpp1.6", None):
        status, listing = await get(system, "/charge-points")
    assert status == 200
    entries = {e["chargePointId"]: e for e in listing["chargePoints"]}
    assert sorted(entries) == sorted(REGISTERED)
    assert entries["CP001"]["connected"] is True
    assert entries["CP002"]["connected"] is False

    status, missing = await get(system, "/charge-points/CP001/shadow")
    assert status == 404 and "no shadow" in missing["error"]
    await system.shadows.update("CP001", {"reported": {"x": 1}})
    status, document = await get(system, "/charge-points/CP001/shadow")
    assert (status, document["state"]["reported"]) == (200, {"x": 1})


async def test_openapi_describes_every_route(system: EmbeddedSystem) -> None:
    status, spec = await get(system, "/openapi.json")
    assert status == 200
    assert spec["openapi"].startswith("3.")
    assert set(spec["paths"]) == {
        "/charge-points",
        "/charge-points/{id}/shadow",
        "/remote-start",
        "/remote-stop",
    }


async def test_the_cli_prints_the_outcome(
    system: EmbeddedSystem, capsys: pytest.CaptureFixture[str]
) -> None:
    api = f"http://127.0.0.1:{system.management_port}"
    async with answering_charger(system, "CP001", "ocpp2.0.1", answer_status("Accepted")):
        code = await asyncio.to_thread(
            main, ["remote-start", "CP001", "--id-tag", "user-123", "--evse", "1", "--api", api], {}
        )
    assert (code, capsys.readouterr().out) == (0, 'Accepted: {"status":"Accepted"}\n')

    code = await asyncio.to_thread(
        main, ["remote-stop", "CP002", "--transaction-id", "7", "--api", api], {}
    )
    assert (code, capsys.readouterr().out) == (1, "offline: CP002 is not connected\n")

    code = await asyncio.to_thread(
        main, ["remote-start", "NOPE", "--id-tag", "t", "--api", api], {}
    )
    assert code == 1
    assert "chargePointId: NOPE is not registered" in capsys.readouterr().err


def test_the_cli_says_when_no_api_runs(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["remote-start", "CP001", "--id-tag", "t", "--api", "http://127.0.0.1:9"], {})
    assert code == 1
    assert "no management API at http://127.0.0.1:9" in capsys.readouterr().err
