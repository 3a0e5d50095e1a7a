"""The ComfyUI call log: rows of `comfy_calls`, newest first.

A list is keyset-paged on the call id: an owner's page walks ``ix_comfy_calls_owner_id_id``, a job's
``ix_comfy_calls_job_id`` (each ordered by id within its key), everyone's the primary key; and it reads only
the columns a list shows, never the logged request and response bodies.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from .models import Base, ComfyCall
from .store import ReadSession

CALLS = Base.metadata.tables[ComfyCall.__tablename__]
BODIES = ("request", "response", "body_pruned_reason")
LIST_COLUMNS = tuple(c for c in CALLS.c if c.name not in BODIES)


def add_all(session: AsyncSession, rows: list[ComfyCall]) -> None:
    session.add_all(rows)


async def get(session: AsyncSession, call_id: int) -> ComfyCall | None:
    return await session.get(ComfyCall, call_id)


def _newest_where(query: Select[Any], *, owner_id: int | None, before: int | None, job_id: str | None) -> Select[Any]:
    if owner_id is not None:
        query = query.where(CALLS.c.owner_id == owner_id)
    if before:
        query = query.where(CALLS.c.id < before)
    if job_id:
        query = query.where(CALLS.c.job_id == job_id)
    return query.order_by(CALLS.c.id.desc())


def page_query(
    limit: int, *, owner_id: int | None = None, before: int | None = None, job_id: str | None = None
) -> Select[Any]:
    """Up to ``limit`` calls as rows of their listed columns, newest first (filters as in `newest`)."""
    return _newest_where(select(*LIST_COLUMNS), owner_id=owner_id, before=before, job_id=job_id).limit(limit)


def read_page(session: ReadSession, query: Select[Any]) -> list[Any]:
    """Run a `page_query` (in `Store.read`): plain rows with a call's listed attributes."""
    return list(session.execute(query).all())


async def newest(
    session: AsyncSession,
    limit: int,
    *,
    owner_id: int | None = None,
    before: int | None = None,
    job_id: str | None = None,
) -> list[ComfyCall]:
    """Up to ``limit`` calls, newest first: of one owner (None: everyone's), older than ``before``, of one job.

    Their bodies are not loaded (a list never shows them; `get` reads one call whole).
    """
    query = _newest_where(
        select(ComfyCall).options(*(defer(getattr(ComfyCall, name)) for name in BODIES)),
        owner_id=owner_id,
        before=before,
        job_id=job_id,
    )
    return list((await session.scalars(query.limit(limit))).all())
