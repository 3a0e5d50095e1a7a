"""`create_app`: the one studio application that the plugin, the standalone server and the tests build."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from ..services.studio import Studio
from . import calls, events, images, jobs, queue, status
from .context import USER_ID, USER_ROLE
from .keys import EVENT_HUB, SNAPSHOT_PROVIDER, STUDIO
from .middleware import Handler, envelope_middleware
from .ui import StudioPage, asset_headers


@web.middleware
async def local_owner(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Until accounts exist every request acts as the local owner."""
    request[USER_ID] = request.config_dict[STUDIO].owner_id
    request[USER_ROLE] = "owner"
    return await handler(request)  # type: ignore[return-value]


def create_app(studio: Studio) -> web.Application:
    app = web.Application(
        middlewares=[asset_headers, envelope_middleware(dev=studio.config.dev), local_owner]
    )
    app[STUDIO] = studio
    app[EVENT_HUB] = studio.hub
    app[SNAPSHOT_PROVIDER] = studio.snapshot
    for module in (status, jobs, queue, images, calls):
        app.add_routes(module.routes)
    events.add_routes(app)
    StudioPage().add_routes(app)
    app.cleanup_ctx.append(_lifecycle)
    return app


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    studio = app[STUDIO]
    await studio.start()
    yield
    await studio.stop()
