"""ComfyUI's own frontend (the built ``comfyui-frontend-package``) served with the API its start-up needs.

Only what the frontend reads before a graph can be loaded: node definitions (a recorded ``/object_info``),
empty settings, user data, extensions, queue and history, and a ``/ws`` that says the queue is empty.
Nothing is executed: the tests load workflows with ``app.loadGraphData`` and read ``app.graphToPrompt()``,
the API-format graph the frontend would queue.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from aiohttp import web

SYSTEM_STATS = {
    "system": {
        "os": "posix",
        "python_version": "3.11",
        "embedded_python": False,
        "comfyui_version": "0.3.64",
        "required_frontend_version": "1.27.10",
        "pytorch_version": "2.8.0",
        "argv": ["main.py"],
        "ram_total": 1,
        "ram_free": 1,
    },
    "devices": [],
}


def frontend_app(static: Path, object_info: dict) -> web.Application:
    answers: dict[str, object] = {
        "object_info": object_info,
        "users": {"storage": "server", "migrated": True},
        "settings": {"Comfy.TutorialCompleted": True},
        "system_stats": SYSTEM_STATS,
        "extensions": [],
        "embeddings": [],
        "experiment/models": [],
        "userdata": [],
        "features": {},
        "queue": {"queue_running": [], "queue_pending": []},
    }

    async def index(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(static / "index.html")

    async def api(request: web.Request) -> web.StreamResponse:
        path = request.match_info["tail"]
        if path.startswith("userdata/"):
            return web.json_response({"error": "not found"}, status=404)
        return web.json_response(answers.get(path, {}))

    async def websocket(request: web.Request) -> web.StreamResponse:
        sock = web.WebSocketResponse()
        await sock.prepare(request)
        status = {"status": {"exec_info": {"queue_remaining": 0}}, "sid": "frontend-parity"}
        await sock.send_json({"type": "status", "data": status})
        async for _ in sock:
            pass
        return sock

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/ws", websocket)
    app.router.add_route("*", "/api/{tail:.*}", api)
    app.router.add_route("*", "/internal/{tail:.*}", api)
    app.router.add_static("/", static)
    return app


@asynccontextmanager
async def serve_frontend(static: Path, object_info_file: Path) -> AsyncIterator[str]:
    """The frontend on a free port of 127.0.0.1; yields its URL."""
    runner = web.AppRunner(frontend_app(static, json.loads(object_info_file.read_text())))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        await runner.cleanup()
