"""The model files ComfyUI lists: what the prompt bar suggests and the first-run banner names."""

from __future__ import annotations

from aiohttp import web

from .context import studio, user_id
from .routing import DataRoutes

routes = DataRoutes()


@routes.get("/api/v1/models")
async def list_models(request: web.Request) -> object:
    user_id(request)  # signed-in users only, like every other read
    return await studio(request).models.current()
