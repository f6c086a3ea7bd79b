"""Device shadows in AWS IoT Core (classic, unnamed shadows).

IoT Core applies the update rules itself (deep merge, ``null`` deletes,
``version`` + 1), so this adapter only moves JSON. The core names shadows by
charge point identity; IoT thing names cannot hold every identity, so each is
mapped with ``thing_name`` (``RDAM 123`` -> ``RDAM:20123``).

``get`` returns ``{"state": {"reported"?, "desired"?}, "version", "timestamp"}``:
the document the SQLite store keeps. IoT's ``metadata`` (a timestamp per
leaf, as big as the state itself) and ``state.delta`` (derived from desired
and reported) are dropped, so the core sees one document shape whichever
store runs, and nothing in the core reads them.

``update_if`` is optimistic locking on the shadow's ``version``: the update
names the version its decision was made on, and a conflict (another write
came first) means read and decide again.

boto3 blocks, so every call runs on an executor (the loop's default thread
pool unless one is given): the event loop never waits on the network.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from .thing_names import thing_name

__all__ = ["IotShadowStore", "ShadowStoreError", "ShadowVersionConflict"]

log = logging.getLogger(__name__)

_KEPT_SECTIONS = ("reported", "desired")


class ShadowStoreError(Exception):
    """IoT Core did not read or write a shadow; the message names the thing."""


class ShadowVersionConflict(ShadowStoreError):
    """An update named a version the shadow no longer has: another write came first."""


class IotShadowStore:
    """A ``ShadowStore`` over a boto3 ``iot-data`` client.

    ``attempts`` bounds how often ``update_if`` reads and decides again after
    a version conflict before it gives up with ``ShadowStoreError``.
    """

    def __init__(self, client: Any, executor: Executor | None = None, *, attempts: int = 5) -> None:
        self._client = client
        self._executor = executor
        self._attempts = attempts

    async def get(self, thing: str) -> dict[str, Any] | None:
        """The shadow of charge point ``thing``, or None if it has none."""
        name = thing_name(thing)
        payload = await self._run(thing, name, "read", self._read, name)
        if payload is None:
            return None
        document = orjson.loads(payload)
        state = document.get("state") or {}
        return {
            "state": {key: state[key] for key in _KEPT_SECTIONS if key in state},
            "version": document["version"],
            "timestamp": document["timestamp"],
        }

    async def update(
        self, thing: str, state: dict[str, Any], *, version: int | None = None
    ) -> None:
        """Merge ``state`` into the shadow of charge point ``thing``.

        With ``version``, IoT Core applies the update only if the shadow still
        has that version (optimistic locking), and ``ShadowVersionConflict``
        says it had moved on.
        """
        name = thing_name(thing)
        document: dict[str, Any] = {"state": state}
        if version is not None:
            document["version"] = version
        await self._run(thing, name, "update", self._write, name, orjson.dumps(document))

    async def update_if(
        self,
        thing: str,
        condition: Callable[[dict[str, Any] | None], bool],
        state: dict[str, Any],
    ) -> bool:
        """Merge ``state`` if ``condition`` holds, at the version it was judged on."""
        for _ in range(self._attempts):
            document = await self.get(thing)
            if not condition(document):
                return False
            # A thing without a shadow has no version to hold: its first
            # write is unconditional, as IoT Core offers nothing narrower.
            version = None if document is None else int(document["version"])
            try:
                await self.update(thing, state, version=version)
            except ShadowVersionConflict:
                continue
            return True
        raise ShadowStoreError(
            f"the shadow of {thing!r} changed under {self._attempts} attempts "
            "to update it conditionally"
        )

    def _write(self, name: str, payload: bytes) -> None:
        response = self._client.update_thing_shadow(thingName=name, payload=payload)
        # The answer echoes the update; reading it returns the connection to the pool.
        response["payload"].read()

    def _read(self, name: str) -> bytes | None:
        try:
            response = self._client.get_thing_shadow(thingName=name)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return None
            raise
        body: bytes = response["payload"].read()
        return body

    async def _run(
        self, thing: str, name: str, what: str, call: Callable[..., Any], *args: Any
    ) -> Any:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, call, *args)
        except (ClientError, BotoCoreError) as exc:
            code = _error_code(exc)
            if code == "ConflictException":
                raise ShadowVersionConflict(
                    f"the shadow of thing {name!r} changed since it was read"
                ) from exc
            log.warning(
                "shadow %s failed",
                what,
                extra={"chargePointId": thing, "thingName": name, "error": code},
            )
            raise ShadowStoreError(
                f"could not {what} the shadow of thing {name!r}: {code}"
            ) from exc


def _error_code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return type(exc).__name__
