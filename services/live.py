"""Live jobs: ComfyUI's executor messages → the job state machine → the event hub, and one ordered writer.

Broadcasting never waits for the disk: every message is handled synchronously on the event loop
(publishing to the hub), and what must be stored goes to a single writer task that persists state
transitions in order, coalescing progress ticks.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import struct
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..db import jobs as db_jobs
from ..db.models import ComfyCall, Image, Job, utcnow
from ..db.store import Session, Store
from ..engine.ids import JOB, new_id
from ..engine.jobstate import Change, JobSnapshot, JobState, JobTracker
from ..engine.text import check_prompt_text
from .background import cancel_and_wait
from .comfy_calls import LoggedComfy
from .comfy_host import HostError
from .eventhub import EventHub
from .files import Files
from .jobs import Jobs, image_to_dict, job_to_dict

log = logging.getLogger("comfyui_studio.live")

PREVIEW_LEGACY = 1
PREVIEW_UNENCODED = 2
PREVIEW_WITH_METADATA = 4
PROGRESS_STORE_S = 1.0
ENDING_WAIT_S = 10.0


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _from_ms(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value / 1000, tz=timezone.utc) if value else None


@dataclass
class JobRef:
    job_id: str
    owner_id: int


def progress_of(snapshot: JobSnapshot) -> dict[str, Any]:
    return {
        "node": snapshot.current_node,
        "value": snapshot.node_value,
        "max": snapshot.node_max,
        "overall": snapshot.overall,
        "cached_nodes": list(snapshot.cached_nodes),
    }


def _error_of(snapshot: JobSnapshot) -> dict[str, Any] | None:
    if snapshot.state is JobState.INTERRUPTED and snapshot.error is None:
        return {"type": "interrupted", "message": "Interrupted", "node_id": snapshot.current_node, "node_type": None}
    if snapshot.error is None:
        return None
    err = snapshot.error
    return {
        "type": err.exception_type or snapshot.state.value,
        "message": err.message,
        "node_id": err.node_id,
        "node_type": err.node_type,
    }


class LiveJobs:
    def __init__(
        self, store: Store, comfy: LoggedComfy, jobs: Jobs, files: Files, hub: EventHub, local_owner: Any
    ) -> None:
        self.store = store
        self.comfy = comfy
        self.jobs = jobs  # reads: a stored job as the API shows it
        self.files = files  # a job's outputs
        self.hub = hub
        self._local_owner = local_owner  # callable → the owner id, for foreign jobs
        self.tracker = JobTracker()
        self.refs: dict[str, JobRef] = {}
        self.cache: dict[str, dict[str, Any]] = {}  # prompt_id → job dict as last published
        self._writes: asyncio.Queue[tuple[str, str, Any]] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._progress_stored: dict[str, float] = {}  # prompt_id → monotonic time of the last progress write
        self._endings: dict[str, asyncio.Future[None]] = {}  # prompt_id → resolved once its ending is stored
        self._queue_task: asyncio.Task[None] | None = None
        self._queue_dirty = False
        # Users who get per-user queue events: every user who opened a stream in this process
        # (a resumable id implies an earlier fresh connect, which took a snapshot) and every job owner.
        self.audience: set[int] = set()
        self._queue_owners: set[int] = set()
        self.idle = asyncio.Event()
        self.idle.set()

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        self._writer = asyncio.get_running_loop().create_task(self._write_loop(), name="studio-job-writer")

    async def stop(self) -> None:
        await cancel_and_wait(self._queue_task)
        self._queue_task = None
        if self._writer is not None:
            await self.drain()
            self._writer.cancel()
            try:
                await self._writer
            except asyncio.CancelledError:
                pass
            self._writer = None

    async def stored(self, prompt_ids: list[str], timeout: float = ENDING_WAIT_S) -> None:
        """Wait until the writer has committed the endings of these jobs (at once for any not pending).

        What a read after an ending waits for: that job's own write, never the whole backlog under load.
        After ``timeout`` (a batch the store refused) the read answers what is stored."""
        waits = []
        for prompt_id in prompt_ids:
            if prompt_id not in self.refs:
                continue  # not followed any more: its ending is stored
            future = self._endings.get(prompt_id)
            if future is None:
                future = self._endings[prompt_id] = asyncio.get_running_loop().create_future()
            waits.append(future)
        if waits:
            with contextlib.suppress(asyncio.TimeoutError):  # not the builtin before Python 3.11
                await asyncio.wait_for(asyncio.shield(asyncio.gather(*waits)), timeout)

    async def drain(self) -> None:
        """Wait until everything handed to the writer is stored."""
        await self._writes.join()

    # -- the studio's own transitions --------------------------------------------------------------

    def submitted(self, prompt_id: str, job: dict[str, Any], owner_id: int, graph: dict[str, Any]) -> None:
        """A stored job is about to go to ComfyUI: know it before ComfyUI's first message, and say so."""
        self._track(prompt_id, job, owner_id, graph)
        self._publish_job(job, owner_id)

    def _publish_job(self, job: dict[str, Any], owner_id: int) -> None:
        """The one producer of `job` events: a job dict as ``job_to_dict`` builds it (with live fields merged)."""
        self.hub.publish("job", {"job": job}, user_id=owner_id)

    def _track(self, prompt_id: str, job: dict[str, Any], owner_id: int, graph: dict[str, Any]) -> None:
        self.refs[prompt_id] = JobRef(job["id"], owner_id)
        self.cache[prompt_id] = job
        self.tracker.expect(prompt_id, graph.keys(), foreign=bool(job.get("foreign")), now_ms=now_ms())

    def end(
        self,
        job: dict[str, Any],
        owner_id: int,
        state: str,
        *,
        message: str = "",
        error_type: str | None = None,
        node_errors: dict[str, Any] | None = None,
    ) -> None:
        """An ending the studio decided itself (cancelled, rejected, could not submit, lost).

        The state machine rules on it like on any ComfyUI message; the writer stores it and the
        stream says it. `drain()` then makes a read of the job agree with the stream.
        """
        prompt_id = job.get("prompt_id")
        if not prompt_id:
            return
        if prompt_id not in self.refs:
            self.follow(job, owner_id, {}, running=False)
        stamp = now_ms()
        if state == "cancelled":
            changes = self.tracker.mark_cancelled(prompt_id, now_ms=stamp)
        elif state == "rejected":
            changes = self.tracker.mark_rejected(prompt_id, message, error_type="rejected", now_ms=stamp)
        elif state == "lost":
            changes = self.tracker.mark_lost(prompt_id, message, now_ms=stamp)
        elif state == "error":
            changes = self.tracker.mark_failed(prompt_id, message, error_type=error_type, now_ms=stamp)
        else:
            raise ValueError(f"the studio cannot end a job as {state!r}")
        extra = {"node_errors": node_errors} if node_errors is not None else {}
        for change in changes:
            self._apply(change, extra)

    def accepted(self, prompt_id: str, answer: db_jobs.Accepted) -> None:
        """ComfyUI took a stored job: its number, node warnings and call-log rows, stored in order by the writer."""
        cached = self.cache.get(prompt_id)
        if cached is not None and answer.backend is not None:
            cached["backend"] = answer.backend  # the stream names the backend from here on
        self._write("accepted", prompt_id, answer)

    async def reopen_lost(self, job_id: str, prompt_id: str) -> bool:
        """A `lost` job back to `queued` under a new ComfyUI prompt id, to be sent again (its backend was lost).

        A conditional transition in the store (only from `lost`): of several callers, or studio processes on one
        store, exactly one sees its UPDATE change the row and sends the job; the others get False."""
        await self.drain()  # the lost ending itself is stored first
        async with self.store.transaction() as session:
            return await db_jobs.reopen_lost(session, job_id, prompt_id)

    def current(self, prompt_id: str) -> dict[str, Any] | None:
        """The job as the stream last said it, while the writer may not have stored it yet."""
        return self.cache.get(prompt_id) if prompt_id else None

    def follow(self, job: dict[str, Any], owner_id: int, graph: dict[str, Any], *, running: bool) -> None:
        """Follow a job found active at (re)connect: live events continue it from here."""
        prompt_id = job["prompt_id"]
        if prompt_id in self.refs:
            return
        self._track(prompt_id, job, owner_id, graph)
        if running:
            self.on_event("execution_start", {"prompt_id": prompt_id})

    def settle(self, prompt_id: str, entry: dict[str, Any]) -> None:
        """A followed job that ComfyUI finished while nobody listened: its history entry decides."""
        for change in self.tracker.apply_history(prompt_id, entry, now_ms=now_ms()):
            self._apply(change)

    def mark_lost(self, prompt_id: str, reason: str) -> None:
        for change in self.tracker.mark_lost(prompt_id, reason, now_ms=now_ms()):
            self._apply(change)

    # -- ComfyUI's messages ----------------------------------------------------------------------

    def on_event(self, event: str | int, data: Any) -> None:
        if isinstance(event, int):
            self._on_preview(event, data)
            return
        if not isinstance(data, dict):
            return
        for change in self.tracker.feed(event, data, now_ms=now_ms()):
            self._apply(change)

    def _apply(self, change: Change, extra: dict[str, Any] | None = None) -> None:
        if change.kind == "queue":
            self.queue_changed()
            return
        snapshot = change.snapshot
        if snapshot is None or change.prompt_id is None:
            return
        prompt_id = change.prompt_id
        ref = self.refs.get(prompt_id)
        if ref is None:
            ref = self._adopt_foreign(prompt_id)
        job = self.cache.get(prompt_id)
        if job is None:
            return
        if change.kind == "state":
            job = {
                **job,
                "state": snapshot.state.value,
                "progress": progress_of(snapshot),
                "error": _error_of(snapshot),
                "started_at": _iso_ms(snapshot.started_at) or job.get("started_at"),
                "finished_at": _iso_ms(snapshot.finished_at) or job.get("finished_at"),
                **(extra or {}),
            }
            self.cache[prompt_id] = job
            self._publish_job(job, ref.owner_id)
            self._write("state", prompt_id, (snapshot, extra or {}))
        elif change.kind == "progress":
            progress = progress_of(snapshot)
            job["progress"] = progress
            payload: dict[str, object] = {"job_id": ref.job_id, "prompt_id": prompt_id, "progress": progress}
            self.hub.publish("progress", payload, user_id=ref.owner_id)
            # Stored at most every PROGRESS_STORE_S per job: a store write per tick would load the loop
            # ComfyUI's own delivery runs on. State changes store the latest progress anyway, and
            # resync snapshots take it from `cache`.
            now = time.monotonic()
            if now - self._progress_stored.get(prompt_id, 0.0) >= PROGRESS_STORE_S:
                self._progress_stored[prompt_id] = now
                self._write("progress", prompt_id, snapshot)
            if snapshot.awaiting_outcome:
                self._write("history", prompt_id, None)
        elif change.kind == "output":
            self._write("output", prompt_id, {change.node_id: snapshot.outputs.get(change.node_id or "", {})})

    def _adopt_foreign(self, prompt_id: str) -> JobRef:
        """A prompt queued from ComfyUI's own editor (or another client): followed as a foreign job."""
        owner_id = self._local_owner()
        ref = JobRef(new_id(JOB), owner_id)
        self.refs[prompt_id] = ref
        # The same dict every route and event uses, from a row not yet stored (the writer stores it).
        created = _from_ms(now_ms()) or utcnow()
        row = Job(
            id=ref.job_id, owner_id=owner_id, prompt_id=prompt_id, state="queued", foreign=True, created_at=created
        )
        self.cache[prompt_id] = job_to_dict(row, [])
        self._write("foreign", prompt_id, ref)
        return ref

    def _on_preview(self, event: int, data: Any) -> None:
        if not any(sub.previews for sub in self.hub._subs):
            return
        try:
            prompt_id, image, mime = self._decode_preview(event, data)
        except Exception:
            log.debug("Unreadable preview frame %r", event, exc_info=True)
            return
        if prompt_id is None:
            active = [s for s in self.tracker.active() if s.state is JobState.RUNNING]
            prompt_id = active[0].prompt_id if active else None
        ref = self.refs.get(prompt_id or "")
        if prompt_id and ref:
            self.hub.publish_preview(prompt_id, image, mime, user_id=ref.owner_id)

    @staticmethod
    def _decode_preview(event: int, data: Any) -> tuple[str | None, bytes, str]:
        if event == PREVIEW_UNENCODED:  # in-process: ("JPEG", PIL image, max_size)
            return None, _encode_pil(data), "image/jpeg"
        if event == PREVIEW_WITH_METADATA and isinstance(data, tuple):  # in-process: (image tuple, metadata)
            image_tuple, metadata = data
            return metadata.get("prompt_id"), _encode_pil(image_tuple), "image/jpeg"
        raw = bytes(data)
        if event == PREVIEW_LEGACY:  # over /ws: [u32 image type][bytes]
            kind = struct.unpack(">I", raw[:4])[0]
            return None, raw[4:], "image/png" if kind == 2 else "image/jpeg"
        if event == PREVIEW_WITH_METADATA:  # over /ws: [u32 json length][json][bytes]
            size = struct.unpack(">I", raw[:4])[0]
            metadata = json.loads(raw[4 : 4 + size])
            return metadata.get("prompt_id"), raw[4 + size :], metadata.get("image_type", "image/jpeg")
        raise ValueError(f"not a preview event: {event}")

    # -- queue status ----------------------------------------------------------------------------

    def queue_changed(self) -> None:
        """ComfyUI's queue moved: publish counts and positions soon, coalescing bursts of changes."""
        self._queue_dirty = True
        if self._queue_task is None or self._queue_task.done():
            self._queue_task = asyncio.get_running_loop().create_task(self._queue_loop(), name="studio-queue")

    async def _queue_loop(self) -> None:
        while self._queue_dirty:
            self._queue_dirty = False
            try:
                # The host directly, not the call log: this runs on every queue change.
                raw = await self.comfy.host.queue()
            except HostError:
                return
            except Exception:
                log.exception("Could not read ComfyUI's queue")
                return
            self.publish_queue(raw)

    def queue_view(
        self, raw: dict[str, list[Any]] | None, user_id: int | None
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The queue as ``user_id`` sees it (None: every studio job's position): see ``queue_view``."""
        return queue_view(raw, self.refs, user_id)

    def publish_queue(self, raw: dict[str, list[Any]]) -> None:
        """One `queue` event per user: global counts, and the positions of that user's jobs."""
        owners = {ref.owner_id for ref in self.refs.values()} & queued_prompt_owners(raw, self.refs)
        # Users whose jobs just left the queue need one more event that says so.
        for user_id in sorted(self.audience | owners | self._queue_owners | {self._local_owner()}):
            self.hub.publish("queue", queue_view(raw, self.refs, user_id)[0], user_id=user_id)
        self._queue_owners = owners

    # -- the writer ----------------------------------------------------------------------------

    def _write(self, kind: str, prompt_id: str, payload: Any) -> None:
        self.idle.clear()
        self._writes.put_nowait((kind, prompt_id, payload))

    async def _write_loop(self) -> None:
        while True:
            first = await self._writes.get()
            batch = [first]
            while not self._writes.empty():
                batch.append(self._writes.get_nowait())
            try:
                await self._persist(batch)
            except Exception:
                log.exception("The job writer could not store %d changes", len(batch))
            finally:
                for _ in batch:
                    self._writes.task_done()
                if self._writes.empty():
                    self.idle.set()

    async def _persist(self, batch: list[tuple[str, str, Any]]) -> None:
        """Store a batch of pending changes in one transaction, with a handful of statements whatever its size.

        Before it: ComfyUI is asked for what the rows need (foreign jobs' graphs, output files and their
        thumbnails). In it, in this order: new foreign jobs, every job's new images (a job's images are
        stored before its ending is), each job's newest state and progress, and the jobs that ended, read
        back with their images to be announced. After it: history look-ups, which feed new changes back in.
        Under load the batches grow and the writer keeps up with the stream.
        """
        await self._claim_known(batch)  # before the refs are read below
        work = self._sort(batch)
        foreign, accepted, outputs, history, ended = work.foreign, work.accepted, work.outputs, work.history, work.ended
        states, ticks = list(work.states.values()), work.ticks()
        foreign_rows = await self._foreign_rows(foreign)
        prepared = await self._prepare_outputs(outputs)
        async with self.store.transaction() as session:
            await db_jobs.insert_foreign(session, foreign_rows)
            await db_jobs.record_accepted(session, accepted)
            for owner, rows in _by_owner(prepared).items():
                await db_jobs.add_owned(session, rows, owner)
            texts = await self._attach_metadata(session, outputs)
            await db_jobs.write_states(session, states, ticks)
            shown = await self.jobs.serialize(
                session, await db_jobs.jobs_to_show(session, [ref.job_id for ref in ended.values()])
            )
        for row in foreign_rows:
            if row["graph"]:
                self.tracker.expect(row["prompt_id"], row["graph"].keys())
        self._publish_outputs(outputs, prepared, texts)
        by_id = {job["id"]: job for job in shown}
        for prompt_id, ref in ended.items():
            job = by_id.get(ref.job_id)
            if job is not None:
                self._publish_job(job, ref.owner_id)
            self.tracker.forget(prompt_id)
            self.refs.pop(prompt_id, None)
            self.cache.pop(prompt_id, None)
            self._progress_stored.pop(prompt_id, None)
            waiting = self._endings.pop(prompt_id, None)
            if waiting is not None and not waiting.done():
                waiting.set_result(None)
        for prompt_id, ref in history:
            await self._settle_from_history(prompt_id, ref)

    def _sort(self, batch: list[tuple[str, str, Any]]) -> _Batch:
        """What a batch asks the store for, by kind: each job's newest state and progress collapse into one."""
        work = _Batch()
        for index, (kind, prompt_id, payload) in enumerate(batch):
            if kind == "foreign":
                adopted = self.refs.get(prompt_id)
                if adopted is not None and adopted is payload:  # not claimed by a stored job
                    work.foreign.append((prompt_id, adopted))
                continue
            if kind == "accepted":
                work.accepted.append(payload)  # the job row exists: its first commit came before ComfyUI was asked
                continue
            ref = self.refs.get(prompt_id)
            if ref is None:
                continue
            if kind == "state":
                work.add_state(index, prompt_id, ref, *payload)
            elif kind == "progress":
                work.progress[prompt_id] = (index, ref.job_id, progress_of(payload))
            elif kind == "output":
                work.outputs.append((prompt_id, ref, payload))
            elif kind == "history":
                work.history.append((prompt_id, ref))
        return work

    async def _claim_known(self, batch: list[tuple[str, str, Any]]) -> None:
        """A prompt adopted as foreign that the store already holds (another process on this store submitted
        it, e.g. a replay from the command line) is followed as that job, under its own id and owner."""
        adopted = {prompt_id: ref for kind, prompt_id, ref in batch if kind == "foreign"}
        if not adopted:
            return
        async with self.store.transaction() as session:
            known = await db_jobs.jobs_by_prompt_ids(session, list(adopted))
        for job in known:
            prompt_id = job.prompt_id or ""
            if self.refs.get(prompt_id) is not adopted[prompt_id]:
                continue
            self.refs[prompt_id] = JobRef(job.id, job.owner_id)
            cached = self.cache.get(prompt_id)
            if cached is not None:
                self.cache[prompt_id] = {**cached, "id": job.id, "foreign": job.foreign}
            log.info("Prompt %s belongs to stored job %s: followed as that job", prompt_id, job.id)

    async def _foreign_rows(self, foreign: list[tuple[str, JobRef]]) -> list[dict[str, Any]]:
        """Rows for jobs queued outside the studio, with the graph ComfyUI's queue holds for each (one read)."""
        if not foreign:
            return []
        graphs: dict[str, dict[str, Any]] = {}
        try:
            queue = await self.comfy.queue(owner_id=foreign[0][1].owner_id)
            for item in queue["queue_running"] + queue["queue_pending"]:
                if len(item) > 2 and isinstance(item[2], dict):
                    graphs[str(item[1])] = item[2]
        except HostError:
            pass
        return [
            {"id": ref.job_id, "owner_id": ref.owner_id, "prompt_id": prompt_id, "graph": graphs.get(prompt_id, {})}
            for prompt_id, ref in foreign
        ]

    async def _prepare_outputs(
        self, items: list[tuple[str, JobRef, dict[str, Any]]]
    ) -> list[tuple[JobRef, list[Image], list[ComfyCall]]]:
        """Each output's new images, read from ComfyUI and thumbnailed side by side (nothing stored yet)."""
        if not items:
            return []
        job_ids = sorted({ref.job_id for _pid, ref, _outputs in items})
        async with self.store.transaction() as session:
            existing = await db_jobs.image_keys_of(session, job_ids)
        found = await asyncio.gather(
            *(
                self.files.prepare_outputs(ref.owner_id, ref.job_id, outputs, existing[ref.job_id])
                for _pid, ref, outputs in items
            )
        )
        # Two outputs of one job in a batch must not both add the same file.
        seen: dict[str, set[tuple[str, str, str]]] = {}
        prepared = []
        for (_pid, ref, _outputs), (images, calls) in zip(items, found, strict=True):
            keys = seen.setdefault(ref.job_id, set())
            fresh = [i for i in images if (i.filename, i.subfolder, i.folder_type) not in keys]
            keys.update((i.filename, i.subfolder, i.folder_type) for i in fresh)
            prepared.append((ref, fresh, calls))
        return prepared

    async def _attach_metadata(
        self, session: Session, items: list[tuple[str, JobRef, dict[str, Any]]]
    ) -> dict[str, str]:
        """What Studio Save Image nodes said made their images (prompt text, parameters), even for a graph
        queued from ComfyUI's own editor; returns the prompt texts by prompt id."""
        texts: dict[str, str] = {}
        for prompt_id, ref, outputs in items:
            for meta in studio_metadata(outputs):
                text = meta.get("prompt_text")
                text = check_prompt_text(text, self.files.config.max_prompt_chars) if isinstance(text, str) else None
                parameters = meta.get("parameters")
                await db_jobs.attach_studio_metadata(
                    session,
                    ref.job_id,
                    ref.owner_id,
                    text or None,
                    parameters if isinstance(parameters, dict) else None,
                )
                if text:
                    texts[prompt_id] = text
        return texts

    def _publish_outputs(
        self,
        items: list[tuple[str, JobRef, dict[str, Any]]],
        prepared: list[tuple[JobRef, list[Image], list[ComfyCall]]],
        texts: dict[str, str],
    ) -> None:
        for (prompt_id, ref, _outputs), (_ref, images, _calls) in zip(items, prepared, strict=True):
            cached = self.cache.get(prompt_id)
            if cached is not None and texts.get(prompt_id) and not cached.get("prompt_text"):
                cached["prompt_text"] = texts[prompt_id]
            for image in images:
                data = image_to_dict(image)
                self.hub.publish("output", {"job_id": ref.job_id, "image": data}, user_id=ref.owner_id)
                if cached is not None:
                    cached["images"] = [*cached.get("images", []), data]

    async def _settle_from_history(self, prompt_id: str, ref: JobRef) -> None:
        try:
            history = await self.comfy.history(prompt_id, job_id=ref.job_id, owner_id=ref.owner_id)
        except HostError:
            log.warning("Could not read ComfyUI's history for %s", prompt_id)
            return
        entry = history.get(prompt_id)
        if entry:
            for change in self.tracker.apply_history(prompt_id, entry, now_ms=now_ms()):
                self._apply(change)


def studio_metadata(outputs: dict[str, Any]) -> list[dict[str, Any]]:
    """The `studio` entries a Studio Save Image node puts in its UI output: prompt text and parameters."""
    found: list[dict[str, Any]] = []
    for output in outputs.values():
        for entry in (output or {}).get("studio") or []:
            if isinstance(entry, dict):
                found.append(entry)
    return found


def _iso_ms(value: int | None) -> str | None:
    moment = _from_ms(value)
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def _encode_pil(image_tuple: Any) -> bytes:
    fmt, image, max_size = image_tuple
    if max_size is not None:
        image = image.copy()
        image.thumbnail((max_size, max_size))
    out = io.BytesIO()
    image.convert("RGB").save(out, format="JPEG" if fmt == "JPEG" else "PNG", quality=85)
    return out.getvalue()


def queued_prompt_owners(raw: dict[str, list[Any]], refs: dict[str, JobRef]) -> set[int]:
    items = (raw.get("queue_running") or []) + (raw.get("queue_pending") or [])
    return {refs[item[1]].owner_id for item in items if len(item) > 1 and item[1] in refs}


def queue_view(
    raw: dict[str, list[Any]] | None, refs: dict[str, JobRef], user_id: int | None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The one builder of the queue as a user sees it: the `queue` event's payload (counts of everything in
    ComfyUI's queue, this user's positions: 0 runs now, 1 runs next) and the entries `GET /queue` lists.

    ``raw`` is ComfyUI's `/queue` (None: unreachable). Other users' and unknown prompts are counted, never named.
    """
    if raw is None:
        return {"running": 0, "pending": 0, "positions": {}, "connected": False}, []
    running = raw.get("queue_running") or []
    pending = sorted(raw.get("queue_pending") or [], key=lambda item: item[0])
    positions: dict[str, int] = {}
    entries: list[dict[str, Any]] = []
    for position, item in [(0, i) for i in running] + list(enumerate(pending, start=1)):
        ref = refs.get(item[1]) if len(item) > 1 else None
        job_id = ref.job_id if ref is not None and (user_id is None or ref.owner_id == user_id) else None
        mine = job_id is not None
        if job_id is not None:
            positions[job_id] = position
        entries.append(
            {
                "job_id": job_id,
                "prompt_id": item[1] if mine else None,
                "number": item[0],
                "position": position,
                "mine": mine,
            }
        )
    payload = {"running": len(running), "pending": len(pending), "positions": positions, "connected": True}
    return payload, entries


@dataclass
class _Batch:
    """One writer batch sorted by what it asks of the store."""

    foreign: list[tuple[str, JobRef]] = field(default_factory=list)
    accepted: list[db_jobs.Accepted] = field(default_factory=list)
    outputs: list[tuple[str, JobRef, dict[str, Any]]] = field(default_factory=list)
    history: list[tuple[str, JobRef]] = field(default_factory=list)
    states: dict[str, db_jobs.StateWrite] = field(default_factory=dict)  # prompt_id → newest state
    order: dict[str, int] = field(default_factory=dict)  # prompt_id → index of its newest state
    progress: dict[str, tuple[int, str, dict[str, Any]]] = field(default_factory=dict)  # prompt_id → newest tick
    ended: dict[str, JobRef] = field(default_factory=dict)

    def add_state(self, index: int, prompt_id: str, ref: JobRef, snapshot: JobSnapshot, extra: dict[str, Any]) -> None:
        earlier = self.states.get(prompt_id)
        self.states[prompt_id] = db_jobs.StateWrite(
            job_id=ref.job_id,
            owner_id=ref.owner_id,
            state=snapshot.state.value,
            progress=progress_of(snapshot),
            error=_error_of(snapshot),
            started_at=_from_ms(snapshot.started_at) or (earlier.started_at if earlier else None),
            finished_at=(_from_ms(snapshot.finished_at) or utcnow()) if snapshot.terminal else None,
            extra={**(earlier.extra if earlier else {}), **extra},
        )
        self.order[prompt_id] = index
        if snapshot.terminal:
            self.ended[prompt_id] = ref
        else:
            self.ended.pop(prompt_id, None)

    def ticks(self) -> list[tuple[str, dict[str, Any]]]:
        """The newest progress of each job, unless a later state of the batch already holds a newer one."""
        return [(job_id, p) for pid, (i, job_id, p) in self.progress.items() if i > self.order.get(pid, -1)]


def _by_owner(prepared: list[tuple[JobRef, list[Image], list[ComfyCall]]]) -> dict[int, list[Image | ComfyCall]]:
    rows: dict[int, list[Image | ComfyCall]] = {}
    for ref, images, calls in prepared:
        rows.setdefault(ref.owner_id, []).extend([*images, *calls])
    return rows
