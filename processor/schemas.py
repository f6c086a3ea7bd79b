"""The official OCPP JSON schemas, compiled once into fast validators.

The schemas come from the ``ocpp`` package (the Open Charge Alliance's files,
as shipped by mobilityhouse/ocpp); jsonschema-rs compiles each one the first
time it is asked for. ``catalog_of(version)`` is the process's one catalog
of a version, shared by every router, processor and command set, so each
(version, action, direction) is compiled once however many are built. A
failed check becomes the CALLERROR the OCPP-J specification names for it:

==========================  =====================================
schema rule that failed     CALLERROR (2.0.1 spelling; 1.6 sic)
==========================  =====================================
required, min/maxItems      OccurrenceConstraintViolation
type (of a field)           TypeConstraintViolation
enum, length, range, ...    PropertyConstraintViolation
anything else               FormatViolation (1.6: FormationViolation)
==========================  =====================================
"""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Callable
from typing import Any

import jsonschema_rs
import orjson

from ocppj import (
    FormatViolation,
    OccurrenceConstraintViolation,
    OcppError,
    OcppVersion,
    PropertyConstraintViolation,
    TypeConstraintViolation,
)

__all__ = ["Compile", "PayloadValidator", "SchemaCatalog", "catalog_of"]

_Kind = jsonschema_rs.ValidationErrorKind
_OCCURRENCE = (
    _Kind.Required,
    _Kind.MinItems,
    _Kind.MaxItems,
    _Kind.MinProperties,
    _Kind.MaxProperties,
)
_PROPERTY = (
    _Kind.Enum,
    _Kind.Constant,
    _Kind.MaxLength,
    _Kind.MinLength,
    _Kind.Minimum,
    _Kind.Maximum,
    _Kind.ExclusiveMinimum,
    _Kind.ExclusiveMaximum,
    _Kind.MultipleOf,
    _Kind.Pattern,
    _Kind.Format,
)

_FOLDERS = {OcppVersion.V16: "v16", OcppVersion.V201: "v201"}
# 1.6 names request schemas after the action, 2.0.1 adds "Request".
_REQUEST_SUFFIX = {OcppVersion.V16: "", OcppVersion.V201: "Request"}
_RESPONSE_SUFFIX = "Response"


class PayloadValidator:
    """Checks one direction of one action against its schema."""

    __slots__ = ("_name", "_validator")

    def __init__(self, schema: dict[str, Any], name: str, *, ours: bool) -> None:
        # What a charge point sends is checked leniently on string formats
        # (many send timestamps without a zone); what we send is checked
        # strictly, because strict charge points reject it otherwise.
        self._validator = jsonschema_rs.validator_for(schema, validate_formats=ours)
        self._name = name

    def check(self, payload: Any) -> None:
        """Raise the ``OcppError`` for the first rule ``payload`` breaks.

        A payload this system built that fails is a bug of ours, not the
        charger's: callers turn that error into ``InternalError``.
        """
        if self._validator.is_valid(payload):
            return
        raise _ocpp_error(next(iter(self._validator.iter_errors(payload))), self._name)


def _ocpp_error(error: jsonschema_rs.ValidationError, name: str) -> OcppError:
    path = "/".join(str(part) for part in error.instance_path)
    where = f"{name} at '{path}'" if path else name
    description = f"{where}: {error.message}"
    details = {"path": path, "rule": type(error.kind).__name__}
    if isinstance(error.kind, _OCCURRENCE):
        return OccurrenceConstraintViolation(description, details)
    if isinstance(error.kind, _Kind.Type) and path:
        return TypeConstraintViolation(description, details)
    if isinstance(error.kind, _PROPERTY):
        return PropertyConstraintViolation(description, details)
    return FormatViolation(description, details)


#: Makes the validator of one schema: ``compile(schema, name, ours=...)``.
Compile = Callable[..., PayloadValidator]


class SchemaCatalog:
    """Every schema of one OCPP version, compiled on first use and kept.

    Build one with ``catalog_of`` (the process's); ``compile`` is for tests
    that count compilations.
    """

    def __init__(self, version: OcppVersion, *, compile: Compile = PayloadValidator) -> None:
        self.version = version
        self._compile = compile
        self._validators: dict[tuple[str, bool], PayloadValidator] = {}
        self._folder = importlib.resources.files("ocpp") / _FOLDERS[version] / "schemas"
        suffix = _REQUEST_SUFFIX[version]
        names = [entry.name.removesuffix(".json") for entry in self._folder.iterdir()]
        requests = {n for n in names if n.endswith(suffix) and not n.endswith(_RESPONSE_SUFFIX)}
        #: Every action of the version, in either direction.
        self.actions = frozenset(n.removesuffix(suffix) if suffix else n for n in requests)

    def request(self, action: str, *, ours: bool = False) -> PayloadValidator:
        """The request schema of ``action``; ``ours`` when this system sends it."""
        return self._validator(action + _REQUEST_SUFFIX[self.version], ours=ours)

    def response(self, action: str, *, ours: bool = True) -> PayloadValidator:
        """The response schema of ``action``; ``ours`` when this system sends it."""
        return self._validator(action + _RESPONSE_SUFFIX, ours=ours)

    def _validator(self, name: str, *, ours: bool) -> PayloadValidator:
        validator = self._validators.get((name, ours))
        if validator is None:
            schema_file = self._folder / f"{name}.json"
            if not schema_file.is_file():
                raise LookupError(f"OCPP {self.version.value} has no schema {name}")
            schema = orjson.loads(schema_file.read_bytes())
            validator = self._validators[name, ours] = self._compile(schema, name, ours=ours)
        return validator


@functools.cache
def catalog_of(version: OcppVersion) -> SchemaCatalog:
    """The process's catalog of ``version``, made on first use and shared."""
    return SchemaCatalog(version)
