from __future__ import annotations

from typing import Any

import orjson
import pytest

from ocppj import (
    Call,
    CallError,
    CallResult,
    Downlink,
    FormatViolation,
    MalformedFrame,
    MessageType,
    MessageTypeNotSupported,
    OccurrenceConstraintViolation,
    OcppVersion,
    describe_downlink,
    encode_call,
    encode_call_error,
    encode_call_result,
    encode_error,
    parse,
)


def test_parses_the_three_message_types() -> None:
    assert parse(b'[2,"1","Heartbeat",{}]') == Call("1", "Heartbeat", {})
    assert parse('[3,"1",{"a":1}]') == CallResult("1", {"a": 1})
    assert parse(b'[4,"1","GenericError","oops",{}]') == CallError("1", "GenericError", "oops", {})


@pytest.mark.parametrize(
    ("frame", "message_id", "answer"),
    [
        (b"not json", "-1", True),
        (b"\xff\xfe", "-1", True),  # not UTF-8
        (b"{}", "-1", True),
        (b"[]", "-1", True),
        (b'[2, 1, "Heartbeat", {}]', "-1", True),
        (b'[2, "' + b"x" * 37 + b'", "Heartbeat", {}]', "-1", True),
        (b'[2, "", "Heartbeat", {}]', "-1", True),
        (b'[2, "7", "Heartbeat"]', "7", True),
        (b'[2, "7", "Heartbeat", null]', "7", True),
        (b'[2, "7", "", {}]', "7", True),
        (b'[2, "7", 5, {}]', "7", True),
        (b'[2, "7", "Heartbeat", {}, "extra"]', "7", True),
        (b'[3, "7"]', "7", False),
        (b'[3, "7", []]', "7", False),
        (b'[4, "7", "GenericError"]', "7", False),
    ],
)
def test_malformed_frames_say_what_to_answer(frame: bytes, message_id: str, answer: bool) -> None:
    with pytest.raises(MalformedFrame) as raised:
        parse(frame)
    assert raised.value.message_id == message_id
    assert raised.value.answer is answer
    assert isinstance(raised.value.error, FormatViolation)


@pytest.mark.parametrize("kind", [b"5", b"6", b"2.0", b"true", b'"2"'])
def test_unknown_message_types_are_answered(kind: bytes) -> None:
    with pytest.raises(MalformedFrame) as raised:
        parse(b"[" + kind + b', "9", "Heartbeat", {}]')
    assert isinstance(raised.value.error, MessageTypeNotSupported)
    assert raised.value.message_id == "9"
    assert raised.value.error.code_for(OcppVersion.V16) == "ProtocolError"


def test_encoders_round_trip_through_parse() -> None:
    assert parse(encode_call("a", "Heartbeat", {})) == Call("a", "Heartbeat", {})
    assert parse(encode_call_result("a", {"x": 1})) == CallResult("a", {"x": 1})
    assert parse(encode_call_error("a", "NotSupported", "no", None)) == CallError(
        "a", "NotSupported", "no", {}
    )


def test_encode_error_uses_the_versions_spelling_and_caps_the_description() -> None:
    error = OccurrenceConstraintViolation("d" * 300, {"path": "x"})
    frame: list[Any] = orjson.loads(encode_error(error, "m", OcppVersion.V16))
    assert frame[:3] == [4, "m", "OccurenceConstraintViolation"]
    assert len(frame[3]) == 255
    assert frame[4] == {"path": "x"}


# -- describe_downlink ---------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "kind", "message_id"),
    [
        (encode_call("c1", "Reset", {"type": "Soft"}), MessageType.CALL, "c1"),
        (encode_call_result("r1", {}), MessageType.CALLRESULT, "r1"),
        (encode_call_error("e1", "GenericError", "busy"), MessageType.CALLERROR, "e1"),
        (b' [2, "spaced", "Reset", {}]', MessageType.CALL, "spaced"),
        # Only type and id are judged: the rest is the maker's business.
        (b'[3,"short"]', MessageType.CALLRESULT, "short"),
    ],
)
def test_describe_downlink_reads_the_type_and_the_id(
    frame: bytes, kind: MessageType, message_id: str
) -> None:
    assert describe_downlink(frame) == Downlink(kind, message_id, frame)


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b"not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"", "not valid JSON"),
        (b"{}", "non-empty JSON array"),
        (b"[]", "non-empty JSON array"),
        (b'"[2"', "non-empty JSON array"),
        (b'[7,"m",{}]', "unknown MessageTypeId 7"),
        (b'["2","m","Reset",{}]', "unknown MessageTypeId"),
        (b'[true,"m",{}]', "unknown MessageTypeId true"),
        (b'[2.0,"m","Reset",{}]', "unknown MessageTypeId"),
        (b"[2]", "messageId"),
        (b'[2,42,"Reset",{}]', "messageId"),
        (b'[3,"",{}]', "messageId"),
        (b'[2,"' + b"x" * 37 + b'","Reset",{}]', "messageId"),
    ],
)
def test_describe_downlink_refuses_what_no_charger_could_read(frame: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        describe_downlink(frame)
