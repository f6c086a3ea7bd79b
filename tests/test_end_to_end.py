"""A charge point talks to the whole embedded system over a real socket."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import websockets

from ocppgw import EmbeddedSystem, SettingsError, run_embedded

from .conftest import _EPOCH, BOOT_V16, BOOT_V201, Charger, dev_settings


def assert_recent_utc(timestamp: str) -> None:
    assert timestamp.endswith("Z"), timestamp
    assert datetime.fromisoformat(timestamp).utcoffset() is not None


async def test_v201_boot_heartbeat_status_and_shadow(connect: Any, system: EmbeddedSystem) -> None:
    async with connect("/CP001", "ocpp2.0.1") as charger:
        assert charger.ws.subprotocol == "ocpp2.0.1"

        boot = await charger.call("BootNotification", BOOT_V201)
        assert boot[0] == 3
        assert boot[2]["status"] == "Accepted"
        assert boot[2]["interval"] == 300
        assert_recent_utc(boot[2]["currentTime"])

        heartbeat = await charger.call("Heartbeat", {})
        assert heartbeat[0] == 3
        assert_recent_utc(heartbeat[2]["currentTime"])

        status = await charger.call(
            "StatusNotification",
            {
                "timestamp": "2026-01-01T10:00:00Z",
                "connectorStatus": "Occupied",
                "evseId": 1,
                "connectorId": 1,
            },
        )
        assert status == [3, status[1], {}]

    shadow = await system.shadows.get("CP001")
    assert shadow is not None
    reported = shadow["state"]["reported"]
    assert reported["chargingStation"] == BOOT_V201["chargingStation"]
    assert reported["evses"]["1"]["connectors"]["1"]["status"] == "Occupied"
    assert reported["ocppVersion"] == "2.0.1"
    assert shadow["version"] == 2


async def test_v16_boot_heartbeat_status_and_shadow(connect: Any, system: EmbeddedSystem) -> None:
    async with connect("/CP002", "ocpp1.6") as charger:
        assert charger.ws.subprotocol == "ocpp1.6"
        boot = await charger.call(
            "BootNotification", {**BOOT_V16, "firmwareVersion": "1.0", "iccid": "8910"}
        )
        assert boot[2]["status"] == "Accepted"
        assert boot[2]["interval"] == 300
        heartbeat = await charger.call("Heartbeat", {})
        assert_recent_utc(heartbeat[2]["currentTime"])
        status = await charger.call(
            "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Charging"}
        )
        assert status[0] == 3 and status[2] == {}

    shadow = await system.shadows.get("CP002")
    assert shadow is not None
    reported = shadow["state"]["reported"]
    assert reported["chargingStation"] == {
        "model": "SmartCharger Pro",
        "vendorName": "ACME Charging",
        "firmwareVersion": "1.0",
        "modem": {"iccid": "8910"},
    }
    assert reported["connectors"]["1"]["status"] == "Charging"
    assert reported["connectors"]["1"]["errorCode"] == "NoError"


async def test_a_new_boot_replaces_the_description(connect: Any, system: EmbeddedSystem) -> None:
    async with connect("/CP001", "ocpp2.0.1") as charger:
        await charger.call("BootNotification", BOOT_V201)
        slimmer = {
            "reason": "FirmwareUpdate",
            "chargingStation": {"model": "M2", "vendorName": "V"},
        }
        await charger.call("BootNotification", slimmer)
    shadow = await system.shadows.get("CP001")
    assert shadow is not None
    assert shadow["state"]["reported"]["chargingStation"] == {"model": "M2", "vendorName": "V"}
    assert shadow["state"]["reported"]["lastBoot"]["reason"] == "FirmwareUpdate"


async def test_ocpp20_uses_the_201_message_set(connect: Any) -> None:
    async with connect("/CP001", "ocpp2.0") as charger:
        assert charger.ws.subprotocol == "ocpp2.0"
        boot = await charger.call("BootNotification", BOOT_V201)
        assert boot[2]["status"] == "Accepted"


# -- errors: each answered, and the connection stays usable -------------------

ERROR_CASES = [
    # (subprotocol, frame, expected message id, expected errorCode)
    ("ocpp2.0.1", [2, "e1", "NoSuchAction", {}], "e1", "NotImplemented"),
    ("ocpp1.6", [2, "e1", "NoSuchAction", {}], "e1", "NotImplemented"),
    ("ocpp1.6", [2, "e2", "DiagnosticsStatusNotification", {"status": "Idle"}], "e2",
     "NotSupported"),
    ("ocpp2.0.1", [2, "e2", "GetVariables", {"getVariableData": []}], "e2", "NotSupported"),
    ("ocpp1.6", "this is not json", "-1", "FormationViolation"),
    ("ocpp2.0.1", "this is not json", "-1", "FormatViolation"),
    ("ocpp2.0.1", [2, 42, "Heartbeat", {}], "-1", "FormatViolation"),
    ("ocpp1.6", [2, "e3", "Heartbeat", {"extra": 1}], "e3", "FormationViolation"),
    ("ocpp2.0.1", [2, "e3", "Heartbeat", []], "e3", "FormatViolation"),
    ("ocpp1.6", [2, "e4", "BootNotification", {}], "e4", "OccurenceConstraintViolation"),
    ("ocpp2.0.1", [2, "e4", "BootNotification", {"reason": "PowerUp"}], "e4",
     "OccurrenceConstraintViolation"),
    ("ocpp1.6", [2, "e5", "BootNotification", {**BOOT_V16, "chargePointModel": 7}], "e5",
     "TypeConstraintViolation"),
    ("ocpp1.6", [2, "e6", "BootNotification", {**BOOT_V16, "chargePointModel": "x" * 21}], "e6",
     "PropertyConstraintViolation"),
    ("ocpp2.0.1", [7, "e7", "Heartbeat", {}], "e7", "MessageTypeNotSupported"),
    ("ocpp1.6", [7, "e7", "Heartbeat", {}], "e7", "ProtocolError"),
]  # fmt: skip


@pytest.mark.parametrize(("subprotocol", "frame", "message_id", "code"), ERROR_CASES)
async def test_errors_are_answered_and_the_connection_stays_open(
    connect: Any, subprotocol: str, frame: Any, message_id: str, code: str
) -> None:
    async with connect("/CP001", subprotocol) as charger:
        raw = frame if isinstance(frame, str) else orjson.dumps(frame)
        error = await charger.send_raw(raw)
        assert error[:3] == [4, message_id, code], error
        assert isinstance(error[3], str) and len(error[3]) <= 255
        assert isinstance(error[4], dict)
        # Still open and still serving this charge point.
        heartbeat = await charger.call("Heartbeat", {})
        assert heartbeat[0] == 3


async def test_answers_from_a_charger_get_no_reply(connect: Any) -> None:
    async with connect("/CP001", "ocpp2.0.1") as charger:
        await charger.ws.send(orjson.dumps([3, "backend-1", {"status": "Accepted"}]).decode())
        await charger.ws.send(orjson.dumps([4, "backend-2", "GenericError", "", {}]).decode())
        await charger.ws.send(orjson.dumps([3, "broken"]).decode())
        # The next thing to arrive is the heartbeat's answer, nothing before it.
        heartbeat = await charger.call("Heartbeat", {})
        assert heartbeat[0] == 3


async def test_an_id_token_list_answers_each_status(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.json"
    tokens.write_bytes(orjson.dumps({"GOOD": "Accepted", "STOLEN": "Blocked"}))
    settings = dev_settings(tmp_path / "state", OCPP_ID_TOKENS=str(tokens))
    async with run_embedded(settings) as system:
        system.registry.add(["CP001"], _EPOCH)
        address = f"ws://127.0.0.1:{system.port}/CP001"
        async with websockets.connect(address, subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
            charger = Charger(ws)
            for tag, status in [("GOOD", "Accepted"), ("STOLEN", "Blocked"), ("WHO", "Invalid")]:
                answer = await charger.call("Authorize", {"idTag": tag})
                assert answer[2] == {"idTagInfo": {"status": status}}


async def test_a_broken_id_token_list_stops_start_up(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.json"
    tokens.write_bytes(orjson.dumps({"GOOD": "Fine"}))
    settings = dev_settings(tmp_path / "state", OCPP_ID_TOKENS=str(tokens))
    with pytest.raises(SettingsError, match=r"OCPP_ID_TOKENS: .*'GOOD' has status 'Fine'"):
        async with run_embedded(settings):
            pass


async def test_a_v16_transaction_end_to_end(connect: Any, system: EmbeddedSystem) -> None:
    start = {
        "connectorId": 1,
        "idTag": "user-123",
        "meterStart": 1000,
        "timestamp": "2026-01-01T10:00:00Z",
    }
    async with connect("/CP002", "ocpp1.6") as charger:
        started = await charger.call("StartTransaction", start)
        transaction_id = started[2]["transactionId"]
        assert isinstance(transaction_id, int)
        assert started[2]["idTagInfo"] == {"status": "Accepted"}
        # A redelivered start gets the same id.
        assert (await charger.call("StartTransaction", start))[2]["transactionId"] == transaction_id
        reported = (await system.shadows.get("CP002") or {})["state"]["reported"]
        assert reported["activeTransaction"]["transactionId"] == transaction_id
        stop = {
            "transactionId": transaction_id,
            "meterStop": 5000,
            "timestamp": "2026-01-01T11:00:00Z",
        }
        assert (await charger.call("StopTransaction", stop))[2] == {}
    reported = (await system.shadows.get("CP002") or {})["state"]["reported"]
    assert "activeTransaction" not in reported
    completed = reported["lastCompletedTransaction"]
    assert (completed["transactionId"], completed["meterStop"], completed["status"]) == (
        transaction_id,
        5000,
        "Ended",
    )
    history = await system.services.transactions.events("CP002", str(transaction_id))
    assert [event.event_type for event in history] == ["Started", "Ended"]


async def test_a_v201_transaction_end_to_end(connect: Any, system: EmbeddedSystem) -> None:
    def event(kind: str, seq: int, **extra: Any) -> dict[str, Any]:
        return {
            "eventType": kind,
            "timestamp": f"2026-01-01T10:0{seq}:00Z",
            "triggerReason": "Authorized" if kind == "Started" else "StopAuthorized",
            "seqNo": seq,
            "transactionInfo": {"transactionId": "tx-9", **extra},
            "evse": {"id": 1, "connectorId": 1},
        }

    async with connect("/CP001", "ocpp2.0.1") as charger:
        started = await charger.call(
            "TransactionEvent",
            {**event("Started", 0), "idToken": {"idToken": "u", "type": "ISO14443"}},
        )
        assert started[2] == {"idTokenInfo": {"status": "Accepted"}}
        reported = (await system.shadows.get("CP001") or {})["state"]["reported"]
        assert reported["activeTransaction"]["transactionId"] == "tx-9"
        ended = await charger.call("TransactionEvent", event("Ended", 1, stoppedReason="Local"))
        assert ended[2] == {}
    reported = (await system.shadows.get("CP001") or {})["state"]["reported"]
    assert "activeTransaction" not in reported
    assert reported["lastCompletedTransaction"]["stoppedReason"] == "Local"
    assert reported["lastTransactionEvent"]["eventType"] == "Ended"
