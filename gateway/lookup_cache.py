"""A cache in front of the registry, so that handshakes rarely wait for it.

A reconnect storm (every charger of a task at once, after a deploy) must cost
no more than one registry read per charger: concurrent handshakes of one
identity share one lookup, answers are kept for ``ttl`` seconds, and
"unknown" answers for ``negative_ttl`` seconds (so a flood of unregistered
identities does not reach the registry either). A lookup that fails is not
cached.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Final, Generic, TypeVar

__all__ = ["MISSING", "LookupCache"]

T = TypeVar("T")


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


#: ``peek``'s answer when the cache does not know.
MISSING: Final = _Missing()


class LookupCache(Generic[T]):
    def __init__(
        self,
        find: Callable[[str], Awaitable[T | None]],
        *,
        ttl: float,
        negative_ttl: float,
        max_entries: int = 200_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._find = find
        self._ttl = ttl
        self._negative_ttl = negative_ttl
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, T | None]] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[T | None]] = {}
        #: Registry reads made, for metrics and tests.
        self.reads = 0

    def peek(self, key: str) -> T | _Missing | None:
        """The cached answer (None: known to be absent), or ``MISSING``."""
        entry = self._entries.get(key)
        if entry is None:
            return MISSING
        expires, value = entry
        if expires < self._clock():
            del self._entries[key]
            return MISSING
        return value

    async def get(self, key: str) -> T | None:
        """The answer, from the cache or from one shared registry read."""
        cached = self.peek(key)
        if not isinstance(cached, _Missing):
            return cached
        pending = self._inflight.get(key)
        if pending is None:
            pending = asyncio.get_running_loop().create_future()
            self._inflight[key] = pending
            try:
                self.reads += 1
                value = await self._find(key)
            except BaseException as exc:
                pending.set_exception(exc)
                pending.exception()  # retrieved: nobody else may be waiting
                raise
            else:
                pending.set_result(value)
                self._store(key, value)
            finally:
                del self._inflight[key]
            return value
        return await asyncio.shield(pending)

    def invalidate(self, key: str) -> None:
        self._entries.pop(key, None)

    def _store(self, key: str, value: T | None) -> None:
        ttl = self._ttl if value is not None else self._negative_ttl
        if ttl <= 0:
            return
        self._entries[key] = (self._clock() + ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
