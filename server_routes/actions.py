"""Actions: the slot list, editing slots, running one on an image, lineage trees and re-runs."""

from __future__ import annotations

import re

from aiohttp import web
from pydantic import Field

from ..engine.dynprompts import MAX_SEED
from ..engine.errors import StudioError
from ..engine.ids import IMAGE, WORKFLOW
from .context import CREATED, path_id, studio, user_id
from .routing import DataRoutes
from .validation import Schema, read_json

routes = DataRoutes()

SLOT = re.compile(r"[a-z][a-z0-9_]{0,63}")
SLOT_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
IMAGE_PATTERN = IMAGE.pattern
WORKFLOW_PATTERN = WORKFLOW.pattern


def slot(request: web.Request) -> str:
    value = request.match_info["slot"]
    if not SLOT.fullmatch(value):
        raise StudioError(
            "validation_error",
            "slot must be lowercase letters, digits and _",
            [{"loc": ["path", "slot"], "message": "malformed slot", "type": "slot_format"}],
        )
    return value


class RunAction(Schema):
    image_id: str | None = Field(default=None, pattern=IMAGE_PATTERN)
    mask_id: str | None = Field(default=None, pattern=IMAGE_PATTERN)
    text: str | None = Field(default=None, max_length=100_000)
    parameters: dict[str, object] = Field(default_factory=dict, max_length=100)
    front: bool = False
    # Repeats an earlier run's dynamic-prompt choices (its job's parameters.choice_seed).
    choice_seed: int | None = Field(default=None, ge=0, le=MAX_SEED)


class CreateAction(Schema):
    slot: str = Field(pattern=SLOT_PATTERN)
    label: str = Field(min_length=1, max_length=100)
    icon: str = Field(default="", max_length=64)
    position: int | None = Field(default=None, ge=0, le=10_000)
    workflow_id: str = Field(pattern=WORKFLOW_PATTERN)
    parameters: list[dict[str, object]] = Field(default_factory=list, max_length=100)
    compute: str = Field(default="", pattern=r"^(|zoom|pan)$")
    needs_image: bool = True
    needs_mask: bool = False
    shared: bool = False


class UpdateAction(Schema):
    label: str | None = Field(default=None, min_length=1, max_length=100)
    icon: str | None = Field(default=None, max_length=64)
    position: int | None = Field(default=None, ge=0, le=10_000)
    workflow_id: str | None = Field(default=None, pattern=WORKFLOW_PATTERN)
    parameters: list[dict[str, object]] | None = Field(default=None, max_length=100)
    compute: str | None = Field(default=None, pattern=r"^(|zoom|pan)$")
    needs_image: bool | None = None
    needs_mask: bool | None = None
    shared: bool | None = None


class Rerun(Schema):
    same_seed: bool = False


@routes.get("/api/v1/actions")
async def list_actions(request: web.Request) -> object:
    actions = studio(request).actions
    return await actions.list(user_id(request))


@routes.get("/api/v1/actions/status")
async def get_actions_status(request: web.Request) -> object:
    actions = studio(request).actions
    return await actions.checkpoint_status()


@routes.post("/api/v1/actions")
async def create_action(request: web.Request) -> object:
    body = await read_json(request, CreateAction, limit=studio(request).config.max_json_bytes)
    actions = studio(request).actions
    result = await actions.create(user_id(request), body.model_dump())
    request[CREATED] = True
    return result


@routes.get("/api/v1/actions/{slot}")
async def get_action(request: web.Request) -> object:
    actions = studio(request).actions
    return await actions.get(user_id(request), slot(request))


@routes.patch("/api/v1/actions/{slot}")
async def update_action(request: web.Request) -> object:
    body = await read_json(request, UpdateAction, limit=studio(request).config.max_json_bytes)
    actions = studio(request).actions
    return await actions.update(user_id(request), slot(request), body.model_dump(exclude_unset=True))


@routes.delete("/api/v1/actions/{slot}")
async def delete_action(request: web.Request) -> object:
    actions = studio(request).actions
    return await actions.delete(user_id(request), slot(request))


@routes.post("/api/v1/actions/{slot}/run")
async def run_action(request: web.Request) -> object:
    app = studio(request)
    body = await read_json(request, RunAction, limit=app.config.max_json_bytes)
    text = body.text or None  # checked by the service, as on every prompt path
    actions = app.actions
    result = await actions.run(
        user_id(request),
        slot(request),
        image_id=body.image_id,
        mask_id=body.mask_id,
        text=text,
        parameters=body.parameters,
        front=body.front,
        choice_seed=body.choice_seed,
    )
    request[CREATED] = True
    return result


@routes.get("/api/v1/lineage/{image_id}")
async def get_lineage(request: web.Request) -> object:
    actions = studio(request).actions
    return await actions.lineage(user_id(request), path_id(request, "image_id"))


@routes.post("/api/v1/lineage/jobs/{job_id}/rerun")
async def rerun_job(request: web.Request) -> object:
    body = await read_json(request, Rerun, limit=studio(request).config.max_json_bytes)
    actions = studio(request).actions
    result = await actions.rerun(user_id(request), path_id(request, "job_id"), same_seed=body.same_seed)
    request[CREATED] = True
    return result
