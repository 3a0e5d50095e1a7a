"""Finding and tidying past work: prompt history, search filters, likes, deletion, bulk operations, zips."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from aiohttp import web
from pydantic import Field

from ..engine.ids import BOARD, JOB, WORKFLOW
from ..services.gallery import MAX_BULK
from ..services.search import JobFilter
from .context import checked_id, path_id, studio, user_id
from .routing import DataRoutes
from .validation import Schema, query_model, read_json

routes = DataRoutes()

ID_PATTERN = JOB.pattern
ZIP_PIECE = 256 * 1024


class HistoryPage(Schema):
    limit: int = Field(default=50, ge=1, le=200)
    cursor: int | None = Field(default=None, ge=1)


class JobSearch(Schema):
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, pattern=ID_PATTERN)
    q: str | None = Field(default=None, max_length=500)
    liked: bool | None = None
    action: str | None = Field(default=None, pattern=r"^[a-z0-9_]{1,64}$")
    workflow_id: str | None = Field(default=None, pattern=WORKFLOW.pattern)
    since: datetime | None = None
    until: datetime | None = None
    board_id: str | None = Field(default=None, pattern=BOARD.pattern)


class Bulk(Schema):
    ids: list[str] = Field(min_length=1, max_length=MAX_BULK)
    op: Literal["delete", "like", "unlike"]


class ArchiveQuery(Schema):
    ids: str = Field(min_length=1, max_length=MAX_BULK * 30)


@routes.get("/api/v1/prompts/history")
async def get_prompt_history(request: web.Request) -> object:
    page = query_model(request, HistoryPage)
    return await studio(request).gallery.prompt_history(user_id(request), limit=page.limit, before=page.cursor)


@routes.get("/api/v1/jobs/search")
async def search_jobs(request: web.Request) -> object:
    search = query_model(request, JobSearch)
    filters = JobFilter(
        q=search.q,
        liked=search.liked,
        action=search.action,
        workflow_id=search.workflow_id,
        since=search.since,
        until=search.until,
        board_id=search.board_id,
    )
    if search.board_id:
        await studio(request).boards.require(user_id(request), search.board_id)  # another user's board: 404
    return await studio(request).jobs.list(user_id(request), cursor=search.cursor, limit=search.limit, filters=filters)


@routes.delete("/api/v1/jobs/{job_id}")
async def delete_job(request: web.Request) -> object:
    return await studio(request).gallery.delete_job(user_id(request), path_id(request, "job_id"))


@routes.post("/api/v1/jobs/bulk")
async def bulk_jobs(request: web.Request) -> object:
    body = await read_json(request, Bulk, limit=studio(request).config.max_json_bytes)
    for job_id in body.ids:
        checked_id("job_id", job_id, "body")
    return await studio(request).gallery.bulk(user_id(request), body.ids, body.op)


@routes.put("/api/v1/images/{image_id}/like")
async def like_image(request: web.Request) -> object:
    return await studio(request).gallery.set_liked(user_id(request), path_id(request, "image_id"), True)


@routes.delete("/api/v1/images/{image_id}/like")
async def unlike_image(request: web.Request) -> object:
    return await studio(request).gallery.set_liked(user_id(request), path_id(request, "image_id"), False)


@routes.get("/api/v1/images/archive")
async def download_archive(request: web.Request) -> web.StreamResponse:
    query = query_model(request, ArchiveQuery)
    ids = [checked_id("image_id", part, "query") for part in query.ids.split(",") if part]
    chunks = studio(request).gallery.archive(user_id(request), ids[:MAX_BULK])
    first = await anext(chunks)  # a refusal (not found) is answered before the zip starts
    response = web.StreamResponse(
        headers={"Content-Type": "application/zip", "Content-Disposition": 'attachment; filename="studio-images.zip"'}
    )
    await response.prepare(request)
    await _write(response, first)
    async for chunk in chunks:
        await _write(response, chunk)
    await response.write_eof()
    return response


async def _write(response: web.StreamResponse, chunk: bytes) -> None:
    # An entry is a whole image: written in pieces, each write yields to the loop (no multi-MB copy at once).
    view = memoryview(chunk)
    for start in range(0, len(view), ZIP_PIECE):
        await response.write(view[start : start + ZIP_PIECE])
