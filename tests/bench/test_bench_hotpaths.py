"""Micro-benchmarks of the per-message steps around the processor's handlers.

Opt-in, like every benchmark here (pyproject's addopts carry
``--benchmark-skip``)::

    .venv/bin/pytest tests/bench/test_bench_hotpaths.py --benchmark-only

``test_bench_core.py`` measures ``Processor.handle`` as a whole; these measure
the pieces every frame goes through on its way, each on its own, so that a
regression can be pinned on one of them (``python -m bench.regress`` compares
them with a saved baseline):

* **frame check**: what the gateway runs on each text frame a charger sends
  (``Gateway.uplink`` in ``gateway/server.py``): ``ocppj.parse``, on a 1.6
  Heartbeat CALL, a 2.0.1 TransactionEvent CALL of 1.2 KB and a
  CALLRESULT; and the rejection of a malformed frame: ``parse`` raising
  ``MalformedFrame``, then the CALLERROR built with ``encode_error`` in the
  charger's version (or nothing, for a broken answer), as ``uplink`` does.
* **topics**: ``ocppj.topics.uplink_topic`` (built by the MQTT bus when a
  charger is admitted), ``downlink_topic`` (by the worker for each answer),
  ``parse_uplink`` (by the worker for each frame), ``parse_downlink`` (the
  general parser) and ``downlink_reader`` (what a gateway pool connection
  reads each downlink topic with), with a plain identity and with one that
  needs percent-encoding.
* **routing**: ``version_for(subprotocol)`` then ``Router.route(version,
  action)``, the dispatch step of ``Processor.handle``, for handled actions
  and for the two refusals (``NotSupported``, ``NotImplemented``).
* **validation**: the compiled request validators the processor checks a
  CALL's payload with (``Route.request.check``, jsonschema-rs), on valid and
  invalid 1.6 StatusNotification and 2.0.1 TransactionEvent payloads. An
  invalid one must raise the ``OcppError`` that ``Processor.handle`` answers
  with, which is checked against the processor itself, outside the timing.

These are sub-microsecond to a few microseconds per call. pytest-benchmark
calibrates how many calls make a round (at least 5 us) after a warm-up of
``WARMUP_ITERATIONS`` calls, so that the size of the rounds, and with it the
share of the timer's own cost in each figure, is the same from run to run;
its figures are per call. Each benchmark runs rounds for ``MAX_TIME_S``
(0.2 s; this overrides ``--benchmark-max-time``). Each
benchmark checks its result, so a fast wrong answer fails; after its run it
stores the median call time in ``extra_info["ns_per_call"]`` (read it with
``--benchmark-json=FILE``, or add ``-s`` to see the line each one prints).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson
import pytest

from ocppj import (
    Call,
    CallResult,
    MalformedFrame,
    OcppError,
    OcppVersion,
    downlink_reader,
    downlink_topic,
    encode_call,
    encode_error,
    parse,
    parse_downlink,
    parse_uplink,
    uplink_topic,
    version_for,
)
from processor import Processor, ProcessorConfig, Router, Services, build_router
from processor.adapters.memory import (
    FixedClock,
    MemoryOutbound,
    MemoryPendingCalls,
    MemoryShadowStore,
    MemoryTransactions,
    SequentialIds,
)
from processor.adapters.static_id_tokens import StaticIdTokens
from processor.handlers.availability import heartbeat
from processor.handlers.transactions import transaction_event
from processor.router import Route

#: Calls made before calibrating, and between calibration steps. Without a
#: warm-up, pytest-benchmark sizes rounds from one cold first call: when that
#: takes over its 5 us minimum round, rounds are one call each, otherwise about
#: 20, and a ~300 ns call's median moved by a third from run to run with it.
WARMUP_ITERATIONS = 10_000
#: Seconds of rounds per benchmark (pytest-benchmark's default is 1 s): tens
#: of thousands of rounds, plenty for a stable median, in a fifth of the time.
MAX_TIME_S = 0.2
pytestmark = pytest.mark.benchmark(
    warmup=True, warmup_iterations=WARMUP_ITERATIONS, max_time=MAX_TIME_S
)

# --- frames -------------------------------------------------------------------

HEARTBEAT_16 = b'[2,"19223201-hb","Heartbeat",{}]'
#: The answer a charger gives to RemoteStartTransaction, ChangeAvailability, ...
CALL_RESULT = b'[3,"a4b5c6d7-0001",{"status":"Accepted"}]'


def _sampled_values_201() -> list[dict[str, Any]]:
    """A periodic reading of a three-phase AC charger, 2.0.1 style."""
    energy = {
        "value": 12345.6,
        "context": "Sample.Periodic",
        "measurand": "Energy.Active.Import.Register",
        "unitOfMeasure": {"unit": "Wh"},
    }
    power = {
        "value": 22080.4,
        "context": "Sample.Periodic",
        "measurand": "Power.Active.Import",
        "unitOfMeasure": {"unit": "W"},
    }
    currents = [
        {
            "value": 32.0,
            "context": "Sample.Periodic",
            "measurand": "Current.Import",
            "phase": phase,
            "unitOfMeasure": {"unit": "A"},
        }
        for phase in ("L1", "L2", "L3")
    ]
    voltages = [
        {
            "value": 230.1,
            "context": "Sample.Periodic",
            "measurand": "Voltage",
            "phase": phase,
            "unitOfMeasure": {"unit": "V"},
        }
        for phase in ("L1-N", "L2-N", "L3-N")
    ]
    return [energy, power, *currents, *voltages]


TRANSACTION_EVENT_201 = {
    "eventType": "Updated",
    "timestamp": "2024-01-01T12:00:00.000Z",
    "triggerReason": "MeterValuePeriodic",
    "seqNo": 7,
    "transactionInfo": {"transactionId": "TX-0001", "chargingState": "Charging"},
    "evse": {"id": 1, "connectorId": 1},
    "meterValue": [
        {"timestamp": "2024-01-01T12:00:00.000Z", "sampledValue": _sampled_values_201()}
    ],
}
TRANSACTION_EVENT_FRAME = orjson.dumps(
    [2, "19223201-tx", "TransactionEvent", TRANSACTION_EVENT_201]
)

STATUS_16 = {
    "connectorId": 1,
    "errorCode": "NoError",
    "status": "Charging",
    "timestamp": "2024-01-01T11:59:30.000Z",
}


def _record(benchmark: Any) -> None:
    """Store (and print) the median call time in nanoseconds."""
    if benchmark.stats is None:  # --benchmark-disable: run once, untimed
        return
    median = benchmark.stats.stats.median
    benchmark.extra_info["ns_per_call"] = round(median * 1e9, 1)
    print(f"\n{benchmark.name}: {median * 1e9:.0f} ns per call")


# --- frame check (gateway) -------------------------------------------------------


def test_frame_check_heartbeat_16(benchmark: Any) -> None:
    message = benchmark(parse, HEARTBEAT_16)
    _record(benchmark)

    assert message == Call("19223201-hb", "Heartbeat", {})


def test_frame_check_transaction_event_201(benchmark: Any) -> None:
    """A TransactionEvent ``Updated`` with a nine-value three-phase reading."""
    assert 1000 <= len(TRANSACTION_EVENT_FRAME) <= 1300, len(TRANSACTION_EVENT_FRAME)

    message = benchmark(parse, TRANSACTION_EVENT_FRAME)
    _record(benchmark)
    benchmark.extra_info["frame_bytes"] = len(TRANSACTION_EVENT_FRAME)

    assert message == Call("19223201-tx", "TransactionEvent", TRANSACTION_EVENT_201)


def test_frame_check_call_result(benchmark: Any) -> None:
    message = benchmark(parse, CALL_RESULT)
    _record(benchmark)

    assert message == CallResult("a4b5c6d7-0001", {"status": "Accepted"})


def _reject(frame: bytes, version: OcppVersion) -> bytes | None:
    """What ``Gateway.uplink`` does with a frame that breaks OCPP-J framing:
    the CALLERROR to send back, or None when it must not be answered."""
    try:
        parse(frame)
    except MalformedFrame as exc:
        return encode_error(exc.error, exc.message_id, version) if exc.answer else None
    raise AssertionError(f"{frame!r} was accepted")


@pytest.mark.parametrize(
    ("frame", "version", "answer"),
    [
        pytest.param(
            b'[2,"19223201-hb","Heartbeat",{',
            OcppVersion.V16,
            b'[4,"-1","FormationViolation","message is not valid JSON",{}]',
            id="truncated_json_16",
        ),
        pytest.param(
            b'[2,"19223201-hb",42,{}]',
            OcppVersion.V201,
            b'[4,"19223201-hb","FormatViolation","action must be a non-empty string",{}]',
            id="call_without_action_201",
        ),
        pytest.param(
            b'[3,"a4b5c6d7-0001"]',
            OcppVersion.V201,
            None,  # a broken answer is never answered
            id="call_result_without_payload",
        ),
    ],
)
def test_frame_check_rejects_malformed(
    benchmark: Any, frame: bytes, version: OcppVersion, answer: bytes | None
) -> None:
    reply = benchmark(_reject, frame, version)
    _record(benchmark)

    assert reply == answer


# --- topics ---------------------------------------------------------------------

PREFIX = "ocpp"
ROUTE = "gw-0a1b2c3d.0"
PROTOCOL = "ocpp2.0.1"
IDENTITIES = [
    pytest.param("CP001", "CP001", id="plain"),
    pytest.param("CP/1+#%é", "CP%2F1%2B%23%25%C3%A9", id="encoded"),
]


@pytest.mark.parametrize(("identity", "level"), IDENTITIES)
def test_topic_uplink(benchmark: Any, identity: str, level: str) -> None:
    topic = benchmark(uplink_topic, PREFIX, identity, PROTOCOL, ROUTE)
    _record(benchmark)

    assert topic == f"ocpp/in/{level}/ocpp2.0.1/gw-0a1b2c3d.0"


@pytest.mark.parametrize(("identity", "level"), IDENTITIES)
def test_topic_downlink(benchmark: Any, identity: str, level: str) -> None:
    topic = benchmark(downlink_topic, PREFIX, ROUTE, identity)
    _record(benchmark)

    assert topic == f"ocpp/out/gw-0a1b2c3d.0/{level}"


@pytest.mark.parametrize(("identity", "level"), IDENTITIES)
def test_topic_parse_uplink(benchmark: Any, identity: str, level: str) -> None:
    parsed = benchmark(parse_uplink, f"ocpp/in/{level}/ocpp2.0.1/gw-0a1b2c3d.0", PREFIX)
    _record(benchmark)

    assert parsed == (identity, PROTOCOL, ROUTE)


@pytest.mark.parametrize(("identity", "level"), IDENTITIES)
def test_topic_parse_downlink(benchmark: Any, identity: str, level: str) -> None:
    parsed = benchmark(parse_downlink, f"ocpp/out/gw-0a1b2c3d.0/{level}", PREFIX)
    _record(benchmark)

    assert parsed == (ROUTE, identity)


@pytest.mark.parametrize(("identity", "level"), IDENTITIES)
def test_topic_read_downlink(benchmark: Any, identity: str, level: str) -> None:
    read = downlink_reader(PREFIX, ROUTE)
    parsed = benchmark(read, f"ocpp/out/gw-0a1b2c3d.0/{level}")
    _record(benchmark)

    assert parsed == identity


# --- routing (processor) ----------------------------------------------------------


@pytest.fixture(scope="module")
def router() -> Router:
    """Every handler of this system, validators compiled (as the processor has it)."""
    return build_router()


def _dispatch(router: Router, subprotocol: str, call: Call) -> Route | OcppError:
    """The dispatch step of ``Processor.handle``: the route, or the refusal."""
    try:
        return router.route(version_for(subprotocol), call.action)
    except OcppError as error:
        return error


@pytest.mark.parametrize(
    ("subprotocol", "action", "handler"),
    [
        pytest.param("ocpp1.6", "Heartbeat", heartbeat, id="heartbeat_16"),
        pytest.param(
            "ocpp2.0.1", "TransactionEvent", transaction_event, id="transaction_event_201"
        ),
    ],
)
def test_route_call(
    benchmark: Any, router: Router, subprotocol: str, action: str, handler: Any
) -> None:
    call = Call("19223201-x", action, {})

    route = benchmark(_dispatch, router, subprotocol, call)
    _record(benchmark)

    assert isinstance(route, Route)
    assert (route.action, route.handler) == (action, handler)


@pytest.mark.parametrize(
    ("subprotocol", "action", "code"),
    [
        # A 1.6 action a charger may send, which this system has no handler for.
        pytest.param(
            "ocpp1.6", "DiagnosticsStatusNotification", "NotSupported", id="not_supported_16"
        ),
        pytest.param("ocpp2.0.1", "Heartbeet", "NotImplemented", id="not_implemented_201"),
    ],
)
def test_route_refused(
    benchmark: Any, router: Router, subprotocol: str, action: str, code: str
) -> None:
    call = Call("19223201-x", action, {})

    refusal = benchmark(_dispatch, router, subprotocol, call)
    _record(benchmark)

    assert isinstance(refusal, OcppError)
    assert refusal.code_for(version_for(subprotocol)) == code


# --- validation (processor) -------------------------------------------------------


def _bench_check(
    benchmark: Any, router: Router, version: OcppVersion, action: str, payload: Any
) -> OcppError | None:
    """Time the validator itself (looked up once, outside the timing)."""
    validator = router.route(version, action).request

    def check() -> OcppError | None:
        try:
            validator.check(payload)
        except OcppError as error:
            return error
        return None

    error: OcppError | None = benchmark(check)
    _record(benchmark)
    return error


def _processor_answer(router: Router, subprotocol: str, action: str, payload: Any) -> bytes:
    """What ``Processor.handle`` answers to a CALL of ``payload`` (untimed)."""
    clock = FixedClock(datetime(2024, 1, 1, 12, 0, tzinfo=UTC))
    processor = Processor(
        router,
        Services(
            config=ProcessorConfig(),
            shadows=MemoryShadowStore(clock),
            clock=clock,
            ids=SequentialIds(),
            id_tokens=StaticIdTokens(None),
            transactions=MemoryTransactions(),
            pending=MemoryPendingCalls(),
            outbound=MemoryOutbound(),
        ),
    )
    frame = encode_call("bench-1", action, payload)
    reply = asyncio.run(processor.handle("CP001", subprotocol, frame))
    assert reply is not None
    return reply


@pytest.mark.parametrize(
    ("subprotocol", "action", "payload"),
    [
        pytest.param("ocpp1.6", "StatusNotification", STATUS_16, id="status_notification_16"),
        pytest.param(
            "ocpp2.0.1", "TransactionEvent", TRANSACTION_EVENT_201, id="transaction_event_201"
        ),
    ],
)
def test_validate_request_valid(
    benchmark: Any, router: Router, subprotocol: str, action: str, payload: dict[str, Any]
) -> None:
    error = _bench_check(benchmark, router, version_for(subprotocol), action, payload)

    assert error is None


class Invalid(NamedTuple):
    """An invalid request and the error the processor must answer it with."""

    subprotocol: str
    action: str
    payload: dict[str, Any]
    code: str  # as the version spells it
    details: dict[str, str]  # the CALLERROR's errorDetails


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(
            Invalid(
                "ocpp1.6",
                "StatusNotification",
                {**STATUS_16, "status": "Broken"},
                "PropertyConstraintViolation",
                {"path": "status", "rule": "Enum"},
            ),
            id="status_notification_16_enum",
        ),
        pytest.param(
            Invalid(
                "ocpp1.6",
                "StatusNotification",
                {key: value for key, value in STATUS_16.items() if key != "errorCode"},
                "OccurenceConstraintViolation",  # sic: the 1.6 spelling
                {"path": "", "rule": "Required"},
            ),
            id="status_notification_16_required",
        ),
        pytest.param(
            Invalid(
                "ocpp2.0.1",
                "TransactionEvent",
                {**TRANSACTION_EVENT_201, "seqNo": "7"},
                "TypeConstraintViolation",
                {"path": "seqNo", "rule": "Type"},
            ),
            id="transaction_event_201_type",
        ),
    ],
)
def test_validate_request_invalid(benchmark: Any, router: Router, case: Invalid) -> None:
    """The error must be the one ``Processor.handle`` answers the CALL with."""
    version = version_for(case.subprotocol)

    error = _bench_check(benchmark, router, version, case.action, case.payload)

    assert error is not None
    assert (error.code_for(version), error.details) == (case.code, case.details)
    # The very CALLERROR the processor sends for this payload.
    answer = _processor_answer(router, case.subprotocol, case.action, case.payload)
    assert encode_error(error, "bench-1", version) == answer
