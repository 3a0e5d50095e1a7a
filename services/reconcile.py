"""Reconciliation: jobs the store calls active, checked against what ComfyUI really holds.

Runs when the studio starts (a previous process may have left jobs `queued`/`running`) and after the
event socket to a remote ComfyUI reconnects (events were missed, or ComfyUI restarted and forgot its
queue and history). Every active job ends up either followed live (ComfyUI still runs or holds it),
settled from ComfyUI's history (done with its outputs, error, interrupted), re-queued under the same
job id and prompt id (pending, never started, ComfyUI forgot it), or `lost` with the reason. Nothing
is deleted.

ComfyUI's queue is read before its history: a job that finishes between the two reads is then found
in the history, never mistaken for a lost one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ..config import StudioConfig
from ..db import jobs as repo
from ..db.models import Job
from ..db.store import Store
from .comfy_calls import LoggedComfy
from .comfy_host import JSON, HostError
from .comfy_pool import BackendPool
from .jobs import Jobs
from .live import LiveJobs

log = logging.getLogger("comfyui_studio.reconcile")

LOST_RUNNING = (
    "ComfyUI has no record of this job: it was running when ComfyUI or the studio stopped, "
    "and a restarted ComfyUI forgets its queue and history"
)
LOST_PENDING = "ComfyUI forgot this job before it started (ComfyUI restarted)"
LOST_NOT_REQUEUED = LOST_PENDING + "; re-queuing is off (requeue_pending_on_start)"
LOST_FOREIGN = "ComfyUI forgot this job before it started; it was queued outside the studio, so it is not re-queued"


def lost_on_backend(name: str, running: bool) -> str:
    where = "local ComfyUI" if name == "local" else f"Backend {name}"
    return f"{where} stopped responding while this job was {'running' if running else 'waiting in its queue'}"


@dataclass
class ReconcileReport:
    """Job ids by what reconciliation did with them."""

    following: list[str] = field(default_factory=list)
    settled: list[str] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    skipped: bool = False  # ComfyUI was unreachable: nothing was changed


def _order(job: Job) -> tuple[bool, float, object, str]:
    # ComfyUI's own order (its number; `front` jobs are negative), then submission order.
    return (job.number is None, job.number or 0.0, job.created_at, job.id)


class Reconciler:
    def __init__(
        self,
        config: StudioConfig,
        store: Store,
        comfy: LoggedComfy,
        jobs: Jobs,
        live: LiveJobs,
        requeue_lost: Callable[[], Awaitable[bool]] | None = None,
        pool: BackendPool | None = None,
    ) -> None:
        self.config = config
        self.pool = pool  # several backends: which one holds each prompt
        self.requeue_lost = requeue_lost  # the `requeue_lost_jobs` setting
        self.store = store
        self.comfy = comfy
        self.jobs = jobs
        self.live = live
        self._lock = asyncio.Lock()  # a reconnect during start-up must not reconcile twice at once

    async def run(self) -> ReconcileReport:
        async with self._lock:
            return await self._run()

    async def _run(self) -> ReconcileReport:
        report = ReconcileReport()
        await self.live.drain()  # the store must be as new as what the tracker has seen
        async with self.store.transaction() as session:
            rows = await repo.active_jobs(session, None, None)
        rows = [j for j in rows if j.prompt_id and j.id not in self.jobs.in_flight]
        # Another studio process on the same PostgreSQL database follows its own jobs (db.dispatch).
        rows = await self.store.dispatch.claim(self.store, rows)
        if self.pool is not None:
            for job in rows:  # after a restart the store says which backend holds what
                self.pool.remember(job.prompt_id or "", job.backend)
        if not rows:
            return report
        try:
            queue = await self.comfy.queue()
        except HostError as exc:
            # Absence can only be concluded from an answer: leave everything as it is.
            log.warning("Cannot reconcile %d active jobs: ComfyUI's queue is unreadable (%s)", len(rows), exc)
            report.skipped = True
            return report
        running = {item[1] for item in queue["queue_running"]}
        pending = {item[1] for item in queue["queue_pending"]}
        to_requeue: list[Job] = []
        for job in sorted(rows, key=_order):
            prompt_id = job.prompt_id or ""
            if prompt_id in running or prompt_id in pending:
                await self._follow(job, running=prompt_id in running)
                report.following.append(job.id)
                continue
            try:
                history = await self.comfy.history(prompt_id, job_id=job.id, owner_id=job.owner_id)
            except HostError as exc:
                log.warning("Cannot read ComfyUI's history for job %s (%s); left as %s", job.id, exc, job.state)
                continue
            entry = history.get(prompt_id)
            if isinstance(entry, dict):
                await self._follow(job, running=False)
                self.live.settle(prompt_id, entry)
                report.settled.append(job.id)
            elif job.state == "queued" and not self._started(job) and not job.foreign:
                if self.config.requeue_pending_on_start:
                    to_requeue.append(job)
                else:
                    await self._lose(job, LOST_NOT_REQUEUED)
                    report.lost.append(job.id)
            else:
                await self._lose(job, LOST_FOREIGN if job.foreign and job.state == "queued" else LOST_RUNNING)
                report.lost.append(job.id)
        for job in to_requeue:  # in their original order, so ComfyUI numbers them the same way
            try:
                await self.jobs.requeue(job.owner_id, job.id)
                report.requeued.append(job.id)
            except Exception:
                # requeue() already stored why (rejected, or ComfyUI unavailable)
                log.warning("Could not re-queue job %s", job.id, exc_info=True)
        await self.live.drain()
        if any((report.following, report.settled, report.requeued, report.lost)):
            log.info(
                "Reconciled jobs: %d followed, %d settled from history, %d re-queued, %d lost",
                len(report.following),
                len(report.settled),
                len(report.requeued),
                len(report.lost),
            )
        self.live.queue_changed()
        return report

    async def backend_down(self, name: str, prompt_ids: list[str]) -> ReconcileReport:
        """A pool member stopped responding: its running and waiting jobs end `lost` naming it, and with
        `requeue_lost_jobs` on each is sent again to another member (the store's lost → queued decides who)."""
        report = ReconcileReport()
        async with self._lock:
            await self.live.drain()
            async with self.store.transaction() as session:
                rows = await repo.active_on_backend(session, name)
                known = {j.id for j in rows}
                for job in await repo.jobs_by_prompt_ids(session, prompt_ids):
                    if job.id not in known and job.state in repo.ACTIVE_STATES:
                        rows.append(job)
            rows = [j for j in rows if j.prompt_id and j.id not in self.jobs.in_flight]
            # On a shared PostgreSQL database each studio process settles the jobs it dispatched (db.dispatch)
            rows = await self.store.dispatch.claim(self.store, rows)
            for job in sorted(rows, key=_order):
                running = job.state == "running" or self._started(job)
                await self._lose(job, lost_on_backend(name, running))
                if self.pool is not None:
                    self.pool.forget_prompt(job.prompt_id or "")
                report.lost.append(job.id)
            await self.live.stored([j.prompt_id or "" for j in rows])
            await self.live.drain()
        if rows:
            log.warning("Backend %s stopped responding: %d jobs lost", name, len(rows))
        if rows and self.requeue_lost is not None and await self.requeue_lost():
            for job in sorted(rows, key=_order):
                if job.foreign:
                    continue  # queued outside the studio: not the studio's to send again
                try:
                    if await self.jobs.requeue_lost(job.owner_id, job.id):
                        report.requeued.append(job.id)
                except Exception:
                    log.warning("Could not re-queue lost job %s", job.id, exc_info=True)
        self.live.queue_changed()
        return report

    def _started(self, job: Job) -> bool:
        snapshot = self.live.tracker.get(job.prompt_id or "")
        return job.started_at is not None or (snapshot is not None and snapshot.started_at is not None)

    async def _follow(self, job: Job, *, running: bool) -> None:
        data: dict[str, JSON] = await self.jobs.get(job.owner_id, job.id)
        self.live.follow(data, job.owner_id, job.graph or {}, running=running)

    async def _lose(self, job: Job, reason: str) -> None:
        await self._follow(job, running=False)
        self.live.mark_lost(job.prompt_id or "", reason)
