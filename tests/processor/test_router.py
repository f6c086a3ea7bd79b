from __future__ import annotations

from typing import Any

import jsonschema_rs
import pytest

from ocppj import NotImplementedAction, NotSupported, OcppError, OcppVersion
from processor import Context, HandlerSet, Router, build_router
from processor.schemas import SchemaCatalog

V16, V201 = OcppVersion.V16, OcppVersion.V201


async def answer(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    return {}


def test_routes_are_keyed_by_version_and_action() -> None:
    v16_only = HandlerSet()
    v16_only.on("Heartbeat", versions=[V16])(answer)
    router = Router()
    router.include(v16_only)
    assert router.route(V16, "Heartbeat").handler is answer
    with pytest.raises(NotSupported):
        router.route(V201, "Heartbeat")


def test_unknown_action_is_not_implemented_and_known_one_not_supported() -> None:
    router = Router()
    with pytest.raises(NotImplementedAction, match=r"not an OCPP 1\.6 action"):
        router.route(V16, "TransactionEvent")  # a 2.0.1 action, unknown to 1.6
    with pytest.raises(NotSupported):
        router.route(V201, "TransactionEvent")
    with pytest.raises(NotImplementedAction):
        router.route(V201, "heartbeat")  # action names are case-sensitive


def test_registration_refuses_unknown_actions_and_duplicates() -> None:
    router = Router()
    with pytest.raises(ValueError, match="no action"):
        router.add(V16, "Teleport", answer)
    router.add(V16, "Heartbeat", answer)
    with pytest.raises(ValueError, match="already has a handler"):
        router.add(V16, "Heartbeat", answer)


def test_validators_are_compiled_at_registration(monkeypatch: pytest.MonkeyPatch) -> None:
    compiled: list[Any] = []
    compile_schema = jsonschema_rs.validator_for

    def counting(schema: Any, **options: Any) -> Any:
        compiled.append(schema)
        return compile_schema(schema, **options)

    monkeypatch.setattr(jsonschema_rs, "validator_for", counting)
    # A catalog of its own: the process's shared one may have compiled these already.
    catalogs = {version: SchemaCatalog(version) for version in OcppVersion}
    router = Router(catalogs.__getitem__)
    router.add(V201, "Heartbeat", answer)
    # Registration compiles the request and the response schema...
    assert len(compiled) == 2
    route = router.route(V201, "Heartbeat")
    # ...and the same compiled objects serve every call: calls compile nothing.
    assert router.route(V201, "Heartbeat").request is route.request
    route.request.check({})
    route.response.check({"currentTime": "2026-01-01T00:00:00.000Z"})
    with pytest.raises(OcppError):
        router.route(V201, "Heartbeat").request.check({"unexpected": 1})
    assert len(compiled) == 2


def test_the_system_router_handles_the_core_profile() -> None:
    router = build_router()
    both = {
        "Authorize",
        "BootNotification",
        "DataTransfer",
        "FirmwareStatusNotification",
        "Heartbeat",
        "MeterValues",
        "SecurityEventNotification",
        "StatusNotification",
    }
    assert router.handled(V16) == both | {"StartTransaction", "StopTransaction"}
    assert router.handled(V201) == both | {"TransactionEvent", "NotifyEvent"}
