"""Every call the studio makes to ComfyUI, made through here and recorded in `comfy_calls`."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from ..db import calls as calls_db
from ..db.models import ComfyCall, utcnow
from ..db.store import Store
from .comfy_host import JSON, ComfyHost, FileData, HostError, HostUnavailable, SubmitResult

log = logging.getLogger("comfyui_studio.calls")

T = TypeVar("T")


def _file_summary(data: bytes) -> dict[str, JSON]:
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def call_to_dict(call: ComfyCall | Any, *, full: bool) -> dict[str, object]:
    """A logged call as the API and the command line show it (``full``: with its request and response)."""
    data: dict[str, object] = {
        "id": call.id,
        "operation": call.operation,
        "method": call.method,
        "path": call.path,
        "status": call.status,
        "ok": call.ok,
        "error": call.error,
        "started_at": _iso(call.started_at),
        "ended_at": _iso(call.ended_at),
        "runtime_ms": call.runtime_ms,
        "job_id": call.job_id,
        "replay_of": call.replay_of,
        "body_pruned_at": _iso(call.body_pruned_at),
    }
    if full:
        data["request"] = call.request
        data["response"] = call.response
        data["body_pruned_reason"] = call.body_pruned_reason
    return data


class LoggedComfy:
    """The host, with each operation recorded: request, response, status, timings, job."""

    def __init__(self, host: ComfyHost, store: Store) -> None:
        self.host = host
        self.store = store

    async def _record(
        self,
        operation: str,
        method: str,
        path: str,
        request: JSON,
        call: Callable[[], Awaitable[T]],
        summarize: Callable[[T], JSON],
        *,
        job_id: str | None = None,
        owner_id: int | None = None,
        replay_of: int | None = None,
        pending_calls: list[ComfyCall] | None = None,
    ) -> T:
        """Run call and record it; with pending_calls the row is handed back for the caller's commit."""
        started = utcnow()
        t0 = time.perf_counter()
        status: int | None = 200
        response: JSON = None
        error: str | None = None
        try:
            result = await call()
            response = summarize(result)
            return result
        except HostUnavailable as exc:
            status, error = None, str(exc)
            raise
        except HostError as exc:
            status, response, error = exc.status, exc.body, str(exc)
            raise
        finally:
            runtime_ms = (time.perf_counter() - t0) * 1000
            row = ComfyCall(
                operation=operation,
                method=method,
                path=path,
                request=request,
                response=response,
                status=status,
                ok=error is None,
                error=error,
                started_at=started,
                ended_at=utcnow(),
                runtime_ms=round(runtime_ms, 3),
                job_id=job_id,
                owner_id=owner_id,
                replay_of=replay_of,
            )
            if pending_calls is not None:
                pending_calls.append(row)
            else:
                await self.store_calls(owner_id, [row])

    async def store_calls(self, owner_id: int | None, rows: list[ComfyCall]) -> None:
        if not rows:
            return
        try:
            async with self.store.transaction(owner_id) as session:
                calls_db.add_all(session, rows)
        except Exception:
            # A full disk must not turn a successful ComfyUI call into a failed request.
            log.exception("Could not record %d ComfyUI calls", len(rows))

    async def recent(
        self, limit: int, *, owner_id: int | None = None, before: int | None = None, job_id: str | None = None
    ) -> list[ComfyCall]:
        """The newest logged calls (of one owner; None: everyone's, for the command line)."""
        async with self.store.transaction() as session:
            return await calls_db.newest(session, limit, owner_id=owner_id, before=before, job_id=job_id)

    async def page(
        self, owner_id: int, limit: int, *, cursor: int | None = None, job_id: str | None = None
    ) -> dict[str, object]:
        """One page of an owner's call log, newest first, with the cursor of the next page."""
        query = calls_db.page_query(limit + 1, owner_id=owner_id, before=cursor, job_id=job_id)
        rows = await self.store.read(partial(calls_db.read_page, query=query))
        more = len(rows) > limit
        rows = rows[:limit]
        return {"items": [call_to_dict(c, full=False) for c in rows], "next_cursor": rows[-1].id if more else None}

    async def logged(self, call_id: int, *, owner_id: int | None = None) -> ComfyCall | None:
        """One logged call; with ``owner_id`` only if it is that owner's."""
        async with self.store.transaction() as session:
            call = await calls_db.get(session, call_id)
        if call is None or (owner_id is not None and call.owner_id != owner_id):
            return None
        return call

    async def submit(
        self,
        graph: dict[str, JSON],
        *,
        prompt_id: str,
        front: bool = False,
        job_id: str | None = None,
        owner_id: int | None = None,
        replay_of: int | None = None,
        pending_calls: list[ComfyCall] | None = None,
    ) -> SubmitResult:
        request = {"prompt": graph, "prompt_id": prompt_id, "client_id": self.host.client_id, "front": front}
        return await self._record(
            "submit",
            "POST",
            "/prompt",
            request,
            lambda: self.host.submit(graph, prompt_id=prompt_id, front=front),
            lambda r: {"prompt_id": r.prompt_id, "number": r.number, "node_errors": r.node_errors},
            job_id=job_id,
            owner_id=owner_id,
            replay_of=replay_of,
            pending_calls=pending_calls,
        )

    async def queue(self, *, owner_id: int | None = None) -> dict[str, list[JSON]]:
        return await self._record("queue", "GET", "/queue", None, self.host.queue, lambda r: r, owner_id=owner_id)

    async def history(
        self, prompt_id: str | None = None, *, job_id: str | None = None, owner_id: int | None = None
    ) -> dict[str, JSON]:
        path = f"/history/{prompt_id}" if prompt_id else "/history"
        return await self._record(
            "history",
            "GET",
            path,
            {"prompt_id": prompt_id},
            lambda: self.host.history(prompt_id),
            lambda r: r,
            job_id=job_id,
            owner_id=owner_id,
        )

    async def delete_pending(
        self, prompt_ids: list[str], *, job_id: str | None = None, owner_id: int | None = None
    ) -> None:
        await self._record(
            "delete",
            "POST",
            "/queue",
            {"delete": prompt_ids},
            lambda: self.host.delete_pending(prompt_ids),
            lambda r: None,
            job_id=job_id,
            owner_id=owner_id,
        )

    async def clear_pending(self, *, owner_id: int | None = None) -> None:
        await self._record(
            "clear",
            "POST",
            "/queue",
            {"clear": True},
            self.host.clear_pending,
            lambda r: None,
            owner_id=owner_id,
        )

    async def interrupt(
        self, prompt_id: str | None = None, *, job_id: str | None = None, owner_id: int | None = None
    ) -> None:
        await self._record(
            "interrupt",
            "POST",
            "/interrupt",
            {"prompt_id": prompt_id} if prompt_id else {},
            lambda: self.host.interrupt(prompt_id),
            lambda r: None,
            job_id=job_id,
            owner_id=owner_id,
        )

    async def upload_image(
        self, data: bytes, filename: str, *, subfolder: str = "", owner_id: int | None = None
    ) -> dict[str, str]:
        request = {"filename": filename, "subfolder": subfolder, "type": "input", **_file_summary(data)}
        return await self._record(
            "upload",
            "POST",
            "/upload/image",
            request,
            lambda: self.host.upload_image(data, filename, subfolder=subfolder),
            lambda r: r,
            owner_id=owner_id,
        )

    async def view(
        self,
        filename: str,
        subfolder: str,
        folder_type: str,
        *,
        job_id: str | None = None,
        owner_id: int | None = None,
        pending_calls: list[ComfyCall] | None = None,
    ) -> FileData:
        request = {"filename": filename, "subfolder": subfolder, "type": folder_type}
        summary: dict[str, JSON] = {}

        async def fetch() -> FileData:
            # Several backends: the job says which one made the file (services/comfy_pool.py).
            view_for_job = getattr(self.host, "view_for_job", None)
            if view_for_job is not None and job_id is not None:
                file = await view_for_job(job_id, filename, subfolder, folder_type)
            else:
                file = await self.host.view(filename, subfolder, folder_type)
            # hashing a large image would hold the event loop (a zip of 200 photos: hundreds of ms)
            summary.update(await asyncio.to_thread(_file_summary, file.data))
            return file

        return await self._record(
            "view",
            "GET",
            "/view",
            request,
            fetch,
            lambda r: {"content_type": r.content_type, **summary},
            job_id=job_id,
            owner_id=owner_id,
            pending_calls=pending_calls,
        )

    async def object_info(self) -> dict[str, JSON]:
        return await self._record(
            "object_info",
            "GET",
            "/object_info",
            None,
            self.host.object_info,
            lambda r: {"node_types": len(r)},
        )

    async def system_stats(self) -> dict[str, JSON]:
        return await self._record("system_stats", "GET", "/system_stats", None, self.host.system_stats, _stats_summary)


def _stats_summary(stats: dict[str, JSON]) -> JSON:
    # argv and folders can name server paths; the log keeps what identifies the ComfyUI.
    system = stats.get("system") or {}
    keys = ("comfyui_version", "python_version", "pytorch_version", "os")
    return {"system": {k: system.get(k) for k in keys}, "devices": len(stats.get("devices") or [])}
