"""Id tokens from configuration: accept everyone, or a fixed list with statuses."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import orjson

__all__ = ["STATUSES", "StaticIdTokens", "load_id_tokens"]

STATUSES = ("Accepted", "Blocked", "Expired", "Invalid")


class StaticIdTokens:
    """``None`` accepts every token (the default); a mapping answers from the
    list, and a token not on it is ``Invalid``. Tokens compare without regard
    to case, as OCPP says (1.6 idTag is a CiString; 2.0.1: "IdToken is case
    insensitive")."""

    def __init__(self, statuses: Mapping[str, str] | None = None) -> None:
        self._statuses = (
            None
            if statuses is None
            else {token.casefold(): status for token, status in statuses.items()}
        )

    async def status(self, id_token: str) -> str:
        if self._statuses is None:
            return "Accepted"
        return self._statuses.get(id_token.casefold(), "Invalid")


def load_id_tokens(path: Path) -> dict[str, str]:
    """Read ``{"TOKEN": "Accepted", ...}``; ValueError names what is wrong."""
    try:
        statuses = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(statuses, dict):
        raise ValueError(f"{path} must hold a JSON object of token -> status")
    for token, status in statuses.items():
        if status not in STATUSES:
            raise ValueError(
                f"{path}: token {token!r} has status {status!r}, not one of {STATUSES}"
            )
    return statuses
