"""Civitai: the owner's key (write-only), browsing with the studio's cursors, prompts from images, downloads."""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from pydantic import Field

from ..engine.envelope import success
from ..engine.errors import StudioError
from ..services.civitai import MODEL_TYPES, Civitai, ImageSort, ModelSort, Period, prompt_for
from ..services.secrets import MAX_SECRET_CHARS
from .context import REQUEST_ID, is_owner, studio, user_id
from .middleware import envelope_response
from .routing import DataRoutes
from .validation import Schema, query_model, read_json

routes = DataRoutes()

BODY_LIMIT = 16 * 1024
PROMPT_BODY_LIMIT = 512 * 1024
CURSOR = r"^c_[A-Za-z0-9_-]{8,64}$"
Level = Literal["none", "soft", "mature", "x"]


def _owner(request: web.Request) -> None:
    user_id(request)
    if not is_owner(request):
        raise StudioError("forbidden", "Only the owner manages Civitai's key and downloads")


def _civitai(request: web.Request) -> Civitai:
    return studio(request).civitai


async def _level(request: web.Request, requested: str | None) -> str:
    user_max = await _civitai(request).user_level(user_id(request))
    return Civitai.allowed_level(requested, user_max)


# --- key -------------------------------------------------------------------------------------------------


class PutKey(Schema):
    key: str = Field(min_length=1, max_length=MAX_SECRET_CHARS, pattern=r"^[\x21-\x7e]+$")


class Empty(Schema):
    pass


@routes.get("/api/v1/civitai/status")
async def civitai_status(request: web.Request) -> object:
    user_id(request)
    return await _civitai(request).status()


@routes.put("/api/v1/civitai/key")
async def put_civitai_key(request: web.Request) -> object:
    _owner(request)
    body = await read_json(request, PutKey, limit=BODY_LIMIT)
    return await _civitai(request).set_key(body.key)


@routes.post("/api/v1/civitai/key/test")
async def test_civitai_key(request: web.Request) -> object:
    _owner(request)
    if request.can_read_body:
        await read_json(request, Empty, limit=BODY_LIMIT)
    return await _civitai(request).test_key()


@routes.delete("/api/v1/civitai/key")
async def delete_civitai_key(request: web.Request) -> object:
    _owner(request)
    return await _civitai(request).delete_key()


# --- browsing --------------------------------------------------------------------------------------------


class ImageQuery(Schema):
    sort: ImageSort = "Most Reactions"
    period: Period = "AllTime"
    nsfw: Level | None = None
    query: str = Field(default="", max_length=200)
    username: str = Field(default="", max_length=100, pattern=r"^[\w.-]*$")
    tags: str = Field(default="", max_length=200, pattern=r"^[0-9,]*$")
    model_version_id: int | None = Field(default=None, ge=1, le=2_147_483_647)
    cursor: str | None = Field(default=None, pattern=CURSOR)
    limit: int = Field(default=50, ge=1, le=100)


class ModelQuery(Schema):
    query: str = Field(default="", max_length=200)
    types: str = Field(default="", max_length=200)
    sort: ModelSort = "Highest Rated"
    period: Period = "AllTime"
    nsfw: Level | None = None
    tag: str = Field(default="", max_length=100)
    username: str = Field(default="", max_length=100, pattern=r"^[\w.-]*$")
    cursor: str | None = Field(default=None, pattern=CURSOR)
    limit: int = Field(default=50, ge=1, le=100)


class NameQuery(Schema):
    query: str = Field(default="", max_length=100)
    cursor: str | None = Field(default=None, pattern=CURSOR)
    limit: int = Field(default=20, ge=1, le=100)


@routes.get("/api/v1/civitai/images")
async def civitai_images(request: web.Request) -> object:
    q = query_model(request, ImageQuery)
    civitai = _civitai(request)
    level = await _level(request, q.nsfw)
    return await civitai.browse(
        civitai.images(
            sort=q.sort,
            period=q.period,
            level=level,
            query=q.query,
            username=q.username,
            tags=q.tags,
            model_version_id=q.model_version_id,
            cursor=q.cursor,
            limit=q.limit,
        )
    )


@routes.get("/api/v1/civitai/models")
async def civitai_models(request: web.Request) -> object:
    q = query_model(request, ModelQuery)
    types = [t for t in q.types.replace("|", ",").split(",") if t]
    bad = [t for t in types if t not in MODEL_TYPES]
    if bad:
        raise StudioError("validation_error", f"types: one or more of {', '.join(MODEL_TYPES)}")
    civitai = _civitai(request)
    level = await _level(request, q.nsfw)
    return await civitai.browse(
        civitai.models(
            level=level,
            query=q.query,
            types=types,
            sort=q.sort,
            period=q.period,
            tag=q.tag,
            username=q.username,
            cursor=q.cursor,
            limit=q.limit,
        )
    )


def _version_id(request: web.Request) -> int:
    raw = request.match_info["version_id"]
    if not raw.isdigit() or not 1 <= int(raw) <= 2_147_483_647:
        raise StudioError("validation_error", "A model version id is a positive whole number")
    return int(raw)


@routes.get("/api/v1/civitai/model-versions/{version_id}")
async def civitai_model_version(request: web.Request) -> object:
    user_id(request)
    return await _civitai(request).model_version(_version_id(request))


@routes.get("/api/v1/civitai/model-versions/by-hash/{sha256}")
async def civitai_model_version_by_hash(request: web.Request) -> object:
    user_id(request)
    digest = request.match_info["sha256"]
    if not all(c in "0123456789abcdefABCDEF" for c in digest) or not 8 <= len(digest) <= 64:
        raise StudioError("validation_error", "A hash is 8 to 64 hexadecimal digits")
    return await _civitai(request).model_version_by_hash(digest)


@routes.get("/api/v1/civitai/tags")
async def civitai_tags(request: web.Request) -> object:
    user_id(request)
    q = query_model(request, NameQuery)
    civitai = _civitai(request)
    return await civitai.browse(civitai.tags(query=q.query, limit=q.limit, cursor=q.cursor))


@routes.get("/api/v1/civitai/creators")
async def civitai_creators(request: web.Request) -> object:
    user_id(request)
    q = query_model(request, NameQuery)
    civitai = _civitai(request)
    return await civitai.browse(civitai.creators(query=q.query, limit=q.limit, cursor=q.cursor))


# --- generate from this prompt ---------------------------------------------------------------------------


class PromptFromImage(Schema):
    image: dict[str, Any]


@routes.post("/api/v1/civitai/prompt")
async def civitai_prompt(request: web.Request) -> object:
    uid = user_id(request)
    body = await read_json(request, PromptFromImage, limit=PROMPT_BODY_LIMIT)
    app = studio(request)
    registry = await app.shortcodes.registry(uid)
    lists = app.models.lists
    return await prompt_for(
        app.civitai,
        body.image,
        codes={d.code for d in registry.definitions},
        local=dict(app.local_models.by_sha),
        local_embeddings=lists.get("embeddings", []),
    )


# --- downloads -------------------------------------------------------------------------------------------


class StartDownload(Schema):
    model_version_id: int = Field(ge=1, le=2_147_483_647)
    file_id: int | None = Field(default=None, ge=1)


@routes.post("/api/v1/civitai/downloads")
async def start_download(request: web.Request) -> web.StreamResponse:
    _owner(request)
    body = await read_json(request, StartDownload, limit=BODY_LIMIT)
    item = await studio(request).downloads.start(body.model_version_id, body.file_id)
    return envelope_response(dict(success(item, request[REQUEST_ID])), 202)  # accepted: it runs in the background


@routes.get("/api/v1/civitai/downloads")
async def list_downloads(request: web.Request) -> object:
    _owner(request)
    return {"items": studio(request).downloads.listing()}


@routes.delete("/api/v1/civitai/downloads/{download_id}")
async def cancel_download(request: web.Request) -> object:
    _owner(request)
    download_id = request.match_info["download_id"]
    if not download_id.startswith("dl_") or len(download_id) > 40:
        raise StudioError("not_found", "Download not found")
    return await studio(request).downloads.cancel(download_id)
