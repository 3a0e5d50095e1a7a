"""Queries behind the ComfyUI-compatible routes: a user's finished jobs as ComfyUI's history, files by name."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import Image, Job

# States ComfyUI keeps a history entry for: the prompt ran (a cancelled or refused one never did).
RAN_STATES = ("done", "error", "interrupted", "lost")
MAX_HISTORY = 10_000  # ComfyUI keeps at most this many entries (execution.py MAXIMUM_HISTORY_SIZE)
HIDDEN = "comfy_history_hidden"  # Job.extra key: POST /history deleted it from this view (the gallery keeps it)


def _visible(owner_id: int):  # noqa: ANN202 (a SQLAlchemy clause list)
    return (
        Job.owner_id == owner_id,
        Job.prompt_id.is_not(None),
        Job.state.in_(RAN_STATES),
        Job.deleted_at.is_(None),
    )


async def finished(session: AsyncSession, owner_id: int, *, limit: int, offset: int) -> list[Job]:
    """The newest ``limit`` finished jobs after skipping ``offset`` (newest first), hidden ones left out."""
    query = select(Job).where(*_visible(owner_id)).order_by(Job.created_at.desc(), Job.id.desc()).limit(MAX_HISTORY)
    rows = [job for job in (await session.scalars(query)).all() if not (job.extra or {}).get(HIDDEN)]
    return rows[offset : offset + limit]


async def finished_by_prompt(session: AsyncSession, owner_id: int, prompt_id: str) -> Job | None:
    job = await session.scalar(select(Job).where(Job.prompt_id == prompt_id, *_visible(owner_id)))
    return None if job is None or (job.extra or {}).get(HIDDEN) else job


async def owned_by_prompt(session: AsyncSession, owner_id: int, prompt_ids: Sequence[str]) -> list[Job]:
    if not prompt_ids:
        return []
    query = select(Job).where(Job.owner_id == owner_id, Job.prompt_id.in_(list(prompt_ids)))
    return list((await session.scalars(query)).all())


async def hide(session: AsyncSession, jobs: Sequence[Job]) -> int:
    for job in jobs:
        job.extra = {**(job.extra or {}), HIDDEN: True}
    await session.flush()
    return len(jobs)


async def image_by_name(
    session: AsyncSession, owner_id: int, filename: str, subfolder: str, folder_type: str
) -> Image | None:
    """One of this user's images by the name ComfyUI gave it (what /view is asked for)."""
    query = (
        select(Image)
        .where(
            Image.owner_id == owner_id,
            Image.filename == filename,
            Image.subfolder == subfolder,
            Image.folder_type == folder_type,
            Image.deleted_at.is_(None),
        )
        .order_by(Image.id.desc())
        .limit(1)
    )
    return await session.scalar(query)
