"""Commands the backend starts: remote start and remote stop.

Built from the seed's input formats (``{"chargePointId", "idTag",
"connectorId", "transactionData"}`` and ``{"chargePointId",
"transactionId"}``), in the message set of the charger's connection, checked
against the official schema, remembered as pending calls with a time-to-live,
and sent through the outbound port. The charger's answer is matched in
``Processor`` and reported as a ``CommandAnswer``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ocppj import (
    Downlink,
    InvalidIdentity,
    MessageType,
    OcppError,
    OcppVersion,
    check_identity,
    encode_call,
    version_for,
)

from .context import Services
from .ports import ChargePointOffline, PendingCall
from .schemas import SchemaCatalog, catalog_of

__all__ = [
    "CommandAnswer",
    "Commands",
    "InvalidCommand",
    "RemoteStart",
    "RemoteStop",
    "SentCommand",
]


#: What ``transactionData`` may carry to the charger (same name in both versions).
_TRANSACTION_DATA = ("chargingProfile",)


#: The input field behind each top-level key of a command's payload.
_INPUT_FIELD = {
    "idToken": "idTag",
    "idTag": "idTag",
    "evseId": "connectorId",
    "connectorId": "connectorId",
    "chargingProfile": "transactionData.chargingProfile",
    "transactionId": "transactionId",
}


class InvalidCommand(ValueError):
    """The command's input is wrong; ``field`` names what, the message says how."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


@dataclass(frozen=True, slots=True)
class RemoteStart:
    charge_point_id: str
    id_tag: str
    connector_id: int | None = None
    transaction_data: dict[str, Any] | None = None

    @classmethod
    def from_input(cls, data: Any) -> RemoteStart:
        """From the seed's format; ``InvalidCommand`` names the first bad field."""
        fields = _object(data)
        connector = fields.get("connectorId")
        # OCPP: RequestStartTransaction.evseId and RemoteStartTransaction.connectorId > 0.
        if connector is not None and (type(connector) is not int or connector <= 0):
            raise InvalidCommand("connectorId", "must be a positive integer")
        transaction_data = fields.get("transactionData")
        if transaction_data is not None and not isinstance(transaction_data, dict):
            raise InvalidCommand("transactionData", "must be an object")
        for key in transaction_data or {}:
            if key not in _TRANSACTION_DATA:
                raise InvalidCommand(f"transactionData.{key}", "unknown; only chargingProfile")
        id_tag = fields.get("idTag")
        if not isinstance(id_tag, str) or not id_tag:
            raise InvalidCommand("idTag", "required, a non-empty string")
        return cls(_charge_point(fields), id_tag, connector, transaction_data)


@dataclass(frozen=True, slots=True)
class RemoteStop:
    charge_point_id: str
    transaction_id: str | int

    @classmethod
    def from_input(cls, data: Any) -> RemoteStop:
        fields = _object(data)
        transaction_id = fields.get("transactionId")
        if type(transaction_id) is not int and not (
            isinstance(transaction_id, str) and transaction_id
        ):
            raise InvalidCommand("transactionId", "required, an integer or a non-empty string")
        return cls(_charge_point(fields), transaction_id)


def _object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InvalidCommand("body", "must be a JSON object")
    return data


def _charge_point(fields: dict[str, Any]) -> str:
    charge_point_id = fields.get("chargePointId")
    if not isinstance(charge_point_id, str):
        raise InvalidCommand("chargePointId", "required, a string")
    try:
        return check_identity(charge_point_id)
    except InvalidIdentity as exc:
        raise InvalidCommand("chargePointId", str(exc)) from None


@dataclass(frozen=True, slots=True)
class SentCommand:
    charge_point_id: str
    message_id: str
    action: str
    payload: dict[str, Any]
    expires_at: float


@dataclass(frozen=True, slots=True)
class CommandAnswer:
    """The charger's answer to a command: a CALLRESULT payload or a CALLERROR."""

    charge_point_id: str
    message_id: str
    action: str
    payload: dict[str, Any] | None
    error_code: str | None = None
    error_description: str | None = None

    @property
    def outcome(self) -> str:
        """``Accepted`` / ``Rejected`` as the charger said, or ``error``."""
        if self.payload is None:
            return "error"
        return str(self.payload.get("status", "error"))


class Commands:
    """Builds, checks, records and sends the backend's commands.

    ``catalogs`` gives the schema catalog of a version; the process's shared
    one unless a test gives its own.
    """

    def __init__(
        self,
        services: Services,
        catalogs: Callable[[OcppVersion], SchemaCatalog] = catalog_of,
    ) -> None:
        self._services = services
        self._catalogs = {version: catalogs(version) for version in OcppVersion}

    async def remote_start(self, command: RemoteStart) -> SentCommand:
        version = await self._version(command.charge_point_id)
        payload: dict[str, Any]
        if version is OcppVersion.V201:
            action = "RequestStartTransaction"
            payload = {
                "idToken": {"idToken": command.id_tag, "type": "ISO14443"},
                "remoteStartId": self._services.ids.remote_start_id(),
            }
            if command.connector_id is not None:
                payload["evseId"] = command.connector_id
            payload.update(command.transaction_data or {})
        else:
            action = "RemoteStartTransaction"
            payload = {"idTag": command.id_tag}
            if command.connector_id is not None:
                payload["connectorId"] = command.connector_id
            payload.update(command.transaction_data or {})
        return await self._send(command.charge_point_id, version, action, payload)

    async def remote_stop(self, command: RemoteStop) -> SentCommand:
        version = await self._version(command.charge_point_id)
        if version is OcppVersion.V201:
            payload: dict[str, Any] = {"transactionId": str(command.transaction_id)}
            return await self._send(
                command.charge_point_id, version, "RequestStopTransaction", payload
            )
        transaction_id = command.transaction_id
        if isinstance(transaction_id, str):
            # Digits only: int() would also take " 42" and "4_2".
            if not (transaction_id.isascii() and transaction_id.isdigit()):
                raise InvalidCommand("transactionId", "OCPP 1.6 transaction ids are integers")
            transaction_id = int(transaction_id)
        payload = {"transactionId": transaction_id}
        return await self._send(command.charge_point_id, version, "RemoteStopTransaction", payload)

    async def _version(self, charge_point_id: str) -> OcppVersion:
        subprotocol = await self._services.outbound.subprotocol(charge_point_id)
        if subprotocol is None:
            raise ChargePointOffline(f"{charge_point_id} is not connected")
        return version_for(subprotocol)

    async def _send(
        self, charge_point_id: str, version: OcppVersion, action: str, payload: dict[str, Any]
    ) -> SentCommand:
        try:
            self._catalogs[version].request(action, ours=True).check(payload)
        except OcppError as error:
            # Only the caller's values can break it (idTag length, a profile).
            path = str(error.details.get("path", ""))
            field = _INPUT_FIELD.get(path.split("/", maxsplit=1)[0], "body")
            raise InvalidCommand(field, f"gives an invalid {action}: {error.description}") from None
        services = self._services
        message_id = services.ids.message_id()
        expires_at = services.clock.now().timestamp() + services.config.call_timeout
        await services.pending.add(
            PendingCall(charge_point_id, message_id, action, payload, expires_at)
        )
        try:
            frame = encode_call(message_id, action, payload)
            await services.outbound.send(
                charge_point_id, Downlink(MessageType.CALL, message_id, frame)
            )
        except ChargePointOffline:
            await services.pending.take(charge_point_id, message_id, now=0.0)
            raise
        return SentCommand(charge_point_id, message_id, action, payload, expires_at)
