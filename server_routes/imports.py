"""The import of ComfyUI's past outputs (the owner's: it reads ComfyUI's whole output folder)."""

from __future__ import annotations

from aiohttp import web

from ..engine.errors import StudioError
from ..services.imports import Imports
from .context import is_owner, studio, user_id
from .routing import DataRoutes
from .validation import Schema, read_json

routes = DataRoutes()

BODY_LIMIT = 1024


class Empty(Schema):
    pass


def _owner_only(request: web.Request) -> Imports:
    user_id(request)
    if not is_owner(request):
        raise StudioError("forbidden", "Only the owner imports ComfyUI's outputs: they are the whole output folder")
    return studio(request).imports


@routes.get("/api/v1/imports")
async def get_import_status(request: web.Request) -> object:
    return _owner_only(request).status()


@routes.post("/api/v1/imports/start")
async def start_import(request: web.Request) -> object:
    imports = _owner_only(request)
    await read_json(request, Empty, limit=BODY_LIMIT)
    return await imports.start(user_id(request))


@routes.post("/api/v1/imports/pause")
async def pause_import(request: web.Request) -> object:
    imports = _owner_only(request)
    await read_json(request, Empty, limit=BODY_LIMIT)
    return await imports.pause()
