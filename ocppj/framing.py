"""OCPP-J framing: the JSON arrays that carry every message.

``parse`` turns the bytes of a WebSocket text message into a ``Call``,
``CallResult`` or ``CallError``, or raises ``MalformedFrame`` that says what to
answer. ``encode_*`` build frames with orjson. A ``Downlink`` is a frame the
backend sends to a charge point together with what it is, so that the gateway
never has to read it again; ``describe_downlink`` reads it once where only the
bytes arrive (from an MQTT broker).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, TypeAlias

import orjson

from .errors import FormatViolation, MessageTypeNotSupported, OcppError
from .versions import OcppVersion

__all__ = [
    "MessageType",
    "Call",
    "CallResult",
    "CallError",
    "Message",
    "MalformedFrame",
    "Downlink",
    "describe_downlink",
    "UNREADABLE_ID",
    "MAX_MESSAGE_ID",
    "parse",
    "encode_call",
    "encode_call_result",
    "encode_call_error",
    "encode_error",
]

#: The message id to answer with when the frame's own id cannot be read.
UNREADABLE_ID = "-1"
#: OCPP-J: a message id is a string of at most 36 characters.
MAX_MESSAGE_ID = 36


class MessageType(enum.IntEnum):
    CALL = 2
    CALLRESULT = 3
    CALLERROR = 4


@dataclass(frozen=True, slots=True)
class Call:
    message_id: str
    action: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CallResult:
    message_id: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CallError:
    message_id: str
    code: str
    description: str
    details: dict[str, Any]


Message: TypeAlias = Call | CallResult | CallError


class MalformedFrame(Exception):
    """A frame that breaks OCPP-J framing.

    ``answer`` is false when the sender must not get a CALLERROR back (a
    broken CALLRESULT or CALLERROR is never answered: answering an answer
    would start a loop of errors).
    """

    def __init__(self, error: OcppError, message_id: str, *, answer: bool) -> None:
        super().__init__(error.description)
        self.error = error
        self.message_id = message_id
        self.answer = answer


def parse(data: bytes | str) -> Message:
    """Parse one OCPP-J frame; raise ``MalformedFrame`` if it is not one."""
    try:
        frame = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise MalformedFrame(
            FormatViolation("message is not valid JSON"), UNREADABLE_ID, answer=True
        ) from None
    if not isinstance(frame, list) or not frame:
        raise MalformedFrame(
            FormatViolation("message is not a non-empty JSON array"), UNREADABLE_ID, answer=True
        )

    message_id = _message_id(frame)
    kind = frame[0]
    if kind == MessageType.CALL and type(kind) is int:
        return _call(frame, message_id)
    if kind == MessageType.CALLRESULT and type(kind) is int:
        if len(frame) == 3 and message_id is not None and isinstance(frame[2], dict):
            return CallResult(message_id, frame[2])
        raise _unanswerable("CALLRESULT must be [3, messageId, {payload}]", message_id)
    if kind == MessageType.CALLERROR and type(kind) is int:
        if (
            len(frame) == 5
            and message_id is not None
            and isinstance(frame[2], str)
            and isinstance(frame[3], str)
            and isinstance(frame[4], dict)
        ):
            return CallError(message_id, frame[2], frame[3], frame[4])
        raise _unanswerable(
            "CALLERROR must be [4, messageId, errorCode, errorDescription, {errorDetails}]",
            message_id,
        )
    raise MalformedFrame(
        MessageTypeNotSupported(f"unknown MessageTypeId {_short(kind)}"),
        message_id or UNREADABLE_ID,
        answer=True,
    )


def _call(frame: list[Any], message_id: str | None) -> Call:
    if message_id is None:
        raise MalformedFrame(
            FormatViolation(f"messageId must be a string of 1 to {MAX_MESSAGE_ID} characters"),
            UNREADABLE_ID,
            answer=True,
        )
    if len(frame) != 4:
        raise MalformedFrame(
            FormatViolation("CALL must be [2, messageId, action, {payload}]"),
            message_id,
            answer=True,
        )
    action, payload = frame[2], frame[3]
    if not isinstance(action, str) or not action:
        raise MalformedFrame(
            FormatViolation("action must be a non-empty string"), message_id, answer=True
        )
    if not isinstance(payload, dict):
        raise MalformedFrame(
            FormatViolation("payload must be a JSON object"), message_id, answer=True
        )
    return Call(message_id, action, payload)


def _message_id(frame: list[Any]) -> str | None:
    if len(frame) < 2:
        return None
    message_id = frame[1]
    if isinstance(message_id, str) and 0 < len(message_id) <= MAX_MESSAGE_ID:
        return message_id
    return None


def _unanswerable(description: str, message_id: str | None) -> MalformedFrame:
    return MalformedFrame(FormatViolation(description), message_id or UNREADABLE_ID, answer=False)


def _short(value: Any) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass(frozen=True, slots=True)
class Downlink:
    """A frame for a charge point and what it is: the gateway queues a CALL
    behind an unanswered one by ``message_id`` and writes the others at once."""

    kind: MessageType
    message_id: str
    frame: bytes


def describe_downlink(frame: bytes) -> Downlink:
    """Read a downlink frame's MessageTypeId and message id; ValueError if it
    has no such pair (no charge point could make sense of it).

    Only the first two elements are judged: the rest is the sender's
    business, checked where the frame was made.
    """
    try:
        message = orjson.loads(frame)
    except orjson.JSONDecodeError:
        raise ValueError("not valid JSON") from None
    if not isinstance(message, list) or not message:
        raise ValueError("not a non-empty JSON array")
    kind = message[0]
    if type(kind) is not int or kind not in _KINDS:
        raise ValueError(f"unknown MessageTypeId {_short(kind)}")
    message_id = _message_id(message)
    if message_id is None:
        raise ValueError(f"messageId must be a string of 1 to {MAX_MESSAGE_ID} characters")
    return Downlink(_KINDS[kind], message_id, frame)


_KINDS = {kind.value: kind for kind in MessageType}


def encode_call(message_id: str, action: str, payload: dict[str, Any]) -> bytes:
    return orjson.dumps([MessageType.CALL, message_id, action, payload])


def encode_call_result(message_id: str, payload: dict[str, Any]) -> bytes:
    return orjson.dumps([MessageType.CALLRESULT, message_id, payload])


def encode_call_error(
    message_id: str, code: str, description: str, details: dict[str, Any] | None = None
) -> bytes:
    return orjson.dumps([MessageType.CALLERROR, message_id, code, description, details or {}])


def encode_error(error: OcppError, message_id: str, version: OcppVersion) -> bytes:
    """The CALLERROR frame that tells a charge point of ``error`` in its version."""
    return encode_call_error(message_id, error.code_for(version), error.description, error.details)
