"""ComfyUI's own API in front of the studio's jobs: history entries built from stored jobs, and the /ws relay.

A ComfyUI client's prompt is a studio job (services/jobs.py submits it like any other); what the client reads
back is that job in ComfyUI's shapes. Its websocket gets ComfyUI's executor messages for the prompts it
submitted, relayed from the studio's host events as ComfyUI sent them: ComfyUI sends them to the studio's
own client id, the relay hands them on to the client id the prompt came with (and only to sockets of the
same user).
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from ..db.models import Job

log = logging.getLogger("comfyui_studio.comfy_compat")

PREVIEW_LEGACY = 1
PREVIEW_WITH_METADATA = 4
MAX_ROUTED_PROMPTS = 10_000  # prompt ids remembered for routing (a cancelled one never sends its ending)
SOCKET_BACKLOG = 1_000  # frames waiting for one slow client before it is dropped


def _iso_ms(job_time: Any) -> int:
    return int(job_time.timestamp() * 1000) if job_time is not None else 0


def history_entry(job: Job, images: Iterable[Any], client_id: str | None, output_nodes: set[str]) -> dict[str, Any]:
    """A finished job as ComfyUI's history has it: prompt tuple, outputs by node, status with messages, meta."""
    outputs: dict[str, dict[str, list[dict[str, str]]]] = {}
    for image in images:
        if image.kind not in ("output", "temp") or image.node_id is None:
            continue
        ref = {"filename": image.filename, "subfolder": image.subfolder or "", "type": image.folder_type}
        outputs.setdefault(image.node_id, {"images": []})["images"].append(ref)
    graph = job.graph or {}
    to_execute = sorted({n for n in graph if n in output_nodes} | set(outputs))
    extra_data: dict[str, Any] = {"client_id": client_id} if client_id else {}
    prompt_id = job.prompt_id or ""
    started, finished = _iso_ms(job.started_at or job.created_at), _iso_ms(job.finished_at)
    messages: list[list[Any]] = [["execution_start", {"prompt_id": prompt_id, "timestamp": started}]]
    error = job.error or {}
    if job.state == "done":
        messages.append(["execution_success", {"prompt_id": prompt_id, "timestamp": finished}])
    elif job.state == "interrupted":
        messages.append(
            [
                "execution_interrupted",
                {
                    "prompt_id": prompt_id,
                    "node_id": error.get("node_id"),
                    "node_type": error.get("node_type"),
                    "executed": sorted(outputs),
                    "timestamp": finished,
                },
            ]
        )
    else:
        messages.append(
            [
                "execution_error",
                {
                    "prompt_id": prompt_id,
                    "node_id": error.get("node_id"),
                    "node_type": error.get("node_type"),
                    "executed": sorted(outputs),
                    "exception_message": error.get("message") or job.state,
                    "exception_type": error.get("type") or job.state,
                    "traceback": [],
                    "current_inputs": {},
                    "current_outputs": [],
                    "timestamp": finished,
                },
            ]
        )
    meta = {
        node: {"node_id": node, "display_node": node, "parent_node": None, "real_node_id": node} for node in outputs
    }
    return {
        "prompt": [job.number or 0, prompt_id, graph, extra_data, to_execute],
        "outputs": outputs,
        "status": {
            "status_str": "success" if job.state == "done" else "error",
            "completed": job.state == "done",
            "messages": messages,
        },
        "meta": meta,
    }


@dataclass
class Route:
    owner_id: int
    client_id: str


@dataclass(eq=False)
class ClientSocket:
    """One ComfyUI client's websocket: frames go out in order through its own queue."""

    ws: web.WebSocketResponse
    owner_id: int
    client_id: str
    metadata_previews: bool = False
    outbox: asyncio.Queue[str | bytes] = field(default_factory=lambda: asyncio.Queue(SOCKET_BACKLOG))

    def put(self, frame: str | bytes) -> None:
        try:
            self.outbox.put_nowait(frame)
        except asyncio.QueueFull:
            log.warning("A ComfyUI client (%s) reads too slowly: its socket is closed", self.client_id[:16])
            asyncio.get_running_loop().create_task(self.ws.close())

    async def pump(self) -> None:
        while True:
            frame = await self.outbox.get()
            if isinstance(frame, bytes):
                await self.ws.send_bytes(frame)
            else:
                await self.ws.send_str(frame)


def _json_frame(event: str, data: Any) -> str:
    return json.dumps({"type": event, "data": data})


class ComfyRelay:
    """Routes the host's executor messages to the ComfyUI clients whose prompts they are about."""

    def __init__(self) -> None:
        self.sockets: dict[str, list[ClientSocket]] = {}
        self.routes: OrderedDict[str, Route] = OrderedDict()
        self.running: str | None = None  # the prompt whose legacy previews (no prompt id) arrive now

    # -- who submitted what ---------------------------------------------------------------------

    def expect(self, prompt_id: str, owner_id: int, client_id: str) -> None:
        """A client is about to submit ``prompt_id``: its messages go to that client id from the first one."""
        self.routes[prompt_id] = Route(owner_id, client_id)
        while len(self.routes) > MAX_ROUTED_PROMPTS:
            self.routes.popitem(last=False)

    def client_of(self, prompt_id: str) -> str | None:
        route = self.routes.get(prompt_id)
        return route.client_id if route is not None else None

    # -- sockets ----------------------------------------------------------------------------------

    def attach(self, socket: ClientSocket) -> None:
        self.sockets.setdefault(socket.client_id, []).append(socket)

    def detach(self, socket: ClientSocket) -> None:
        same = self.sockets.get(socket.client_id, [])
        if socket in same:
            same.remove(socket)
        if not same:
            self.sockets.pop(socket.client_id, None)

    def _targets(self, prompt_id: str | None) -> list[ClientSocket]:
        route = self.routes.get(prompt_id or "")
        if route is None:
            return []
        return [s for s in self.sockets.get(route.client_id, []) if s.owner_id == route.owner_id]

    # -- the host's messages -----------------------------------------------------------------------

    def on_event(self, event: str | int, data: Any) -> None:
        if not self.sockets and event != "execution_start" and event != "executing":
            return
        if isinstance(event, int):
            self._on_binary(event, data)
            return
        if not isinstance(data, dict):
            return
        if event == "status":
            # ComfyUI broadcasts the queue's size; the sid in its first one is the studio's own socket's.
            frame = _json_frame("status", {"status": data.get("status", {})})
            for sockets in self.sockets.values():
                for socket in sockets:
                    socket.put(frame)
            return
        prompt_id = data.get("prompt_id")
        if event == "execution_start":
            self.running = prompt_id
        elif event == "executing" and data.get("node") is None and self.running == prompt_id:
            self.running = None
        targets = self._targets(prompt_id)
        if targets:
            frame = _json_frame(event, data)
            for socket in targets:
                socket.put(frame)

    def _on_binary(self, event: int, data: Any) -> None:
        if not isinstance(data, bytes | bytearray | memoryview):
            return  # an in-process preview (a PIL tuple): the standalone host sends bytes only
        raw = bytes(data)
        if event == PREVIEW_WITH_METADATA and len(raw) >= 4:
            size = struct.unpack(">I", raw[:4])[0]
            try:
                metadata = json.loads(raw[4 : 4 + size])
            except ValueError:
                return
            prompt_id, image, mime = metadata.get("prompt_id"), raw[4 + size :], metadata.get("image_type", "")
        elif event == PREVIEW_LEGACY and len(raw) >= 4:
            kind = struct.unpack(">I", raw[:4])[0]
            prompt_id, image, mime, metadata = self.running, raw[4:], "image/png" if kind == 2 else "image/jpeg", None
        else:
            return
        targets = self._targets(prompt_id)
        if not targets:
            return
        legacy = struct.pack(">II", PREVIEW_LEGACY, 2 if mime == "image/png" else 1) + image
        if metadata is None:
            metadata = {
                "node_id": None,
                "prompt_id": prompt_id,
                "display_node_id": None,
                "parent_node_id": None,
                "real_node_id": None,
                "image_type": mime,
            }
        encoded = json.dumps(metadata).encode()
        with_metadata = struct.pack(">II", PREVIEW_WITH_METADATA, len(encoded)) + encoded + image
        for socket in targets:
            socket.put(with_metadata if socket.metadata_previews else legacy)
