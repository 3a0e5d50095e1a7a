"""The studio page and its assets, from the committed build in web/studio/dist."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from .keys import STUDIO

if TYPE_CHECKING:
    from aiohttp.typedefs import Handler as ResponseHandler

log = logging.getLogger("comfyui_studio.ui")

DIST_DIR = Path(__file__).resolve().parent.parent / "web" / "studio" / "dist"


def _csp(script_hashes: list[str], image_sources: list[str] | None = None) -> str:
    scripts = " ".join(["'self'", *(f"'{h}'" for h in script_hashes)])
    images = " ".join(["'self'", "data:", "blob:", *(image_sources or [])])
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src {scripts}",
            "style-src 'self'",
            f"img-src {images}",
            "connect-src 'self'",
            "font-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


CLIENT_ROUTE = r"/{page:(?!(?:api|assets)(?:/|$))[A-Za-z0-9][A-Za-z0-9_/-]{0,255}}"

PAGE_HEADERS_BASE = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}


class StudioPage:
    """index.html read once; its CSP allows exactly the inline theme script's hash."""

    def __init__(self, dist: Path = DIST_DIR) -> None:
        self.dist = dist
        index = dist / "index.html"
        self.html = index.read_bytes() if index.is_file() else None
        hashes_file = dist / "csp-hashes.json"
        self.hashes = json.loads(hashes_file.read_text()).get("script-src", []) if hashes_file.is_file() else []
        self.headers = {**PAGE_HEADERS_BASE, "Content-Security-Policy": _csp(self.hashes)}

    async def index(self, request: web.Request) -> web.StreamResponse:
        if self.html is None:
            raise web.HTTPServiceUnavailable(text="The studio UI is not built: run npm run build in web/studio")
        headers = self.headers
        studio = request.config_dict.get(STUDIO)
        if studio is not None:
            # Explore shows Civitai's thumbnails: their hosts follow the configured Civitai address.
            csp = _csp(self.hashes, await studio.civitai.image_sources())
            headers = {**PAGE_HEADERS_BASE, "Content-Security-Policy": csp}
        return web.Response(body=self.html, content_type="text/html", charset="utf-8", headers=headers)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("", self.index)
        app.router.add_get("/", self.index)
        assets = self.dist / "assets"
        if assets.is_dir():
            app.router.add_static("/assets", assets, append_version=False)
        for name in ("favicon.svg", "favicon.ico"):
            if (self.dist / name).is_file():
                app.router.add_get(f"/{name}", _file_handler(self.dist / name))
        # Client-side routes (/studio/settings, /studio/workflows/w_01AbC…) all get the page; the router
        # in the page shows its own "not found". The API and the assets answer for themselves.
        app.router.add_get(CLIENT_ROUTE, self.index)


def _file_handler(path: Path) -> ResponseHandler:
    async def send_file(_request: web.Request) -> web.StreamResponse:
        return web.FileResponse(path)

    return send_file


@web.middleware
async def asset_headers(request: web.Request, handler: ResponseHandler) -> web.StreamResponse:
    response = await handler(request)
    if request.path.startswith("/studio/assets/") and response.status == 200:
        # File names carry a content hash: cache them for a year.
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        response.headers["X-Content-Type-Options"] = "nosniff"
    return response
