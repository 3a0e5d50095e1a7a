"""Backends: the ComfyUIs the studio dispatches to, their health and load; the owner drains and undrains them."""

from __future__ import annotations

from aiohttp import web

from ..engine.errors import StudioError, not_found
from ..services.comfy_pool import BackendPool
from .context import is_owner, studio, user_id
from .routing import DataRoutes

routes = DataRoutes()


@routes.get("/api/v1/backends")
async def list_backends(request: web.Request) -> object:
    user_id(request)
    return {"items": await studio(request).backends()}


async def _set_draining(request: web.Request, draining: bool) -> object:
    user_id(request)
    if not is_owner(request):
        raise StudioError("forbidden", "Only the owner drains a backend: it applies to every user")
    app = studio(request)
    name = request.match_info["name"]
    if not isinstance(app.host, BackendPool) or name not in app.host.members:
        raise not_found("Backend")
    await app.set_draining(name, draining)
    items = await app.backends()
    return next(item for item in items if item["name"] == name)


# A backend's name is its URL (percent-encoded in the path) or "local": the pattern takes its slashes too.
@routes.post("/api/v1/backends/{name:.+}/drain")
async def drain_backend(request: web.Request) -> object:
    return await _set_draining(request, True)


@routes.post("/api/v1/backends/{name:.+}/undrain")
async def undrain_backend(request: web.Request) -> object:
    return await _set_draining(request, False)
