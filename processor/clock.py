"""Time in OCPP's format: RFC 3339, UTC, with the zone spelled ``Z``."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["SystemClock", "rfc3339"]


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    """``2023-12-01T10:00:00.000Z``: strict chargers reject naive or ``+00:00`` forms."""
    if moment.tzinfo is None:
        raise ValueError("a naive datetime has no place in OCPP")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
