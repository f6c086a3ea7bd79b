"""What the processor core needs from the outside world.

Each port is a small Protocol; adapters live in ``processor.adapters`` (SQLite
for the embedded default, DynamoDB and IoT Core for AWS). The core never
imports sqlite3 or boto3.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from ocppj import Downlink

__all__ = [
    "ChargePointOffline",
    "Clock",
    "IdTokens",
    "Ids",
    "Outbound",
    "PendingCall",
    "PendingCalls",
    "Registry",
    "ShadowStore",
    "TransactionEvent",
    "Transactions",
]


class ShadowStore(Protocol):
    """Device shadows with AWS IoT classic-shadow semantics (see ``processor.shadow``)."""

    async def get(self, thing: str) -> dict[str, Any] | None:
        """The whole shadow document, or None if the thing has none."""
        ...

    async def update(self, thing: str, state: dict[str, Any]) -> None:
        """Merge ``state`` (``{"reported": {...}}``) into the shadow."""
        ...

    async def update_if(
        self,
        thing: str,
        condition: Callable[[dict[str, Any] | None], bool],
        state: dict[str, Any],
    ) -> bool:
        """Merge ``state`` if ``condition`` holds for the document it merges into.

        The store reads, decides and writes as one step: no other write lands
        between the document ``condition`` was given and the update, so two
        consumers updating one shadow at once each decide on what the other
        wrote. True if written. ``condition`` must be quick and pure: it may
        run on another thread, and more than once.
        """
        ...


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...


class Ids(Protocol):
    """Fresh identifiers, injected so that tests are deterministic."""

    def message_id(self) -> str:
        """A new OCPP-J message id (at most 36 characters)."""
        ...

    def remote_start_id(self) -> int:
        """A new 2.0.1 ``remoteStartId`` (a positive 31-bit integer)."""
        ...


class Registry(Protocol):
    """The charge points that may connect."""

    async def is_registered(self, charge_point_id: str) -> bool: ...

    async def registered(self) -> list[tuple[str, str]]:
        """(identity, registration time) of every charge point, sorted by identity."""
        ...


class IdTokens(Protocol):
    """Who may charge."""

    async def status(self, id_token: str) -> str:
        """``Accepted``, ``Blocked``, ``Expired`` or ``Invalid`` (unknown tokens)."""
        ...


@dataclass(frozen=True, slots=True)
class TransactionEvent:
    """One entry of a transaction's history."""

    charge_point_id: str
    transaction_id: str
    #: Unique within the transaction; an event recorded twice is recorded once.
    event_key: str
    #: ``Started``, ``Updated`` or ``Ended``.
    event_type: str
    timestamp: str
    #: The event as the charger sent it (meter values included).
    data: dict[str, Any]


class Transactions(Protocol):
    """The transaction history store, append-only and idempotent.

    The history also remembers which events have changed the shadow: the
    shadow write comes after the history's, and a redelivery of an event whose
    shadow write failed must make that write, not pass for a duplicate.
    """

    async def append(self, event: TransactionEvent) -> bool:
        """Record ``event``; False (and no change) if its key is already recorded."""
        ...

    async def mark_applied(self, event: TransactionEvent) -> None:
        """Note that the recorded ``event`` has made its change to the shadow."""
        ...

    async def is_applied(self, event: TransactionEvent) -> bool:
        """Whether ``mark_applied`` was called for the event's key.

        An event recorded before the history tracked this counts as applied.
        """
        ...

    async def events(self, charge_point_id: str, transaction_id: str) -> list[TransactionEvent]:
        """The transaction's events in the order they were recorded."""
        ...

    async def allocate_id(self, charge_point_id: str, start_key: str) -> tuple[int, bool]:
        """A unique integer transactionId for a 1.6 StartTransaction.

        The same ``start_key`` (what identifies one start of one charger) gets
        the same id again, with False: a redelivered StartTransaction must not
        open a second transaction.
        """
        ...


class ChargePointOffline(Exception):
    """The charge point has no connection to send a frame over."""


class Outbound(Protocol):
    """Frames the backend sends to charge points."""

    async def subprotocol(self, charge_point_id: str) -> str | None:
        """The subprotocol of the charger's connection, or None if it is offline."""
        ...

    async def send(self, charge_point_id: str, downlink: Downlink) -> None:
        """Send a frame; raise ``ChargePointOffline`` if there is no connection.

        The frame comes described: a gateway in the same process queues a
        CALL by its message id without reading the bytes again.
        """
        ...


@dataclass(frozen=True, slots=True)
class PendingCall:
    """A CALL the backend sent and whose answer it waits for."""

    charge_point_id: str
    message_id: str
    action: str
    payload: dict[str, Any]
    #: Epoch seconds after which the answer no longer counts.
    expires_at: float


class PendingCalls(Protocol):
    async def add(self, call: PendingCall) -> None: ...

    async def take(self, charge_point_id: str, message_id: str, now: float) -> PendingCall | None:
        """Remove and return the pending call, or None if unknown or expired at ``now``."""
        ...
