"""The processor: one OCPP-J frame in, the answer (if any) out.

Every adapter drives this: the in-process bus of the embedded default, the
MQTT worker and the SQS Lambda. It holds no per-connection state, so any
number of copies can run side by side.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ocppj import (
    Call,
    CallError,
    CallResult,
    Downlink,
    InternalError,
    MalformedFrame,
    MessageType,
    OcppError,
    OcppVersion,
    encode_call_result,
    encode_error,
    parse,
    version_for,
)

from .commands import CommandAnswer
from .context import Context, Services
from .router import Router
from .shadow import replacement

__all__ = ["AnswerListener", "Processor"]

log = logging.getLogger(__name__)

#: Told of every answer that matched a pending command.
AnswerListener = Callable[[CommandAnswer], None]


class Processor:
    """``raise_failures`` decides what a failure that is not the charger's fault
    (a store that cannot be reached, a bug) does to a CALL: answered with
    ``InternalError`` (False: a live connection waits for an answer), or
    raised to the caller (True: an at-least-once queue delivers the message
    again, and idempotent handlers make the retry safe)."""

    def __init__(
        self,
        router: Router,
        services: Services,
        on_answer: AnswerListener | None = None,
        *,
        raise_failures: bool = False,
    ) -> None:
        self._router = router
        self._services = services
        self._on_answer = on_answer
        self._raise_failures = raise_failures

    async def handle(self, charge_point_id: str, subprotocol: str, frame: bytes) -> bytes | None:
        """Process one frame a charge point sent; return the frame to send back, if any.

        For the adapters that forward bytes (MQTT, IoT Core); ``reply`` says
        what the frame is as well.
        """
        reply = await self.reply(charge_point_id, subprotocol, frame)
        return None if reply is None else reply.frame

    async def reply(self, charge_point_id: str, subprotocol: str, frame: bytes) -> Downlink | None:
        """Process one frame a charge point sent; the answer to send back, if
        any, described (the in-process bus hands it to the gateway as it is)."""
        try:
            version = version_for(subprotocol)
        except KeyError:
            log.error(
                "frame dropped: unknown subprotocol",
                extra={"chargePointId": charge_point_id, "subprotocol": subprotocol},
            )
            return None
        try:
            message = parse(frame)
        except MalformedFrame as exc:
            log.info(
                "malformed frame",
                extra={"chargePointId": charge_point_id, "error": exc.error.code_for(version)},
            )
            return _error(exc.error, exc.message_id, version) if exc.answer else None
        if isinstance(message, Call):
            return await self._call(charge_point_id, version, message)
        await self._answer(charge_point_id, version, message)
        return None

    async def _call(self, charge_point_id: str, version: OcppVersion, call: Call) -> Downlink:
        ctx = Context(charge_point_id, version, call.message_id, self._services)
        try:
            route = self._router.route(version, call.action)
            route.request.check(call.payload)
            response: dict[str, Any] = await route.handler(ctx, call.payload)
        except OcppError as error:
            log.info(
                "call refused",
                extra={
                    "chargePointId": charge_point_id,
                    "action": call.action,
                    "error": error.code_for(version),
                    "details": error.details,
                },
            )
            return _error(error, call.message_id, version)
        except Exception:
            if self._raise_failures:
                raise
            log.exception(
                "handler failed", extra={"chargePointId": charge_point_id, "action": call.action}
            )
            return _error(InternalError("internal error"), call.message_id, version)
        try:
            route.response.check(response)
        except OcppError as error:
            log.error(
                "response breaks its schema",
                extra={
                    "chargePointId": charge_point_id,
                    "action": call.action,
                    "details": error.details,
                },
            )
            return _error(InternalError("internal error"), call.message_id, version)
        return Downlink(
            MessageType.CALLRESULT, call.message_id, encode_call_result(call.message_id, response)
        )

    async def _answer(
        self, charge_point_id: str, version: OcppVersion, message: CallResult | CallError
    ) -> None:
        """Match a charger's answer to the command it answers, record it, tell listeners."""
        services = self._services
        now = services.clock.now()
        pending = await services.pending.take(charge_point_id, message.message_id, now.timestamp())
        facts = {"chargePointId": charge_point_id, "messageId": message.message_id}
        if pending is None:
            log.info("answer to an unknown or expired command: ignored", extra=facts)
            return
        if isinstance(message, CallResult):
            answer = CommandAnswer(
                charge_point_id, message.message_id, pending.action, message.payload
            )
            try:
                schema = self._router.catalog(version).response(pending.action, ours=False)
                schema.check(message.payload)
            except OcppError as error:
                log.warning(
                    "charger's answer breaks its schema; recorded as it is",
                    extra={**facts, "action": pending.action, "details": error.details},
                )
        else:
            answer = CommandAnswer(
                charge_point_id,
                message.message_id,
                pending.action,
                None,
                message.code,
                message.description,
            )
        record = {
            "messageId": answer.message_id,
            "action": answer.action,
            "receivedAt": services.now(),
            "payload": answer.payload,
            "error": None
            if answer.error_code is None
            else {"code": answer.error_code, "description": answer.error_description},
        }
        shadow = await services.shadows.get(charge_point_id) or {}
        previous = shadow.get("state", {}).get("reported", {}).get("lastCallResult")
        await services.shadows.update(
            charge_point_id, {"reported": {"lastCallResult": replacement(previous, record)}}
        )
        log.info(
            "command answered", extra={**facts, "action": answer.action, "outcome": answer.outcome}
        )
        if self._on_answer is not None:
            self._on_answer(answer)


def _error(error: OcppError, message_id: str, version: OcppVersion) -> Downlink:
    return Downlink(MessageType.CALLERROR, message_id, encode_error(error, message_id, version))
