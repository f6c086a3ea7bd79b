"""Waiting for something to happen, instead of sleeping and hoping it did.

``await wait_until(lambda: gateway.connection_count == 0)`` returns as soon as
the condition holds (it polls every few milliseconds) and fails the test,
naming what it waited for, when the condition still does not hold after
``timeout`` seconds. A slow machine makes a test slower, not red.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

__all__ = ["WAIT", "wait_until"]

#: The default bound on a wait (seconds): far above what any condition needs.
WAIT = 10.0

#: How often the condition is evaluated (seconds).
_POLL = 0.005


async def wait_until(
    condition: Callable[[], bool], timeout: float = WAIT, what: str | None = None
) -> None:
    """Return once ``condition()`` is true; raise ``AssertionError`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what or condition} did not hold within {timeout:g} s")
        await asyncio.sleep(_POLL)
