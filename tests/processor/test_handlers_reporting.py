"""DataTransfer, FirmwareStatusNotification, SecurityEventNotification, NotifyEvent."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from .conftest import NOW_TEXT, Harness

V16 = "ocpp1.6"
V201 = "ocpp2.0.1"
BOTH = pytest.mark.parametrize("protocol", [V16, V201])

# -- DataTransfer ------------------------------------------------------------------


@BOTH
async def test_data_transfer_answers_unknown_vendor_and_records_it(
    harness: Harness, protocol: str
) -> None:
    request = {"vendorId": "com.acme", "messageId": "Hello", "data": "payload"}
    answer = await harness.send(protocol, [2, "d1", "DataTransfer", request])
    assert answer == [3, "d1", {"status": "UnknownVendorId"}]
    assert await harness.reported() == {
        "lastDataTransfer": {"vendorId": "com.acme", "messageId": "Hello", "at": NOW_TEXT}
    }
    assert await harness.version() == 1


@BOTH
async def test_data_transfer_replaces_the_previous_record(harness: Harness, protocol: str) -> None:
    await harness.call(protocol, "DataTransfer", {"vendorId": "com.acme", "messageId": "Hello"})
    assert await harness.call(protocol, "DataTransfer", {"vendorId": "org.other"}) == {
        "status": "UnknownVendorId"
    }
    assert await harness.reported() == {
        "lastDataTransfer": {"vendorId": "org.other", "at": NOW_TEXT}
    }


async def test_data_transfer_v201_takes_any_json_data(harness: Harness) -> None:
    request = {"vendorId": "com.acme", "data": {"nested": [1, 2, {"x": None}]}}
    assert await harness.call(V201, "DataTransfer", request) == {"status": "UnknownVendorId"}
    # Vendor data never reaches the shadow.
    assert await harness.reported() == {
        "lastDataTransfer": {"vendorId": "com.acme", "at": NOW_TEXT}
    }


# -- FirmwareStatusNotification ----------------------------------------------------


async def test_firmware_status_v16(harness: Harness) -> None:
    answer = await harness.send(
        V16, [2, "f1", "FirmwareStatusNotification", {"status": "Downloading"}]
    )
    assert answer == [3, "f1", {}]
    assert await harness.reported() == {"firmware": {"status": "Downloading", "at": NOW_TEXT}}


async def test_firmware_status_v201_keeps_the_request_id(harness: Harness) -> None:
    request = {"status": "InstallRebooting", "requestId": 7}
    answer = await harness.send(V201, [2, "f1", "FirmwareStatusNotification", request])
    assert answer == [3, "f1", {}]
    assert await harness.reported() == {
        "firmware": {"status": "InstallRebooting", "requestId": 7, "at": NOW_TEXT}
    }


async def test_firmware_status_without_request_id_drops_the_old_one(harness: Harness) -> None:
    await harness.call(V201, "FirmwareStatusNotification", {"status": "Installing", "requestId": 7})
    await harness.call(V201, "FirmwareStatusNotification", {"status": "Idle"})
    assert await harness.reported() == {"firmware": {"status": "Idle", "at": NOW_TEXT}}
    assert await harness.version() == 2


# -- SecurityEventNotification -------------------------------------------------------


@BOTH
async def test_security_event_is_recorded(harness: Harness, protocol: str) -> None:
    request = {
        "type": "FirmwareUpdated",
        "timestamp": "2026-03-01T11:00:00Z",
        "techInfo": "from 1.0 to 1.1",
    }
    answer = await harness.send(protocol, [2, "e1", "SecurityEventNotification", request])
    assert answer == [3, "e1", {}]
    assert await harness.reported() == {"lastSecurityEvent": request}


@BOTH
async def test_security_event_replaces_the_previous_one(harness: Harness, protocol: str) -> None:
    first = {"type": "FirmwareUpdated", "timestamp": "2026-03-01T11:00:00Z", "techInfo": "x"}
    await harness.call(protocol, "SecurityEventNotification", first)
    second = {"type": "TamperDetectionActivated", "timestamp": "2026-03-01T11:05:00Z"}
    await harness.call(protocol, "SecurityEventNotification", second)
    assert await harness.reported() == {"lastSecurityEvent": second}


# -- NotifyEvent (2.0.1 only) ------------------------------------------------------


def event_data(event_id: int, trigger: str) -> dict[str, Any]:
    return {
        "eventId": event_id,
        "timestamp": "2026-03-01T11:00:00Z",
        "trigger": trigger,
        "actualValue": "Faulted",
        "eventNotificationType": "HardWiredNotification",
        "component": {"name": "Connector"},
        "variable": {"name": "AvailabilityState"},
    }


async def test_notify_event_records_a_summary(harness: Harness) -> None:
    request = {
        "generatedAt": "2026-03-01T11:00:01Z",
        "seqNo": 0,
        "eventData": [
            event_data(1, "Periodic"),
            event_data(2, "Alerting"),
            event_data(3, "Periodic"),
            event_data(4, "Delta"),
        ],
    }
    answer = await harness.send(V201, [2, "n1", "NotifyEvent", request])
    assert answer == [3, "n1", {}]
    assert await harness.reported() == {
        "lastNotifyEvent": {
            "generatedAt": "2026-03-01T11:00:01Z",
            "seqNo": 0,
            "events": 4,
            "triggers": ["Alerting", "Delta", "Periodic"],
        }
    }


async def test_notify_event_summary_is_replaced_whole(harness: Harness) -> None:
    first = {
        "generatedAt": "2026-03-01T11:00:01Z",
        "seqNo": 0,
        "tbc": True,
        "eventData": [event_data(1, "Delta"), event_data(2, "Alerting")],
    }
    await harness.call(V201, "NotifyEvent", first)
    second = {
        "generatedAt": "2026-03-01T11:00:02Z",
        "seqNo": 1,
        "eventData": [event_data(3, "Periodic")],
    }
    await harness.call(V201, "NotifyEvent", second)
    assert await harness.reported() == {
        "lastNotifyEvent": {
            "generatedAt": "2026-03-01T11:00:02Z",
            "seqNo": 1,
            "events": 1,
            "triggers": ["Periodic"],
        }
    }


async def test_notify_event_is_not_a_v16_action(harness: Harness) -> None:
    request = {
        "generatedAt": "2026-03-01T11:00:01Z",
        "seqNo": 0,
        "eventData": [event_data(1, "Delta")],
    }
    answer = await harness.send(V16, [2, "n1", "NotifyEvent", request])
    assert answer == [4, "n1", "NotImplemented", "NotifyEvent is not an OCPP 1.6 action", {}]
    assert await harness.version() == 0


# -- invalid payloads --------------------------------------------------------------

INVALID = [
    (V16, "DataTransfer", {}, "OccurenceConstraintViolation", {"path": "", "rule": "Required"}),
    (V201, "DataTransfer", {"vendorId": "v" * 256}, "PropertyConstraintViolation",
     {"path": "vendorId", "rule": "MaxLength"}),
    (V16, "DataTransfer", {"vendorId": "v", "data": {"a": 1}}, "TypeConstraintViolation",
     {"path": "data", "rule": "Type"}),
    (V16, "FirmwareStatusNotification", {"status": "InstallRebooting"},
     "PropertyConstraintViolation", {"path": "status", "rule": "Enum"}),
    (V201, "FirmwareStatusNotification", {"status": "Idle", "requestId": "7"},
     "TypeConstraintViolation", {"path": "requestId", "rule": "Type"}),
    (V16, "SecurityEventNotification", {"type": "X"}, "OccurenceConstraintViolation",
     {"path": "", "rule": "Required"}),
    (V201, "SecurityEventNotification", {"type": "X", "timestamp": "t", "y": 1},
     "FormatViolation", {"path": "", "rule": "AdditionalProperties"}),
    (V201, "NotifyEvent", {"generatedAt": "t", "seqNo": 0, "eventData": []},
     "OccurrenceConstraintViolation", {"path": "eventData", "rule": "MinItems"}),
]  # fmt: skip


@pytest.mark.parametrize("case", INVALID)
async def test_invalid_reports_are_refused_and_change_nothing(
    harness: Harness, case: tuple[str, str, dict[str, Any], str, dict[str, str]]
) -> None:
    protocol, action, payload, code, details = case
    await harness.call(protocol, "DataTransfer", {"vendorId": "before"})
    before = copy.deepcopy(await harness.shadows.get("CP001"))
    answer = await harness.send(protocol, [2, "bad", action, payload])
    assert answer[:3] == [4, "bad", code]
    assert answer[4] == details
    assert await harness.shadows.get("CP001") == before
