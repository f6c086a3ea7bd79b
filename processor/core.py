"""The processor: one OCPP-J frame in, the answer (if any) out.

Both adapters drive this: the in-process bus of the embedded default, and
later the MQTT worker and the Lambda handler. It holds no per-connection
state, so any number of copies can run side by side.
"""

from __future__ import annotations

import logging
from typing import Any

from ocppj import (
    Call,
    InternalError,
    MalformedFrame,
    OcppError,
    OcppVersion,
    encode_call_result,
    encode_error,
    parse,
    version_for,
)

from .context import Context, Services
from .router import Router

__all__ = ["Processor"]

log = logging.getLogger(__name__)


class Processor:
    def __init__(self, router: Router, services: Services) -> None:
        self._router = router
        self._services = services

    async def handle(self, charge_point_id: str, subprotocol: str, frame: bytes) -> bytes | None:
        """Process one frame a charge point sent; return the frame to send back, if any."""
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
            return encode_error(exc.error, exc.message_id, version) if exc.answer else None
        if isinstance(message, Call):
            return await self._call(charge_point_id, version, message)
        # Answers to backend commands are matched to their commands in a later
        # step of the roadmap; until then they are only logged.
        log.info(
            "answer from charge point",
            extra={"chargePointId": charge_point_id, "messageId": message.message_id},
        )
        return None

    async def _call(self, charge_point_id: str, version: OcppVersion, call: Call) -> bytes:
        ctx = Context(charge_point_id, version, call.message_id, self._services)
        try:
            route = self._router.route(version, call.action)
            route.request.check(call.payload)
            response: dict[str, Any] = await route.handler(ctx, call.payload)
            route.response.check(response)
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
            return encode_error(error, call.message_id, version)
        except Exception:
            log.exception(
                "handler failed", extra={"chargePointId": charge_point_id, "action": call.action}
            )
            return encode_error(InternalError("internal error"), call.message_id, version)
        return encode_call_result(call.message_id, response)
