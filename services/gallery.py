"""The gallery side of the Create page: prompt history, likes, deleting from the gallery, bulk work, zips."""

from __future__ import annotations

import asyncio
import zipfile
from collections.abc import AsyncIterator, Iterable
from typing import IO, cast

from ..db import gallery as gallery_db
from ..db.models import utcnow
from ..db.store import Store
from ..engine.errors import StudioError, not_found
from .comfy_host import HostError
from .files import Files
from .image_metadata import with_parameters
from .jobs import JSON, Jobs
from .queue_control import QueueControl

MAX_BULK = 200
_EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}


class Gallery:
    def __init__(self, store: Store, jobs: Jobs, queue: QueueControl, files: Files) -> None:
        self.store = store
        self.jobs = jobs
        self.queue = queue
        self.files = files

    async def prompt_history(self, owner_id: int, *, limit: int, before: int | None) -> dict[str, JSON]:
        """This user's distinct prompt texts, most recently used first (what ↑/↓ walks in the prompt bar)."""
        async with self.store.transaction(owner_id) as session:
            rows = await gallery_db.prompt_history(session, owner_id, limit + 1, before)
        more = len(rows) > limit
        rows = rows[:limit]
        return {
            "items": [{"text": text, "id": last_id} for text, last_id in rows],
            "next_cursor": rows[-1][1] if more and rows else None,
        }

    async def set_liked(self, owner_id: int, image_id: str, liked: bool) -> dict[str, JSON]:
        async with self.store.transaction(owner_id) as session:
            image = await gallery_db.get_image(session, image_id)
            if image is None or image.owner_id != owner_id or image.deleted_at is not None:
                raise not_found("Image")
            if liked and image.liked_at is None:
                image.liked_at = utcnow()
            elif not liked:
                image.liked_at = None
        return {"id": image_id, "liked": liked}

    async def delete_job(self, owner_id: int, job_id: str) -> dict[str, JSON]:
        """Hide a job and its images from the gallery; a queued job is cancelled first, a running one refused."""
        job = await self.jobs.get(owner_id, job_id)
        if job["state"] == "running":
            raise StudioError("conflict", f"Job {job_id} is running: interrupt it first")
        if job["state"] == "queued":
            await self.queue.cancel(owner_id, job_id)
        now = utcnow()
        async with self.store.transaction(owner_id) as session:
            if not await gallery_db.hide_job(session, job_id, now):
                raise not_found("Job")
        return {"id": job_id, "deleted": True}

    async def bulk(self, owner_id: int, job_ids: list[str], op: str) -> dict[str, JSON]:
        """Apply one operation to many jobs; each job succeeds or fails on its own, reported per id."""
        ids = list(dict.fromkeys(job_ids))
        done: list[str] = []
        failed: list[JSON] = []
        if op in ("like", "unlike"):
            # one transaction for all of them: a selection of 200 is one write, not hundreds
            async with self.store.transaction(owner_id) as session:
                found = await gallery_db.set_liked_jobs(session, owner_id, ids, op == "like", utcnow())
            for job_id in ids:
                if job_id in found:
                    done.append(job_id)
                else:
                    failed.append({"id": job_id, "code": "not_found", "message": "Job not found"})
            return {"op": op, "done": done, "failed": failed}
        for job_id in ids:
            try:
                await self.delete_job(owner_id, job_id)
                done.append(job_id)
            except StudioError as exc:
                failed.append({"id": job_id, "code": exc.code, "message": exc.message})
        return {"op": op, "done": done, "failed": failed}

    async def archive(self, owner_id: int, image_ids: Iterable[str]) -> AsyncIterator[bytes]:
        """A zip of the chosen images as it is written, named by job and image id (never ComfyUI's file names).

        Every id is checked before the first byte; a file ComfyUI no longer has is left out and the rest still
        downloads; none readable: not found, also before the first byte. One image is in memory at a time, and
        each entry is written off the event loop.
        """
        images = []
        for image_id in dict.fromkeys(image_ids):
            image = await self.files.image_row(owner_id, image_id)
            if image.deleted_at is not None:
                raise not_found("Image")
            images.append(image)
        stream = ZipStream()
        written = 0
        for image in images:
            try:
                data, mime = await self.files.row_file(owner_id, image)
                data = await with_parameters(self.store, image, data, mime)
            except (StudioError, HostError):
                continue
            prefix = f"{image.job_id}-" if image.job_id else ""
            yield await asyncio.to_thread(stream.add, f"{prefix}{image.id}{_EXTENSIONS.get(mime, '.bin')}", data)
            written += 1
        if not written:
            raise StudioError("not_found", "None of these images can be read")
        yield await asyncio.to_thread(stream.close)


class ZipStream:
    """A zip written entry by entry to a sink that cannot seek (sizes go in data descriptors), taken as it grows."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        # Images are already compressed: store them.
        self._zip = zipfile.ZipFile(cast(IO[bytes], self), "w", compression=zipfile.ZIP_STORED)

    def write(self, data: bytes) -> int:
        self._buffer += data
        return len(data)

    def flush(self) -> None:
        pass

    def _take(self) -> bytes:
        out = bytes(self._buffer)
        self._buffer.clear()
        return out

    def add(self, name: str, data: bytes) -> bytes:
        self._zip.writestr(name, data)
        return self._take()

    def close(self) -> bytes:
        self._zip.close()
        return self._take()
