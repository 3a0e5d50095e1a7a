"""The ComfyUI call log: list, read, replay."""

from __future__ import annotations

from aiohttp import web
from pydantic import Field

from ..engine.errors import not_found
from ..engine.ids import JOB
from ..services.comfy_calls import call_to_dict
from .context import CREATED, path_id, studio, user_id
from .routing import DataRoutes
from .validation import Schema, query_model, read_json

routes = DataRoutes()


class CallPage(Schema):
    limit: int = Field(default=50, ge=1, le=200)
    cursor: int | None = Field(default=None, ge=1)
    job_id: str | None = Field(default=None, pattern=JOB.pattern)


class Empty(Schema):
    pass


@routes.get("/api/v1/calls")
async def list_calls(request: web.Request) -> object:
    page = query_model(request, CallPage)
    return await studio(request).comfy.page(user_id(request), page.limit, cursor=page.cursor, job_id=page.job_id)


@routes.get("/api/v1/calls/{call_id}")
async def get_call(request: web.Request) -> object:
    call = await studio(request).comfy.logged(int(path_id(request, "call_id")), owner_id=user_id(request))
    if call is None:
        raise not_found("Call")
    return call_to_dict(call, full=True)


@routes.post("/api/v1/calls/{call_id}/replay")
async def replay_call(request: web.Request) -> object:
    app = studio(request)
    call_id = int(path_id(request, "call_id"))
    await read_json(request, Empty, limit=app.config.max_json_bytes)
    request[CREATED] = True
    return await app.jobs.replay_call(user_id(request), call_id)
