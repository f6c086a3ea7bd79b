"""Schema failures become the CALLERROR the OCPP-J specification names."""

from __future__ import annotations

from collections import Counter
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
from processor import Processor, build_router
from processor.commands import Commands, RemoteStart
from processor.schemas import Compile, PayloadValidator, SchemaCatalog, catalog_of

from .conftest import Harness

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


async def test_two_processors_compile_each_schema_once() -> None:
    compiled: Counter[tuple[str, str, bool]] = Counter()

    def counting(version: OcppVersion) -> Compile:
        def compile(schema: dict[str, Any], name: str, *, ours: bool) -> PayloadValidator:
            compiled[version.value, name, ours] += 1
            return PayloadValidator(schema, name, ours=ours)

        return compile

    catalogs = {v: SchemaCatalog(v, compile=counting(v)) for v in OcppVersion}
    for _ in range(2):
        harness = Harness()
        harness.processor = Processor(build_router(catalogs.__getitem__), harness.services)
        commands = Commands(harness.services, catalogs.__getitem__)
        await harness.call("ocpp1.6", "BootNotification", BOOT16)
        harness.outbound.connections = {"CP001": "ocpp1.6"}
        sent = await commands.remote_start(RemoteStart("CP001", "TAG"))
        await harness.send("ocpp1.6", [3, sent.message_id, {"status": "Accepted"}])
    assert compiled[("1.6", "BootNotification", False)] == 1
    assert compiled[("1.6", "RemoteStartTransaction", True)] == 1
    assert compiled[("1.6", "RemoteStartTransactionResponse", False)] == 1
    assert set(compiled.values()) == {1}


def test_routers_share_the_process_catalog_by_default() -> None:
    first, second = build_router(), build_router()
    for version in OcppVersion:
        assert first.catalog(version) is second.catalog(version) is catalog_of(version)
    route, again = (r.route(OcppVersion.V16, "Heartbeat") for r in (first, second))
    assert route.request is again.request
