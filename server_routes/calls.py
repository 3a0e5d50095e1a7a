"""The ComfyUI call log: list, read, replay."""

from __future__ import annotations

from aiohttp import web
from pydantic import Field
from sqlalchemy import select

from ..db.models import ComfyCall
from ..engine.errors import not_found
from ..engine.ids import JOB
from ..services.jobs import iso
from .context import CREATED, path_id, studio, user_id
from .validation import Schema, query_model, read_json

routes = web.RouteTableDef()


class CallPage(Schema):
    limit: int = Field(default=50, ge=1, le=200)
    cursor: int | None = Field(default=None, ge=1)
    job_id: str | None = Field(default=None, pattern=JOB.pattern)


class Empty(Schema):
    pass


def call_to_dict(call: ComfyCall, *, full: bool) -> dict[str, object]:
    data: dict[str, object] = {
        "id": call.id,
        "operation": call.operation,
        "method": call.method,
        "path": call.path,
        "status": call.status,
        "ok": call.ok,
        "error": call.error,
        "started_at": iso(call.started_at),
        "ended_at": iso(call.ended_at),
        "runtime_ms": call.runtime_ms,
        "job_id": call.job_id,
        "replay_of": call.replay_of,
    }
    if full:
        data["request"] = call.request
        data["response"] = call.response
    return data


@routes.get("/api/v1/calls")
async def list_calls(request: web.Request) -> object:
    page = query_model(request, CallPage)
    app = studio(request)
    query = select(ComfyCall).where(ComfyCall.owner_id == user_id(request))
    if page.cursor:
        query = query.where(ComfyCall.id < page.cursor)
    if page.job_id:
        query = query.where(ComfyCall.job_id == page.job_id)
    query = query.order_by(ComfyCall.id.desc()).limit(page.limit + 1)
    async with app.store.session() as session:
        rows = list((await session.scalars(query)).all())
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return {
        "items": [call_to_dict(c, full=False) for c in rows],
        "next_cursor": rows[-1].id if more else None,
    }


@routes.get("/api/v1/calls/{call_id}")
async def get_call(request: web.Request) -> object:
    app = studio(request)
    async with app.store.session() as session:
        call = await session.get(ComfyCall, int(path_id(request, "call_id")))
    if call is None or call.owner_id != user_id(request):
        raise not_found("Call")
    return call_to_dict(call, full=True)


@routes.post("/api/v1/calls/{call_id}/replay")
async def replay_call(request: web.Request) -> object:
    app = studio(request)
    call_id = int(path_id(request, "call_id"))
    await read_json(request, Empty, limit=app.config.max_json_bytes)
    request[CREATED] = True
    return await app.jobs.replay_call(user_id(request), call_id)
