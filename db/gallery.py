"""The gallery's own queries: prompt history, one image, hiding a job with its images."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import Image, Job, Prompt


async def prompt_history(session: AsyncSession, owner_id: int, limit: int, before: int | None) -> list[tuple[str, int]]:
    """Up to ``limit`` distinct prompt texts of this owner with the id of their last use, newest first."""
    last_use = func.max(Prompt.id).label("last_id")
    query = select(Prompt.text, last_use).where(Prompt.owner_id == owner_id).group_by(Prompt.text)
    if before is not None:
        query = query.having(func.max(Prompt.id) < before)
    query = query.order_by(last_use.desc()).limit(limit)
    return [(text, last_id) for text, last_id in (await session.execute(query)).all()]


async def get_image(session: AsyncSession, image_id: str) -> Image | None:
    return await session.get(Image, image_id)


async def hide_job(session: AsyncSession, job_id: str, at: datetime) -> bool:
    """Mark a job and its images deleted at ``at``; False when there is no such job."""
    job = await session.get(Job, job_id)
    if job is None:
        return False
    job.deleted_at = at
    for image in (await session.scalars(select(Image).where(Image.job_id == job_id))).all():
        image.deleted_at = at
    return True
