"""Routes a CALL to its handler by (OCPP version, action).

Handler modules collect their handlers in a ``HandlerSet`` (no work at import
time); ``Router.include`` takes each route's request and response validators
from the process's schema catalog (compiled once per process), so a call
costs two dict look-ups and two schema checks::

    handlers = HandlerSet()

    @handlers.on("Heartbeat", versions=ALL_VERSIONS)
    async def heartbeat(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
        return {"currentTime": ctx.now()}

    router = Router()
    router.include(handlers)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ocppj import NotImplementedAction, NotSupported, OcppVersion

from .schemas import PayloadValidator, SchemaCatalog, catalog_of

if TYPE_CHECKING:
    from .context import Context

__all__ = ["ALL_VERSIONS", "Handler", "HandlerSet", "Route", "Router"]

ALL_VERSIONS = tuple(OcppVersion)

Handler = Callable[["Context", dict[str, Any]], Awaitable[dict[str, Any]]]


class HandlerSet:
    """Handlers declared by one module, waiting to be included in a router."""

    def __init__(self) -> None:
        self.entries: list[tuple[OcppVersion, str, Handler]] = []

    def on(self, action: str, *, versions: Iterable[OcppVersion]) -> Callable[[Handler], Handler]:
        """Declare the decorated coroutine function as the handler of ``action``."""

        def declare(handler: Handler) -> Handler:
            self.entries.extend((version, action, handler) for version in versions)
            return handler

        return declare


@dataclass(frozen=True, slots=True)
class Route:
    action: str
    handler: Handler
    request: PayloadValidator
    response: PayloadValidator


class Router:
    """A table of handlers keyed by (version, action).

    ``catalogs`` gives the schema catalog of a version; the process's shared
    one unless a test gives its own.
    """

    def __init__(self, catalogs: Callable[[OcppVersion], SchemaCatalog] = catalog_of) -> None:
        self._catalogs = {version: catalogs(version) for version in OcppVersion}
        self._routes: dict[tuple[OcppVersion, str], Route] = {}

    def include(self, *handler_sets: HandlerSet) -> None:
        for handler_set in handler_sets:
            for version, action, handler in handler_set.entries:
                self.add(version, action, handler)

    def add(self, version: OcppVersion, action: str, handler: Handler) -> None:
        catalog = self._catalogs[version]
        if action not in catalog.actions:
            raise ValueError(f"OCPP {version.value} has no action {action!r}")
        if (version, action) in self._routes:
            raise ValueError(f"{action} in OCPP {version.value} already has a handler")
        self._routes[version, action] = Route(
            action, handler, catalog.request(action), catalog.response(action)
        )

    def catalog(self, version: OcppVersion) -> SchemaCatalog:
        """The schemas of ``version`` this router checks with."""
        return self._catalogs[version]

    def route(self, version: OcppVersion, action: str) -> Route:
        """The route for a CALL, or the CALLERROR that says why there is none."""
        route = self._routes.get((version, action))
        if route is not None:
            return route
        if action in self._catalogs[version].actions:
            raise NotSupported(f"{action} is not supported by this system")
        raise NotImplementedAction(f"{action} is not an OCPP {version.value} action")

    def handled(self, version: OcppVersion) -> frozenset[str]:
        """The actions that have a handler in ``version``."""
        return frozenset(action for (v, action) in self._routes if v is version)
