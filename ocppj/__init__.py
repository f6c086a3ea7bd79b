"""OCPP-J protocol primitives shared by the gateway and the processor.

Nothing here does I/O: versions and subprotocols, identities, CALLERROR
codes, framing.
"""

from .errors import (
    FormatViolation,
    GenericError,
    InternalError,
    MessageTypeNotSupported,
    NotImplementedAction,
    NotSupported,
    OccurrenceConstraintViolation,
    OcppError,
    PropertyConstraintViolation,
    ProtocolError,
    SecurityError,
    TypeConstraintViolation,
)
from .framing import (
    UNREADABLE_ID,
    Call,
    CallError,
    CallResult,
    MalformedFrame,
    Message,
    MessageType,
    encode_call,
    encode_call_error,
    encode_call_result,
    encode_error,
    parse,
)
from .identity import MAX_IDENTITY, InvalidIdentity, check_identity, identity_from_path
from .versions import SUBPROTOCOLS, OcppVersion, version_for

__all__ = [
    "Call",
    "CallError",
    "CallResult",
    "FormatViolation",
    "GenericError",
    "InternalError",
    "InvalidIdentity",
    "MAX_IDENTITY",
    "MalformedFrame",
    "Message",
    "MessageType",
    "MessageTypeNotSupported",
    "NotImplementedAction",
    "NotSupported",
    "OccurrenceConstraintViolation",
    "OcppError",
    "OcppVersion",
    "PropertyConstraintViolation",
    "ProtocolError",
    "SUBPROTOCOLS",
    "SecurityError",
    "TypeConstraintViolation",
    "UNREADABLE_ID",
    "check_identity",
    "encode_call",
    "encode_call_error",
    "encode_call_result",
    "encode_error",
    "identity_from_path",
    "parse",
    "version_for",
]
