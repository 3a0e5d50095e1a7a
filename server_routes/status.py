"""Status: is ComfyUI there, how full is its queue, which studio is this."""

from __future__ import annotations

from aiohttp import web

from ..services.comfy_host import HostError
from ..services.studio import __version__
from .context import studio, user_id
from .routing import DataRoutes

routes = DataRoutes()


@routes.get("/api/v1/status")
async def get_status(request: web.Request) -> object:
    app = studio(request)
    uid = user_id(request)
    comfy: dict[str, object] = {"connected": False, "mode": app.host.description}
    raw = None
    try:
        stats = await app.comfy.system_stats()
        raw = await app.comfy.queue(owner_id=uid)
    except HostError as exc:
        comfy["error"] = str(exc)
    else:
        system = stats.get("system", {}) if isinstance(stats, dict) else {}
        comfy.update(connected=True, version=system.get("comfyui_version"))
    # the `queue` event's payload, from the same builder
    queue = app.queue.queue_view(raw, uid)
    # How many files each watched model folder has (as last read: the watcher keeps it current).
    models = {folder: len(files) for folder, files in app.models.lists.items()}
    return {"studio": {"version": __version__}, "comfy": comfy, "queue": queue, "models": models}
