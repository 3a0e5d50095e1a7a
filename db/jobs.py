"""Queries on jobs, their prompts, images and logged calls: one function per question, each taking a session.

The submit path writes with Core statements (no unit of work, no read-back): it runs on every job a user
queues, so each of its two transactions is a handful of statements. Its audit rows are written here, as the
ORM's flush hook writes them for every other change (db/store.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from .models import AuditLog, ComfyCall, Image, Job, Prompt, utcnow
from .store import ACTOR_KEY

ACTIVE_STATES = ("queued", "running")
JSONDict = dict[str, Any]


async def _audit(session: AsyncSession, rows: Iterable[tuple[str, str, str, JSONDict]]) -> None:
    """Audit rows (action, entity, entity id, changes) for writes made without the ORM's flush."""
    actor = session.info.get(ACTOR_KEY)
    now = utcnow()
    values = [
        {"at": now, "actor_id": actor, "action": a, "entity": e, "entity_id": i, "changes": c} for a, e, i, c in rows
    ]
    if values:
        await session.execute(insert(AuditLog.__table__), values)


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
            await session.execute(
                insert(Prompt.__table__).values(**prompt, created_at=now).returning(Prompt.__table__.c.id)
            )
        ).scalar_one()
        audit.append(("create", Prompt.__tablename__, str(prompt_row_id), {}))
    row = {**_job_defaults(), **job, "prompt_row_id": prompt_row_id, "created_at": now}
    await session.execute(insert(Job.__table__).values(**row))
    audit.append(("create", Job.__tablename__, str(job["id"]), {}))
    await _audit(session, audit)
    return now


def _job_defaults() -> JSONDict:
    return {
        "state": "queued",
        "patches": [],
        "extra": {},
        "progress": {},
        "node_errors": {},
        "parameters": {},
        "foreign": False,
    }


async def record_accepted(
    session: AsyncSession, job_id: str, *, number: float | None, node_errors: JSONDict | None, calls: list[ComfyCall]
) -> None:
    """The submit's second commit: ComfyUI's queue number and node warnings, and the call-log rows."""
    changes: JSONDict = {"number": number}
    if node_errors:
        changes["node_errors"] = "<changed>"
    values: JSONDict = {"number": number, **({"node_errors": node_errors} if node_errors else {})}
    await session.execute(update(Job.__table__).where(Job.__table__.c.id == job_id).values(**values))
    if calls:
        session.add_all(calls)
        await session.flush()  # the call log has no audit rows of its own (it is one)
    await _audit(session, [("update", Job.__tablename__, job_id, changes)])


async def store_calls(session: AsyncSession, calls: Sequence[ComfyCall]) -> None:
    session.add_all(calls)


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


async def jobs_by_ids(session: AsyncSession, job_ids: Sequence[str]) -> dict[str, Job]:
    if not job_ids:
        return {}
    rows = (await session.scalars(select(Job).where(Job.id.in_(job_ids)))).all()
    return {j.id: j for j in rows}


async def images_of(session: AsyncSession, job_ids: Sequence[str]) -> dict[str, list[Image]]:
    """The visible images of each job, oldest first."""
    images = (
        await session.scalars(
            select(Image).where(Image.job_id.in_(job_ids), Image.deleted_at.is_(None)).order_by(Image.id)
        )
    ).all()
    by_job: dict[str, list[Image]] = {}
    for image in images:
        by_job.setdefault(image.job_id or "", []).append(image)
    return by_job


async def prompt_texts(session: AsyncSession, prompt_row_ids: set[int]) -> dict[int, str]:
    if not prompt_row_ids:
        return {}
    rows = await session.execute(select(Prompt.id, Prompt.text).where(Prompt.id.in_(prompt_row_ids)))
    return {int(i): str(t) for i, t in rows.all()}


def page_query(owner_id: int, cursor: str | None, limit: int) -> Select[tuple[Job]]:
    """A user's live jobs, newest first, after ``cursor`` (filters are added by the search service)."""
    query = select(Job).where(Job.owner_id == owner_id, Job.deleted_at.is_(None))
    if cursor:
        query = query.where(Job.id < cursor)
    return query.order_by(Job.id.desc()).limit(limit)


async def page(session: AsyncSession, query: Select[tuple[Job]]) -> list[Job]:
    return list((await session.scalars(query)).all())


async def active_jobs(session: AsyncSession, owner_id: int | None, limit: int) -> list[Job]:
    query = select(Job).where(Job.state.in_(ACTIVE_STATES)).order_by(Job.id.desc()).limit(limit)
    if owner_id is not None:
        query = query.where(Job.owner_id == owner_id)
    return list((await session.scalars(query)).all())


# -- outputs, uploads, files --------------------------------------------------------------------------


async def image_keys(session: AsyncSession, job_id: str) -> set[tuple[str, str, str]]:
    """(filename, subfolder, folder type) of every image already stored for a job."""
    rows = (await session.scalars(select(Image).where(Image.job_id == job_id))).all()
    return {(i.filename, i.subfolder, i.folder_type) for i in rows}


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
