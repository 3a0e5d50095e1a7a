"""`InProcessHost`: the studio running inside ComfyUI, talking to PromptServer and PromptQueue directly.

This is the one module that knows ComfyUI's internals (checked against 0.3.64). The ComfyUI modules are
handed in by the plugin entry, so tests can give it the test host's PromptServer instead.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from ..engine.jsoncodec import loads_lenient
from .comfy_host import (
    FOLDER_TYPES,
    JSON,
    EventSink,
    FileData,
    HostError,
    HostNotFound,
    HostRejected,
    SubmitResult,
    content_type_for,
    prompt_request,
)

log = logging.getLogger("comfyui_studio.comfy")

ValidatePrompt = Callable[[str, dict[str, JSON], list[str] | None], Awaitable[tuple[bool, JSON, list[str], JSON]]]


def resolve_inside(root: Path, *parts: str) -> Path:
    """Join parts under root and refuse anything that resolves outside it (symlinks included)."""
    root_resolved = root.resolve()
    candidate = root_resolved.joinpath(*[p for p in parts if p]).resolve()
    if candidate != root_resolved and root_resolved not in candidate.parents:
        raise HostNotFound("file outside ComfyUI's folders")
    return candidate


class InProcessHost:
    def __init__(
        self,
        server: Any,
        *,
        validate_prompt: ValidatePrompt,
        interrupt_processing: Callable[[], None],
        folder_for_type: Callable[[str], str | os.PathLike[str] | None],
        client_id: str,
        model_dirs: Callable[[str], list[str]] | None = None,
    ) -> None:
        self.server = server
        # folder_paths.get_folder_paths: the directories of a model folder (where Civitai downloads go)
        self.model_dirs = model_dirs
        self.client_id = client_id
        self.description = "in-process"
        self._validate = validate_prompt
        self._interrupt = interrupt_processing
        self._folder_for_type = folder_for_type
        self._sinks: list[EventSink] = []

    def subscribe(self, sink: EventSink) -> None:
        self._sinks.append(sink)

    def dispatch(self, event: str | int, data: JSON) -> None:
        """Called by the event tap on the loop for every message ComfyUI sends."""
        for sink in self._sinks:
            try:
                sink(event, data)
            except Exception:
                log.exception("Studio event sink failed on %r", event)

    async def close(self) -> None:
        self._sinks.clear()

    async def submit(
        self,
        graph: dict[str, JSON],
        *,
        prompt_id: str,
        front: bool = False,
        extra_data: dict[str, JSON] | None = None,
    ) -> SubmitResult:
        # Mirrors POST /prompt (server.py post_prompt), including other extensions' on_prompt handlers.
        request = prompt_request(
            graph, client_id=self.client_id, prompt_id=prompt_id, front=front, extra_data=extra_data
        )
        request = self.server.trigger_on_prompt(request)
        number = self.server.number
        if request.get("front"):
            number = -number
        self.server.number += 1
        prompt = request["prompt"]
        prompt_id = str(request.get("prompt_id", prompt_id))
        valid = await self._validate(prompt_id, prompt, request.get("partial_execution_targets"))
        extra = dict(request.get("extra_data") or {})
        extra["client_id"] = request.get("client_id", self.client_id)
        if not valid[0]:
            raise HostRejected("ComfyUI refused the graph", 400, {"error": valid[1], "node_errors": valid[3]})
        self.server.prompt_queue.put((number, prompt_id, prompt, extra, valid[2]))
        return SubmitResult(prompt_id, float(number), valid[3] or {})

    async def queue(self) -> dict[str, list[JSON]]:
        running, pending = self.server.prompt_queue.get_current_queue_volatile()
        return {"queue_running": list(running), "queue_pending": list(pending)}

    async def history(self, prompt_id: str | None = None, max_items: int | None = None) -> dict[str, JSON]:
        return self.server.prompt_queue.get_history(prompt_id=prompt_id, max_items=max_items)

    async def delete_pending(self, prompt_ids: list[str]) -> None:
        for prompt_id in prompt_ids:
            self.server.prompt_queue.delete_queue_item(lambda item, pid=prompt_id: item[1] == pid)

    async def clear_pending(self) -> None:
        self.server.prompt_queue.wipe_queue()

    async def interrupt(self, prompt_id: str | None = None) -> None:
        if prompt_id:
            running, _ = self.server.prompt_queue.get_current_queue_volatile()
            if not any(item[1] == prompt_id for item in running):
                return
        self._interrupt()

    def _folder(self, folder_type: str) -> Path:
        if folder_type not in FOLDER_TYPES:
            raise HostNotFound(f"unknown folder type {folder_type!r}")
        folder = self._folder_for_type(folder_type)
        if folder is None:
            raise HostError(f"ComfyUI has no {folder_type} folder")
        return Path(folder)

    def local_folder(self, folder_type: str) -> Path | None:
        """ComfyUI's output, input or temp folder on this machine (storage maintenance reads them)."""
        try:
            return self._folder(folder_type)
        except HostError:
            return None

    async def upload_image(self, data: bytes, filename: str, *, subfolder: str = "") -> dict[str, str]:
        target = resolve_inside(self._folder("input"), subfolder, filename)

        def write() -> str:
            target.parent.mkdir(parents=True, exist_ok=True)
            name = target.name
            path = target
            stem, suffix = os.path.splitext(target.name)
            index = 1
            # Same name, same bytes → reuse it; same name, other bytes → "name (1).png", like ComfyUI.
            while path.exists():
                if hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(data).digest():
                    return name
                name = f"{stem} ({index}){suffix}"
                path = target.with_name(name)
                index += 1
            tmp = path.with_name(path.name + ".part")
            tmp.write_bytes(data)
            tmp.replace(path)
            return name

        name = await asyncio.to_thread(write)
        return {"name": name, "subfolder": subfolder, "type": "input"}

    async def view(self, filename: str, subfolder: str, folder_type: str) -> FileData:
        path = resolve_inside(self._folder(folder_type), subfolder, filename)

        def read() -> bytes:
            try:
                return path.read_bytes()
            except (FileNotFoundError, IsADirectoryError) as exc:
                raise HostNotFound(f"ComfyUI has no file {filename}") from exc

        return FileData(await asyncio.to_thread(read), content_type_for(filename))

    async def object_info(self) -> dict[str, JSON]:
        # The route builds it from NODE_CLASS_MAPPINGS; asking the app keeps us off that internal.
        return await self._get_json("/object_info")

    async def model_files(self, folder: str) -> list[str]:
        # The route reads folder_paths' listing cache, which re-reads a folder whose mtime changed.
        files = await self._get_json("/models/{folder}", {"folder": folder})
        if not isinstance(files, list):
            raise HostError(f"ComfyUI's list of {folder} is not a list")
        return [f for f in files if isinstance(f, str)]

    async def system_stats(self) -> dict[str, JSON]:
        return await self._get_json("/system_stats")

    async def _get_json(self, path: str, match_info: dict[str, str] | None = None) -> JSON:
        for route in self.server.routes:
            if getattr(route, "method", None) == "GET" and getattr(route, "path", None) == path:
                # Some of ComfyUI's handlers are plain functions (aiohttp wraps them only once mounted).
                response = route.handler(_BareRequest(match_info or {}))
                if inspect.isawaitable(response):
                    response = await response
                if response.status == 404:
                    raise HostNotFound(f"ComfyUI has no {path} for {match_info}")
                if response.status >= 400 or response.body is None:
                    raise HostError(f"ComfyUI answered {response.status} to {path}", response.status)
                return loads_lenient(response.body)
        raise HostNotFound(f"ComfyUI has no {path} route")


class _BareRequest:
    """Enough of a request for ComfyUI's GET handlers that read only their path parameters."""

    def __init__(self, match_info: dict[str, str]) -> None:
        self.match_info = match_info

    class rel_url:  # noqa: N801
        query: dict[str, str] = {}
