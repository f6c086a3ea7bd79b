"""The OCPP brain: routes each CALL to a handler that acts on the state ports.

The names of the routing core (``Processor``, ``Router``, ``build_router``,
...) load their modules on first use. The gateway imports this package for
its registry adapters only, and must not load the handlers, the OCPP schemas
and the schema validator with them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .config import ProcessorConfig
from .context import Context, Services

if TYPE_CHECKING:
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

#: Where each name of the routing core lives.
_HOMES = {
    "ALL_HANDLERS": ".handlers",
    "ALL_VERSIONS": ".router",
    "HandlerSet": ".router",
    "Processor": ".core",
    "Router": ".router",
    "build_router": ".handlers",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value  # later look-ups find it without this function
    return value
