"""The ComfyUI call log: rows of `comfy_calls`, newest first."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import ComfyCall


def add_all(session: AsyncSession, rows: list[ComfyCall]) -> None:
    session.add_all(rows)


async def get(session: AsyncSession, call_id: int) -> ComfyCall | None:
    return await session.get(ComfyCall, call_id)


async def newest(
    session: AsyncSession,
    limit: int,
    *,
    owner_id: int | None = None,
    before: int | None = None,
    job_id: str | None = None,
) -> list[ComfyCall]:
    """Up to ``limit`` calls, newest first: of one owner (None: everyone's), older than ``before``, of one job."""
    query = select(ComfyCall)
    if owner_id is not None:
        query = query.where(ComfyCall.owner_id == owner_id)
    if before:
        query = query.where(ComfyCall.id < before)
    if job_id:
        query = query.where(ComfyCall.job_id == job_id)
    query = query.order_by(ComfyCall.id.desc()).limit(limit)
    return list((await session.scalars(query)).all())
