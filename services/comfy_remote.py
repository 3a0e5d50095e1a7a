"""`RemoteHost`: a ComfyUI reached over its public HTTP API (standalone server, command line)."""

from __future__ import annotations

import asyncio
import logging
import random
import struct
import uuid
from collections.abc import Awaitable, Callable
from urllib.parse import quote

import aiohttp

from ..engine.jsoncodec import loads_lenient
from .background import cancel_and_wait
from .comfy_host import (
    JSON,
    EventSink,
    FileData,
    HostError,
    HostNotFound,
    HostRejected,
    HostUnavailable,
    SubmitResult,
    prompt_request,
)

log = logging.getLogger("comfyui_studio.comfy")

DEFAULT_COMFY_URL = "http://127.0.0.1:8188"

# Called after every (re)connect of the event socket, with True on the first one: time to reconcile.
ConnectListener = Callable[[bool], Awaitable[None]]

BACKOFF_MIN_S = 0.25
BACKOFF_MAX_S = 10.0


class RemoteHost:
    def __init__(self, base_url: str = DEFAULT_COMFY_URL, *, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.client_id = uuid.uuid4().hex
        self.description = self.base_url
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._sinks: list[EventSink] = []
        self._connect_listeners: list[ConnectListener] = []
        self._disconnect_listeners: list[Callable[[], None]] = []
        self._events_task: asyncio.Task[None] | None = None
        self._listener_tasks: set[asyncio.Task[None]] = set()
        self.connected = asyncio.Event()
        self.connects = 0  # successful event-socket connections so far

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        await self.stop_events()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def subscribe(self, sink: EventSink) -> None:
        self._sinks.append(sink)

    def on_connect(self, listener: ConnectListener) -> None:
        """Run `listener(first)` after every (re)connect of the event socket."""
        self._connect_listeners.append(listener)

    def on_disconnect(self, listener: Callable[[], None]) -> None:
        """Call `listener()` whenever a connected event socket drops (a pool then checks this ComfyUI's health)."""
        self._disconnect_listeners.append(listener)

    # -- the event socket ------------------------------------------------------------------------

    @property
    def ws_url(self) -> str:
        scheme, _, rest = self.base_url.partition("://")
        return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/ws?clientId={self.client_id}"

    def start_events(self) -> None:
        """Follow ComfyUI's /ws in the background until `stop_events`, reconnecting when it drops."""
        if self._events_task is None or self._events_task.done():
            self._events_task = asyncio.get_running_loop().create_task(self._events_loop(), name="studio-comfy-ws")

    async def stop_events(self) -> None:
        task, self._events_task = self._events_task, None
        await cancel_and_wait(task, *self._listener_tasks)
        self.connected.clear()

    def dispatch(self, event: str | int, data: JSON) -> None:
        for sink in self._sinks:
            try:
                sink(event, data)
            except Exception:
                log.exception("Studio event sink failed on %r", event)

    async def _events_loop(self) -> None:
        # Its own session: the HTTP session's total timeout would end a long-lived socket.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
        backoff = BACKOFF_MIN_S
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                try:
                    async with session.ws_connect(self.ws_url, heartbeat=20, max_msg_size=0) as ws:
                        # First message, before ComfyUI sends any preview: ask for previews with metadata.
                        await ws.send_json({"type": "feature_flags", "data": {"supports_preview_metadata": True}})
                        first = self.connects == 0
                        self.connects += 1
                        self.connected.set()
                        backoff = BACKOFF_MIN_S
                        log.info("Following ComfyUI's events at %s", self.base_url)
                        self._notify_connect(first)
                        await self._read(ws)
                        log.warning("ComfyUI's event socket at %s closed; reconnecting", self.base_url)
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    if self.connected.is_set() or self.connects == 0:
                        log.warning("ComfyUI's events at %s unreachable (%s); retrying", self.base_url, exc)
                was_connected = self.connected.is_set()
                self.connected.clear()
                if was_connected:
                    for listener in self._disconnect_listeners:
                        listener()
                # Jitter keeps several studios from reconnecting in lockstep after a ComfyUI restart.
                await asyncio.sleep(backoff * (0.5 + random.random() / 2))  # noqa: S311
                backoff = min(backoff * 2, BACKOFF_MAX_S)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse[bool]) -> None:
        async for msg in ws:
            if msg.type is aiohttp.WSMsgType.TEXT:
                try:
                    body = loads_lenient(msg.data)
                except ValueError:
                    log.debug("Unreadable text frame from ComfyUI")
                    continue
                if isinstance(body, dict) and isinstance(kind := body.get("type"), str):
                    self.dispatch(kind, body.get("data"))
            elif msg.type is aiohttp.WSMsgType.BINARY:
                if len(msg.data) >= 4:
                    self.dispatch(struct.unpack(">I", msg.data[:4])[0], msg.data[4:])
            elif msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE):
                break

    def _notify_connect(self, first: bool) -> None:
        # Listeners run beside the reader: reconciling needs HTTP calls while events keep flowing.
        for listener in self._connect_listeners:
            task = asyncio.get_running_loop().create_task(self._run_listener(listener, first))
            self._listener_tasks.add(task)
            task.add_done_callback(self._listener_tasks.discard)

    @staticmethod
    async def _run_listener(listener: ConnectListener, first: bool) -> None:
        try:
            await listener(first)
        except Exception:
            log.exception("A ComfyUI connect listener failed")

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
                parsed = loads_lenient(body)
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
        payload = prompt_request(
            graph, client_id=self.client_id, prompt_id=prompt_id, front=front, extra_data=extra_data
        )
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

    async def model_files(self, folder: str) -> list[str]:
        status, body, _ = await self._request("GET", f"/models/{quote(folder, safe='')}")
        self._check(status, body, f"model folder {folder}")
        if not isinstance(body, list):
            raise HostError(f"ComfyUI's list of {folder} is not a list", status, body)
        return [f for f in body if isinstance(f, str)]

    async def system_stats(self) -> dict[str, JSON]:
        status, body, _ = await self._request("GET", "/system_stats")
        self._check(status, body, "system_stats")
        return body if isinstance(body, dict) else {}
