"""EMF lines: the exact documents, their dimension sets, deltas between reports."""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import orjson
import pytest

from gateway.emf import EmfMetrics, Snapshot, check_namespace
from gateway.metrics import GatewayMetrics

PROTOCOLS = ("ocpp1.6", "ocpp2.0", "ocpp2.0.1")
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z in ms

#: The rules of CloudWatch's EMF specification that these documents touch
#: (required members, their types, the limits on dimension sets and units).
EMF_SCHEMA = {
    "type": "object",
    "required": ["_aws"],
    "properties": {
        "_aws": {
            "type": "object",
            "required": ["Timestamp", "CloudWatchMetrics"],
            "properties": {
                "Timestamp": {"type": "integer"},
                "CloudWatchMetrics": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["Namespace", "Dimensions", "Metrics"],
                        "properties": {
                            "Namespace": {"type": "string", "minLength": 1, "maxLength": 1024},
                            "Dimensions": {
                                "type": "array",
                                "minItems": 1,
                                "items": {
                                    "type": "array",
                                    "maxItems": 30,
                                    "items": {"type": "string", "minLength": 1, "maxLength": 250},
                                },
                            },
                            "Metrics": {
                                "type": "array",
                                "maxItems": 100,
                                "items": {
                                    "type": "object",
                                    "required": ["Name"],
                                    "properties": {
                                        "Name": {"type": "string", "minLength": 1},
                                        "Unit": {"enum": ["Count"]},
                                    },
                                },
                            },
                        },
                    },
                },
            },
        }
    },
}
_validator = jsonschema_rs.validator_for(EMF_SCHEMA)


def snapshot(
    *,
    at: int = T0,
    connections: dict[str, int] | None = None,
    frames_in: int = 0,
    frames_out: int = 0,
    handshakes: int = 0,
    rejections: int = 0,
) -> Snapshot:
    return Snapshot(at, connections or {}, frames_in, frames_out, handshakes, rejections)


def decode(lines: list[bytes]) -> list[dict[str, Any]]:
    for line in lines:
        assert b"\n" not in line  # one log event per line
    return [orjson.loads(line) for line in lines]


def directive(dimensions: list[str], *names: str) -> dict[str, Any]:
    return {
        "Namespace": "OCPPGateway",
        "Dimensions": [dimensions],
        "Metrics": [{"Name": name, "Unit": "Count"} for name in names],
    }


TOTALS = ("ActiveConnections", "MessagesIn", "MessagesOut", "Handshakes", "HandshakeRejections")


def test_a_report_is_one_line_of_totals_and_one_line_per_protocol_exactly() -> None:
    emf = EmfMetrics("OCPPGateway", PROTOCOLS)
    lines = emf.report(
        snapshot(
            connections={"ocpp1.6": 2, "ocpp2.0.1": 1},
            frames_in=10,
            frames_out=7,
            handshakes=4,
            rejections=3,
        )
    )
    assert decode(lines) == [
        {
            "_aws": {"Timestamp": T0, "CloudWatchMetrics": [directive([], *TOTALS)]},
            "ActiveConnections": 3,
            "MessagesIn": 10,
            "MessagesOut": 7,
            "Handshakes": 4,
            "HandshakeRejections": 3,
        },
        {
            "_aws": {
                "Timestamp": T0,
                "CloudWatchMetrics": [directive(["Protocol"], "ActiveConnections")],
            },
            "Protocol": "ocpp1.6",
            "ActiveConnections": 2,
        },
        {
            "_aws": {
                "Timestamp": T0,
                "CloudWatchMetrics": [directive(["Protocol"], "ActiveConnections")],
            },
            "Protocol": "ocpp2.0",
            "ActiveConnections": 0,
        },
        {
            "_aws": {
                "Timestamp": T0,
                "CloudWatchMetrics": [directive(["Protocol"], "ActiveConnections")],
            },
            "Protocol": "ocpp2.0.1",
            "ActiveConnections": 1,
        },
    ]


def test_the_totals_have_the_empty_dimension_set_not_an_empty_list() -> None:
    totals = orjson.loads(EmfMetrics("OCPPGateway", PROTOCOLS).report(snapshot())[0])
    # [] would publish nothing; [[]] is the one dimension set without dimensions.
    assert totals["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [[]]


def test_every_line_is_a_valid_emf_document_whose_targets_are_on_the_root() -> None:
    emf = EmfMetrics("OCPPGateway", PROTOCOLS)
    for document in decode(emf.report(snapshot(connections={"ocpp2.0": 5}, frames_in=1))):
        _validator.validate(document)
        for metrics in document["_aws"]["CloudWatchMetrics"]:
            for dimension_set in metrics["Dimensions"]:
                for key in dimension_set:
                    assert isinstance(document[key], str)
            for metric in metrics["Metrics"]:
                value = document[metric["Name"]]
                assert isinstance(value, int) and not isinstance(value, bool)
        # Nothing but the metadata, the metrics and their dimensions.
        declared = {m["Name"] for m in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
        dimensions = set(document["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0])
        assert set(document) == {"_aws"} | declared | dimensions


def test_counters_are_reported_as_what_happened_since_the_previous_report() -> None:
    emf = EmfMetrics("OCPPGateway", PROTOCOLS)
    first = decode(emf.report(Snapshot(T0, {"ocpp1.6": 1}, 5, 4, 2, 1)))[0]
    second = decode(emf.report(Snapshot(T0 + 60_000, {"ocpp1.6": 3}, 12, 4, 5, 1)))[0]
    third = decode(emf.report(Snapshot(T0 + 120_000, {}, 12, 4, 5, 1)))[0]
    counts = ("MessagesIn", "MessagesOut", "Handshakes", "HandshakeRejections")
    # The first report counts from start-up.
    assert [first[name] for name in counts] == [5, 4, 2, 1]
    assert [second[name] for name in counts] == [7, 0, 3, 0]
    assert [third[name] for name in counts] == [0, 0, 0, 0]
    # Connections are a gauge: what is connected now, not a difference.
    assert [r["ActiveConnections"] for r in (first, second, third)] == [1, 3, 0]
    assert second["_aws"]["Timestamp"] == T0 + 60_000


def test_every_enabled_protocol_has_a_line_even_with_nobody_on_it() -> None:
    emf = EmfMetrics("OCPPGateway", ("ocpp2.0.1", "ocpp1.6"))
    documents = decode(emf.report(snapshot()))
    assert [(d.get("Protocol"), d["ActiveConnections"]) for d in documents] == [
        (None, 0),
        ("ocpp2.0.1", 0),
        ("ocpp1.6", 0),
    ]


def test_the_snapshot_of_gateway_metrics_adds_up_the_rejection_reasons() -> None:
    metrics = GatewayMetrics()
    metrics.frames_in, metrics.frames_out, metrics.handshakes = 9, 8, 7
    metrics.rejections["unknown charge point"] += 2
    metrics.rejections["no acceptable subprotocol"] += 3
    taken = Snapshot.of(metrics, {"ocpp1.6": 1}, T0)
    assert taken == Snapshot(T0, {"ocpp1.6": 1}, 9, 8, 7, 5)


@pytest.mark.parametrize("namespace", ["OCPPGateway", "ocpp/gw-1", "A b_c.d#e:f"])
def test_custom_namespaces_are_accepted(namespace: str) -> None:
    check_namespace(namespace)
    assert EmfMetrics(namespace, PROTOCOLS).namespace == namespace


@pytest.mark.parametrize("namespace", ["", "AWS/Gateway", "n" * 256, "Zürich", "a\nb", "x{y}"])
def test_a_namespace_cloudwatch_would_refuse_is_refused(namespace: str) -> None:
    with pytest.raises(ValueError, match=r"^namespace: "):
        check_namespace(namespace)
    with pytest.raises(ValueError, match=r"^namespace: "):
        EmfMetrics(namespace, PROTOCOLS)
