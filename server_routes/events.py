"""Live event streams: Server-Sent Events and a WebSocket over the same EventHub.

Both resume from a last event id (replay without gaps or duplicates) or send a `resync` with a
snapshot from the SNAPSHOT_PROVIDER when the id cannot be replayed. Streams are plain
StreamResponse/WebSocketResponse: the envelope middleware must pass them through.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import struct
from collections.abc import Callable

from aiohttp import WSMsgType, hdrs, web

from ..engine.jsoncodec import dumps
from ..services.eventhub import Event, EventHub, Preview, Resync, Subscription
from .context import USER_ID
from .keys import EVENT_HUB, SNAPSHOT_PROVIDER

log = logging.getLogger("comfyui_studio.events")

# Seconds between heartbeats: SSE comments, WebSocket pings. Proxies close idle streams at ~60 s.
HEARTBEAT_S: web.AppKey[float] = web.AppKey("studio_events_heartbeat_s", float)
DEFAULT_HEARTBEAT_S = 15.0
_RETRY_MS = 3000


def add_routes(app: web.Application, *, heartbeat_s: float = DEFAULT_HEARTBEAT_S) -> None:
    """Register the streams on the studio sub-app (mounted at /studio)."""
    app[HEARTBEAT_S] = heartbeat_s
    app.on_shutdown.append(_close_streams)
    app.router.add_get("/api/v1/events", stream_events, name="stream_events")
    app.router.add_get("/api/v1/ws", events_ws, name="events_ws")


async def _close_streams(app: web.Application) -> None:
    # Open streams would otherwise hold the server's graceful shutdown until they time out.
    hub = app.get(EVENT_HUB)
    if hub is not None:
        hub.close()


def _heartbeat(request: web.Request) -> float:
    return request.app.get(HEARTBEAT_S, DEFAULT_HEARTBEAT_S)


def _user_id(request: web.Request) -> int | None:
    uid = request.get(USER_ID)
    return uid if isinstance(uid, int) else None


async def _resync_payload(request: web.Request, marker: Resync, user_id: int | None) -> str:
    # The provider's dict as is (the web client reads `jobs` and `queue` at the top), plus why.
    snapshot = await request.app[SNAPSHOT_PROVIDER](user_id)
    return dumps({**snapshot, "reason": marker.reason})


def _direct_writer(request: web.Request, resp: web.StreamResponse) -> Callable[[Event], bool] | None:
    """A synchronous writer for the hub's fast path, or None where bytes must go through `resp.write`.

    Once the headers and a first body write are out, aiohttp's writer keeps nothing of its own back
    (no compression here), so a frame written straight to the transport lands in stream order. The
    framing is decided from the headers actually sent: one HTTP/1.1 chunk, or the raw frame when the
    body is close-delimited (HTTP/1.0). Only public APIs: `request.transport`, the asyncio transport.
    """
    transport = request.transport
    te = resp.headers.get(hdrs.TRANSFER_ENCODING, "").lower()
    if transport is None or resp.compression or hdrs.CONTENT_ENCODING in resp.headers or te not in ("", "chunked"):
        return None
    chunked = te == "chunked"

    def write(event: Event) -> bool:
        # Anything still in the transport's buffer means a slow or paused reader: let the queue (and its
        # drop-and-resync bound) take over rather than grow the buffer without limit.
        if transport.is_closing() or transport.get_write_buffer_size():
            return False
        transport.write(event.sse_chunk if chunked else event.sse_bytes)
        return True

    return write


async def stream_events(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/events: Server-Sent Events, resumable with Last-Event-ID.

    While this handler waits with nothing pending, the hub writes events straight to the transport
    (see `_direct_writer`); the handler writes what was queued (busy transport), resyncs and
    heartbeats. A heartbeat now comes every `heartbeat` seconds of waiting, events or not.
    """
    hub: EventHub = request.app[EVENT_HUB]
    user_id = _user_id(request)
    last_id = request.headers.get("Last-Event-ID") or request.query.get("last_event_id")
    heartbeat = _heartbeat(request)

    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache, no-transform",
            "X-Accel-Buffering": "no",  # nginx would otherwise hold events back
        }
    )
    # Subscribed before the headers go out: whatever is published once the client sees them reaches it.
    sub = hub.subscribe(last_id, user_id=user_id)
    try:
        await resp.prepare(request)
        await resp.write(f"retry: {_RETRY_MS}\n\n".encode())
        # From here on, events published while this task is parked in `sub.next` are written by the hub
        # itself: no task wake-up per client per event.
        sub.direct = _direct_writer(request, resp)
        while True:
            try:
                item = await sub.next(timeout=heartbeat)
            except StopAsyncIteration:
                break  # hub closed: app shutting down
            if item is None:
                await resp.write(b": heartbeat\n\n")
            elif isinstance(item, Event):
                await resp.write(item.sse_bytes)
            elif isinstance(item, Resync):
                data = await _resync_payload(request, item, user_id)
                await resp.write(f"id: {item.id}\nevent: resync\ndata: {data}\n\n".encode())
    except ConnectionResetError:
        # Client went away (a write to a closed transport raises): nothing to report.
        log.debug("SSE client disconnected")
    finally:
        sub.close()
    return resp


def preview_frame(preview: Preview) -> bytes:
    """``[u32 BE len(header)][header json {prompt_id, mime}][image bytes]``."""
    header = json.dumps({"prompt_id": preview.prompt_id, "mime": preview.mime}).encode()
    return struct.pack(">I", len(header)) + header + preview.image


class _WsSession:
    """One socket: a sender task drains the current subscription; `resume` swaps it."""

    def __init__(self, request: web.Request, ws: web.WebSocketResponse, sub: Subscription) -> None:
        self.request = request
        self.ws = ws
        self.sub = sub
        self.user_id = _user_id(request)

    async def send_loop(self) -> None:
        try:
            await self._send_all()
        finally:
            # Ends the handler's receive loop too (aiohttp wakes a pending receive on close).
            await self.ws.close()

    async def _send_all(self) -> None:
        while not self.ws.closed:
            sub = self.sub
            try:
                item = await sub.next()
            except StopAsyncIteration:
                if sub is self.sub:
                    return  # closed for good (hub shut down or socket closing)
                continue  # swapped by a resume: carry on with the new subscription
            if item is None or sub is not self.sub:
                continue
            if isinstance(item, Event):
                await self.ws.send_str(item.frame_json)
            elif isinstance(item, Resync):
                data = await _resync_payload(self.request, item, self.user_id)
                await self.ws.send_str(f'{{"id":{json.dumps(item.id)},"kind":"resync","data":{data}}}')
            else:
                await self.ws.send_bytes(preview_frame(item))

    def resume(self, hub: EventHub, last_event_id: str | None) -> None:
        old = self.sub
        self.sub = hub.subscribe(last_event_id, user_id=self.user_id, previews=old.previews)
        old.close()


async def events_ws(request: web.Request) -> web.WebSocketResponse:
    """GET /api/v1/ws: the same events as JSON text frames, plus binary preview frames.

    Clients may send ``{"type": "resume", "last_event_id": "..."}`` to replay from an id.
    ``?previews=0`` turns preview frames off.
    """
    hub: EventHub = request.app[EVENT_HUB]
    ws = web.WebSocketResponse(heartbeat=_heartbeat(request))
    previews = request.query.get("previews", "1") not in ("0", "false")
    last_id = request.query.get("last_event_id")
    # Subscribed before the handshake completes, as for SSE: nothing published after it is missed.
    session = _WsSession(request, ws, hub.subscribe(last_id, user_id=_user_id(request), previews=previews))
    sender: asyncio.Task[None] | None = None
    try:
        await ws.prepare(request)
        sender = asyncio.create_task(session.send_loop())
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            try:
                body = json.loads(msg.data)
            except ValueError:
                continue
            if isinstance(body, dict) and body.get("type") == "resume":
                last = body.get("last_event_id")
                session.resume(hub, last if isinstance(last, str) else None)
            if sender.done():  # closed by the hub: stop reading too
                break
    finally:
        session.sub.close()
        if sender is not None:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionResetError):
                await sender
        if ws.prepared:
            await ws.close()
    return ws
