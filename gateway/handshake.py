"""The HTTP upgrade request and the decisions taken on it, before any WebSocket frame.

Pure functions of the request, so every rule is easy to test on its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from multidict import CIMultiDict

__all__ = ["NO_OFFER", "Request", "choose_subprotocol", "offered_subprotocols", "parse_request"]

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


@dataclass(frozen=True, slots=True)
class Request:
    """An HTTP request line and its headers, as a charge point sent them."""

    method: str
    target: bytes
    headers: CIMultiDict[str]

    @property
    def path(self) -> bytes:
        return self.target.partition(b"?")[0]

    @property
    def is_upgrade(self) -> bool:
        return "upgrade" in self.headers.get("Connection", "").lower()


def parse_request(head: bytes) -> Request:
    """The request line and headers; ValueError says what is wrong."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise ValueError("malformed request line")
    headers: CIMultiDict[str] = CIMultiDict()
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise ValueError("malformed header line")
        headers.add(name, value.strip())
    return Request(parts[0], parts[1].encode("latin-1"), headers)
