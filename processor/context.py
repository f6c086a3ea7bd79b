"""What a handler gets besides the request: who asked, and the ports to act on."""

from __future__ import annotations

from dataclasses import dataclass

from ocppj import OcppVersion

from .clock import SystemClock, rfc3339
from .config import ProcessorConfig
from .ids import RandomIds
from .ports import Clock, Ids, IdTokens, Outbound, PendingCalls, ShadowStore, Transactions

__all__ = ["Context", "Services"]


@dataclass(frozen=True, slots=True)
class Services:
    """The long-lived ports and configuration shared by every call."""

    config: ProcessorConfig
    shadows: ShadowStore
    clock: Clock
    ids: Ids
    id_tokens: IdTokens
    transactions: Transactions
    pending: PendingCalls
    outbound: Outbound

    @classmethod
    def build(
        cls,
        config: ProcessorConfig,
        *,
        shadows: ShadowStore,
        id_tokens: IdTokens,
        transactions: Transactions,
        pending: PendingCalls,
        outbound: Outbound,
        clock: Clock | None = None,
        ids: Ids | None = None,
    ) -> Services:
        """The services of a deployable: its stores and outbound, with the
        system clock and random ids unless others are given (pass the clock
        the stores were given, so that every timestamp comes from one)."""
        return cls(
            config=config,
            shadows=shadows,
            clock=clock or SystemClock(),
            ids=ids or RandomIds(),
            id_tokens=id_tokens,
            transactions=transactions,
            pending=pending,
            outbound=outbound,
        )

    def now(self) -> str:
        """The current time as OCPP writes it."""
        return rfc3339(self.clock.now())


@dataclass(frozen=True, slots=True)
class Context:
    """One CALL being handled."""

    charge_point_id: str
    version: OcppVersion
    message_id: str
    services: Services

    @property
    def config(self) -> ProcessorConfig:
        return self.services.config

    @property
    def shadows(self) -> ShadowStore:
        return self.services.shadows

    @property
    def transactions(self) -> Transactions:
        return self.services.transactions

    def now(self) -> str:
        """The current time as OCPP writes it."""
        return self.services.now()

    async def report(self, reported: dict[str, object]) -> None:
        """Merge ``reported`` into this charge point's shadow."""
        await self.services.shadows.update(self.charge_point_id, {"reported": reported})
