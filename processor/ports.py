"""What the processor core needs from the outside world.

Each port is a small Protocol; adapters live in ``processor.adapters``. The
core never imports sqlite3 or boto3.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

__all__ = ["Clock", "ShadowStore"]


class ShadowStore(Protocol):
    """Device shadows with AWS IoT classic-shadow semantics (see ``processor.shadow``)."""

    async def get(self, thing: str) -> dict[str, Any] | None:
        """The whole shadow document, or None if the thing has none."""
        ...

    async def update(self, thing: str, state: dict[str, Any]) -> dict[str, Any]:
        """Merge ``state`` (``{"reported": {...}}``) into the shadow; return the new document."""
        ...


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...
