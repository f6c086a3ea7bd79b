"""Authorize: may this id token charge here?

The answer comes from the id-token port (accept-all by default, or a list).
1.6 calls the token ``idTag`` and answers ``idTagInfo``; 2.0.1 sends an
``idToken`` object and answers ``idTokenInfo``. Tokens are never logged.
"""

from __future__ import annotations

from typing import Any

from ocppj import OcppVersion

from ..context import Context
from ..router import HandlerSet

__all__ = ["handlers", "token_info"]

handlers = HandlerSet()


async def token_info(ctx: Context, id_token: str) -> dict[str, Any]:
    """The ``idTagInfo`` / ``idTokenInfo`` object for a token (same shape in both)."""
    return {"status": await ctx.services.id_tokens.status(id_token)}


@handlers.on("Authorize", versions=[OcppVersion.V16])
async def authorize_v16(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    return {"idTagInfo": await token_info(ctx, request["idTag"])}


@handlers.on("Authorize", versions=[OcppVersion.V201])
async def authorize_v201(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    return {"idTokenInfo": await token_info(ctx, request["idToken"]["idToken"])}
