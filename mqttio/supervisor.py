"""Keep one MQTT connection alive: connect, serve until it is lost, back off, again."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NoReturn

from .backoff import Backoff
from .session import Session

__all__ = ["supervise"]

log = logging.getLogger(__name__)


async def supervise(
    connect: Callable[[], Awaitable[Session]],
    serve: Callable[[Session], Awaitable[None]],
    backoff: Backoff,
    *,
    facts: Mapping[str, Any] | None = None,
) -> NoReturn:
    """Run until cancelled: ``connect()`` a fresh session, ``serve(session)``
    until it returns (the session is lost, or its owner gave it up), close
    it, and connect again after ``backoff``.

    A failed attempt backs off further; a session that lasted
    ``backoff.stable`` seconds starts the count again, so a broker restart
    costs one short delay and a broker that keeps refusing is not hammered.
    ``facts`` go into every log line (e.g. the route or client id).
    """
    loop = asyncio.get_running_loop()
    facts = dict(facts or {})
    failures = 0
    while True:
        if failures:
            delay = backoff.delay(failures)
            log.info(
                "mqtt reconnecting",
                extra={**facts, "attempt": failures, "delay": round(delay, 3)},
            )
            await asyncio.sleep(delay)
        try:
            session = await connect()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failures += 1
            log.warning(
                "mqtt connection failed",
                extra={**facts, "attempt": failures, "error": repr(exc)},
            )
            continue
        opened = loop.time()
        try:
            await serve(session)
        finally:
            await session.close()
        failures = 1 if loop.time() - opened >= backoff.stable else failures + 1
        log.warning("mqtt connection lost", extra=facts)
