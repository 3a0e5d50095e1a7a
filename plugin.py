"""The plugin entry: mounts the studio on ComfyUI's PromptServer and taps its executor messages.

Only this module and services/comfy_inprocess.py know ComfyUI's internals; the ComfyUI modules are
imported lazily, inside `attach_to_comfyui`, so importing the package elsewhere never loads them.
"""

from __future__ import annotations

import importlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from .config import StudioConfig, plugin_data_dir
from .server_routes import comfy_compat
from .server_routes.app import create_app
from .server_routes.keys import STUDIO
from .services.comfy_inprocess import InProcessHost, ValidatePrompt
from .services.comfy_pool import BackendPool
from .services.studio import Studio

log = logging.getLogger("comfyui_studio")

MOUNT = "/studio"
_TAP_MARKER = "_comfyui_studio_tap"


def install_event_tap(server: Any, dispatch: Callable[[str | int, Any, str | None], None]) -> bool:
    """Wrap the instance's `send` (run on the event loop by publish_loop) once.

    Tapping the loop side costs ComfyUI's executor thread nothing (no second call_soon_threadsafe).
    The wrapper chains to whatever `send` was there before (other extensions may have wrapped it),
    never raises into ComfyUI and never drops or reorders its messages.
    """
    if getattr(server, _TAP_MARKER, False):
        return False
    previous: Callable[..., Awaitable[None]] = server.send

    async def send(event: str | int, data: Any, sid: str | None = None) -> None:
        try:
            dispatch(event, data, sid)
        except Exception:
            log.exception("The studio's event tap failed on %r", event)
        await previous(event, data, sid)

    server.send = send
    setattr(server, _TAP_MARKER, True)
    return True


def attach(
    server: Any,
    *,
    validate_prompt: ValidatePrompt,
    interrupt_processing: Callable[[], None],
    folder_for_type: Callable[[str], Any],
    config: StudioConfig,
    model_dirs: Callable[[str], list[str]] | None = None,
) -> Studio:
    """Mount the studio on a PromptServer-shaped object before its routes are frozen."""
    host = InProcessHost(
        server,
        validate_prompt=validate_prompt,
        interrupt_processing=interrupt_processing,
        folder_for_type=folder_for_type,
        client_id=f"studio-{uuid.uuid4().hex}",
        model_dirs=model_dirs,
    )
    # This ComfyUI is the pool's "local" member; the `comfy_backends` setting adds remote ones beside it.
    studio = Studio.build(config, BackendPool(local=host))
    server.app.add_subapp(MOUNT, create_app(studio))
    install_event_tap(server, lambda event, data, _sid: host.dispatch(event, data))
    return studio


def comfy_listen_addresses() -> list[str]:
    """ComfyUI's --listen addresses (a comma-separated string; bare --listen means all interfaces)."""
    try:
        args = importlib.import_module("comfy.cli_args").args
    except Exception:
        return ["127.0.0.1"]
    listen = getattr(args, "listen", None) or "127.0.0.1"
    return [part.strip() for part in str(listen).split(",") if part.strip()]


def attach_to_comfyui() -> Studio | None:
    """Called by the package's __init__ when ComfyUI loads it as a custom node."""
    server_module = importlib.import_module("server")
    server = server_module.PromptServer.instance
    if server is None or getattr(server, "_comfyui_studio", None) is not None:
        return None
    execution = importlib.import_module("execution")
    comfy_nodes = importlib.import_module("nodes")
    folder_paths = importlib.import_module("folder_paths")
    config = StudioConfig.from_env(plugin_data_dir(folder_paths.get_user_directory()))
    config.listen = comfy_listen_addresses()
    config.custom_nodes_dirs = list(folder_paths.get_folder_paths("custom_nodes"))
    studio = attach(
        server,
        validate_prompt=execution.validate_prompt,
        interrupt_processing=comfy_nodes.interrupt_processing,
        folder_for_type=folder_paths.get_directory_by_type,
        config=config,
        model_dirs=folder_paths.get_folder_paths,
    )
    server._comfyui_studio = studio
    log.info("ComfyUI Studio mounted at %s; data directory: %s", MOUNT, Path(config.data_dir))
    return studio


def mount_standalone(studio: Studio) -> web.Application:
    """The standalone server: the same studio app under /studio of a small root app, and ComfyUI's own
    routes beside it for ComfyUI clients (server_routes/comfy_compat.py; inside ComfyUI, ComfyUI has them)."""
    root = web.Application()
    root[STUDIO] = studio

    async def to_studio(_request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(MOUNT)

    root.router.add_get("/", to_studio)
    comfy_compat.add_routes(root, studio)
    root.add_subapp(MOUNT, create_app(studio))
    return root
