"""The OCPP brain: routes each CALL to a handler that acts on the state ports."""

from __future__ import annotations

from .config import ProcessorConfig
from .context import Context, Services
from .core import Processor
from .handlers import ALL_HANDLERS, build_router
from .router import ALL_VERSIONS, HandlerSet, Router

__all__ = [
    "ALL_HANDLERS",
    "ALL_VERSIONS",
    "Context",
    "HandlerSet",
    "Processor",
    "ProcessorConfig",
    "Router",
    "Services",
    "build_router",
]
