"""Secrets (the Civitai key first): set, list names, read metadata, delete; the owner rotates the key.
A value (or a key) is never sent back."""

from __future__ import annotations

from aiohttp import web
from pydantic import Field

from ..engine.errors import StudioError
from ..services.secrets import MAX_SECRET_CHARS, Secrets, check_secret_name
from .context import CREATED, is_owner, studio, user_id
from .routing import DataRoutes
from .validation import Schema, read_json

routes = DataRoutes()

BODY_LIMIT = 16 * 1024


class PutSecret(Schema):
    value: str = Field(min_length=1, max_length=MAX_SECRET_CHARS)


class RotateKey(Schema):
    """No fields: the new key is made by the studio and never leaves it."""


def _secrets(request: web.Request) -> Secrets:
    secrets = studio(request).security.secrets
    if secrets is None:
        raise StudioError("internal_error", "The secrets store is not open")
    return secrets


def _name(request: web.Request) -> str:
    return check_secret_name(request.match_info["name"])


@routes.get("/api/v1/secrets")
async def list_secrets(request: web.Request) -> object:
    return {"items": await _secrets(request).list(user_id(request))}


@routes.get("/api/v1/secrets/{name}")
async def get_secret(request: web.Request) -> object:
    return await _secrets(request).meta(user_id(request), _name(request))


@routes.put("/api/v1/secrets/{name}")
async def put_secret(request: web.Request) -> object:
    uid = user_id(request)
    name = _name(request)
    body = await read_json(request, PutSecret, limit=BODY_LIMIT)
    if any(ord(c) < 32 or ord(c) == 127 for c in body.value):
        raise StudioError(
            "validation_error",
            "A secret has no control characters",
            [{"loc": ["body", "value"], "message": "control character", "type": "control_character"}],
        )
    meta, created = await _secrets(request).put(uid, name, body.value)
    request[CREATED] = created
    return meta


@routes.delete("/api/v1/secrets/{name}")
async def delete_secret(request: web.Request) -> object:
    return await _secrets(request).delete(user_id(request), _name(request))


@routes.post("/api/v1/secrets/key/rotate")
async def rotate_key(request: web.Request) -> object:
    if not is_owner(request):
        raise StudioError("forbidden", "Only the owner rotates the secrets key")
    await read_json(request, RotateKey, limit=1024)
    return await _secrets(request).rotate(user_id(request))
