"""The live connections of one gateway, one per charge point identity.

OCPP-J allows one WebSocket per charge point. A charger that reconnects
before its old connection is seen to die (a NAT rebinding, a half-open TCP
connection) must win: the newer connection replaces the older one, which is
closed with 1008. The older one's later disconnect then finds a successor in
its place and must neither remove it nor tell the backend the charger left;
``remove`` says whether it was still the current one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Generic, Protocol, TypeVar

from picows import WSCloseCode

__all__ = ["ConnectionTable", "Member"]


class Member(Protocol):
    """What the table needs of a connection."""

    @property
    def charge_point_id(self) -> str: ...

    @property
    def subprotocol(self) -> str: ...

    def close(self, code: WSCloseCode, reason: str) -> None: ...


M = TypeVar("M", bound=Member)


class ConnectionTable(Generic[M]):
    """The current connection of each charge point, by identity."""

    __slots__ = ("_by_id",)

    def __init__(self) -> None:
        self._by_id: dict[str, M] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[M]:
        """The current connections (a snapshot: callers may close them while iterating)."""
        return iter(list(self._by_id.values()))

    def get(self, charge_point_id: str) -> M | None:
        return self._by_id.get(charge_point_id)

    def add(self, connection: M) -> M | None:
        """Make ``connection`` its charge point's current one; the one it
        replaced (now closing with 1008), or None."""
        previous = self._by_id.get(connection.charge_point_id)
        self._by_id[connection.charge_point_id] = connection
        if previous is not None and previous is not connection:
            previous.close(WSCloseCode.POLICY_VIOLATION, "replaced by a newer connection")
            return previous
        return None

    def remove(self, connection: M) -> bool:
        """Forget ``connection``; False (and nothing changed) if it had been replaced."""
        if self._by_id.get(connection.charge_point_id) is not connection:
            return False
        del self._by_id[connection.charge_point_id]
        return True

    def subprotocol_of(self, charge_point_id: str) -> str | None:
        """The subprotocol of a connected charge point, or None."""
        connection = self._by_id.get(charge_point_id)
        return None if connection is None else connection.subprotocol

    def by_protocol(self, protocols: tuple[str, ...]) -> dict[str, int]:
        """Connected charge points per subprotocol in ``protocols`` (0 for an unused one)."""
        counts = Counter(c.subprotocol for c in self._by_id.values())
        return {p: counts.get(p, 0) for p in protocols}
