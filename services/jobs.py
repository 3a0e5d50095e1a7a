"""Jobs: submitting graphs, reading them back, the queue, outputs, and replaying logged calls."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol

from sqlalchemy import select

from ..config import StudioConfig
from ..db.models import ComfyCall, Image, Job, Prompt
from ..db.store import Store
from ..engine import dynprompts
from ..engine.errors import StudioError, not_found
from ..engine.ids import IMAGE, JOB, new_id
from ..engine.text import check_prompt_text
from .comfy_calls import LoggedComfy
from .comfy_host import JSON, HostError, HostNotFound, HostRejected, HostUnavailable
from .images import ImageInfo, inspect_image, make_thumbnail
from .search import JobFilter

log = logging.getLogger("comfyui_studio.jobs")

ACTIVE_STATES = ("queued", "running")
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
        "replay_of": job.replay_of,
        "action_slot": job.action_slot,
        # an action run's: the same keys on every job, so its answer, its events and every read agree
        "action": job.action_slot,
        "workflow_id": extra.get("workflow_id"),
        "workflow_version": extra.get("workflow_version"),
        "warnings": list(extra.get("action_warnings") or []),
        "parameters": job.parameters or {},
        "parent_image_id": job.parent_image_id,
        "workflow_version_id": job.workflow_version_id,
        "images": [image_to_dict(i) for i in images],
    }


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

    def queue_changed(self) -> None: ...

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

    async def _load(self, session: object, owner_id: int, job_id: str) -> Job:
        job = await session.get(Job, job_id)  # type: ignore[attr-defined]
        if job is None or job.owner_id != owner_id:
            raise not_found("Job")
        return job

    async def serialize(self, session: object, jobs: list[Job]) -> list[dict[str, JSON]]:
        if not jobs:
            return []
        ids = [j.id for j in jobs]
        images = (
            await session.scalars(
                select(Image).where(Image.job_id.in_(ids), Image.deleted_at.is_(None)).order_by(Image.id)
            )  # type: ignore[attr-defined]
        ).all()
        by_job: dict[str, list[Image]] = {}
        for image in images:
            by_job.setdefault(image.job_id or "", []).append(image)
        prompt_ids = {j.prompt_row_id for j in jobs if j.prompt_row_id}
        texts: dict[int, str] = {}
        if prompt_ids:
            rows = await session.execute(select(Prompt.id, Prompt.text).where(Prompt.id.in_(prompt_ids)))  # type: ignore[attr-defined]
            texts = dict(rows.all())
        out = [job_to_dict(j, by_job.get(j.id, []), texts.get(j.prompt_row_id or 0)) for j in jobs]
        if self.lifecycle is not None:
            for item in out:
                live = self._live(item)
                # An ending is answered once stored, with its images (get() waits for that).
                if live is not None and live["state"] in ACTIVE_STATES:
                    item.update({key: live[key] for key in LIVE_FIELDS if key in live})
        return out

    def _live(self, item: dict[str, JSON]) -> dict[str, JSON] | None:
        live = self.lifecycle.current(str(item["prompt_id"] or "")) if self.lifecycle is not None else None
        return live if live is not None and live.get("id") == item["id"] else None

    async def get(self, owner_id: int, job_id: str) -> dict[str, JSON]:
        """The job, never older than what the event stream has said of it."""
        async with self.store.session(owner_id) as session:
            job = await self._load(session, owner_id, job_id)
            item = (await self.serialize(session, [job]))[0]
        live = self._live(item)
        if live is not None and live["state"] not in ACTIVE_STATES and live["state"] != item["state"]:
            await self._lifecycle().drain()  # the stream said it ended: answer the stored ending
            async with self.store.session(owner_id) as session:
                job = await self._load(session, owner_id, job_id)
                item = (await self.serialize(session, [job]))[0]
        return item

    async def list(
        self, owner_id: int, *, cursor: str | None, limit: int, filters: JobFilter | None = None
    ) -> dict[str, JSON]:
        limit = max(1, min(limit, MAX_PAGE))
        query = select(Job).where(Job.owner_id == owner_id, Job.deleted_at.is_(None))
        if filters is not None:
            query = filters.apply(query, self.store)
        if cursor:
            query = query.where(Job.id < cursor)
        query = query.order_by(Job.id.desc()).limit(limit + 1)
        async with self.store.session(owner_id) as session:
            jobs = list((await session.scalars(query)).all())
            more = len(jobs) > limit
            jobs = jobs[:limit]
            items = await self.serialize(session, jobs)
        return {"items": items, "next_cursor": jobs[-1].id if more else None}

    async def active(self, owner_id: int | None) -> list[dict[str, JSON]]:
        query = select(Job).where(Job.state.in_(ACTIVE_STATES)).order_by(Job.id.desc()).limit(MAX_PAGE)
        if owner_id is not None:
            query = query.where(Job.owner_id == owner_id)
        async with self.store.session(owner_id) as session:
            return await self.serialize(session, list((await session.scalars(query)).all()))

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
        patches: list[JSON] | None = None,
        parameters: dict[str, JSON] | None = None,
        choice_seed: int | None = None,
        dynamic_prompts: bool = True,
        **job_fields: JSON,
    ) -> dict[str, JSON]:
        """Store a new job, hand it to ComfyUI, store what ComfyUI answered: two commits, no read-back.

        Every new graph passes here, so dynamic prompts are drawn here, once per job, exactly as ComfyUI's
        frontend draws them when it queues: the job keeps the graph as sent, the text replaces among its
        patches, and the seed under ``parameters.choice_seed`` (``choice_seed`` repeats an earlier draw).
        A replay sends a logged graph again as it was (``dynamic_prompts=False``).
        job_fields are further Job columns written with it (an action run's slot, source image).
        A crash between the two commits leaves a `queued` job that start-up reconciliation follows,
        settles or re-queues (docs/api.md, "What a crash leaves behind").
        """
        if dynamic_prompts and dynprompts.may_change(graph):
            drawn = dynprompts.apply(graph, await self.node_definitions(), choice_seed)
            graph = drawn.graph
            patches = [*(patches or []), *drawn.ops]
            if drawn.seed is not None:
                parameters = {**(parameters or {}), CHOICE_SEED: drawn.seed}
        prompt_id = str(uuid.uuid4())
        job_id = new_id(JOB)
        # Until ComfyUI holds it, reconciliation must not take this job for one ComfyUI forgot.
        self.in_flight.add(job_id)
        try:
            async with self.store.session(owner_id) as session, session.begin():
                prompt_row = None
                if prompt_text:
                    clean = prompt_text if clean_text is None else clean_text
                    prompt_row = Prompt(owner_id=owner_id, text=prompt_text, clean_text=clean)
                    session.add(prompt_row)
                    await session.flush()
                job = Job(
                    id=job_id,
                    owner_id=owner_id,
                    prompt_row_id=prompt_row.id if prompt_row else None,
                    prompt_id=prompt_id,
                    state="queued",
                    graph=graph,
                    patches=patches or [],
                    parameters=parameters or {},
                    replay_of=replay_of,
                    progress={},
                    node_errors={},
                    foreign=False,
                    **job_fields,
                )
                session.add(job)
            # The job is durable before ComfyUI hears of it: a crash in between is repaired at start-up.
            data = job_to_dict(job, [], prompt_text or None)
            return await self._send(owner_id, data, graph, front=front, replay_call=replay_call)
        finally:
            self.in_flight.discard(job_id)

    async def _send(
        self,
        owner_id: int,
        data: dict[str, JSON],
        graph: dict[str, JSON],
        *,
        front: bool,
        replay_call: int | None = None,
    ) -> dict[str, JSON]:
        """Hand a stored `queued` job to ComfyUI under its prompt id (first time, re-queue, or move).

        Answers the job as the stream has it (no read-back): queued, with ComfyUI's number.
        """
        lifecycle = self._lifecycle()
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
            await lifecycle.drain()
            raise StudioError("validation_error", message, details) from exc
        except HostError as exc:
            await self.comfy.store_calls(owner_id, calls)
            lifecycle.end(data, owner_id, "error", message=str(exc), error_type="comfy_unavailable")
            await lifecycle.drain()
            raise StudioError("comfy_unavailable", f"ComfyUI did not take the job: {exc}") from exc
        # The second commit: everything ComfyUI answered, with the call-log row.
        try:
            async with self.store.session(owner_id) as session, session.begin():
                row = await session.get(Job, job_id)
                assert row is not None
                row.number = result.number
                if result.node_errors:
                    row.node_errors = result.node_errors
                session.add_all(calls)
        except Exception:
            # ComfyUI holds the job: a full disk must not turn it into a failed request.
            log.exception("Could not store ComfyUI's answer for job %s", job_id)
        lifecycle.queue_changed()
        answered = dict(data)
        if result.node_errors:
            answered["node_errors"] = result.node_errors
        return answered

    def _lifecycle(self) -> JobLifecycle:
        if self.lifecycle is None:
            raise RuntimeError("the studio has not started: no job lifecycle")
        return self.lifecycle

    async def requeue(self, owner_id: int, job_id: str) -> dict[str, JSON]:
        """Submit a never-started job again under the same job id and prompt id (ComfyUI forgot it)."""
        async with self.store.session(owner_id) as session:
            job = await self._load(session, owner_id, job_id)
        if job.state != "queued" or not job.prompt_id:
            raise StudioError("conflict", f"Job {job_id} is {job.state}; only a queued job can be re-queued")
        self.in_flight.add(job_id)
        try:
            await self._send(owner_id, await self.get(owner_id, job_id), job.graph, front=False)
        finally:
            self.in_flight.discard(job_id)
        return await self.get(owner_id, job_id)

    # -- following ComfyUI --------------------------------------------------------------------------

    async def prepare_outputs(
        self, owner_id: int, job_id: str, outputs: dict[str, JSON]
    ) -> tuple[list[Image], list[ComfyCall]]:
        """The new output images of a job, read from ComfyUI and thumbnailed, not yet stored."""
        refs: list[tuple[str, dict[str, str]]] = []
        for node_id, output in outputs.items():
            for ref in (output or {}).get("images") or []:
                if isinstance(ref, dict) and ref.get("filename"):
                    refs.append((str(node_id), ref))
        if not refs:
            return [], []
        async with self.store.session(owner_id) as session:
            existing = {
                (i.filename, i.subfolder, i.folder_type)
                for i in (await session.scalars(select(Image).where(Image.job_id == job_id))).all()
            }
        images: list[Image] = []
        for node_id, ref in refs:
            key = (ref["filename"], ref.get("subfolder", ""), ref.get("type", "output"))
            if key in existing:
                continue
            existing.add(key)
            images.append(
                Image(
                    id=new_id(IMAGE),
                    owner_id=owner_id,
                    job_id=job_id,
                    kind="output" if key[2] == "output" else "temp",
                    filename=key[0],
                    subfolder=key[1],
                    folder_type=key[2],
                    node_id=node_id,
                )
            )
        calls: list[ComfyCall] = []
        # Files read and thumbnails made side by side.
        await asyncio.gather(*(self._inspect_output(image, calls) for image in images))
        return images, calls

    async def store_outputs(self, owner_id: int, images: list[Image], calls: list[ComfyCall]) -> None:
        """Images and their call-log rows in one commit."""
        if not images and not calls:
            return
        async with self.store.session(owner_id) as session, session.begin():
            session.add_all(images)
            session.add_all(calls)

    async def _inspect_output(self, image: Image, calls: list[ComfyCall]) -> None:
        key = (image.filename, image.subfolder, image.folder_type)
        try:
            file = await self.comfy.view(*key, job_id=image.job_id, owner_id=image.owner_id, pending_calls=calls)
        except HostNotFound:
            return
        except HostError:
            log.warning("Could not read output %s of job %s", key[0], image.job_id)
            return
        image.mime = file.content_type if file.content_type.startswith("image/") else image.mime
        image.size_bytes = len(file.data)
        size = await make_thumbnail(file.data, self.config.thumbs_dir / f"{image.id}.webp")
        if size:
            image.width, image.height = size
            image.has_thumb = True

    async def record_studio_metadata(self, owner_id: int, job_id: str, meta: dict[str, JSON]) -> str | None:
        """Keep the prompt text and Studio parameters a Studio Save Image node reported; returns the text."""
        text = meta.get("prompt_text")
        text = check_prompt_text(text, self.config.max_prompt_chars) if isinstance(text, str) and text else None
        parameters = meta.get("parameters")
        async with self.store.session(owner_id) as session, session.begin():
            job = await session.get(Job, job_id)
            if job is None:
                return None
            if text and job.prompt_row_id is None:
                prompt = Prompt(owner_id=owner_id, text=text, clean_text=text)
                session.add(prompt)
                await session.flush()
                job.prompt_row_id = prompt.id
            if isinstance(parameters, dict) and parameters:
                job.parameters = {**(job.parameters or {}), **parameters}
        return text

    # -- the queue --------------------------------------------------------------------------------

    async def queue(self, owner_id: int) -> dict[str, JSON]:
        """``GET /queue``: the `queue` event's counts and positions, with every entry in run order."""
        raw = await self.comfy.queue(owner_id=owner_id)
        payload, entries = self._lifecycle().queue_view(raw, owner_id)
        return {**payload, "items": entries}

    def queue_view(self, raw: dict[str, list[JSON]] | None, user_id: int | None) -> dict[str, JSON]:
        """The `queue` event's payload for ``user_id`` from ComfyUI's `/queue` (None: unreachable)."""
        return self._lifecycle().queue_view(raw, user_id)[0]

    async def cancel(self, owner_id: int, job_id: str) -> dict[str, JSON]:
        async with self.store.session(owner_id) as session:
            job = await self._load(session, owner_id, job_id)
        if job.state != "queued":
            raise StudioError("conflict", f"Job {job_id} is {job.state}; only a queued job can be cancelled")
        await self.comfy.delete_pending([job.prompt_id or ""], job_id=job.id, owner_id=owner_id)
        queue = await self.comfy.queue(owner_id=owner_id)
        if any(item[1] == job.prompt_id for item in queue["queue_running"]):
            raise StudioError("conflict", f"Job {job_id} started before it could be cancelled")
        lifecycle = self._lifecycle()
        lifecycle.end(await self.get(owner_id, job_id), owner_id, "cancelled")
        await lifecycle.drain()
        lifecycle.queue_changed()
        return await self.get(owner_id, job_id)

    async def move_to_front(self, owner_id: int, job_id: str) -> dict[str, JSON]:
        """Run a pending job next: ComfyUI has no reordering, so delete it and submit it again in front.

        The job keeps its id and prompt id; ComfyUI never ran it, so nothing about it is lost.
        """
        async with self.store.session(owner_id) as session:
            job = await self._load(session, owner_id, job_id)
        prompt_id = job.prompt_id or ""
        if job.state != "queued" or job_id in self.in_flight:
            raise StudioError("conflict", f"Job {job_id} is {job.state}; only a pending job can be moved")
        queue = await self.comfy.queue(owner_id=owner_id)
        if any(item[1] == prompt_id for item in queue["queue_running"]):
            raise StudioError("conflict", f"Job {job_id} is already running")
        if not any(item[1] == prompt_id for item in queue["queue_pending"]):
            raise StudioError("conflict", f"ComfyUI does not hold job {job_id} in its queue")
        self.in_flight.add(job_id)
        try:
            await self.comfy.delete_pending([prompt_id], job_id=job_id, owner_id=owner_id)
            queue = await self.comfy.queue(owner_id=owner_id)
            if any(item[1] == prompt_id for item in queue["queue_running"]):
                # The worker took it between our read and the delete: it runs now, which is what was asked.
                raise StudioError("conflict", f"Job {job_id} started before it could be moved")
            await self._send(owner_id, await self.get(owner_id, job_id), job.graph, front=True)
        finally:
            self.in_flight.discard(job_id)
        return await self.get(owner_id, job_id)

    async def clear(self, owner_id: int, *, everyone: bool) -> dict[str, JSON]:
        """Cancel this user's pending jobs (or every pending job, for the owner)."""
        raw = await self.comfy.queue(owner_id=owner_id)
        pending = [item[1] for item in raw["queue_pending"]]
        async with self.store.session(owner_id) as session:
            rows = (await session.scalars(select(Job).where(Job.prompt_id.in_(pending)))).all()
        targets = [j for j in rows if everyone or j.owner_id == owner_id]
        if everyone:
            await self.comfy.clear_pending(owner_id=owner_id)
        elif targets:
            await self.comfy.delete_pending([j.prompt_id or "" for j in targets], owner_id=owner_id)
        lifecycle = self._lifecycle()
        for job in targets:
            lifecycle.end(await self.get(job.owner_id, job.id), job.owner_id, "cancelled")
        await lifecycle.drain()
        lifecycle.queue_changed()
        return {"cancelled": [j.id for j in targets]}

    async def interrupt(self, owner_id: int, *, is_owner: bool) -> dict[str, JSON]:
        raw = await self.comfy.queue(owner_id=owner_id)
        if not raw["queue_running"]:
            raise StudioError("conflict", "Nothing is running")
        prompt_id = raw["queue_running"][0][1]
        async with self.store.session(owner_id) as session:
            job = await session.scalar(select(Job).where(Job.prompt_id == prompt_id))
        if (job is None or job.owner_id != owner_id) and not is_owner:
            raise StudioError("forbidden", "The running job belongs to someone else")
        await self.comfy.interrupt(prompt_id, job_id=job.id if job else None, owner_id=owner_id)
        return {"interrupted": job.id if job and job.owner_id == owner_id else None}

    # -- uploads and files ----------------------------------------------------------------------------

    async def upload(self, owner_id: int, data: bytes) -> dict[str, JSON]:
        info: ImageInfo = inspect_image(data, max_pixels=self.config.max_image_pixels)
        # The name comes from the content, never from the client.
        filename = f"studio_{info.sha256[:20]}{info.extension}"
        stored = await self.comfy.upload_image(data, filename, subfolder="studio", owner_id=owner_id)
        image = Image(
            id=new_id(IMAGE),
            owner_id=owner_id,
            kind="upload",
            filename=stored["name"],
            subfolder=stored.get("subfolder", ""),
            folder_type="input",
            mime=info.mime,
            width=info.width,
            height=info.height,
            size_bytes=info.size_bytes,
            sha256=info.sha256,
        )
        image.has_thumb = bool(await make_thumbnail(data, self.config.thumbs_dir / f"{image.id}.webp"))
        async with self.store.session(owner_id) as session, session.begin():
            session.add(image)
        return image_to_dict(image)

    async def image_row(self, owner_id: int, image_id: str) -> Image:
        async with self.store.session(owner_id) as session:
            image = await session.get(Image, image_id)
        if image is None or image.owner_id != owner_id:
            raise not_found("Image")
        return image

    async def image_file(self, owner_id: int, image_id: str) -> tuple[bytes, str]:
        image = await self.image_row(owner_id, image_id)
        try:
            file = await self.comfy.view(
                image.filename, image.subfolder, image.folder_type, job_id=image.job_id, owner_id=owner_id
            )
        except HostNotFound as exc:
            raise StudioError("not_found", "ComfyUI no longer has this image file") from exc
        except HostUnavailable as exc:
            raise StudioError("comfy_unavailable", str(exc)) from exc
        return file.data, image.mime

    # -- the call log -----------------------------------------------------------------------------

    async def replay_call(self, owner_id: int, call_id: int) -> dict[str, JSON]:
        async with self.store.session(owner_id) as session:
            call = await session.get(ComfyCall, call_id)
        if call is None or call.owner_id not in (owner_id, None):
            raise not_found("Call")
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
