"""API tokens for ComfyUI clients: list yours, make one (shown once), revoke one. Settings' own guards apply."""

from __future__ import annotations

from aiohttp import web
from pydantic import Field

from ..engine.errors import StudioError
from ..services.api_tokens import ApiTokens
from .context import CREATED, path_id, studio, user_id
from .routing import DataRoutes
from .validation import Schema, read_json

routes = DataRoutes()

BODY_LIMIT = 4 * 1024


class NewToken(Schema):
    # the service trims and checks; this caps what is read at all
    name: str = Field(min_length=1, max_length=256)


def _tokens(request: web.Request) -> ApiTokens:
    tokens = studio(request).security.tokens
    if tokens is None:
        raise StudioError("internal_error", "API tokens are not available")
    return tokens


@routes.get("/api/v1/tokens")
async def list_tokens(request: web.Request) -> object:
    return {"items": await _tokens(request).list(user_id(request))}


@routes.post("/api/v1/tokens")
async def create_token(request: web.Request) -> object:
    body = await read_json(request, NewToken, limit=BODY_LIMIT)
    created = await _tokens(request).create(user_id(request), body.name)
    request[CREATED] = True
    return created


@routes.delete("/api/v1/tokens/{token_id}")
async def revoke_token(request: web.Request) -> object:
    return await _tokens(request).revoke(user_id(request), int(path_id(request, "token_id")))
