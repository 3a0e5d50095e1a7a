"""FakePromptServer: the surface of server.PromptServer (ComfyUI 0.3.64) that custom nodes and clients meet.

Attributes, method names and the send path (send_sync -> call_soon_threadsafe -> messages ->
publish_loop -> send -> send_json/send_bytes) are ComfyUI's, so a studio plugin can wrap `send`,
register routes on `routes` before `add_routes()`, or mount a sub-application on `app`, and see
the same thing it would see inside ComfyUI.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import socket
import struct
import sys
import urllib.parse
import uuid
from collections.abc import Callable
from io import BytesIO
from typing import Any, ClassVar

import aiohttp
from aiohttp import web
from PIL import Image, ImageOps

from . import files
from .files import PATHS_KEY, HostPaths
from .models import ModelFolders
from .promptqueue import PromptQueue
from .registry import NodeRegistry
from .validation import validate_prompt

log = logging.getLogger("comfyui_studio.testhost")

COMFYUI_VERSION = "0.3.64"
MAX_UPLOAD_SIZE = 100 * 1024 * 1024  # --max-upload-size default (MB)
SERVER_FEATURES = {"supports_preview_metadata": True, "max_upload_size": MAX_UPLOAD_SIZE}

PREVIEW_IMAGE = 1  # protocol.BinaryEventTypes
UNENCODED_PREVIEW_IMAGE = 2
TEXT = 3
PREVIEW_IMAGE_WITH_METADATA = 4


def _is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    loopback = False
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            for *_, sockaddr in socket.getaddrinfo(host, None, family, socket.SOCK_STREAM):
                if not ipaddress.ip_address(sockaddr[0]).is_loopback:
                    return False
                loopback = True
        except socket.gaierror:
            pass
    return loopback


@web.middleware
async def origin_only_middleware(request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
    """ComfyUI's only CSRF defence: a loopback Host must match the Origin (ports only if both have one)."""
    if "Host" in request.headers and "Origin" in request.headers:
        host_domain = request.headers["Host"].lower()
        parsed = urllib.parse.urlparse(request.headers["Origin"])
        origin_domain: str | None = parsed.netloc.lower()
        host_parsed = urllib.parse.urlsplit("//" + host_domain)
        loopback = _is_loopback(host_parsed.hostname)
        host_cmp: str | None = host_domain
        if parsed.port is None:
            host_cmp = host_parsed.hostname
        if host_parsed.port is None:
            origin_domain = parsed.hostname
        if loopback and host_cmp and origin_domain and host_cmp != origin_domain:
            log.warning("testhost: request with non matching host and origin %s != %s, 403", host_cmp, origin_domain)
            return web.Response(status=403)
    if request.method == "OPTIONS":
        return web.Response()
    return await handler(request)


async def _send_catching(function: Callable[[Any], Any], message: Any) -> None:
    try:
        await function(message)
    except (aiohttp.ClientError, ConnectionResetError, BrokenPipeError, ConnectionError) as err:
        log.warning("testhost: send error: %s", err)


def _ram() -> tuple[int, int]:
    total = free = 0
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                key, value = line.split(":", 1)
                if key == "MemTotal":
                    total = int(value.split()[0]) * 1024
                elif key == "MemAvailable":
                    free = int(value.split()[0]) * 1024
    except OSError:
        pass
    return total, free


class FakePromptServer:
    """PromptServer-shaped server. Construct it, let custom nodes hook in, then call add_routes()."""

    instance: ClassVar[FakePromptServer]

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        paths: HostPaths,
        registry: NodeRegistry | None = None,
        *,
        listen: list[str] | None = None,
        port: int = 8188,
    ) -> None:
        FakePromptServer.instance = self
        self.loop = loop
        self.paths = paths
        self.registry = registry or NodeRegistry(paths.input_dir, ModelFolders(paths.base_dir))
        self.listen = listen
        self.port = port
        self.supports = ["custom_nodes_from_web"]
        self.prompt_queue = PromptQueue(self)
        self.messages: asyncio.Queue[tuple[Any, Any, str | None]] = asyncio.Queue()
        self.number = 0
        self.app = web.Application(client_max_size=MAX_UPLOAD_SIZE, middlewares=[origin_only_middleware])
        self.app[PATHS_KEY] = paths
        self.sockets: dict[str, web.WebSocketResponse] = {}
        self.sockets_metadata: dict[str, dict[str, Any]] = {}
        self.routes = web.RouteTableDef()
        self.last_node_id: str | None = None
        self.last_prompt_id: str | None = None
        self.client_id: str | None = None
        self.on_prompt_handlers: list[Callable[[dict[str, Any]], dict[str, Any]]] = []
        self._core_routes()

    # --- routes -----------------------------------------------------------------------------------

    def _core_routes(self) -> None:
        r = self.routes
        r.get("/ws")(self._websocket_handler)
        r.post("/upload/image")(files.upload_image)
        r.post("/upload/mask")(files.upload_mask)
        r.get("/view")(files.view_image)
        r.get("/system_stats")(self._system_stats)
        r.get("/features")(self._features)
        r.get("/prompt")(self._get_prompt)
        r.get("/embeddings")(self._get_embeddings)
        r.get("/models")(self._list_model_types)
        r.get("/models/{folder}")(self._get_models)
        r.get("/object_info")(self._object_info)
        r.get("/object_info/{node_class}")(self._object_info_node)
        r.get("/history")(self._get_history)
        r.get("/history/{prompt_id}")(self._get_history_prompt)
        r.get("/queue")(self._get_queue)
        r.post("/prompt")(self._post_prompt)
        r.post("/queue")(self._post_queue)
        r.post("/interrupt")(self._post_interrupt)
        r.post("/free")(self._post_free)
        r.post("/history")(self._post_history)

    def add_routes(self) -> None:
        """Freeze the routes: user_manager's, then every RouteDef at /api + path and at the bare path."""
        files.add_user_routes(self.routes)
        api_routes = web.RouteTableDef()
        for route in self.routes:
            # static routes registered by custom nodes get no /api alias, as in ComfyUI
            if isinstance(route, web.RouteDef):
                api_routes.route(route.method, "/api" + route.path)(route.handler, **route.kwargs)
        self.app.add_routes(api_routes)
        self.app.add_routes(self.routes)

    async def _websocket_handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sid = request.rel_url.query.get("clientId", "")
        if sid:
            self.sockets.pop(sid, None)  # reusing a session replaces the old socket
        else:
            sid = uuid.uuid4().hex
        self.sockets[sid] = ws
        self.sockets_metadata[sid] = {"feature_flags": {}}
        try:
            await self.send("status", {"status": self.get_queue_info(), "sid": sid}, sid)
            if self.client_id == sid and self.last_node_id is not None:
                await self.send("executing", {"node": self.last_node_id}, sid)
            first_message = True
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.ERROR:
                    log.warning("testhost: ws connection closed with exception %s", ws.exception())
                elif msg.type == aiohttp.WSMsgType.TEXT:
                    try:
                        data = json.loads(msg.data)
                        if first_message and data.get("type") == "feature_flags":
                            self.sockets_metadata[sid]["feature_flags"] = data.get("data", {})
                            await self.send("feature_flags", dict(SERVER_FEATURES), sid)
                        first_message = False
                    except json.JSONDecodeError:
                        log.warning("testhost: invalid JSON received from client %s", sid)
                    except Exception as e:
                        log.error("testhost: error processing WebSocket message: %s", e)
        finally:
            # unconditional, like ComfyUI: an old socket closing after a reconnect drops the new one too
            self.sockets.pop(sid, None)
            self.sockets_metadata.pop(sid, None)
        return ws

    async def _system_stats(self, request: web.Request) -> web.Response:
        total, free = _ram()
        argv = ["main.py", "--cpu", "--port", str(self.port)]
        if self.listen is not None:
            argv += ["--listen", ",".join(self.listen)]
        stats = {
            "system": {
                "os": os.name,
                "ram_total": total,
                "ram_free": free,
                "comfyui_version": COMFYUI_VERSION,
                "required_frontend_version": "1.27.10",
                "installed_templates_version": "0.1.95",
                "required_templates_version": "0.1.95",
                "python_version": sys.version,
                "pytorch_version": "2.13.0+cpu",
                "embedded_python": False,
                "argv": argv,
            },
            "devices": [
                {
                    "name": "cpu",
                    "type": "cpu",
                    "index": None,
                    "vram_total": total,
                    "vram_free": free,
                    "torch_vram_total": total,
                    "torch_vram_free": free,
                }
            ],
        }
        return web.json_response(stats)

    async def _features(self, request: web.Request) -> web.Response:
        return web.json_response(dict(SERVER_FEATURES))

    async def _get_prompt(self, request: web.Request) -> web.Response:
        return web.json_response(self.get_queue_info())

    # server.py's get_embeddings and list_model_types are plain functions; aiohttp wraps those with a
    # DeprecationWarning, which the test suite turns into an error: here they are coroutines.
    async def _get_embeddings(self, request: web.Request) -> web.Response:
        embeddings = self.registry.models.get_filename_list("embeddings")
        return web.json_response([os.path.splitext(a)[0] for a in embeddings])

    async def _list_model_types(self, request: web.Request) -> web.Response:
        return web.json_response(list(self.registry.models.paths))

    async def _get_models(self, request: web.Request) -> web.Response:
        folder = request.match_info.get("folder", None)
        if folder not in self.registry.models.paths:
            return web.Response(status=404)
        return web.json_response(self.registry.models.get_filename_list(folder))

    async def _object_info(self, request: web.Request) -> web.Response:
        return web.json_response(self.registry.object_info())

    async def _object_info_node(self, request: web.Request) -> web.Response:
        node_class = request.match_info.get("node_class")
        out = {}
        if node_class in self.registry:
            out[node_class] = self.registry.info(node_class)
        return web.json_response(out)

    async def _get_history(self, request: web.Request) -> web.Response:
        max_items = request.rel_url.query.get("max_items")
        offset = request.rel_url.query.get("offset")
        return web.json_response(
            self.prompt_queue.get_history(
                max_items=int(max_items) if max_items is not None else None,
                offset=int(offset) if offset is not None else -1,
            )
        )

    async def _get_history_prompt(self, request: web.Request) -> web.Response:
        return web.json_response(self.prompt_queue.get_history(prompt_id=request.match_info.get("prompt_id")))

    async def _get_queue(self, request: web.Request) -> web.Response:
        running, pending = self.prompt_queue.get_current_queue_volatile()
        return web.json_response({"queue_running": running, "queue_pending": pending})

    async def _post_prompt(self, request: web.Request) -> web.Response:
        log.info("testhost: got prompt")
        json_data = await request.json()  # malformed JSON escapes as a 500, as in ComfyUI
        json_data = self.trigger_on_prompt(json_data)

        if "number" in json_data:
            number: float | int = float(json_data["number"])
        else:
            number = self.number
            if "front" in json_data and json_data["front"]:
                number = -number
            self.number += 1

        if "prompt" not in json_data:
            error = {
                "type": "no_prompt",
                "message": "No prompt provided",
                "details": "No prompt provided",
                "extra_info": {},
            }
            return web.json_response({"error": error, "node_errors": {}}, status=400)

        prompt = json_data["prompt"]
        prompt_id = str(json_data.get("prompt_id", uuid.uuid4()))
        partial = json_data.get("partial_execution_targets")
        valid = await validate_prompt(self.registry, prompt_id, prompt, partial)
        extra_data = json_data.get("extra_data", {})
        if "client_id" in json_data:
            extra_data["client_id"] = json_data["client_id"]
        if valid[0]:
            self.prompt_queue.put((number, prompt_id, prompt, extra_data, valid[2]))
            return web.json_response({"prompt_id": prompt_id, "number": number, "node_errors": valid[3]})
        log.info("testhost: invalid prompt: %s", valid[1])
        return web.json_response({"error": valid[1], "node_errors": valid[3]}, status=400)

    async def _post_queue(self, request: web.Request) -> web.Response:
        json_data = await request.json()
        if json_data.get("clear"):
            self.prompt_queue.wipe_queue()
        for id_to_delete in json_data.get("delete", []):
            self.prompt_queue.delete_queue_item(lambda item, pid=id_to_delete: item[1] == pid)
        return web.Response(status=200)

    async def _post_interrupt(self, request: web.Request) -> web.Response:
        try:
            json_data = await request.json()
        except json.JSONDecodeError:
            json_data = {}
        prompt_id = json_data.get("prompt_id")
        if prompt_id:
            running, _ = self.prompt_queue.get_current_queue()
            if any(item[1] == prompt_id for item in running):
                self.interrupt_processing()
            else:
                log.info("testhost: prompt %s is not currently running, skipping interrupt", prompt_id)
        else:
            self.interrupt_processing()
        return web.Response(status=200)

    async def _post_free(self, request: web.Request) -> web.Response:
        json_data = await request.json()
        if json_data.get("unload_models", False):
            self.prompt_queue.set_flag("unload_models", json_data["unload_models"])
        if json_data.get("free_memory", False):
            self.prompt_queue.set_flag("free_memory", json_data["free_memory"])
        return web.Response(status=200)

    async def _post_history(self, request: web.Request) -> web.Response:
        json_data = await request.json()
        if json_data.get("clear"):
            self.prompt_queue.wipe_history()
        for id_to_delete in json_data.get("delete", []):
            self.prompt_queue.delete_history_item(id_to_delete)
        return web.Response(status=200)

    # --- hooks the test host wires up -------------------------------------------------------------

    interrupt_handler: Callable[[bool], None] | None = None

    def interrupt_processing(self, value: bool = True) -> None:
        if self.interrupt_handler is not None:
            self.interrupt_handler(value)

    def client_supports_preview_metadata(self, sid: str | None) -> bool:
        if sid is None or sid not in self.sockets_metadata:
            return False
        return self.sockets_metadata[sid].get("feature_flags", {}).get("supports_preview_metadata", False) is True

    # --- PromptServer's messaging API ---------------------------------------------------------------

    def get_queue_info(self) -> dict[str, Any]:
        return {"exec_info": {"queue_remaining": self.prompt_queue.get_tasks_remaining()}}

    async def send(self, event: Any, data: Any, sid: str | None = None) -> None:
        if event == UNENCODED_PREVIEW_IMAGE:
            await self.send_image(data, sid=sid)
        elif event == PREVIEW_IMAGE_WITH_METADATA:
            preview_image, metadata = data
            await self.send_image_with_metadata(preview_image, metadata, sid=sid)
        elif isinstance(data, (bytes, bytearray)):
            await self.send_bytes(event, data, sid)
        else:
            await self.send_json(event, data, sid)

    def encode_bytes(self, event: int, data: bytes | bytearray) -> bytearray:
        if not isinstance(event, int):
            raise RuntimeError(f"Binary event types must be integers, got {event}")
        return bytearray(struct.pack(">I", event)) + bytearray(data)

    @staticmethod
    def _encode_preview(image_data: tuple[str, Image.Image, int | None]) -> tuple[str, bytes]:
        image_type, image, max_size = image_data
        if max_size is not None:
            image = ImageOps.contain(image, (max_size, max_size), Image.Resampling.BILINEAR)
        buffer = BytesIO()
        image.save(buffer, format=image_type, quality=95, compress_level=1)
        return image_type, buffer.getvalue()

    async def send_image(self, image_data: tuple[str, Image.Image, int | None], sid: str | None = None) -> None:
        image_type, encoded = self._encode_preview(image_data)
        type_num = 2 if image_type == "PNG" else 1
        await self.send_bytes(PREVIEW_IMAGE, struct.pack(">I", type_num) + encoded, sid=sid)

    async def send_image_with_metadata(
        self,
        image_data: tuple[str, Image.Image, int | None],
        metadata: dict[str, Any] | None = None,
        sid: str | None = None,
    ) -> None:
        image_type, encoded = self._encode_preview(image_data)
        metadata = dict(metadata or {})
        metadata["image_type"] = "image/png" if image_type == "PNG" else "image/jpeg"
        meta_json = json.dumps(metadata).encode("utf-8")
        payload = struct.pack(">I", len(meta_json)) + meta_json + encoded
        await self.send_bytes(PREVIEW_IMAGE_WITH_METADATA, payload, sid=sid)

    async def send_bytes(self, event: int, data: bytes | bytearray, sid: str | None = None) -> None:
        message = self.encode_bytes(event, data)
        if sid is None:
            for ws in list(self.sockets.values()):
                await _send_catching(ws.send_bytes, message)
        elif sid in self.sockets:
            await _send_catching(self.sockets[sid].send_bytes, message)

    async def send_json(self, event: Any, data: Any, sid: str | None = None) -> None:
        message = {"type": event, "data": data}
        if sid is None:
            for ws in list(self.sockets.values()):
                await _send_catching(ws.send_json, message)
        elif sid in self.sockets:
            await _send_catching(self.sockets[sid].send_json, message)

    def send_sync(self, event: Any, data: Any, sid: str | None = None) -> None:
        self.loop.call_soon_threadsafe(self.messages.put_nowait, (event, data, sid))

    def send_progress_text(self, text: bytes | bytearray | str, node_id: str, sid: str | None = None) -> None:
        raw = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        node = str(node_id).encode("utf-8")
        self.send_sync(TEXT, struct.pack(">I", len(node)) + node + raw, sid)

    def queue_updated(self) -> None:
        self.send_sync("status", {"status": self.get_queue_info()})

    async def publish_loop(self) -> None:
        while True:
            msg = await self.messages.get()
            await self.send(*msg)

    def add_on_prompt_handler(self, handler: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        self.on_prompt_handlers.append(handler)

    def trigger_on_prompt(self, json_data: dict[str, Any]) -> dict[str, Any]:
        for handler in self.on_prompt_handlers:
            try:
                json_data = handler(json_data)
            except Exception:
                log.warning("testhost: an on_prompt handler raised", exc_info=True)
        return json_data
