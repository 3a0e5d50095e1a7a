"""Queries on jobs, their prompts, images and logged calls: one function per question, each taking a session.

The submit path writes with Core statements (no unit of work, no read-back): it runs on every job a user
queues, so each of its two transactions is a handful of statements. Its audit rows are written here, as the
ORM's flush hook writes them for every other change (db/store.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Select, bindparam, func, insert, or_, select, type_coerce, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer
from sqlalchemy.types import NullType

from .dispatch import DISPATCHER_KEY
from .models import AuditLog, Base, ComfyCall, Image, Job, Prompt, utcnow
from .store import ACTOR_KEY, ReadSession

ACTIVE_STATES = ("queued", "running")
# The tables the Core statements write (typed as tables, which the mapped classes' ``__table__`` is not).
JOBS = Base.metadata.tables[Job.__tablename__]
PROMPTS = Base.metadata.tables[Prompt.__tablename__]
IMAGES = Base.metadata.tables[Image.__tablename__]
AUDIT_LOG = Base.metadata.tables[AuditLog.__tablename__]
JSONDict = dict[str, Any]


async def _audit(session: AsyncSession, rows: Iterable[tuple[str, str, str, JSONDict]]) -> None:
    """Audit rows (action, entity, entity id, changes) for writes made without the ORM's flush."""
    actor = session.info.get(ACTOR_KEY)
    now = utcnow()
    values = [
        {"at": now, "actor_id": actor, "action": a, "entity": e, "entity_id": i, "changes": c} for a, e, i, c in rows
    ]
    if values:
        await session.execute(insert(AUDIT_LOG), values)


# -- the submit path ----------------------------------------------------------------------------------


async def insert_submitted(session: AsyncSession, *, prompt: JSONDict | None, job: JSONDict) -> datetime:
    """The submit's first commit: the prompt (if any) and the `queued` job, with their audit rows.

    ``job`` holds the Job columns; its ``prompt_row_id`` is filled from the prompt row. Returns ``created_at``.
    """
    now = utcnow()
    audit: list[tuple[str, str, str, JSONDict]] = []
    prompt_row_id = None
    if prompt is not None:
        prompt_row_id = (
            await session.execute(insert(PROMPTS).values(**prompt, created_at=now).returning(PROMPTS.c.id))
        ).scalar_one()
        audit.append(("create", Prompt.__tablename__, str(prompt_row_id), {}))
    # the rest: the columns' defaults; the process that sends it to ComfyUI follows it (db.dispatch)
    row = {**job, "prompt_row_id": prompt_row_id, "created_at": now, "dispatcher": session.info.get(DISPATCHER_KEY)}
    await session.execute(insert(JOBS).values(**row))
    audit.append(("create", Job.__tablename__, str(job["id"]), {}))
    await _audit(session, audit)
    return now


@dataclass(slots=True)
class Accepted:
    """What ComfyUI answered to a submit: its queue number, node warnings, and the call-log rows."""

    job_id: str
    owner_id: int
    number: float | None
    node_errors: JSONDict | None
    calls: list[ComfyCall]
    backend: str | None = None  # the pool member that took it


async def record_accepted(session: AsyncSession, accepted: Sequence[Accepted]) -> None:
    """The submits' second commit: numbers and node warnings (one UPDATE each, executemany), call-log rows."""
    if not accepted:
        return
    table = JOBS
    plain = [{"b_id": a.job_id, "number": a.number, "backend": a.backend} for a in accepted if not a.node_errors]
    warned = [
        {"b_id": a.job_id, "number": a.number, "backend": a.backend, "node_errors": a.node_errors}
        for a in accepted
        if a.node_errors
    ]
    if plain:
        statement = (
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(number=bindparam("number"), backend=bindparam("backend"))
        )
        await session.execute(statement, plain)
    if warned:
        statement = (
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(number=bindparam("number"), backend=bindparam("backend"), node_errors=bindparam("node_errors"))
        )
        await session.execute(statement, warned)
    calls = [call for a in accepted for call in a.calls]
    if calls:
        session.add_all(calls)
        await session.flush()  # the call log has no audit rows of its own (it is one)
    now = utcnow()
    audit = []
    for a in accepted:
        changes: JSONDict = {"number": a.number, **({"node_errors": "<changed>"} if a.node_errors else {})}
        if a.backend is not None:
            changes["backend"] = a.backend
        row = {"at": now, "actor_id": a.owner_id, "action": "update", "entity": Job.__tablename__}
        audit.append({**row, "entity_id": a.job_id, "changes": changes})
    await session.execute(insert(AUDIT_LOG), audit)


async def reopen_lost(session: AsyncSession, job_id: str, prompt_id: str) -> bool:
    """The lifecycle's conditional transition lost → queued under a new prompt id (services/live.py calls it,
    like `write_states`): True only for the one caller whose UPDATE changed the row."""
    values: dict[str, Any] = {
        "state": "queued",
        "prompt_id": prompt_id,
        "backend": None,
        "number": None,
        "error": None,
        "progress": {},
        "started_at": None,
        "finished_at": None,
    }
    result = await session.execute(update(JOBS).where(JOBS.c.id == job_id, JOBS.c.state == "lost").values(values))
    if int(getattr(result, "rowcount", 0) or 0) != 1:
        return False
    row = {"at": utcnow(), "action": "update", "entity": Job.__tablename__, "entity_id": job_id}
    await session.execute(insert(AUDIT_LOG), [{**row, "actor_id": None, "changes": {"state": "queued"}}])
    return True


async def active_on_backend(session: AsyncSession, backend: str) -> list[Job]:
    query = select(Job).where(Job.state.in_(ACTIVE_STATES), Job.backend == backend).order_by(Job.id)
    return list((await session.scalars(query)).all())


# -- reading ------------------------------------------------------------------------------------------


async def job(session: AsyncSession, job_id: str) -> Job | None:
    return await session.get(Job, job_id)


async def owned_job(session: AsyncSession, owner_id: int, job_id: str) -> Job | None:
    found = await session.get(Job, job_id)
    return found if found is not None and found.owner_id == owner_id else None


async def job_by_prompt_id(session: AsyncSession, prompt_id: str) -> Job | None:
    return await session.scalar(select(Job).where(Job.prompt_id == prompt_id))


async def jobs_by_prompt_ids(session: AsyncSession, prompt_ids: Sequence[str]) -> list[Job]:
    if not prompt_ids:
        return []
    return list((await session.scalars(select(Job).where(Job.prompt_id.in_(prompt_ids)))).all())


async def images_of(session: AsyncSession, job_ids: Sequence[str]) -> dict[str, list[Any]]:
    """The visible images of each job, oldest first, as rows with an image's attributes (no ORM objects)."""
    images = (
        await session.execute(
            select(*IMAGES.c).where(IMAGES.c.job_id.in_(job_ids), IMAGES.c.deleted_at.is_(None)).order_by(IMAGES.c.id)
        )
    ).all()
    by_job: dict[str, list[Any]] = {}
    for image in images:
        by_job.setdefault(image.job_id or "", []).append(image)
    return by_job


async def prompt_texts(session: AsyncSession, prompt_row_ids: set[int]) -> dict[int, str]:
    if not prompt_row_ids:
        return {}
    rows = await session.execute(select(Prompt.id, Prompt.text).where(Prompt.id.in_(prompt_row_ids)))
    return {int(i): str(t) for i, t in rows.all()}


# -- the gallery's listing ------------------------------------------------------------------------------
# A page is mapped to its response once, in the read thread: its columns are read raw (no result processing:
# no datetime parsing, no JSON decoding of empty objects) and written straight into the API's shape, the same
# as services/jobs.job_to_dict (tests/test_gallery_listing.py holds them equal).

_LISTED_JOB = (
    "id",
    "prompt_id",
    "state",
    "prompt_row_id",
    "created_at",
    "started_at",
    "finished_at",
    "progress",
    "error",
    "node_errors",
    "foreign",
    "backend",
    "replay_of",
    "action_slot",
    "extra",
    "parameters",
    "parent_image_id",
    "mask_image_id",
    "workflow_version_id",
)
_LISTED_IMAGE = (
    "id",
    "job_id",
    "kind",
    "node_id",
    "width",
    "height",
    "mime",
    "liked_at",
    "expirable",
    "purged_at",
    "created_at",
)


def _raw(table: Any, names: Sequence[str]) -> tuple[Any, ...]:
    return tuple(type_coerce(table.c[name], NullType()).label(name) for name in names)


# built once: a statement's columns are immutable, and building them costs as much as the query's plan
_RAW_JOB = _raw(JOBS, _LISTED_JOB)
_RAW_IMAGE = _raw(IMAGES, _LISTED_IMAGE)


def _iso(value: object) -> str | None:
    """A stored time as services/jobs.iso writes it (UTC, ``Z``, no fraction when it is zero)."""
    if value is None:
        return None
    if isinstance(value, str):
        # SQLAlchemy's SQLite format, "YYYY-MM-DD HH:MM:SS.ffffff": rewritten without parsing
        if len(value) == 26 and value[10] == " " and value[19] == ".":
            return f"{value[:10]}T{value[11:19] if value.endswith('000000') else value[11:]}Z"
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _json(value: object) -> Any:
    """A JSON column's value: decoded here on SQLite (text), as the driver gave it elsewhere."""
    if isinstance(value, str):
        return {} if value == "{}" else json.loads(value)
    return value


def _listed_image(row: Sequence[Any]) -> JSONDict:
    image_id, job_id, kind, node_id, width, height, mime, liked_at, expirable, purged_at, created_at = row
    return {
        "id": image_id,
        "job_id": job_id,
        "kind": kind,
        "node_id": node_id,
        "width": width,
        "height": height,
        "mime": mime,
        "url": f"/studio/api/v1/images/{image_id}",
        "thumb_url": f"/studio/api/v1/images/{image_id}/thumb",
        "liked": liked_at is not None,
        "expirable": bool(expirable),
        "purged": purged_at is not None,
        "created_at": _iso(created_at),
    }


def _listed_job(row: Sequence[Any], images: list[JSONDict], prompt_text: str | None) -> JSONDict:
    job_id, prompt_id, state, _prompt, created_at, started_at, finished_at, progress, error, node_errors, *rest = row
    foreign, backend, replay_of, action_slot, extra, parameters, *rest = rest
    parent_image_id, mask_image_id, workflow_version_id = rest
    extra = _json(extra) or {}
    return {
        "id": job_id,
        "prompt_id": prompt_id,
        "state": state,
        "prompt_text": prompt_text,
        "created_at": _iso(created_at),
        "started_at": _iso(started_at),
        "finished_at": _iso(finished_at),
        "progress": _json(progress) or {},
        "error": _json(error),
        "node_errors": _json(node_errors) or {},
        "foreign": foreign if foreign is None else bool(foreign),
        "backend": backend,
        "replay_of": replay_of,
        "action_slot": action_slot,
        "action": action_slot,
        "workflow_id": extra.get("workflow_id"),
        "workflow_version": extra.get("workflow_version"),
        "warnings": list(extra.get("action_warnings") or []),
        "parameters": _json(parameters) or {},
        "parent_image_id": parent_image_id,
        "mask_image_id": mask_image_id,
        "workflow_version_id": workflow_version_id,
        "expansion": extra.get("expansion"),
        "images": images,
    }


@dataclass(slots=True)
class Listing:
    """A page of jobs as the API shows them (the lifecycle's newest state not laid over yet)."""

    items: list[JSONDict]
    next_cursor: str | None


def read_listing(session: ReadSession, query: Select[Any], limit: int) -> Listing:
    """Run a page query (db/search.py's page_query, asking for limit + 1) and map the page to its response."""
    jobs = session.execute(query.with_only_columns(*_RAW_JOB, maintain_column_froms=True)).all()
    more = len(jobs) > limit
    jobs = jobs[:limit]
    if not jobs:
        return Listing([], None)
    images: dict[str, list[JSONDict]] = {}
    rows = session.execute(
        select(*_RAW_IMAGE)
        .where(IMAGES.c.job_id.in_([j[0] for j in jobs]), IMAGES.c.deleted_at.is_(None))
        .order_by(IMAGES.c.id)
    ).all()
    for image in rows:
        images.setdefault(image[1], []).append(_listed_image(image))
    texts: dict[int, str] = {}
    prompt_ids = {j[3] for j in jobs if j[3]}
    if prompt_ids:
        found = session.execute(select(PROMPTS.c.id, PROMPTS.c.text).where(PROMPTS.c.id.in_(prompt_ids)))
        texts = {int(i): str(t) for i, t in found}
    items = [_listed_job(j, images.get(j[0], []), texts.get(j[3] or 0)) for j in jobs]
    return Listing(items, jobs[-1][0] if more else None)


async def active_jobs(session: AsyncSession, owner_id: int | None, limit: int | None) -> list[Job]:
    """Jobs still queued or running, newest first (``limit`` None: all of them)."""
    query = select(Job).where(Job.state.in_(ACTIVE_STATES)).order_by(Job.id.desc()).limit(limit)
    if owner_id is not None:
        query = query.where(Job.owner_id == owner_id)
    return list((await session.scalars(query)).all())


# -- outputs, uploads, files --------------------------------------------------------------------------


async def image(session: AsyncSession, image_id: str) -> Image | None:
    return await session.get(Image, image_id)


async def add_all(session: AsyncSession, rows: Sequence[object]) -> None:
    session.add_all(rows)


async def attach_studio_metadata(
    session: AsyncSession, job_id: str, owner_id: int, text: str | None, parameters: JSONDict | None
) -> bool:
    """A Studio Save Image node's prompt text (when the job has none) and parameters; False: no such job."""
    found = await session.get(Job, job_id)
    if found is None:
        return False
    if text and found.prompt_row_id is None:
        prompt = Prompt(owner_id=owner_id, text=text, clean_text=text)
        session.add(prompt)
        await session.flush()
        found.prompt_row_id = prompt.id
    if parameters:
        found.parameters = {**(found.parameters or {}), **parameters}
    return True


async def call(session: AsyncSession, call_id: int) -> ComfyCall | None:
    return await session.get(ComfyCall, call_id)


# -- the lifecycle's writer ---------------------------------------------------------------------------


@dataclass(slots=True)
class StateWrite:
    """A job's newest state in one writer tick (several transitions of a tick collapse into one write)."""

    job_id: str
    owner_id: int
    state: str
    progress: JSONDict
    error: JSONDict | None
    started_at: datetime | None
    finished_at: datetime | None
    extra: JSONDict = field(default_factory=dict)  # more Job columns the ending sets (node_errors)


async def write_states(
    session: AsyncSession, states: Sequence[StateWrite], progress: Sequence[tuple[str, JSONDict]]
) -> None:
    """States (one UPDATE per set of columns, executemany) and progress of jobs still active, with audit rows.

    ``started_at`` never goes back to null; progress is written only while a job is queued or running.
    """
    table = JOBS
    groups: dict[tuple[str, ...], list[JSONDict]] = {}
    for write in states:
        groups.setdefault(tuple(sorted(write.extra)), []).append(
            {
                "b_id": write.job_id,
                "state": write.state,
                "progress": write.progress,
                "error": write.error,
                "b_started": write.started_at,
                "finished_at": write.finished_at,
                **write.extra,
            }
        )
    for extra_keys, rows in groups.items():
        values: dict[str, Any] = {
            "state": bindparam("state"),
            "progress": bindparam("progress"),
            "error": bindparam("error"),
            "started_at": func.coalesce(bindparam("b_started", type_=table.c.started_at.type), table.c.started_at),
            "finished_at": func.coalesce(bindparam("finished_at", type_=table.c.finished_at.type), table.c.finished_at),
            **{key: bindparam(key) for key in extra_keys},
        }
        statement = update(table).where(table.c.id == bindparam("b_id")).values(values)
        await session.execute(statement, rows)
    if progress:
        statement = (
            update(table)
            # spelled out: an IN list cannot be bound in an executemany
            .where(table.c.id == bindparam("b_id"), or_(*(table.c.state == state for state in ACTIVE_STATES)))
            .values(progress=bindparam("progress"))
        )
        await session.execute(statement, [{"b_id": j, "progress": p} for j, p in progress])
    now = utcnow()
    audit = []
    for write in states:
        changes: JSONDict = {"state": write.state}
        if write.error is not None:
            changes["error"] = "<changed>"
        for key, value in (("started_at", write.started_at), ("finished_at", write.finished_at)):
            if value is not None:
                changes[key] = "<changed>"
        changes.update({key: "<changed>" for key in write.extra})
        audit.append(
            {
                "at": now,
                "actor_id": write.owner_id,
                "action": "update",
                "entity": Job.__tablename__,
                "entity_id": write.job_id,
                "changes": changes,
            }
        )
    if audit:
        await session.execute(insert(AUDIT_LOG), audit)


async def insert_foreign(session: AsyncSession, rows: Sequence[JSONDict]) -> None:
    """Jobs queued outside the studio (ComfyUI's editor), owned by the local owner, with their audit rows."""
    if not rows:
        return
    now = utcnow()
    dispatcher = session.info.get(DISPATCHER_KEY)  # the process that saw them follows them
    await session.execute(
        insert(JOBS), [{**row, "foreign": True, "created_at": now, "dispatcher": dispatcher} for row in rows]
    )
    await session.execute(
        insert(AUDIT_LOG),
        [
            {
                "at": now,
                "actor_id": row["owner_id"],
                "action": "create",
                "entity": Job.__tablename__,
                "entity_id": row["id"],
                "changes": {},
            }
            for row in rows
        ],
    )


async def jobs_to_show(session: AsyncSession, job_ids: Sequence[str]) -> list[Job]:
    """Jobs as the API shows them, in the order asked: without their graph and patches (never shown)."""
    if not job_ids:
        return []
    query = select(Job).where(Job.id.in_(job_ids)).options(defer(Job.graph), defer(Job.patches))
    found = {j.id: j for j in (await session.scalars(query)).all()}
    return [found[i] for i in job_ids if i in found]


async def image_keys_of(session: AsyncSession, job_ids: Sequence[str]) -> dict[str, set[tuple[str, str, str]]]:
    """(filename, subfolder, folder type) of the images already stored for each job."""
    keys: dict[str, set[tuple[str, str, str]]] = {j: set() for j in job_ids}
    if not job_ids:
        return keys
    rows = await session.execute(
        select(Image.job_id, Image.filename, Image.subfolder, Image.folder_type).where(Image.job_id.in_(job_ids))
    )
    for job_id, filename, subfolder, folder_type in rows.all():
        keys.setdefault(str(job_id), set()).add((filename, subfolder, folder_type))
    return keys


async def add_owned(session: AsyncSession, rows: Sequence[Image | ComfyCall], owner_id: int) -> None:
    """New rows written now, their audit rows naming ``owner_id`` (the writer's transaction spans owners)."""
    if not rows:
        return
    actor = session.info.get(ACTOR_KEY)
    session.info[ACTOR_KEY] = owner_id
    try:
        session.add_all(rows)
        await session.flush()
    finally:
        session.info[ACTOR_KEY] = actor
