"""CALLERROR codes, spelled the way each OCPP version spells them.

Code raises the subclass that says what went wrong; the version decides how
the code is written on the wire (1.6 has ``FormationViolation`` and
``OccurenceConstraintViolation``, both sic).
"""

from __future__ import annotations

from typing import Any, ClassVar

from .versions import OcppVersion

__all__ = [
    "OcppError",
    "NotImplementedAction",
    "NotSupported",
    "InternalError",
    "ProtocolError",
    "SecurityError",
    "FormatViolation",
    "PropertyConstraintViolation",
    "OccurrenceConstraintViolation",
    "TypeConstraintViolation",
    "GenericError",
    "MessageTypeNotSupported",
    "MAX_DESCRIPTION",
]

#: OCPP-J caps errorDescription at 255 characters.
MAX_DESCRIPTION = 255


class OcppError(Exception):
    """An error that a charge point is told about with a CALLERROR.

    ``description`` goes to the charge point as it is, so it must never hold
    internals; ``details`` is the CALLERROR's errorDetails object.
    """

    code: ClassVar[str] = "GenericError"
    #: How 1.6 spells the code, where it differs.
    code_v16: ClassVar[str | None] = None

    def __init__(self, description: str = "", details: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.description = description[:MAX_DESCRIPTION]
        self.details: dict[str, Any] = details or {}

    def code_for(self, version: OcppVersion) -> str:
        """The errorCode as ``version`` spells it."""
        if version is OcppVersion.V16 and self.code_v16 is not None:
            return self.code_v16
        return self.code


class NotImplementedAction(OcppError):
    """The action is not part of the version's message set."""

    code = "NotImplemented"


class NotSupported(OcppError):
    """The version knows the action, this system does not handle it."""

    code = "NotSupported"


class InternalError(OcppError):
    code = "InternalError"


class ProtocolError(OcppError):
    code = "ProtocolError"


class SecurityError(OcppError):
    code = "SecurityError"


class FormatViolation(OcppError):
    code = "FormatViolation"
    code_v16 = "FormationViolation"


class PropertyConstraintViolation(OcppError):
    code = "PropertyConstraintViolation"


class OccurrenceConstraintViolation(OcppError):
    code = "OccurrenceConstraintViolation"
    code_v16 = "OccurenceConstraintViolation"


class TypeConstraintViolation(OcppError):
    code = "TypeConstraintViolation"


class GenericError(OcppError):
    code = "GenericError"


class MessageTypeNotSupported(OcppError):
    """2.0.1 has a code for an unknown MessageTypeId; 1.6 answers ProtocolError."""

    code = "MessageTypeNotSupported"
    code_v16 = "ProtocolError"
