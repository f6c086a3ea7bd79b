"""Decisions taken on the HTTP upgrade request, before any WebSocket frame.

Pure functions of the request, so every rule is easy to test on its own.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["NO_OFFER", "choose_subprotocol", "offered_subprotocols"]

#: ``choose_subprotocol``'s answer when the client offered nothing at all.
NO_OFFER = ""


def offered_subprotocols(header_values: Iterable[str]) -> list[str]:
    """The client's offers, in order, from every ``Sec-WebSocket-Protocol`` header.

    Vendors join offers with commas, add spaces, or lead with a stray comma
    (``,ocpp2.0.1``); empty items are dropped. Names compare case-sensitively
    (RFC 6455 subprotocol tokens are case-sensitive).
    """
    return [item.strip() for value in header_values for item in value.split(",") if item.strip()]


def choose_subprotocol(
    offers: list[str], enabled: tuple[str, ...], default: str | None
) -> str | None:
    """The first offer that is enabled; ``default`` if nothing was offered; else None."""
    if not offers:
        return default
    for offer in offers:
        if offer in enabled:
            return offer
    return None
