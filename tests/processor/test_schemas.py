"""Schema failures become the CALLERROR the OCPP-J specification names."""

from __future__ import annotations

from typing import Any

import pytest

from ocppj import (
    FormatViolation,
    OccurrenceConstraintViolation,
    OcppError,
    OcppVersion,
    PropertyConstraintViolation,
    TypeConstraintViolation,
)
from processor.schemas import SchemaCatalog

V16, V201 = SchemaCatalog(OcppVersion.V16), SchemaCatalog(OcppVersion.V201)
BOOT16 = {"chargePointVendor": "V", "chargePointModel": "M"}


@pytest.mark.parametrize(
    ("payload", "error", "path"),
    [
        ({"chargePointVendor": "V"}, OccurrenceConstraintViolation, ""),
        ({**BOOT16, "chargePointModel": 1}, TypeConstraintViolation, "chargePointModel"),
        ({**BOOT16, "chargePointModel": "M" * 21}, PropertyConstraintViolation, "chargePointModel"),
        ({**BOOT16, "unexpected": 1}, FormatViolation, ""),
        ([], FormatViolation, ""),
    ],
)
def test_request_failures_map_to_codes(payload: Any, error: type[OcppError], path: str) -> None:
    with pytest.raises(error) as raised:
        V16.request("BootNotification").check(payload)
    assert raised.value.details["path"] == path
    assert raised.value.description.startswith("BootNotification")


def test_v16_spells_its_codes_its_own_way() -> None:
    assert FormatViolation().code_for(OcppVersion.V16) == "FormationViolation"
    assert FormatViolation().code_for(OcppVersion.V201) == "FormatViolation"
    occurrence = OccurrenceConstraintViolation()
    assert occurrence.code_for(OcppVersion.V16) == "OccurenceConstraintViolation"
    assert occurrence.code_for(OcppVersion.V201) == "OccurrenceConstraintViolation"


def test_enum_values_are_property_violations() -> None:
    status = {"connectorId": 1, "errorCode": "NoError", "status": "Sleeping"}
    with pytest.raises(PropertyConstraintViolation):
        V16.request("StatusNotification").check(status)


def test_request_timestamps_are_not_format_checked_but_responses_are() -> None:
    status = {
        "timestamp": "2026-01-01 10:00",  # no zone, no T: seen in the field
        "connectorStatus": "Available",
        "evseId": 1,
        "connectorId": 1,
    }
    V201.request("StatusNotification").check(status)
    with pytest.raises(PropertyConstraintViolation):
        V201.response("Heartbeat").check({"currentTime": "yesterday"})
    # The charger's answers to our commands are theirs: lenient again.
    V201.response("RequestStartTransaction", ours=False).check(
        {"status": "Accepted", "statusInfo": {"reasonCode": "x"}}
    )


def test_the_catalogs_know_each_versions_actions() -> None:
    assert "StartTransaction" in V16.actions and "StartTransaction" not in V201.actions
    assert "TransactionEvent" in V201.actions and "TransactionEvent" not in V16.actions
    assert "RemoteStartTransaction" in V16.actions  # backend-initiated actions count too
    with pytest.raises(LookupError):
        V16.request("TransactionEvent")
