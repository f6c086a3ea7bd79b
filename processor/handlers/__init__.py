"""The OCPP message handlers, one module per OCPP 2.0.1 functional block."""

from __future__ import annotations

from collections.abc import Callable

from ocppj import OcppVersion

from ..router import HandlerSet, Router
from ..schemas import SchemaCatalog, catalog_of
from . import authorization, availability, metering, provisioning, reporting, transactions

__all__ = ["ALL_HANDLERS", "build_router"]

ALL_HANDLERS: tuple[HandlerSet, ...] = (
    provisioning.handlers,
    availability.handlers,
    authorization.handlers,
    transactions.handlers,
    metering.handlers,
    reporting.handlers,
)


def build_router(catalogs: Callable[[OcppVersion], SchemaCatalog] = catalog_of) -> Router:
    """A router with every handler of this system, validators compiled.

    ``catalogs`` gives the schema catalog of a version: the process's shared
    one unless a test gives its own.
    """
    router = Router(catalogs)
    router.include(*ALL_HANDLERS)
    return router
