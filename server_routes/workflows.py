"""Workflows: import (API or UI JSON, PNG metadata), read, edit into new versions, restore, delete."""

from __future__ import annotations

from aiohttp import web
from pydantic import Field

from ..engine.errors import StudioError
from ..engine.ids import WORKFLOW
from .context import CREATED, studio, user_id
from .routing import DataRoutes
from .validation import Schema, query_model, read_json, read_multipart

routes = DataRoutes()

MAX_IMPORT_BYTES = 16 * 1024 * 1024


def workflow_id(request: web.Request) -> str:
    value = request.match_info["workflow_id"]
    if not WORKFLOW.matches(value):
        raise StudioError(
            "validation_error",
            "workflow_id is not a valid id",
            [{"loc": ["path", "workflow_id"], "message": "malformed id", "type": "id_format"}],
        )
    return value


class CreateWorkflow(Schema):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    tags: list[str] = Field(default_factory=list, max_length=32)
    shared: bool = False
    # API-format graph, UI-format workflow, or a base64 PNG carrying one.
    document: dict[str, object] | str
    parameters: list[dict[str, object]] | None = Field(default=None, max_length=200)
    bindings: dict[str, dict[str, object] | None] | None = None


class UpdateWorkflow(Schema):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    tags: list[str] | None = Field(default=None, max_length=32)
    shared: bool | None = None
    document: dict[str, object] | str | None = None
    parameters: list[dict[str, object]] | None = Field(default=None, max_length=200)
    bindings: dict[str, dict[str, object] | None] | None = None
    note: str = Field(default="", max_length=500)


class ListQuery(Schema):
    tag: str | None = Field(default=None, max_length=64)


class VersionPath(Schema):
    number: int = Field(ge=1, le=1_000_000)


@routes.get("/api/v1/workflows")
async def list_workflows(request: web.Request) -> object:
    query = query_model(request, ListQuery)
    workflows = studio(request).workflows
    return await workflows.list(user_id(request), tag=query.tag)


@routes.post("/api/v1/workflows")
async def create_workflow(request: web.Request) -> object:
    body = await read_json(request, CreateWorkflow, limit=max(studio(request).config.max_json_bytes, MAX_IMPORT_BYTES))
    workflows = studio(request).workflows
    result = await workflows.create(user_id(request), **body.model_dump())
    request[CREATED] = True
    return result


@routes.post("/api/v1/workflows/import")
async def import_workflow(request: web.Request) -> object:
    """A file upload (multipart field ``file``: JSON or PNG, optional field ``name``)."""
    parts = await read_multipart(
        request,
        {"file": MAX_IMPORT_BYTES, "name": 1024},
        expected="the workflow file in a field named file (and, optionally, name)",
    )
    file = parts.get("file")
    if file is None or not file.data:
        raise StudioError(
            "validation_error",
            "No file was sent (field file)",
            [{"loc": ["body", "file"], "message": "field required", "type": "missing"}],
        )
    data = file.data
    name = (file.filename or "").rsplit(".", 1)[0][:200] or "Imported workflow"
    if "name" in parts:
        name = parts["name"].data.decode("utf-8", "replace").strip()[:200] or name
    workflows = studio(request).workflows
    result = await workflows.create(user_id(request), name=name, document=data)
    request[CREATED] = True
    return result


@routes.get("/api/v1/workflows/{workflow_id}")
async def get_workflow(request: web.Request) -> object:
    workflows = studio(request).workflows
    return await workflows.get(user_id(request), workflow_id(request))


@routes.patch("/api/v1/workflows/{workflow_id}")
async def update_workflow(request: web.Request) -> object:
    body = await read_json(request, UpdateWorkflow, limit=max(studio(request).config.max_json_bytes, MAX_IMPORT_BYTES))
    workflows = studio(request).workflows
    return await workflows.update(user_id(request), workflow_id(request), **body.model_dump())


@routes.delete("/api/v1/workflows/{workflow_id}")
async def delete_workflow(request: web.Request) -> object:
    workflows = studio(request).workflows
    return await workflows.delete(user_id(request), workflow_id(request))


@routes.get("/api/v1/workflows/{workflow_id}/versions")
async def list_workflow_versions(request: web.Request) -> object:
    workflows = studio(request).workflows
    return await workflows.versions(user_id(request), workflow_id(request))


@routes.get("/api/v1/workflows/{workflow_id}/versions/{number}")
async def get_workflow_version(request: web.Request) -> object:
    number = _number(request)
    workflows = studio(request).workflows
    return await workflows.get(user_id(request), workflow_id(request), number)


@routes.post("/api/v1/workflows/{workflow_id}/versions/{number}/restore")
async def restore_workflow_version(request: web.Request) -> object:
    number = _number(request)
    workflows = studio(request).workflows
    return await workflows.restore(user_id(request), workflow_id(request), number)


def _number(request: web.Request) -> int:
    raw = request.match_info["number"]
    if not raw.isdigit() or len(raw) > 7 or int(raw) < 1:
        raise StudioError("validation_error", "the version number must be a positive whole number")
    return int(raw)
