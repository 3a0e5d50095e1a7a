"""ComfyUI's own routes on the standalone studio: /prompt, /queue, /history, /view, /upload/image, /ws, …

Mounted beside /studio by plugin.mount_standalone only (inside ComfyUI, ComfyUI owns these paths), each also
under /api like ComfyUI's. Every route asks who is calling first: an API token (`Authorization: Bearer`,
or as the password of HTTP Basic for clients that only speak that), else the loopback owner exactly as the
studio's own routes trust it (server_routes/security.py `local_trust`); a bad or revoked token is 401 in the
studio's envelope. Nothing here touches the studio's own guards: these handlers are the only ones that take
a token, and a token opens none of the studio's routes.

Answers are ComfyUI's shapes (docs/api.md, "ComfyUI-compatible routes"). A prompt is a studio job submitted
through services/jobs.py, so it is in its owner's gallery and call log; history, queue and files show the
caller's own jobs only.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

from ..db import comfy_history as history_db
from ..db import jobs as jobs_db
from ..db.comfy_history import MAX_HISTORY
from ..engine.envelope import failure
from ..engine.errors import StudioError
from ..engine.jsoncodec import JSONInputError, loads_input
from ..services.comfy_compat import ClientSocket, ComfyRelay, history_entry
from ..services.comfy_host import HostError, HostNotFound, HostRejected, SubmitResult
from ..services.studio import Studio
from .context import request_key
from .keys import STUDIO
from .middleware import envelope_response
from .security import ACCESS_COOKIE, host_verdict, local_trust
from .validation import MAX_JSON_DEPTH, read_body, read_multipart

log = logging.getLogger("comfyui_studio.comfy_compat")

RELAY = web.AppKey("studio_comfy_relay", ComfyRelay)
CALLER = request_key("studio_comfy_caller", object)
WS_MAX_MESSAGE = 64 * 1024


@dataclass(frozen=True)
class Caller:
    user_id: int
    role: str


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _studio(request: web.Request) -> Studio:
    return request.config_dict[STUDIO]


def _caller(request: web.Request) -> Caller:
    caller = request[CALLER]
    assert isinstance(caller, Caller)
    return caller


def _token_from(header: str) -> str | None:
    scheme, _, value = header.strip().partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        return value.strip() or None
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return None


async def identify(request: web.Request) -> Caller:
    """The token's user, or the loopback owner of a loopback-only studio; 401 otherwise."""
    studio = _studio(request)
    security = studio.security
    header = request.headers.get("Authorization")
    if header is not None:
        token = _token_from(header)
        found = await security.tokens.holder(token) if token and security.tokens is not None else None
        if found is None:
            raise StudioError("unauthorized", "The API token is not valid, or it was revoked")
        return Caller(found.user_id, found.role)
    if ACCESS_COOKIE not in request.cookies and local_trust(request):
        return Caller(security.owner_id, "owner")
    raise StudioError("unauthorized", "Send an API token (made in Settings): Authorization: Bearer <token>")


def _error(request_id: str, error: StudioError) -> web.Response:
    return envelope_response(failure(error, request_id), error.status)


def guarded(handler: Handler) -> Handler:
    """Host check, then who is calling, then the handler; the studio's errors as its JSON envelope."""

    @functools.wraps(handler)
    async def run(request: web.Request) -> web.StreamResponse:
        request_id = uuid.uuid4().hex[:16]
        try:
            host_verdict(request.headers.get("Host"), _studio(request).security.hosts).raise_if_refused()
            request[CALLER] = await identify(request)
            return await handler(request)
        except StudioError as exc:
            return _error(request_id, exc)
        except JSONInputError as exc:
            return _error(request_id, StudioError("bad_json", exc.message))
        except HostError as exc:
            return _error(request_id, StudioError("comfy_unavailable", f"ComfyUI did not answer: {exc}"))
        except web.HTTPException:
            raise
        except Exception:
            log.exception("Unhandled error on %s %s (request %s)", request.method, request.path, request_id)
            return _error(request_id, StudioError("internal_error", "Something went wrong on the studio's side"))

    return run


def comfy_error(kind: str, message: str, details: str = "", status: int = 400) -> web.Response:
    """An error in ComfyUI's /prompt shape, which its clients read."""
    body = {"error": {"type": kind, "message": message, "details": details, "extra_info": {}}, "node_errors": {}}
    return web.json_response(body, status=status)


async def _json_body(request: web.Request, *, optional: bool = False) -> Any:
    """The body as JSON whatever its content type (ComfyUI's clients send it as form data or none)."""
    raw = await read_body(request, _studio(request).config.max_json_bytes)
    if optional and not raw.strip():
        return {}
    return loads_input(raw, max_depth=MAX_JSON_DEPTH + 32, what="The body")


# --- /prompt ------------------------------------------------------------------------------------------


def _queue_remaining(raw: dict[str, list[Any]]) -> int:
    return len(raw.get("queue_running", [])) + len(raw.get("queue_pending", []))


@guarded
async def get_prompt(request: web.Request) -> web.StreamResponse:
    raw = await _studio(request).host.queue()
    return web.json_response({"exec_info": {"queue_remaining": _queue_remaining(raw)}})


@guarded
async def post_prompt(request: web.Request) -> web.StreamResponse:
    studio, caller = _studio(request), _caller(request)
    try:
        body = await _json_body(request)
    except JSONInputError as exc:
        return comfy_error("invalid_prompt", "The body is not valid JSON", exc.message)
    if not isinstance(body, dict):
        return comfy_error("invalid_prompt", "The body must be a JSON object")
    graph = body.get("prompt")
    if graph is None:
        return comfy_error("no_prompt", "No prompt provided", "No prompt provided")
    if not isinstance(graph, dict) or not graph or not all(isinstance(n, dict) for n in graph.values()):
        return comfy_error("invalid_prompt", "The prompt must be an API-format graph: {node id: {class_type, inputs}}")
    prompt_id = body.get("prompt_id")
    if prompt_id is not None:
        try:
            prompt_id = str(uuid.UUID(str(prompt_id)))
        except ValueError:
            return comfy_error("invalid_prompt", "prompt_id must be a UUID", str(body.get("prompt_id"))[:64])
        async with studio.store.transaction() as session:
            if await jobs_db.job_by_prompt_id(session, prompt_id) is not None:
                return comfy_error("invalid_prompt", "This prompt_id was used already", prompt_id)
    else:
        prompt_id = str(uuid.uuid4())
    client_id = body.get("client_id")
    client_id = client_id[:128] if isinstance(client_id, str) and client_id else None
    relay = request.app[RELAY]
    if client_id is not None:
        relay.expect(prompt_id, caller.user_id, client_id)  # before ComfyUI's first message about it
    accepted: list[SubmitResult] = []
    try:
        await studio.jobs.submit(
            caller.user_id,
            graph,
            front=body.get("front") is True,
            dynamic_prompts=False,  # a ComfyUI client sends what it wants run, as ComfyUI would run it
            prompt_id=prompt_id,
            on_accepted=accepted.append,
            extra={"comfy_client_id": client_id} if client_id else {},
        )
    except StudioError as exc:
        rejected = exc.__cause__
        if isinstance(rejected, HostRejected) and isinstance(rejected.body, dict):
            return web.json_response(rejected.body, status=400)  # ComfyUI's own answer, verbatim
        raise
    result = accepted[0] if accepted else SubmitResult(prompt_id, 0)
    return web.json_response({"prompt_id": prompt_id, "number": result.number, "node_errors": result.node_errors})


# --- /queue and /interrupt ------------------------------------------------------------------------------


def _mine(studio: Studio, caller: Caller, prompt_id: object) -> bool:
    live = studio.live
    ref = live.refs.get(str(prompt_id)) if live is not None else None
    return ref is not None and ref.owner_id == caller.user_id


@guarded
async def get_queue(request: web.Request) -> web.StreamResponse:
    studio, caller, relay = _studio(request), _caller(request), request.app[RELAY]
    raw = await studio.host.queue()

    def shown(items: list[Any]) -> list[Any]:
        out = []
        for item in items:
            if len(item) >= 5 and _mine(studio, caller, item[1]):
                client = relay.client_of(str(item[1]))
                out.append([item[0], item[1], item[2], {"client_id": client} if client else {}, item[4]])
        return out

    return web.json_response(
        {"queue_running": shown(raw.get("queue_running", [])), "queue_pending": shown(raw.get("queue_pending", []))}
    )


async def _own_jobs(studio: Studio, caller: Caller, prompt_ids: list[Any]) -> list[Any]:
    wanted = [str(p) for p in prompt_ids if isinstance(p, str)][:MAX_HISTORY]
    async with studio.store.transaction(caller.user_id) as session:
        return await history_db.owned_by_prompt(session, caller.user_id, wanted)


@guarded
async def post_queue(request: web.Request) -> web.StreamResponse:
    studio, caller = _studio(request), _caller(request)
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise StudioError("validation_error", "The body must be a JSON object")
    if body.get("clear") is True:
        await studio.queue.clear(caller.user_id, everyone=False)  # this caller's pending jobs only
    delete = body.get("delete")
    if isinstance(delete, list):
        for job in await _own_jobs(studio, caller, delete):
            if job.state == "queued":
                with contextlib.suppress(StudioError):  # it may have started meanwhile: ComfyUI skips it too
                    await studio.queue.cancel(caller.user_id, job.id)
    return web.Response(status=200)


@guarded
async def post_interrupt(request: web.Request) -> web.StreamResponse:
    studio, caller = _studio(request), _caller(request)
    body = await _json_body(request, optional=True)
    prompt_id = body.get("prompt_id") if isinstance(body, dict) else None
    if prompt_id is not None:
        jobs = await _own_jobs(studio, caller, [prompt_id])
        if not jobs or jobs[0].state != "running":
            return web.Response(status=200)  # ComfyUI: not running, nothing to interrupt
    with contextlib.suppress(StudioError):  # nothing running, or another user's job: left alone
        await studio.queue.interrupt(caller.user_id, is_owner=caller.role == "owner" and prompt_id is None)
    return web.Response(status=200)


# --- /history ------------------------------------------------------------------------------------------


async def _output_nodes(studio: Studio) -> set[str]:
    try:
        definitions = await studio.workflows.object_info()
    except HostError:
        return set()
    return {name for name, d in definitions.items() if isinstance(d, dict) and d.get("output_node")}


async def _entries(studio: Studio, jobs: list[Any], relay: ComfyRelay) -> dict[str, Any]:
    if not jobs:
        return {}
    outputs = await _output_nodes(studio)
    async with studio.store.transaction() as session:
        images = await jobs_db.images_of(session, [job.id for job in jobs])
    out: dict[str, Any] = {}
    for job in jobs:
        node_ids = {nid for nid, node in (job.graph or {}).items() if node.get("class_type") in outputs}
        client = (job.extra or {}).get("comfy_client_id") or relay.client_of(job.prompt_id or "")
        out[job.prompt_id] = history_entry(job, images.get(job.id, []), client, node_ids)
    return out


def _int_query(request: web.Request, name: str, default: int) -> int:
    value = request.query.get(name)
    if value is None or value == "":
        return default
    try:
        return max(0, int(value))
    except ValueError:
        raise StudioError("validation_error", f"{name} must be a whole number") from None


@guarded
async def get_history(request: web.Request) -> web.StreamResponse:
    studio, caller = _studio(request), _caller(request)
    limit = min(_int_query(request, "max_items", MAX_HISTORY), MAX_HISTORY)
    offset = _int_query(request, "offset", 0)
    async with studio.store.transaction(caller.user_id) as session:
        jobs = await history_db.finished(session, caller.user_id, limit=limit, offset=offset)
    jobs.reverse()  # ComfyUI lists its history oldest first
    return web.json_response(await _entries(studio, jobs, request.app[RELAY]))


@guarded
async def get_history_entry(request: web.Request) -> web.StreamResponse:
    studio, caller = _studio(request), _caller(request)
    prompt_id = request.match_info["prompt_id"][:64]
    live = studio.live
    current = live.current(prompt_id) if live is not None else None
    if live is not None and current is not None and current.get("state") not in ("queued", "running"):
        await live.stored([prompt_id])  # the stream said it ended: answer once its ending is stored
    async with studio.store.transaction(caller.user_id) as session:
        job = await history_db.finished_by_prompt(session, caller.user_id, prompt_id)
    return web.json_response(await _entries(studio, [job] if job is not None else [], request.app[RELAY]))


@guarded
async def post_history(request: web.Request) -> web.StreamResponse:
    """Clear or delete entries of this caller's history view; the jobs stay in the gallery."""
    studio, caller = _studio(request), _caller(request)
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise StudioError("validation_error", "The body must be a JSON object")
    async with studio.store.transaction(caller.user_id) as session:
        if body.get("clear") is True:
            jobs = await history_db.finished(session, caller.user_id, limit=MAX_HISTORY, offset=0)
            await history_db.hide(session, jobs)
        delete = body.get("delete")
        if isinstance(delete, list):
            wanted = [p for p in delete if isinstance(p, str)][:MAX_HISTORY]
            await history_db.hide(session, await history_db.owned_by_prompt(session, caller.user_id, wanted))
    return web.Response(status=200)


# --- files ---------------------------------------------------------------------------------------------


@guarded
async def get_view(request: web.Request) -> web.StreamResponse:
    """One of this caller's files by ComfyUI's name (an output, a preview, an upload), fetched for it."""
    studio, caller = _studio(request), _caller(request)
    filename = request.query.get("filename", "")
    subfolder = request.query.get("subfolder", "")
    folder_type = request.query.get("type", "output") or "output"
    if not filename or folder_type not in ("output", "input", "temp"):
        raise StudioError("validation_error", "Name a file: ?filename=…&type=output|input|temp&subfolder=…")
    async with studio.store.transaction(caller.user_id) as session:
        image = await history_db.image_by_name(session, caller.user_id, filename, subfolder, folder_type)
    if image is None:
        raise StudioError("not_found", "No such file among your images")
    try:
        data, mime = await studio.files.row_file(caller.user_id, image)
    except HostNotFound:
        raise StudioError("not_found", "ComfyUI no longer has this file") from None
    return web.Response(
        body=data, content_type=mime, headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}
    )


@guarded
async def post_upload_image(request: web.Request) -> web.StreamResponse:
    """An input image, stored and recorded like a studio upload: its name comes from its content."""
    studio, caller = _studio(request), _caller(request)
    limit = studio.config.max_upload_bytes
    parts = await read_multipart(
        request, {"image": limit, "type": 64, "subfolder": 1024, "overwrite": 16}, expected="the image (image)"
    )
    image = parts.get("image")
    if image is None or not image.data:
        raise StudioError("validation_error", "No image in the upload")
    stored = await studio.files.upload(caller.user_id, image.data)
    row = await studio.files.image_row(caller.user_id, str(stored["id"]))
    return web.json_response({"name": row.filename, "subfolder": row.subfolder or "", "type": row.folder_type})


# --- read-only, from the host ------------------------------------------------------------------------


@guarded
async def get_object_info(request: web.Request) -> web.StreamResponse:
    definitions = await _studio(request).workflows.object_info()
    node_class = request.match_info.get("node_class")
    if node_class is None:
        return web.json_response(definitions)
    return web.json_response({node_class: definitions[node_class]} if node_class in definitions else {})


@guarded
async def get_system_stats(request: web.Request) -> web.StreamResponse:
    return web.json_response(await _studio(request).host.system_stats())


@guarded
async def get_embeddings(request: web.Request) -> web.StreamResponse:
    names = await _studio(request).host.model_files("embeddings")
    return web.json_response([name.rsplit(".", 1)[0] if "." in name else name for name in names])


@guarded
async def get_model_files(request: web.Request) -> web.StreamResponse:
    try:
        return web.json_response(await _studio(request).host.model_files(request.match_info["folder"]))
    except HostNotFound:
        raise StudioError("not_found", "No such model folder") from None


@guarded
async def get_features(request: web.Request) -> web.StreamResponse:
    return web.json_response(_features(_studio(request)))


def _features(studio: Studio) -> dict[str, Any]:
    return {"supports_preview_metadata": True, "max_upload_size": studio.config.max_upload_bytes}


# --- /ws -----------------------------------------------------------------------------------------------


@guarded
async def websocket(request: web.Request) -> web.StreamResponse:
    """ComfyUI's event socket: `status` with the sid first, then the messages of this client's prompts."""
    studio, caller, relay = _studio(request), _caller(request), request.app[RELAY]
    client_id = (request.query.get("clientId") or "")[:128] or uuid.uuid4().hex
    ws = web.WebSocketResponse(heartbeat=30, max_msg_size=WS_MAX_MESSAGE)
    await ws.prepare(request)
    socket = ClientSocket(ws, caller.user_id, client_id)
    try:
        raw = await studio.host.queue()
        remaining = _queue_remaining(raw)
    except HostError:
        remaining = 0
    status = {"status": {"exec_info": {"queue_remaining": remaining}}, "sid": client_id}
    await ws.send_json({"type": "status", "data": status})
    relay.attach(socket)
    pump = asyncio.get_running_loop().create_task(socket.pump(), name="studio-comfy-ws")
    try:
        first = True
        async for message in ws:
            if message.type is not WSMsgType.TEXT:
                continue
            if first:
                first = False
                try:
                    body = loads_input(message.data, max_depth=8, what="The message")
                except JSONInputError:
                    continue
                if isinstance(body, dict) and body.get("type") == "feature_flags":
                    flags = body.get("data")
                    wanted = isinstance(flags, dict) and flags.get("supports_preview_metadata") is True
                    socket.metadata_previews = wanted
                    socket.put(json.dumps({"type": "feature_flags", "data": _features(studio)}))
    finally:
        relay.detach(socket)
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump
    return ws


# --- registration --------------------------------------------------------------------------------------

ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/prompt", get_prompt),
    ("POST", "/prompt", post_prompt),
    ("GET", "/queue", get_queue),
    ("POST", "/queue", post_queue),
    ("POST", "/interrupt", post_interrupt),
    ("GET", "/history", get_history),
    ("GET", "/history/{prompt_id}", get_history_entry),
    ("POST", "/history", post_history),
    ("GET", "/view", get_view),
    ("POST", "/upload/image", post_upload_image),
    ("GET", "/ws", websocket),
    ("GET", "/object_info", get_object_info),
    ("GET", "/object_info/{node_class}", get_object_info),
    ("GET", "/system_stats", get_system_stats),
    ("GET", "/embeddings", get_embeddings),
    ("GET", "/models/{folder}", get_model_files),
    ("GET", "/features", get_features),
]


def add_routes(root: web.Application, studio: Studio) -> None:
    """ComfyUI's routes on the standalone root app, bare and under /api as ComfyUI serves them."""
    relay = ComfyRelay()
    root[RELAY] = relay
    studio.host.subscribe(relay.on_event)
    for method, path, handler in ROUTES:
        for prefix in ("", "/api"):
            root.router.add_route(method, prefix + path, handler)
