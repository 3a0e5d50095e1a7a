"""Settings: the declared settings with this user's values; change your own, and the owner the global ones."""

from __future__ import annotations

from aiohttp import web
from pydantic import Field

from .context import is_owner, studio, user_id
from .routing import DataRoutes
from .validation import Schema, read_json

routes = DataRoutes()


class UpdateSettings(Schema):
    # name → new value, or null to go back to the default
    values: dict[str, str | int | float | bool | list[str] | None] = Field(min_length=1, max_length=64)


async def _listing(request: web.Request) -> dict[str, object]:
    app = studio(request)
    items = await app.settings.listing(user_id(request), is_owner(request))
    return {"items": items, "dev_mode": app.config.dev}


@routes.get("/api/v1/settings")
async def get_settings(request: web.Request) -> object:
    return await _listing(request)


@routes.patch("/api/v1/settings")
async def update_settings(request: web.Request) -> object:
    body = await read_json(request, UpdateSettings, limit=64 * 1024)
    await studio(request).settings.update(user_id(request), is_owner(request), body.values)
    return await _listing(request)
