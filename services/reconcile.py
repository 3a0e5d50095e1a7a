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
from dataclasses import dataclass, field

from ..config import StudioConfig
from ..db import jobs as repo
from ..db.models import Job
from ..db.store import Store
from .comfy_calls import LoggedComfy
from .comfy_host import JSON, HostError
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
    def __init__(self, config: StudioConfig, store: Store, comfy: LoggedComfy, jobs: Jobs, live: LiveJobs) -> None:
        self.config = config
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

    def _started(self, job: Job) -> bool:
        snapshot = self.live.tracker.get(job.prompt_id or "")
        return job.started_at is not None or (snapshot is not None and snapshot.started_at is not None)

    async def _follow(self, job: Job, *, running: bool) -> None:
        data: dict[str, JSON] = await self.jobs.get(job.owner_id, job.id)
        self.live.follow(data, job.owner_id, job.graph or {}, running=running)

    async def _lose(self, job: Job, reason: str) -> None:
        await self._follow(job, running=False)
        self.live.mark_lost(job.prompt_id or "", reason)
