"""The queue: what runs and waits, moving and cancelling pending jobs, interrupting the running one."""

from __future__ import annotations

from typing import Literal

from aiohttp import web

from ..engine.errors import StudioError
from .context import checked_id, is_owner, path_id, studio, user_id
from .routing import DataRoutes
from .validation import Schema, read_json

routes = DataRoutes()


class ClearQueue(Schema):
    scope: Literal["mine", "all"] = "mine"


class Empty(Schema):
    pass


class Interrupt(Schema):
    job_id: str | None = None  # which running job; none: the caller's own (the owner: whatever runs)


@routes.get("/api/v1/queue")
async def get_queue(request: web.Request) -> object:
    return await studio(request).queue.queue(user_id(request))


@routes.delete("/api/v1/queue/{job_id}")
async def delete_queued_job(request: web.Request) -> object:
    return await studio(request).queue.cancel(user_id(request), path_id(request, "job_id"))


@routes.post("/api/v1/queue/{job_id}/front")
async def move_job_to_front(request: web.Request) -> object:
    app = studio(request)
    await read_json(request, Empty, limit=app.config.max_json_bytes)
    return await app.queue.move_to_front(user_id(request), path_id(request, "job_id"))


@routes.post("/api/v1/queue/clear")
async def clear_queue(request: web.Request) -> object:
    app = studio(request)
    body = await read_json(request, ClearQueue, limit=app.config.max_json_bytes)
    everyone = body.scope == "all"
    if everyone and not is_owner(request):
        raise StudioError("forbidden", "Only the owner can clear everyone's pending jobs")
    return await app.queue.clear(user_id(request), everyone=everyone)


@routes.post("/api/v1/queue/interrupt")
async def interrupt_running(request: web.Request) -> object:
    app = studio(request)
    body = await read_json(request, Interrupt, limit=app.config.max_json_bytes)
    job_id = checked_id("job_id", body.job_id, "body") if body.job_id is not None else None
    return await app.queue.interrupt(user_id(request), is_owner=is_owner(request), job_id=job_id)
