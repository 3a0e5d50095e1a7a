"""`RemoteHost`: a ComfyUI reached over its public HTTP API (standalone server, command line)."""

from __future__ import annotations

import json
import logging
import uuid

import aiohttp

from .comfy_host import (
    JSON,
    EventSink,
    FileData,
    HostError,
    HostNotFound,
    HostRejected,
    HostUnavailable,
    SubmitResult,
)

log = logging.getLogger("comfyui_studio.comfy")

DEFAULT_COMFY_URL = "http://127.0.0.1:8188"


class RemoteHost:
    def __init__(self, base_url: str = DEFAULT_COMFY_URL, *, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.client_id = uuid.uuid4().hex
        self.description = self.base_url
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._sinks: list[EventSink] = []

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def subscribe(self, sink: EventSink) -> None:
        self._sinks.append(sink)

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: JSON = None,
        data: aiohttp.FormData | None = None,
        params: dict[str, str] | None = None,
        raw: bool = False,
    ) -> tuple[int, JSON, str]:
        url = self.base_url + path
        try:
            async with self._client().request(method, url, json=json_body, data=data, params=params) as resp:
                body = await resp.read()
                ctype = resp.headers.get("Content-Type", "")
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise HostUnavailable(f"ComfyUI at {self.base_url} is unreachable: {exc.__class__.__name__}") from exc
        if raw:
            return status, body, ctype
        parsed: JSON = None
        if body:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = body.decode("utf-8", "replace")[:2000]
        return status, parsed, ctype

    @staticmethod
    def _check(status: int, body: JSON, what: str) -> None:
        if status == 404:
            raise HostNotFound(f"ComfyUI has no {what}", status, body)
        if status >= 400:
            raise HostError(f"ComfyUI answered {status} to {what}", status, body)

    async def submit(
        self,
        graph: dict[str, JSON],
        *,
        prompt_id: str,
        front: bool = False,
        extra_data: dict[str, JSON] | None = None,
    ) -> SubmitResult:
        payload: dict[str, JSON] = {"prompt": graph, "client_id": self.client_id, "prompt_id": prompt_id}
        if front:
            payload["front"] = True
        if extra_data:
            payload["extra_data"] = extra_data
        status, body, _ = await self._request("POST", "/prompt", json_body=payload)
        if status == 400 and isinstance(body, dict) and "error" in body:
            raise HostRejected("ComfyUI refused the graph", status, body)
        self._check(status, body, "prompt submission")
        if not isinstance(body, dict) or "prompt_id" not in body:
            raise HostError("ComfyUI's answer to /prompt has no prompt_id", status, body)
        return SubmitResult(str(body["prompt_id"]), float(body.get("number", 0)), body.get("node_errors") or {})

    async def queue(self) -> dict[str, list[JSON]]:
        status, body, _ = await self._request("GET", "/queue")
        self._check(status, body, "queue")
        return {
            "queue_running": body.get("queue_running", []),
            "queue_pending": body.get("queue_pending", []),
        }

    async def history(self, prompt_id: str | None = None, max_items: int | None = None) -> dict[str, JSON]:
        if prompt_id is not None:
            status, body, _ = await self._request("GET", f"/history/{prompt_id}")
        else:
            params = {"max_items": str(max_items)} if max_items is not None else None
            status, body, _ = await self._request("GET", "/history", params=params)
        self._check(status, body, "history")
        return body if isinstance(body, dict) else {}

    async def delete_pending(self, prompt_ids: list[str]) -> None:
        status, body, _ = await self._request("POST", "/queue", json_body={"delete": prompt_ids})
        self._check(status, body, "queue delete")

    async def clear_pending(self) -> None:
        status, body, _ = await self._request("POST", "/queue", json_body={"clear": True})
        self._check(status, body, "queue clear")

    async def interrupt(self, prompt_id: str | None = None) -> None:
        payload = {"prompt_id": prompt_id} if prompt_id else {}
        status, body, _ = await self._request("POST", "/interrupt", json_body=payload)
        self._check(status, body, "interrupt")

    async def upload_image(self, data: bytes, filename: str, *, subfolder: str = "") -> dict[str, str]:
        form = aiohttp.FormData()
        form.add_field("image", data, filename=filename, content_type="application/octet-stream")
        form.add_field("type", "input")
        form.add_field("subfolder", subfolder)
        status, body, _ = await self._request("POST", "/upload/image", data=form)
        self._check(status, body, "upload")
        if not isinstance(body, dict) or "name" not in body:
            raise HostError("ComfyUI's answer to the upload has no name", status, body)
        return {
            "name": body["name"],
            "subfolder": body.get("subfolder", ""),
            "type": body.get("type", "input"),
        }

    async def view(self, filename: str, subfolder: str, folder_type: str) -> FileData:
        params = {"filename": filename, "subfolder": subfolder, "type": folder_type}
        status, body, ctype = await self._request("GET", "/view", params=params, raw=True)
        self._check(status, None, f"file {filename}")
        return FileData(body, ctype.split(";")[0] or "application/octet-stream")

    async def object_info(self) -> dict[str, JSON]:
        status, body, _ = await self._request("GET", "/object_info")
        self._check(status, body, "object_info")
        return body if isinstance(body, dict) else {}

    async def system_stats(self) -> dict[str, JSON]:
        status, body, _ = await self._request("GET", "/system_stats")
        self._check(status, body, "system_stats")
        return body if isinstance(body, dict) else {}
