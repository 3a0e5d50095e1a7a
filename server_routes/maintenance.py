"""Storage: usage, maintenance reports and runs (the owner's: they touch everyone's files), the Trash, backups."""

from __future__ import annotations

from aiohttp import web
from pydantic import Field

from ..engine.errors import StudioError
from ..services.maintenance import Maintenance
from .context import is_owner, path_id, studio, user_id
from .routing import DataRoutes
from .validation import Schema, query_model, read_json

routes = DataRoutes()

BODY_LIMIT = 4 * 1024


class RunRequest(Schema):
    dry_run: bool = False


class RunsPage(Schema):
    limit: int = Field(default=20, ge=1, le=100)


class Empty(Schema):
    pass


def _owner_only(request: web.Request) -> Maintenance:
    user_id(request)
    if not is_owner(request):
        raise StudioError("forbidden", "Only the owner runs maintenance: it touches every user's files")
    return studio(request).maintenance


@routes.get("/api/v1/storage/usage")
async def get_storage_usage(request: web.Request) -> object:
    return await studio(request).maintenance.user_usage(user_id(request))


@routes.get("/api/v1/maintenance/report")
async def get_maintenance_report(request: web.Request) -> object:
    return await _owner_only(request).report()


@routes.post("/api/v1/maintenance/run")
async def run_maintenance(request: web.Request) -> object:
    maintenance = _owner_only(request)
    body = await read_json(request, RunRequest, limit=BODY_LIMIT)
    if body.dry_run:
        return await maintenance.dry_run(user_id(request))
    maintenance.start_run(user_id(request))
    return {"started": True, "progress": maintenance.progress}


@routes.get("/api/v1/maintenance/progress")
async def get_maintenance_progress(request: web.Request) -> object:
    return dict(_owner_only(request).progress)


@routes.get("/api/v1/maintenance/runs")
async def list_maintenance_runs(request: web.Request) -> object:
    page = query_model(request, RunsPage)
    return {"items": await _owner_only(request).runs(page.limit)}


@routes.get("/api/v1/maintenance/runs/{run_id}")
async def get_maintenance_run(request: web.Request) -> object:
    maintenance = _owner_only(request)
    return await maintenance.run_detail(int(path_id(request, "run_id")))


@routes.post("/api/v1/maintenance/backup")
async def backup_database(request: web.Request) -> object:
    maintenance = _owner_only(request)
    await read_json(request, Empty, limit=BODY_LIMIT)
    return await maintenance.backup()


@routes.get("/api/v1/trash")
async def list_trash(request: web.Request) -> object:
    return await studio(request).maintenance.trash(user_id(request))


@routes.post("/api/v1/trash/{job_id}/restore")
async def restore_job(request: web.Request) -> object:
    await read_json(request, Empty, limit=BODY_LIMIT)
    return await studio(request).maintenance.restore(user_id(request), path_id(request, "job_id"))


@routes.put("/api/v1/images/{image_id}/expirable")
async def mark_expirable(request: web.Request) -> object:
    return await studio(request).maintenance.set_expirable(user_id(request), path_id(request, "image_id"), True)


@routes.delete("/api/v1/images/{image_id}/expirable")
async def unmark_expirable(request: web.Request) -> object:
    return await studio(request).maintenance.set_expirable(user_id(request), path_id(request, "image_id"), False)
