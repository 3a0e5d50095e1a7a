"""The prompt bar: preview what a prompt would do, and generate from it."""

from __future__ import annotations

from aiohttp import web
from pydantic import Field

from ..engine.dynprompts import MAX_SEED
from .context import CREATED, studio, user_id
from .routing import DataRoutes
from .validation import Schema, read_json

routes = DataRoutes()


class PreviewPrompt(Schema):
    text: str = Field(max_length=100_000)
    graph: dict[str, object] | None = None
    # Accepted now, used to pick workflow-limited codes; the graph is not loaded from it until workflows exist.
    workflow_id: str | None = Field(default=None, min_length=1, max_length=64)


class Generate(Schema):
    text: str = Field(max_length=100_000)
    graph: dict[str, object] | None = None
    image_ids: list[str] = Field(default_factory=list, max_length=16)
    # Repeats an earlier run's dynamic-prompt choices (its job's parameters.choice_seed).
    choice_seed: int | None = Field(default=None, ge=0, le=MAX_SEED)


@routes.post("/api/v1/prompt/preview")
async def preview_prompt(request: web.Request) -> object:
    app = studio(request)
    body = await read_json(request, PreviewPrompt, limit=app.config.max_json_bytes)
    return await app.prompts.preview(user_id(request), body.text, body.graph, body.workflow_id)


@routes.post("/api/v1/generate")
async def generate(request: web.Request) -> object:
    app = studio(request)
    body = await read_json(request, Generate, limit=app.config.max_json_bytes)
    job = await app.prompts.generate(
        user_id(request),
        body.text,
        body.graph,
        body.image_ids,
        choice_seed=body.choice_seed,
    )
    request[CREATED] = True
    return job
