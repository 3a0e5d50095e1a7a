"""Jobs: submitting graphs, reading them back, and replaying logged calls.

The queue's controls live in services/queue_control.py, images and files in services/files.py; every job's
state after `queued` is the lifecycle's (services/live.py). Queries are db/jobs.py's.
"""

from __future__ import annotations

import builtins
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from functools import partial
from typing import Any, Protocol

from ..config import StudioConfig
from ..db import jobs as repo
from ..db.models import ComfyCall, Image, Job
from ..db.store import Session, Store
from ..engine import dynprompts
from ..engine.errors import StudioError, not_found
from ..engine.ids import JOB, new_id
from .comfy_calls import LoggedComfy
from .comfy_host import JSON, HostError, HostRejected, SubmitResult
from .search import JobFilter, page_query

log = logging.getLogger("comfyui_studio.jobs")

ACTIVE_STATES = repo.ACTIVE_STATES
MAX_PAGE = 200
CHOICE_SEED = "choice_seed"  # the job parameter that repeats a run's dynamic-prompt choices

NodeDefinitions = Callable[[], Awaitable[dict[str, JSON]]]


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def image_to_dict(image: Image) -> dict[str, JSON]:
    return {
        "id": image.id,
        "job_id": image.job_id,
        "kind": image.kind,
        "node_id": image.node_id,
        "width": image.width,
        "height": image.height,
        "mime": image.mime,
        "url": f"/studio/api/v1/images/{image.id}",
        "thumb_url": f"/studio/api/v1/images/{image.id}/thumb",
        "liked": image.liked_at is not None,
        # maintenance may remove the file when over quota; purged: it did (the row and thumbnail stay)
        "expirable": bool(image.expirable),
        "purged": image.purged_at is not None,
        "created_at": iso(image.created_at),
    }


def job_to_dict(job: Job, images: list[Image], prompt_text: str | None = None) -> dict[str, JSON]:
    extra = job.extra or {}
    return {
        "id": job.id,
        "prompt_id": job.prompt_id,
        "state": job.state,
        "prompt_text": prompt_text,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "progress": job.progress or {},
        "error": job.error,
        "node_errors": job.node_errors or {},
        "foreign": job.foreign,
        "backend": job.backend,  # the ComfyUI backend that took it (its URL, or "local")
        "replay_of": job.replay_of,
        "action_slot": job.action_slot,
        # an action run's: the same keys on every job, so its answer, its events and every read agree
        "action": job.action_slot,
        "workflow_id": extra.get("workflow_id"),
        "workflow_version": extra.get("workflow_version"),
        "warnings": list(extra.get("action_warnings") or []),
        "parameters": job.parameters or {},
        "parent_image_id": job.parent_image_id,
        "mask_image_id": job.mask_image_id,  # an edit's mask (the Edit page reopens it)
        "workflow_version_id": job.workflow_version_id,
        # what this job ran of a prompt that made several (permutations, --repeat): text, codes, place
        "expansion": extra.get("expansion"),
        "images": [image_to_dict(i) for i in images],
    }


def submitted_job(row: dict[str, JSON], created: datetime, prompt_text: str | None) -> dict[str, JSON]:
    """A job as the API shows it, from the columns the submit just wrote (no read-back)."""
    job = Job(**{k: v for k, v in row.items() if k != "prompt_row_id"}, created_at=created)
    job.state, job.progress, job.node_errors, job.foreign = "queued", {}, {}, False
    job.extra = row.get("extra") or {}
    return job_to_dict(job, [], prompt_text)


def jobs_answer(jobs: list[dict[str, JSON]]) -> dict[str, JSON]:
    """A submit's answer: the Job itself when it made one (as always), else ``{"jobs": [Job…], "count": n}``."""
    if len(jobs) == 1:
        return jobs[0]
    return {"jobs": list(jobs), "count": len(jobs)}


def rejection_details(body: JSON) -> tuple[str, list[JSON]]:
    """A readable message naming the refused nodes, and ComfyUI's node errors as details."""
    error = body.get("error") if isinstance(body, dict) else None
    node_errors = body.get("node_errors") if isinstance(body, dict) else None
    details: list[JSON] = []
    names: list[str] = []
    for node_id, entry in (node_errors or {}).items():
        class_type = entry.get("class_type", "?")
        errors = entry.get("errors", [])
        details.append({"node_id": node_id, "class_type": class_type, "errors": errors})
        reasons = "; ".join(f"{e.get('details') or ''} {e.get('message', '')}".strip() for e in errors)
        names.append(f"node {node_id} ({class_type}): {reasons}")
    base = error.get("message") if isinstance(error, dict) else str(error or "ComfyUI refused the graph")
    if isinstance(error, dict) and error.get("details") and not names:
        base = f"{base} ({error['details']})"
    message = f"ComfyUI refused the graph: {base}" + (" — " + " | ".join(names) if names else "")
    if not details and isinstance(error, dict):
        details.append({"type": error.get("type"), "message": error.get("message"), "details": error.get("details")})
    return message, details


class JobLifecycle(Protocol):
    """The one owner of job state (services/live.py): Jobs reports what the studio did, never writes state."""

    def submitted(self, prompt_id: str, job: dict[str, JSON], owner_id: int, graph: dict[str, JSON]) -> None: ...

    def end(
        self,
        job: dict[str, JSON],
        owner_id: int,
        state: str,
        *,
        message: str = "",
        error_type: str | None = None,
        node_errors: dict[str, JSON] | None = None,
    ) -> None: ...

    async def drain(self) -> None: ...

    async def stored(self, prompt_ids: list[str], timeout: float = ...) -> None: ...

    def queue_changed(self) -> None: ...

    def accepted(self, prompt_id: str, answer: repo.Accepted) -> None: ...

    async def reopen_lost(self, job_id: str, prompt_id: str) -> bool: ...

    def current(self, prompt_id: str) -> dict[str, JSON] | None: ...

    def queue_view(
        self, raw: dict[str, list[JSON]] | None, user_id: int | None
    ) -> tuple[dict[str, JSON], list[dict[str, JSON]]]: ...


# What the lifecycle may know before its writer stored it: a read never answers older than the stream.
LIVE_FIELDS = ("state", "progress", "error", "started_at", "finished_at")


class Jobs:
    def __init__(
        self, config: StudioConfig, store: Store, comfy: LoggedComfy, node_definitions: NodeDefinitions | None = None
    ) -> None:
        self.config = config
        self.store = store
        self.comfy = comfy
        # ComfyUI's /object_info (the workflow service's cached copy): which text inputs take dynamic prompts.
        self.node_definitions: NodeDefinitions = node_definitions or comfy.object_info
        self.lifecycle: JobLifecycle | None = None  # set when the studio starts
        self.in_flight: set[str] = set()  # job ids between "stored" and "held by ComfyUI"

    # -- reading -------------------------------------------------------------------------------

    async def _load(self, session: Session, owner_id: int, job_id: str) -> Job:
        job = await repo.owned_job(session, owner_id, job_id)
        if job is None:
            raise not_found("Job")
        return job

    async def serialize(self, session: Session, jobs: list[Job]) -> list[dict[str, JSON]]:
        """Jobs as the API shows them, with their images and prompt text, and the lifecycle's newest state."""
        if not jobs:
            return []
        by_job = await repo.images_of(session, [j.id for j in jobs])
        texts = await repo.prompt_texts(session, {j.prompt_row_id for j in jobs if j.prompt_row_id})
        return self._items(jobs, by_job, texts)

    def _items(
        self, jobs: Sequence[Any], by_job: dict[str, Any], texts: dict[int, str]
    ) -> builtins.list[dict[str, JSON]]:
        return self._overlay([job_to_dict(j, by_job.get(j.id, []), texts.get(j.prompt_row_id or 0)) for j in jobs])

    def _overlay(self, out: builtins.list[dict[str, JSON]]) -> builtins.list[dict[str, JSON]]:
        """Jobs as stored, with what the lifecycle knows newer of those still active."""
        if self.lifecycle is not None:
            for item in out:
                live = self._live(item)
                # An ending is answered once stored, with its images (get() waits for that).
                if live is not None and live["state"] in ACTIVE_STATES:
                    item.update({key: live[key] for key in LIVE_FIELDS if key in live})
        return out

    async def owned(self, owner_id: int, job_id: str) -> Job:
        """The stored row of one of ``owner_id``'s jobs (404 otherwise)."""
        async with self.store.transaction(owner_id) as session:
            return await self._load(session, owner_id, job_id)

    def _live(self, item: dict[str, JSON]) -> dict[str, JSON] | None:
        live = self.lifecycle.current(str(item["prompt_id"] or "")) if self.lifecycle is not None else None
        return live if live is not None and live.get("id") == item["id"] else None

    async def get(self, owner_id: int, job_id: str) -> dict[str, JSON]:
        """The job, never older than what the event stream has said of it."""
        async with self.store.transaction(owner_id) as session:
            job = await self._load(session, owner_id, job_id)
            item = (await self.serialize(session, [job]))[0]
        live = self._live(item)
        if live is not None and live["state"] not in ACTIVE_STATES and live["state"] != item["state"]:
            # The stream said it ended: answer the stored ending (this job's write, not the whole backlog).
            await self.current_lifecycle().stored([str(item["prompt_id"])])
            async with self.store.transaction(owner_id) as session:
                job = await self._load(session, owner_id, job_id)
                item = (await self.serialize(session, [job]))[0]
        return item

    async def list(
        self, owner_id: int, *, cursor: str | None, limit: int, filters: JobFilter | None = None
    ) -> dict[str, JSON]:
        limit = max(1, min(limit, MAX_PAGE))
        query = page_query(self.store, owner_id, cursor, limit + 1, filters)
        listing = await self.store.read(partial(repo.read_listing, query=query, limit=limit))
        return {"items": self._overlay(listing.items), "next_cursor": listing.next_cursor}

    async def active(self, owner_id: int | None) -> builtins.list[dict[str, JSON]]:
        async with self.store.transaction(owner_id) as session:
            return await self.serialize(session, await repo.active_jobs(session, owner_id, MAX_PAGE))

    # -- submitting ------------------------------------------------------------------------------

    async def submit(
        self,
        owner_id: int,
        graph: dict[str, JSON],
        *,
        prompt_text: str | None = None,
        clean_text: str | None = None,
        front: bool = False,
        replay_of: str | None = None,
        replay_call: int | None = None,
        patches: builtins.list[JSON] | None = None,
        parameters: dict[str, JSON] | None = None,
        choice_seed: int | None = None,
        dynamic_prompts: bool = True,
        prompt_id: str | None = None,
        on_accepted: Callable[[SubmitResult], None] | None = None,
        **job_fields: JSON,
    ) -> dict[str, JSON]:
        """Store a new job, hand it to ComfyUI, store what ComfyUI answered: two commits, no read-back.

        Every new graph passes here, so dynamic prompts are drawn here, once per job, exactly as ComfyUI's
        frontend draws them when it queues: the job keeps the graph as sent, the text replaces among its
        patches, and the seed under ``parameters.choice_seed`` (``choice_seed`` repeats an earlier draw).
        A replay sends a logged graph again as it was (``dynamic_prompts=False``).
        job_fields are further Job columns written with it (an action run's slot, source image).
        A ComfyUI client may name the prompt id (``prompt_id``) and wants ComfyUI's answer (``on_accepted``).
        A crash between the two commits leaves a `queued` job that start-up reconciliation follows,
        settles or re-queues (docs/api.md, "What a crash leaves behind").
        """
        if dynamic_prompts and dynprompts.may_change(graph):
            drawn = dynprompts.apply(graph, await self.node_definitions(), choice_seed)
            graph = drawn.graph
            patches = [*(patches or []), *drawn.ops]
            if drawn.seed is not None:
                parameters = {**(parameters or {}), CHOICE_SEED: drawn.seed}
        prompt_id = prompt_id or str(uuid.uuid4())
        job_id = new_id(JOB)
        # Until ComfyUI holds it, reconciliation must not take this job for one ComfyUI forgot.
        self.in_flight.add(job_id)
        try:
            row: dict[str, JSON] = {
                "id": job_id,
                "owner_id": owner_id,
                "prompt_id": prompt_id,
                "graph": graph,
                "patches": patches or [],
                "parameters": parameters or {},
                "replay_of": replay_of,
                **job_fields,
            }
            prompt = None
            if prompt_text:
                clean = prompt_text if clean_text is None else clean_text
                prompt = {"owner_id": owner_id, "text": prompt_text, "clean_text": clean}
            async with self.store.transaction(owner_id) as session:
                created = await repo.insert_submitted(session, prompt=prompt, job=row)
            # The job is durable before ComfyUI hears of it: a crash in between is repaired at start-up.
            data = submitted_job(row, created, prompt_text or None)
            return await self.send(owner_id, data, graph, front=front, replay_call=replay_call, on_accepted=on_accepted)
        finally:
            self.in_flight.discard(job_id)

    async def send(
        self,
        owner_id: int,
        data: dict[str, JSON],
        graph: dict[str, JSON],
        *,
        front: bool,
        replay_call: int | None = None,
        on_accepted: Callable[[SubmitResult], None] | None = None,
    ) -> dict[str, JSON]:
        """Hand a stored `queued` job to ComfyUI under its prompt id (first time, re-queue, or move).

        Answers the job as the stream has it (no read-back): queued, with ComfyUI's number.
        """
        lifecycle = self.current_lifecycle()
        job_id, prompt_id = str(data["id"]), str(data["prompt_id"])
        # The lifecycle knows it before ComfyUI's first message about it can arrive.
        lifecycle.submitted(prompt_id, data, owner_id, graph)
        calls: list[ComfyCall] = []
        try:
            result = await self.comfy.submit(
                graph,
                prompt_id=prompt_id,
                front=front,
                job_id=job_id,
                owner_id=owner_id,
                replay_of=replay_call,
                pending_calls=calls,
            )
        except HostRejected as exc:
            await self.comfy.store_calls(owner_id, calls)
            message, details = rejection_details(exc.body)
            node_errors = (exc.body or {}).get("node_errors") if isinstance(exc.body, dict) else None
            lifecycle.end(data, owner_id, "rejected", message=message, node_errors=node_errors or {})
            await lifecycle.stored([prompt_id])
            raise StudioError("validation_error", message, details) from exc
        except HostError as exc:
            await self.comfy.store_calls(owner_id, calls)
            lifecycle.end(data, owner_id, "error", message=str(exc), error_type="comfy_unavailable")
            await lifecycle.stored([prompt_id])
            raise StudioError("comfy_unavailable", f"ComfyUI did not take the job: {exc}") from exc
        # The second commit, everything ComfyUI answered with the call-log row, is the ordered writer's: the
        # request answers now (a crash before it is written leaves a `queued` job that start-up reconciles).
        lifecycle.accepted(
            prompt_id,
            repo.Accepted(job_id, owner_id, result.number, result.node_errors or None, calls, result.backend),
        )
        lifecycle.queue_changed()
        if on_accepted is not None:
            on_accepted(result)
        answered = dict(data)
        if result.backend is not None:
            answered["backend"] = result.backend
        if result.node_errors:
            answered["node_errors"] = result.node_errors
        return answered

    def current_lifecycle(self) -> JobLifecycle:
        if self.lifecycle is None:
            raise RuntimeError("the studio has not started: no job lifecycle")
        return self.lifecycle

    async def requeue(self, owner_id: int, job_id: str) -> dict[str, JSON]:
        """Submit a never-started job again under the same job id and prompt id (ComfyUI forgot it)."""
        job = await self.owned(owner_id, job_id)
        if job.state != "queued" or not job.prompt_id:
            raise StudioError("conflict", f"Job {job_id} is {job.state}; only a queued job can be re-queued")
        self.in_flight.add(job_id)
        try:
            await self.send(owner_id, await self.get(owner_id, job_id), job.graph, front=False)
        finally:
            self.in_flight.discard(job_id)
        return await self.get(owner_id, job_id)

    async def requeue_lost(self, owner_id: int, job_id: str) -> bool:
        """Send a `lost` job again under the same job id and a new prompt id (its backend stopped responding).

        The store's conditional transition lost → queued decides: of several callers (or studio processes)
        only the one whose UPDATE changed the row sends it, so a job is never dispatched twice.
        """
        if not await self.current_lifecycle().reopen_lost(job_id, str(uuid.uuid4())):
            return False
        job = await self.owned(owner_id, job_id)
        self.in_flight.add(job_id)
        try:
            await self.send(owner_id, await self.get(owner_id, job_id), job.graph, front=False)
        finally:
            self.in_flight.discard(job_id)
        return True

    # -- the call log -----------------------------------------------------------------------------

    async def replay_call(self, owner_id: int, call_id: int) -> dict[str, JSON]:
        async with self.store.transaction(owner_id) as session:
            call = await repo.call(session, call_id)
        if call is None or call.owner_id not in (owner_id, None):
            raise not_found("Call")
        if call.body_pruned_at is not None:
            raise StudioError("gone", call.body_pruned_reason or "This call's request was pruned from the call log")
        request = call.request or {}
        if call.operation == "submit":
            graph = request.get("prompt")
            if not isinstance(graph, dict):
                raise StudioError("conflict", "This logged submit has no graph to replay")
            # The logged graph is what ComfyUI received: its choices were drawn already.
            job = await self.submit(owner_id, graph, replay_of=call.job_id, replay_call=call.id, dynamic_prompts=False)
            return {"operation": "submit", "job": job}
        if call.operation == "queue":
            return {"operation": "queue", "result": await self.comfy.queue(owner_id=owner_id)}
        if call.operation == "history":
            result = await self.comfy.history(request.get("prompt_id"), job_id=call.job_id, owner_id=owner_id)
            return {"operation": "history", "result": result}
        if call.operation == "object_info":
            return {"operation": "object_info", "result": {"node_types": len(await self.comfy.object_info())}}
        raise StudioError(
            "conflict",
            f"A {call.operation} call changes ComfyUI's state or has no stored payload; it is not replayed",
        )
