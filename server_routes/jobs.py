"""Jobs: submit an API-format graph, list and read jobs, ComfyUI's history for one."""

from __future__ import annotations

from aiohttp import web
from pydantic import Field

from ..engine.dynprompts import MAX_SEED
from ..engine.ids import JOB
from .context import CREATED, path_id, studio, user_id
from .routing import DataRoutes
from .validation import Schema, query_model, read_json

routes = DataRoutes()


class SubmitJob(Schema):
    graph: dict[str, object]
    prompt: str | None = Field(default=None, max_length=100_000)
    front: bool = False
    # Repeats an earlier run's dynamic-prompt choices (its job's parameters.choice_seed).
    choice_seed: int | None = Field(default=None, ge=0, le=MAX_SEED)


class Page(Schema):
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, pattern=JOB.pattern)


@routes.post("/api/v1/jobs")
async def create_job(request: web.Request) -> object:
    app = studio(request)
    body = await read_json(request, SubmitJob, limit=app.config.max_json_bytes)
    request[CREATED] = True
    # Shortcodes in the prompt become patches of the graph, stored with the job.
    return await app.prompts.submit_job(
        user_id(request), body.graph, body.prompt, front=body.front, choice_seed=body.choice_seed
    )


@routes.get("/api/v1/jobs")
async def list_jobs(request: web.Request) -> object:
    page = query_model(request, Page)
    return await studio(request).jobs.list(user_id(request), cursor=page.cursor, limit=page.limit)


@routes.get("/api/v1/jobs/{job_id}")
async def get_job(request: web.Request) -> object:
    return await studio(request).jobs.get(user_id(request), path_id(request, "job_id"))


@routes.get("/api/v1/jobs/{job_id}/history")
async def get_job_history(request: web.Request) -> object:
    app = studio(request)
    job = await app.jobs.get(user_id(request), path_id(request, "job_id"))
    if not job["prompt_id"]:
        return {}
    history = await app.comfy.history(job["prompt_id"], job_id=job["id"], owner_id=user_id(request))
    return history.get(job["prompt_id"]) or {}
