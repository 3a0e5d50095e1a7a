"""Users, managed by the owner: list, create, disable or enable, reset a password (their sessions end)."""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import Field

from ..engine.errors import StudioError
from ..services.security import Security
from .context import CREATED, is_owner, path_id, studio, user_id
from .routing import DataRoutes
from .validation import Schema, read_json

routes = DataRoutes()

BODY_LIMIT = 16 * 1024


class CreateUser(Schema):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    role: Literal["user"] = "user"


class UpdateUser(Schema):
    disabled: bool


class ResetPassword(Schema):
    password: str = Field(min_length=1, max_length=1024)


def _owner_only(request: web.Request) -> Security:
    user_id(request)
    if not is_owner(request):
        raise StudioError("forbidden", "Only the owner manages users")
    return studio(request).security


@routes.get("/api/v1/users")
async def list_users(request: web.Request) -> object:
    security = _owner_only(request)
    return {"items": await security.accounts.list()}


@routes.post("/api/v1/users")
async def create_user(request: web.Request) -> object:
    security = _owner_only(request)
    body = await read_json(request, CreateUser, limit=BODY_LIMIT)
    user = await security.accounts.create(user_id(request), body.username, body.password, body.role)
    request[CREATED] = True
    return user


@routes.patch("/api/v1/users/{user_id}")
async def update_user(request: web.Request) -> object:
    security = _owner_only(request)
    target = int(path_id(request, "user_id"))
    body = await read_json(request, UpdateUser, limit=BODY_LIMIT)
    user = await security.accounts.set_disabled(user_id(request), target, body.disabled)
    if body.disabled:
        await security.sessions.revoke_user(target, "disabled")
    return user


@routes.post("/api/v1/users/{user_id}/password")
async def reset_password(request: web.Request) -> object:
    security = _owner_only(request)
    target = int(path_id(request, "user_id"))
    body = await read_json(request, ResetPassword, limit=BODY_LIMIT)
    await security.accounts.set_password(user_id(request), target, body.password)
    ended = await security.sessions.revoke_user(target, "password_reset")
    return {"reset": True, "sessions_ended": ended}
