"""Shortcodes: definitions (CRUD, import/export) and autocomplete for the prompt bar."""

from __future__ import annotations

from aiohttp import web
from pydantic import Field

from ..engine.errors import StudioError
from ..engine.ids import SHORTCODE
from ..services.prompts import DefinitionPreview
from ..services.shortcodes import DefinitionRequest, ExportDocument
from .context import CREATED, is_owner, studio, user_id
from .routing import DataRoutes
from .validation import Schema, query_model, read_json

routes = DataRoutes()


class SuggestQuery(Schema):
    text: str = Field(default="", max_length=100_000)
    cursor: int | None = Field(default=None, ge=0, le=200_000)


def _shortcode_id(request: web.Request) -> str:
    value = request.match_info["shortcode_id"]
    if not SHORTCODE.matches(value):
        raise StudioError(
            "validation_error",
            "shortcode_id is not a valid id",
            [{"loc": ["path", "shortcode_id"], "message": "malformed id", "type": "id_format"}],
        )
    return value


# Fixed paths first: they would otherwise match /shortcodes/{shortcode_id}.


@routes.get("/api/v1/shortcodes/suggest")
async def suggest_shortcodes(request: web.Request) -> object:
    query = query_model(request, SuggestQuery)
    cursor = len(query.text.encode("utf-16-le")) // 2 if query.cursor is None else query.cursor
    return await studio(request).prompts.suggest(user_id(request), query.text, cursor)


@routes.get("/api/v1/shortcodes/export")
async def export_shortcodes(request: web.Request) -> object:
    return await studio(request).shortcodes.export(user_id(request), is_owner(request))


@routes.post("/api/v1/shortcodes/preview")
async def preview_shortcode_definition(request: web.Request) -> object:
    app = studio(request)
    body = await read_json(request, DefinitionPreview, limit=app.config.max_json_bytes)
    return await app.prompts.preview_definition(user_id(request), body)


@routes.post("/api/v1/shortcodes/import")
async def import_shortcodes(request: web.Request) -> object:
    app = studio(request)
    document = await read_json(request, ExportDocument, limit=app.config.max_json_bytes)
    return await app.shortcodes.import_(user_id(request), is_owner(request), document)


@routes.get("/api/v1/shortcodes")
async def list_shortcodes(request: web.Request) -> object:
    return await studio(request).shortcodes.list(user_id(request), is_owner(request))


@routes.post("/api/v1/shortcodes")
async def create_shortcode(request: web.Request) -> object:
    app = studio(request)
    body = await read_json(request, DefinitionRequest, limit=app.config.max_json_bytes)
    created = await app.prompts.create_code(user_id(request), is_owner(request), body)
    request[CREATED] = True
    return created


@routes.get("/api/v1/shortcodes/{shortcode_id}")
async def get_shortcode(request: web.Request) -> object:
    app = studio(request)
    return await app.shortcodes.get(user_id(request), is_owner(request), _shortcode_id(request))


@routes.put("/api/v1/shortcodes/{shortcode_id}")
async def update_shortcode(request: web.Request) -> object:
    app = studio(request)
    shortcode_id = _shortcode_id(request)
    body = await read_json(request, DefinitionRequest, limit=app.config.max_json_bytes)
    return await app.prompts.update_code(user_id(request), is_owner(request), shortcode_id, body)


@routes.delete("/api/v1/shortcodes/{shortcode_id}")
async def delete_shortcode(request: web.Request) -> object:
    app = studio(request)
    return await app.shortcodes.delete(user_id(request), is_owner(request), _shortcode_id(request))
