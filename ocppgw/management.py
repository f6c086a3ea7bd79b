"""The management HTTP API: remote start and stop, charge points, shadows.

It listens on its own port, on loopback by default, never on the chargers'
port. Remote commands take the seed's input formats and wait for the
charger's answer (up to the call timeout). ``GET /openapi.json`` describes it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from processor.commands import (
    CommandAnswer,
    Commands,
    InvalidCommand,
    RemoteStart,
    RemoteStop,
    SentCommand,
)
from processor.ports import ChargePointOffline, Outbound, Registry, ShadowStore

from ._openapi import OPENAPI
from .answers import AnswerBoard

__all__ = ["ManagementApi"]

log = logging.getLogger(__name__)


class ManagementApi:
    def __init__(
        self,
        commands: Commands,
        *,
        registry: Registry,
        shadows: ShadowStore,
        outbound: Outbound,
        answers: AnswerBoard,
        call_timeout: float,
    ) -> None:
        self._commands = commands
        self._registry = registry
        self._shadows = shadows
        self._outbound = outbound
        self._answers = answers
        self._call_timeout = call_timeout
        self._runner: web.AppRunner | None = None
        self.port = 0

    def application(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/openapi.json", self._openapi)
        app.router.add_get("/charge-points", self._charge_points)
        app.router.add_get("/charge-points/{id}/shadow", self._shadow)
        app.router.add_post("/remote-start", self._remote_start)
        app.router.add_post("/remote-stop", self._remote_stop)
        return app

    async def start(self, host: str, port: int) -> None:
        self._runner = web.AppRunner(self.application(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self.port = int(self._runner.addresses[0][1])
        log.info("management API listening", extra={"host": host, "port": self.port})

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # -- handlers -------------------------------------------------------------

    async def _openapi(self, request: web.Request) -> web.Response:
        return _json(OPENAPI)

    async def _charge_points(self, request: web.Request) -> web.Response:
        entries = [
            {
                "chargePointId": cp,
                "registrationTime": at,
                "connected": await self._outbound.subprotocol(cp) is not None,
            }
            for cp, at in await self._registry.registered()
        ]
        return _json({"chargePoints": entries})

    async def _shadow(self, request: web.Request) -> web.Response:
        charge_point_id = request.match_info["id"]
        document = await self._shadows.get(charge_point_id)
        if document is None:
            return _json({"error": f"{charge_point_id} has no shadow yet"}, status=404)
        return _json(document)

    async def _remote_start(self, request: web.Request) -> web.Response:
        return await self._command(request, RemoteStart.from_input, self._commands.remote_start)

    async def _remote_stop(self, request: web.Request) -> web.Response:
        return await self._command(request, RemoteStop.from_input, self._commands.remote_stop)

    async def _command(
        self,
        request: web.Request,
        parse: Callable[[Any], Any],
        send: Callable[[Any], Awaitable[SentCommand]],
    ) -> web.Response:
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return _json({"error": "body: not valid JSON", "field": "body"}, status=400)
        try:
            command = parse(body)
        except InvalidCommand as exc:
            return _json({"error": str(exc), "field": exc.field}, status=400)
        if not await self._registry.is_registered(command.charge_point_id):
            error = f"chargePointId: {command.charge_point_id} is not registered"
            return _json({"error": error, "field": "chargePointId"}, status=404)
        try:
            sent = await send(command)
        except InvalidCommand as exc:
            return _json({"error": str(exc), "field": exc.field}, status=400)
        except ChargePointOffline as exc:
            return _json({"outcome": "offline", "error": str(exc)}, status=409)
        return await self._outcome(sent)

    async def _outcome(self, sent: SentCommand) -> web.Response:
        future = self._answers.expect(sent.charge_point_id, sent.message_id)
        try:
            answer = await asyncio.wait_for(asyncio.shield(future), self._call_timeout)
        except TimeoutError:
            return _json(
                {
                    "outcome": "timed out",
                    "messageId": sent.message_id,
                    "action": sent.action,
                    "error": f"no answer within {self._call_timeout:g} s",
                },
                status=504,
            )
        finally:
            self._answers.forget(sent.charge_point_id, sent.message_id)
        return _json(_answer_body(answer))


def _answer_body(answer: CommandAnswer) -> dict[str, Any]:
    body: dict[str, Any] = {
        "outcome": answer.outcome,
        "messageId": answer.message_id,
        "action": answer.action,
    }
    if answer.payload is not None:
        body["response"] = answer.payload
    else:
        body["error"] = {"code": answer.error_code, "description": answer.error_description}
    return body


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")
