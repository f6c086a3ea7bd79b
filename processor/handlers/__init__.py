"""The OCPP message handlers, one module per OCPP 2.0.1 functional block."""

from __future__ import annotations

from ..router import HandlerSet
from . import authorization, availability, metering, provisioning, reporting, transactions

__all__ = ["ALL_HANDLERS"]

ALL_HANDLERS: tuple[HandlerSet, ...] = (
    provisioning.handlers,
    availability.handlers,
    authorization.handlers,
    transactions.handlers,
    metering.handlers,
    reporting.handlers,
)
