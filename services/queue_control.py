"""The queue's controls: what runs and waits, cancelling, moving to the front, clearing, interrupting.

ComfyUI owns the queue; this asks it, then reports each ending to the lifecycle (services/live.py), which
writes and announces it. The queue as a user sees it is built once, by ``live.queue_view``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ..db import jobs as repo
from ..db.store import Store
from ..engine.errors import StudioError
from .comfy_calls import LoggedComfy
from .comfy_host import JSON
from .jobs import Jobs


class QueueControl:
    def __init__(self, store: Store, comfy: LoggedComfy, jobs: Jobs) -> None:
        self.store = store
        self.comfy = comfy
        self.jobs = jobs
        # (dispatcher, operation, owner, job) → True when the job's own studio process ran it (services.notify)
        self.elsewhere: Callable[[str | None, str, int, str], Awaitable[bool]] | None = None

    async def _ran_elsewhere(self, dispatcher: str | None, operation: str, owner_id: int, job_id: str) -> bool:
        return self.elsewhere is not None and await self.elsewhere(dispatcher, operation, owner_id, job_id)

    async def queue(self, owner_id: int) -> dict[str, JSON]:
        """``GET /queue``: the `queue` event's counts and positions, with every entry in run order."""
        raw = await self.comfy.queue(owner_id=owner_id)
        payload, entries = self.jobs.current_lifecycle().queue_view(raw, owner_id)
        return {**payload, "items": entries}

    def queue_view(self, raw: dict[str, list[JSON]] | None, user_id: int | None) -> dict[str, JSON]:
        """The `queue` event's payload for ``user_id`` from ComfyUI's `/queue` (None: unreachable)."""
        return self.jobs.current_lifecycle().queue_view(raw, user_id)[0]

    async def cancel(self, owner_id: int, job_id: str) -> dict[str, JSON]:
        job = await self.jobs.owned(owner_id, job_id)
        if job.state != "queued":
            raise StudioError("conflict", f"Job {job_id} is {job.state}; only a queued job can be cancelled")
        if await self._ran_elsewhere(job.dispatcher, "cancel", owner_id, job_id):
            return await self.jobs.get(owner_id, job_id)
        await self.comfy.delete_pending([job.prompt_id or ""], job_id=job.id, owner_id=owner_id)
        queue = await self.comfy.queue(owner_id=owner_id)
        if any(item[1] == job.prompt_id for item in queue["queue_running"]):
            raise StudioError("conflict", f"Job {job_id} started before it could be cancelled")
        lifecycle = self.jobs.current_lifecycle()
        lifecycle.end(await self.jobs.get(owner_id, job_id), owner_id, "cancelled")
        await lifecycle.stored([job.prompt_id or ""])
        lifecycle.queue_changed()
        return await self.jobs.get(owner_id, job_id)

    async def move_to_front(self, owner_id: int, job_id: str) -> dict[str, JSON]:
        """Run a pending job next: ComfyUI has no reordering, so delete it and submit it again in front.

        The job keeps its id and prompt id; ComfyUI never ran it, so nothing about it is lost.
        """
        job = await self.jobs.owned(owner_id, job_id)
        prompt_id = job.prompt_id or ""
        if job.state != "queued" or job_id in self.jobs.in_flight:
            raise StudioError("conflict", f"Job {job_id} is {job.state}; only a pending job can be moved")
        if await self._ran_elsewhere(job.dispatcher, "front", owner_id, job_id):
            return await self.jobs.get(owner_id, job_id)
        queue = await self.comfy.queue(owner_id=owner_id)
        if any(item[1] == prompt_id for item in queue["queue_running"]):
            raise StudioError("conflict", f"Job {job_id} is already running")
        if not any(item[1] == prompt_id for item in queue["queue_pending"]):
            raise StudioError("conflict", f"ComfyUI does not hold job {job_id} in its queue")
        self.jobs.in_flight.add(job_id)
        try:
            await self.comfy.delete_pending([prompt_id], job_id=job_id, owner_id=owner_id)
            queue = await self.comfy.queue(owner_id=owner_id)
            if any(item[1] == prompt_id for item in queue["queue_running"]):
                # The worker took it between our read and the delete: it runs now, which is what was asked.
                raise StudioError("conflict", f"Job {job_id} started before it could be moved")
            await self.jobs.send(owner_id, await self.jobs.get(owner_id, job_id), job.graph, front=True)
        finally:
            self.jobs.in_flight.discard(job_id)
        return await self.jobs.get(owner_id, job_id)

    async def clear(self, owner_id: int, *, everyone: bool) -> dict[str, JSON]:
        """Cancel this user's pending jobs (or every pending job, for the owner)."""
        raw = await self.comfy.queue(owner_id=owner_id)
        pending = [item[1] for item in raw["queue_pending"]]
        async with self.store.transaction(owner_id) as session:
            rows = await repo.jobs_by_prompt_ids(session, pending)
        targets = [j for j in rows if everyone or j.owner_id == owner_id]
        if everyone:
            await self.comfy.clear_pending(owner_id=owner_id)
        elif targets:
            await self.comfy.delete_pending([j.prompt_id or "" for j in targets], owner_id=owner_id)
        lifecycle = self.jobs.current_lifecycle()
        for job in targets:
            lifecycle.end(await self.jobs.get(job.owner_id, job.id), job.owner_id, "cancelled")
        await lifecycle.stored([job.prompt_id or "" for job in targets])
        lifecycle.queue_changed()
        return {"cancelled": [j.id for j in targets]}

    async def interrupt(self, owner_id: int, *, is_owner: bool, job_id: str | None = None) -> dict[str, JSON]:
        """Interrupt a running job: `job_id`'s, or else the caller's own (with several backends several run at
        once), or for the owner whatever runs first."""
        raw = await self.comfy.queue(owner_id=owner_id)
        running = [str(item[1]) for item in raw["queue_running"] if len(item) > 1]
        if job_id is not None:
            async with self.store.transaction(owner_id) as session:
                job = await repo.job(session, job_id)
            if job is None or (job.owner_id != owner_id and not is_owner):
                raise StudioError("not_found", f"Job {job_id} not found")
            if job.prompt_id not in running:
                raise StudioError("conflict", f"Job {job_id} is not running")
            await self.comfy.interrupt(job.prompt_id, job_id=job.id, owner_id=owner_id)
            return {"interrupted": job.id}
        if not running:
            raise StudioError("conflict", "Nothing is running")
        async with self.store.transaction(owner_id) as session:
            jobs = {j.prompt_id: j for j in await repo.jobs_by_prompt_ids(session, running)}
        mine = [p for p in running if p in jobs and jobs[p].owner_id == owner_id]
        if not mine and not is_owner:
            raise StudioError("forbidden", "The running job belongs to someone else")
        prompt_id = mine[0] if mine else running[0]
        job = jobs.get(prompt_id)
        await self.comfy.interrupt(prompt_id, job_id=job.id if job else None, owner_id=owner_id)
        return {"interrupted": job.id if job and job.owner_id == owner_id else None}
