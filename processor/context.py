"""What a handler gets besides the request: who asked, and the ports to act on."""

from __future__ import annotations

from dataclasses import dataclass

from ocppj import OcppVersion

from .clock import rfc3339
from .config import ProcessorConfig
from .ports import Clock, ShadowStore

__all__ = ["Context", "Services"]


@dataclass(frozen=True, slots=True)
class Services:
    """The long-lived ports and configuration shared by every call."""

    config: ProcessorConfig
    shadows: ShadowStore
    clock: Clock


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

    def now(self) -> str:
        """The current time as OCPP writes it."""
        return rfc3339(self.services.clock.now())
