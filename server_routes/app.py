"""`create_app`: the one studio application that the plugin, the standalone server and the tests build."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from ..services.studio import Studio
from . import (
    actions,
    api_tokens,
    auth,
    backends,
    boards,
    calls,
    civitai,
    events,
    gallery,
    images,
    imports,
    jobs,
    maintenance,
    models,
    prompt,
    queue,
    secrets,
    security,
    settings,
    shortcodes,
    status,
    users,
    workflows,
)
from .keys import EVENT_HUB, SNAPSHOT_PROVIDER, STUDIO
from .middleware import envelope_middleware
from .ui import StudioPage, asset_headers


def create_app(studio: Studio) -> web.Application:
    app = web.Application(
        middlewares=[
            asset_headers,
            security.api_headers,
            envelope_middleware(dev=studio.config.dev),
            # Host check → Origin/CSRF/content type on writes → session (server_routes/security.py)
            *security.middlewares(),
        ]
    )
    app[STUDIO] = studio
    app[EVENT_HUB] = studio.hub
    app[SNAPSHOT_PROVIDER] = studio.snapshot
    # gallery first: its fixed paths (/jobs/search, /images/archive) precede the /{id} patterns.
    for module in (
        gallery,
        boards,
        status,
        jobs,
        queue,
        images,
        calls,
        auth,
        users,
        secrets,
        settings,
        backends,
        shortcodes,
        prompt,
        workflows,
        actions,
        models,
        civitai,
        maintenance,
        imports,
        api_tokens,
    ):
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
