"""BootNotification, Heartbeat and StatusNotification, in both OCPP versions."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from .conftest import NOW_TEXT, Harness

V16 = "ocpp1.6"
V201 = "ocpp2.0.1"

BOOT_ANSWER = {"status": "Accepted", "currentTime": NOW_TEXT, "interval": 42}

FULL_BOOT_V16 = {
    "chargePointVendor": "ACME",
    "chargePointModel": "Demo",
    "chargePointSerialNumber": "CPS-1",
    "chargeBoxSerialNumber": "CBS-1",
    "firmwareVersion": "1.2.3",
    "iccid": "ICCID-1",
    "imsi": "IMSI-1",
    "meterType": "MT-1",
    "meterSerialNumber": "MS-1",
}

FULL_BOOT_V201 = {
    "reason": "PowerUp",
    "chargingStation": {
        "model": "SmartCharger Pro",
        "vendorName": "ACME Charging",
        "serialNumber": "SC001234",
        "firmwareVersion": "v2.1.0",
        "modem": {"iccid": "891004234814455936F", "imsi": "310410123456789"},
    },
}


async def test_boot_v16_answers_and_maps_every_field_onto_201_names(harness: Harness) -> None:
    answer = await harness.send(V16, [2, "b1", "BootNotification", FULL_BOOT_V16])
    assert answer == [3, "b1", BOOT_ANSWER]
    assert await harness.reported() == {
        "chargingStation": {
            "model": "Demo",
            "vendorName": "ACME",
            "serialNumber": "CPS-1",
            "chargeBoxSerialNumber": "CBS-1",
            "firmwareVersion": "1.2.3",
            "modem": {"iccid": "ICCID-1", "imsi": "IMSI-1"},
            "meter": {"type": "MT-1", "serialNumber": "MS-1"},
        },
        "ocppVersion": "1.6",
        "lastBoot": {"at": NOW_TEXT},
    }
    assert await harness.version() == 1


async def test_boot_v16_with_only_the_required_fields(harness: Harness) -> None:
    boot = {"chargePointVendor": "ACME", "chargePointModel": "Demo"}
    assert await harness.call(V16, "BootNotification", boot) == BOOT_ANSWER
    assert await harness.reported() == {
        "chargingStation": {"model": "Demo", "vendorName": "ACME"},
        "ocppVersion": "1.6",
        "lastBoot": {"at": NOW_TEXT},
    }


async def test_boot_v16_partial_modem_and_meter(harness: Harness) -> None:
    boot = {
        "chargePointVendor": "ACME",
        "chargePointModel": "Demo",
        "imsi": "IMSI-1",
        "meterSerialNumber": "MS-1",
    }
    await harness.call(V16, "BootNotification", boot)
    assert (await harness.reported())["chargingStation"] == {
        "model": "Demo",
        "vendorName": "ACME",
        "modem": {"imsi": "IMSI-1"},
        "meter": {"serialNumber": "MS-1"},
    }


@pytest.mark.parametrize("protocol", ["ocpp2.0.1", "ocpp2.0"])
async def test_boot_v201_answers_and_records_the_station(harness: Harness, protocol: str) -> None:
    answer = await harness.send(protocol, [2, "b1", "BootNotification", FULL_BOOT_V201])
    assert answer == [3, "b1", BOOT_ANSWER]
    assert await harness.reported() == {
        "chargingStation": {
            "model": "SmartCharger Pro",
            "vendorName": "ACME Charging",
            "serialNumber": "SC001234",
            "firmwareVersion": "v2.1.0",
            "modem": {"iccid": "891004234814455936F", "imsi": "310410123456789"},
        },
        "ocppVersion": "2.0.1",
        "lastBoot": {"at": NOW_TEXT, "reason": "PowerUp"},
    }
    assert await harness.version() == 1


async def test_boot_v201_with_only_the_required_fields(harness: Harness) -> None:
    boot = {"reason": "Watchdog", "chargingStation": {"model": "M", "vendorName": "V"}}
    assert await harness.call(V201, "BootNotification", boot) == BOOT_ANSWER
    assert await harness.reported() == {
        "chargingStation": {"model": "M", "vendorName": "V"},
        "ocppVersion": "2.0.1",
        "lastBoot": {"at": NOW_TEXT, "reason": "Watchdog"},
    }


async def test_a_second_v201_boot_replaces_the_description_whole(harness: Harness) -> None:
    await harness.call(V201, "BootNotification", FULL_BOOT_V201)
    second = {
        "reason": "FirmwareUpdate",
        "chargingStation": {"model": "M2", "vendorName": "V2", "modem": {"imsi": "IMSI-2"}},
    }
    await harness.call(V201, "BootNotification", second)
    assert await harness.reported() == {
        "chargingStation": {"model": "M2", "vendorName": "V2", "modem": {"imsi": "IMSI-2"}},
        "ocppVersion": "2.0.1",
        "lastBoot": {"at": NOW_TEXT, "reason": "FirmwareUpdate"},
    }
    assert await harness.version() == 2


async def test_a_second_v16_boot_replaces_the_description_whole(harness: Harness) -> None:
    await harness.call(V16, "BootNotification", FULL_BOOT_V16)
    await harness.call(
        V16, "BootNotification", {"chargePointVendor": "ACME", "chargePointModel": "Demo2"}
    )
    assert await harness.reported() == {
        "chargingStation": {"model": "Demo2", "vendorName": "ACME"},
        "ocppVersion": "1.6",
        "lastBoot": {"at": NOW_TEXT},
    }


async def test_a_v16_boot_after_a_v201_boot_drops_the_201_reason(harness: Harness) -> None:
    await harness.call(V201, "BootNotification", FULL_BOOT_V201)
    await harness.call(V16, "BootNotification", {"chargePointVendor": "A", "chargePointModel": "B"})
    assert await harness.reported() == {
        "chargingStation": {"model": "B", "vendorName": "A"},
        "ocppVersion": "1.6",
        "lastBoot": {"at": NOW_TEXT},
    }


async def test_a_v201_boot_after_a_v16_boot_replaces_the_description_whole(
    harness: Harness,
) -> None:
    await harness.call(V16, "BootNotification", FULL_BOOT_V16)
    boot = {"reason": "PowerUp", "chargingStation": {"model": "M", "vendorName": "V"}}
    await harness.call(V201, "BootNotification", boot)
    assert (await harness.reported())["chargingStation"] == {"model": "M", "vendorName": "V"}


async def test_boots_of_two_charge_points_are_kept_apart(harness: Harness) -> None:
    await harness.send(V16, [2, "b", "BootNotification", FULL_BOOT_V16], "CP001")
    boot = {"chargePointVendor": "Other", "chargePointModel": "X"}
    await harness.send(V16, [2, "b", "BootNotification", boot], "CP002")
    assert (await harness.reported("CP001"))["chargingStation"]["model"] == "Demo"
    assert (await harness.reported("CP002"))["chargingStation"] == {
        "model": "X",
        "vendorName": "Other",
    }


# -- Heartbeat -------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["ocpp1.6", "ocpp2.0", "ocpp2.0.1"])
async def test_heartbeat_answers_the_time_and_writes_nothing(
    harness: Harness, protocol: str
) -> None:
    answer = await harness.send(protocol, [2, "h1", "Heartbeat", {}])
    assert answer == [3, "h1", {"currentTime": NOW_TEXT}]
    assert await harness.version() == 0
    assert await harness.shadows.get("CP001") is None


async def test_heartbeat_after_a_boot_leaves_the_shadow_alone(harness: Harness) -> None:
    await harness.call(V201, "BootNotification", FULL_BOOT_V201)
    before = copy.deepcopy(await harness.shadows.get("CP001"))
    await harness.call(V201, "Heartbeat", {})
    assert await harness.version() == 1
    assert await harness.shadows.get("CP001") == before


# -- StatusNotification --------------------------------------------------------


async def test_status_v16_writes_the_connector(harness: Harness) -> None:
    status = {
        "connectorId": 1,
        "errorCode": "NoError",
        "status": "Available",
        "timestamp": "2026-03-01T12:00:00Z",
    }
    answer = await harness.send(V16, [2, "s1", "StatusNotification", status])
    assert answer == [3, "s1", {}]
    assert await harness.reported() == {
        "connectors": {
            "1": {
                "status": "Available",
                "errorCode": "NoError",
                "timestamp": "2026-03-01T12:00:00Z",
            }
        }
    }


async def test_status_v16_keeps_every_optional_field(harness: Harness) -> None:
    status = {
        "connectorId": 0,
        "errorCode": "OtherError",
        "status": "Faulted",
        "info": "lid open",
        "vendorId": "ACME",
        "vendorErrorCode": "E42",
        "timestamp": "2026-03-01T12:00:00Z",
    }
    await harness.call(V16, "StatusNotification", status)
    assert (await harness.reported())["connectors"] == {
        "0": {
            "status": "Faulted",
            "errorCode": "OtherError",
            "info": "lid open",
            "vendorId": "ACME",
            "vendorErrorCode": "E42",
            "timestamp": "2026-03-01T12:00:00Z",
        }
    }


async def test_status_v16_without_timestamp_uses_the_clock(harness: Harness) -> None:
    status = {"connectorId": 2, "errorCode": "NoError", "status": "Charging"}
    await harness.call(V16, "StatusNotification", status)
    assert (await harness.reported())["connectors"] == {
        "2": {"status": "Charging", "errorCode": "NoError", "timestamp": NOW_TEXT}
    }


async def test_status_v16_replaces_the_connector_and_keeps_the_others(harness: Harness) -> None:
    faulted = {
        "connectorId": 1,
        "errorCode": "OtherError",
        "status": "Faulted",
        "info": "lid open",
        "vendorErrorCode": "E42",
        "timestamp": "2026-03-01T12:00:00Z",
    }
    await harness.call(V16, "StatusNotification", faulted)
    other = {"connectorId": 2, "errorCode": "NoError", "status": "Available"}
    await harness.call(V16, "StatusNotification", other)
    fixed = {
        "connectorId": 1,
        "errorCode": "NoError",
        "status": "Available",
        "timestamp": "2026-03-01T12:05:00Z",
    }
    await harness.call(V16, "StatusNotification", fixed)
    assert await harness.reported() == {
        "connectors": {
            "1": {
                "status": "Available",
                "errorCode": "NoError",
                "timestamp": "2026-03-01T12:05:00Z",
            },
            "2": {"status": "Available", "errorCode": "NoError", "timestamp": NOW_TEXT},
        }
    }
    assert await harness.version() == 3


async def test_status_v201_writes_the_evse_connector(harness: Harness) -> None:
    status = {
        "timestamp": "2026-03-01T12:00:00Z",
        "connectorStatus": "Occupied",
        "evseId": 2,
        "connectorId": 1,
    }
    answer = await harness.send(V201, [2, "s1", "StatusNotification", status])
    assert answer == [3, "s1", {}]
    assert await harness.reported() == {
        "evses": {
            "2": {"connectors": {"1": {"status": "Occupied", "timestamp": "2026-03-01T12:00:00Z"}}}
        }
    }


async def test_status_v201_merges_connectors_and_evses(harness: Harness) -> None:
    def status(evse: int, connector: int, value: str, at: str) -> dict[str, Any]:
        return {
            "timestamp": at,
            "connectorStatus": value,
            "evseId": evse,
            "connectorId": connector,
        }

    await harness.call(
        V201, "StatusNotification", status(1, 1, "Available", "2026-01-01T00:00:00Z")
    )
    await harness.call(V201, "StatusNotification", status(1, 2, "Faulted", "2026-01-01T00:00:01Z"))
    await harness.call(V201, "StatusNotification", status(2, 1, "Reserved", "2026-01-01T00:00:02Z"))
    await harness.call(V201, "StatusNotification", status(1, 1, "Occupied", "2026-01-01T00:00:03Z"))
    assert await harness.reported() == {
        "evses": {
            "1": {
                "connectors": {
                    "1": {"status": "Occupied", "timestamp": "2026-01-01T00:00:03Z"},
                    "2": {"status": "Faulted", "timestamp": "2026-01-01T00:00:01Z"},
                }
            },
            "2": {"connectors": {"1": {"status": "Reserved", "timestamp": "2026-01-01T00:00:02Z"}}},
        }
    }


# -- invalid payloads ----------------------------------------------------------

INVALID = [
    # (protocol, action, payload, code, details)
    (V16, "BootNotification", {"chargePointVendor": "V"}, "OccurenceConstraintViolation",
     {"path": "", "rule": "Required"}),
    (V16, "BootNotification", {"chargePointVendor": "V", "chargePointModel": 5},
     "TypeConstraintViolation", {"path": "chargePointModel", "rule": "Type"}),
    (V16, "BootNotification", {"chargePointVendor": "V" * 21, "chargePointModel": "M"},
     "PropertyConstraintViolation", {"path": "chargePointVendor", "rule": "MaxLength"}),
    (V16, "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M", "x": 1},
     "FormationViolation", {"path": "", "rule": "AdditionalProperties"}),
    (V201, "BootNotification", {"reason": "PowerUp"}, "OccurrenceConstraintViolation",
     {"path": "", "rule": "Required"}),
    (V201, "BootNotification",
     {"reason": "Nope", "chargingStation": {"model": "M", "vendorName": "V"}},
     "PropertyConstraintViolation", {"path": "reason", "rule": "Enum"}),
    (V201, "BootNotification",
     {"reason": "PowerUp", "chargingStation": {"model": 1, "vendorName": "V"}},
     "TypeConstraintViolation", {"path": "chargingStation/model", "rule": "Type"}),
    (V201, "BootNotification",
     {"reason": "PowerUp", "chargingStation": {"model": "M", "vendorName": "V", "x": 1}},
     "FormatViolation", {"path": "chargingStation", "rule": "AdditionalProperties"}),
    (V16, "Heartbeat", {"x": 1}, "FormationViolation",
     {"path": "", "rule": "AdditionalProperties"}),
    (V201, "Heartbeat", {"x": 1}, "FormatViolation", {"path": "", "rule": "AdditionalProperties"}),
    (V16, "StatusNotification", {"connectorId": 1, "errorCode": "NoError"},
     "OccurenceConstraintViolation", {"path": "", "rule": "Required"}),
    (V16, "StatusNotification", {"connectorId": "1", "errorCode": "NoError", "status": "Available"},
     "TypeConstraintViolation", {"path": "connectorId", "rule": "Type"}),
    (V16, "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Sleeping"},
     "PropertyConstraintViolation", {"path": "status", "rule": "Enum"}),
    (V201, "StatusNotification",
     {"timestamp": "2026-01-01T00:00:00Z", "connectorStatus": "Available", "evseId": 1},
     "OccurrenceConstraintViolation", {"path": "", "rule": "Required"}),
    (V201, "StatusNotification",
     {"timestamp": "2026-01-01T00:00:00Z", "connectorStatus": "Available", "evseId": 1.5,
      "connectorId": 1},
     "TypeConstraintViolation", {"path": "evseId", "rule": "Type"}),
    (V201, "StatusNotification",
     {"timestamp": "2026-01-01T00:00:00Z", "connectorStatus": "Charging", "evseId": 1,
      "connectorId": 1},
     "PropertyConstraintViolation", {"path": "connectorStatus", "rule": "Enum"}),
]  # fmt: skip


@pytest.mark.parametrize("case", INVALID)
async def test_an_invalid_payload_is_refused_in_the_versions_spelling(
    harness: Harness, case: tuple[str, str, dict[str, Any], str, dict[str, str]]
) -> None:
    protocol, action, payload, code, details = case
    answer = await harness.send(protocol, [2, "bad", action, payload])
    assert answer[:3] == [4, "bad", code]
    assert isinstance(answer[3], str)
    assert answer[3]
    assert answer[4] == details
    assert len(answer) == 5
    assert await harness.version() == 0
    assert await harness.shadows.get("CP001") is None


@pytest.mark.parametrize("case", INVALID)
async def test_an_invalid_payload_leaves_an_existing_shadow_untouched(
    harness: Harness, case: tuple[str, str, dict[str, Any], str, dict[str, str]]
) -> None:
    protocol, action, payload, code, _ = case
    await harness.call(V201, "BootNotification", FULL_BOOT_V201)
    await harness.call(
        V16, "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
    )
    before = copy.deepcopy(await harness.shadows.get("CP001"))
    answer = await harness.send(protocol, [2, "bad", action, payload])
    assert answer[2] == code
    assert await harness.version() == 2
    assert await harness.shadows.get("CP001") == before


async def test_the_description_names_the_offending_field(harness: Harness) -> None:
    boot = {"chargePointVendor": "V", "chargePointModel": 5}
    answer = await harness.send(V16, [2, "bad", "BootNotification", boot])
    assert "chargePointModel" in answer[3]
    assert answer[3].startswith("BootNotification")
