"""The gallery's own queries: prompt history, one image, hiding a job with its images."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, Select, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from .models import AuditLog, Base, Image, Job, Prompt

IMAGES = Base.metadata.tables[Image.__tablename__]
AUDIT_LOG = Base.metadata.tables[AuditLog.__tablename__]


async def prompt_history(session: AsyncSession, owner_id: int, limit: int, before: int | None) -> list[tuple[str, int]]:
    """Up to ``limit`` distinct prompt texts of this owner with the id of their last use, newest first."""
    query = prompt_history_query(owner_id, limit, before, session.get_bind().dialect.name)
    return [(str(row[0]), int(row[1])) for row in (await session.execute(query)).all()]


def prompt_history_query(owner_id: int, limit: int, before: int | None, dialect: str = "sqlite") -> Select:
    """The prompt history's page.

    Walks the owner's prompts newest first and keeps a row only when it is its text's last use (one probe of
    ``ix_prompts_owner_id_text_id``), so a page costs about ``limit`` probes, not a grouping of every prompt.
    On PostgreSQL that index holds md5(text) (a B-tree entry cannot hold a long prompt): the probe compares both.
    """
    newer = aliased(Prompt)
    same_text: list[ColumnElement[bool]] = [newer.text == Prompt.text]
    if dialect == "postgresql":
        same_text.insert(0, func.md5(newer.text) == func.md5(Prompt.text))
    reused_later = select(newer.id).where(newer.owner_id == Prompt.owner_id, *same_text, newer.id > Prompt.id).exists()
    query = select(Prompt.text, Prompt.id).where(Prompt.owner_id == owner_id, ~reused_later)
    if before is not None:
        query = query.where(Prompt.id < before)
    return query.order_by(Prompt.id.desc()).limit(limit)


async def get_image(session: AsyncSession, image_id: str) -> Image | None:
    return await session.get(Image, image_id)


async def set_liked_jobs(
    session: AsyncSession, owner_id: int, job_ids: list[str], liked: bool, at: datetime
) -> set[str]:
    """Like (or unlike) every visible image of these jobs of ``owner_id`` at once; the ids of the jobs found.

    One UPDATE for all the images and one audit row for the request (``like``/``unlike`` of ``images``,
    ``entity_id`` "bulk", the changed image ids in ``changes``): a selection of 200 is a few statements, not
    hundreds of ORM objects and audit rows.
    """
    found = set(
        (
            await session.scalars(
                select(Job.id).where(Job.id.in_(job_ids), Job.owner_id == owner_id, Job.deleted_at.is_(None))
            )
        ).all()
    )
    if not found:
        return found
    to_change = IMAGES.c.liked_at.is_(None) if liked else IMAGES.c.liked_at.is_not(None)
    changed = (
        await session.scalars(
            update(IMAGES)
            .where(IMAGES.c.job_id.in_(found), IMAGES.c.deleted_at.is_(None), to_change)
            .values(liked_at=at if liked else None)
            .returning(IMAGES.c.id)
        )
    ).all()
    if changed:
        changes = {"images": sorted(changed)}
        await session.execute(
            insert(AUDIT_LOG).values(
                at=at, actor_id=owner_id, action="like" if liked else "unlike", entity="images", entity_id="bulk",
                changes=changes,
            )
        )  # fmt: skip
    return found


async def hide_job(session: AsyncSession, job_id: str, at: datetime) -> bool:
    """Mark a job and its images deleted at ``at``; False when there is no such job."""
    job = await session.get(Job, job_id)
    if job is None:
        return False
    job.deleted_at = at
    for image in (await session.scalars(select(Image).where(Image.job_id == job_id))).all():
        image.deleted_at = at
    return True
