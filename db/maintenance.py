"""Storage maintenance's queries: image rows to account for, the Trash, the removal journal, runs, pruning."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy import Text, case, cast, delete, exists, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from .models import CivitaiCache, ComfyCall, Image, Job, MaintenanceJournal, MaintenanceRun, Prompt

T = TypeVar("T")


@dataclass(frozen=True)
class ImageFact:
    """What maintenance needs to know of one image row."""

    id: str
    owner_id: int
    job_id: str | None
    kind: str
    filename: str
    subfolder: str
    folder_type: str
    size_bytes: int
    width: int | None
    height: int | None
    has_thumb: bool
    expirable: bool
    deleted_at: datetime | None
    purged_at: datetime | None
    created_at: datetime


async def image_facts(session: AsyncSession) -> list[ImageFact]:
    """Every image row, as plain facts (one pass: maintenance accounts for each file once)."""
    columns = (
        Image.id,
        Image.owner_id,
        Image.job_id,
        Image.kind,
        Image.filename,
        Image.subfolder,
        Image.folder_type,
        func.coalesce(Image.size_bytes, 0),
        Image.width,
        Image.height,
        Image.has_thumb,
        Image.expirable,
        Image.deleted_at,
        Image.purged_at,
        Image.created_at,
    )
    rows = await session.execute(select(*columns))
    fields = [f.name for f in dataclasses.fields(ImageFact)]
    return [ImageFact(**dict(zip(fields, row, strict=True))) for row in rows.all()]


async def uploads_used_by_jobs(session: AsyncSession, image_ids: list[str], filenames: list[str]) -> set[str]:
    """Of these uploads, the ids some job uses: as its source image, or by file name in its graph."""
    used: set[str] = set()
    if not image_ids:
        return used
    for start in range(0, len(image_ids), 500):
        chunk = image_ids[start : start + 500]
        rows = await session.scalars(select(Job.parent_image_id).where(Job.parent_image_id.in_(chunk)).distinct())
        used.update(r for r in rows.all() if r)
    graph_text = cast(Job.graph, Text)
    position = func.strpos if _dialect(session) == "postgresql" else func.instr  # PostgreSQL has no instr
    for image_id, filename in zip(image_ids, filenames, strict=True):
        if image_id in used:
            continue
        mentioned = await session.scalar(select(exists().where(position(graph_text, filename) > 0)))
        if mentioned:
            used.add(image_id)
    return used


# --- the Trash --------------------------------------------------------------------------------------


async def trash_jobs(session: AsyncSession, owner_id: int | None = None) -> list[Job]:
    """Deleted jobs whose files are still kept, oldest deletion first (of one owner; None: everyone's)."""
    query = select(Job).where(Job.deleted_at.is_not(None), Job.purged_at.is_(None))
    if owner_id is not None:
        query = query.where(Job.owner_id == owner_id)
    return list((await session.scalars(query.order_by(Job.deleted_at, Job.id))).all())


async def prompt_texts(session: AsyncSession, jobs: list[Job]) -> dict[str, str]:
    """The prompt text each of these jobs ran with (jobs without a prompt are absent)."""
    ids = {j.prompt_row_id for j in jobs if j.prompt_row_id is not None}
    if not ids:
        return {}
    rows = await session.execute(select(Prompt.id, Prompt.text).where(Prompt.id.in_(ids)))
    by_id = {prompt_id: prompt_text for prompt_id, prompt_text in rows.all()}
    return {j.id: by_id[j.prompt_row_id] for j in jobs if j.prompt_row_id in by_id}


async def images_of_jobs(session: AsyncSession, job_ids: list[str]) -> list[Image]:
    if not job_ids:
        return []
    query = select(Image).where(Image.job_id.in_(job_ids)).order_by(Image.id)
    return list((await session.scalars(query)).all())


async def restore_job(session: AsyncSession, job: Job) -> None:
    """Bring a deleted job and the images deleted with it back to the gallery."""
    await session.execute(
        update(Image)
        .where(Image.job_id == job.id, Image.deleted_at.is_not(None), Image.purged_at.is_(None))
        .values(deleted_at=None)
    )
    job.deleted_at = None


async def journal_targets(session: AsyncSession, target_ids: list[str]) -> set[str]:
    """Which of these ids have a removal committed and not yet finished."""
    if not target_ids:
        return set()
    rows = await session.scalars(
        select(MaintenanceJournal.target_id).where(MaintenanceJournal.target_id.in_(target_ids))
    )
    return {r for r in rows.all() if r}


async def image(session: AsyncSession, image_id: str) -> Image | None:
    return await session.get(Image, image_id)


async def mark_thumbs(session: AsyncSession, image_ids: list[str]) -> None:
    for chunk in _chunks(image_ids):
        await session.execute(update(Image).where(Image.id.in_(chunk)).values(has_thumb=True))


async def set_expirable(session: AsyncSession, image: Image, expirable: bool) -> None:
    image.expirable = expirable


# --- the journal: what a run committed to remove, finished by the next run if this one dies -------------


def journal(session: AsyncSession, run_id: int, entries: list[dict[str, object]]) -> None:
    session.add_all([MaintenanceJournal(run_id=run_id, **entry) for entry in entries])


async def pending_journal(session: AsyncSession) -> list[MaintenanceJournal]:
    return list((await session.scalars(select(MaintenanceJournal).order_by(MaintenanceJournal.id))).all())


async def still_eligible(session: AsyncSession, effect: str, category: str, target_ids: list[str]) -> set[str]:
    """Of these targets, those a removal may still touch now (the owner may have restored or changed them)."""
    if not target_ids:
        return set()
    if effect == "drop_image":
        unused = ~exists().where(Job.parent_image_id == Image.id)
        query = select(Image.id).where(Image.id.in_(target_ids), Image.deleted_at.is_(None), unused)
    elif effect == "purge_job":
        query = select(Job.id).where(Job.id.in_(target_ids), Job.deleted_at.is_not(None), Job.purged_at.is_(None))
    elif category == "trash":
        query = select(Image.id).where(Image.id.in_(target_ids), Image.deleted_at.is_not(None))
    elif effect == "purge_image":
        query = select(Image.id).where(Image.id.in_(target_ids), Image.expirable, Image.deleted_at.is_(None))
    else:
        query = select(Image.id).where(Image.id.in_(target_ids))
    return set((await session.scalars(query)).all())


async def finish_journal(session: AsyncSession, entries: list[MaintenanceJournal], at: datetime) -> None:
    """Apply each removal's row side (idempotent) and drop the entries: rows now agree with the disk."""
    by_effect: dict[str, list[str]] = {}
    for entry in entries:
        if entry.target_id:
            by_effect.setdefault(entry.effect, []).append(entry.target_id)
    for effect, ids in by_effect.items():
        for chunk in _chunks(ids):
            if effect == "unthumb":
                await session.execute(update(Image).where(Image.id.in_(chunk)).values(has_thumb=False))
            elif effect == "purge_image":
                await session.execute(
                    update(Image)
                    .where(Image.id.in_(chunk), Image.purged_at.is_(None))
                    .values(purged_at=at, has_thumb=False)
                )
            elif effect == "expire":
                await session.execute(
                    update(Image).where(Image.id.in_(chunk), Image.purged_at.is_(None)).values(purged_at=at)
                )
            elif effect == "drop_image":
                await session.execute(delete(Image).where(Image.id.in_(chunk)))
            elif effect == "purge_job":
                await session.execute(
                    update(Job).where(Job.id.in_(chunk), Job.purged_at.is_(None)).values(purged_at=at)
                )
    for id_chunk in _chunks([e.id for e in entries]):
        await session.execute(delete(MaintenanceJournal).where(MaintenanceJournal.id.in_(id_chunk)))


def _chunks(items: list[T], size: int = 500) -> list[list[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


# --- runs ----------------------------------------------------------------------------------------------


async def start_run(session: AsyncSession, actor_id: int | None, trigger: str, dry_run: bool) -> MaintenanceRun:
    run = MaintenanceRun(actor_id=actor_id, trigger=trigger, dry_run=dry_run, summary={}, removed=[])
    session.add(run)
    await session.flush()
    return run


async def get_run(session: AsyncSession, run_id: int) -> MaintenanceRun | None:
    return await session.get(MaintenanceRun, run_id)


async def recent_runs(session: AsyncSession, limit: int) -> list[MaintenanceRun]:
    query = select(MaintenanceRun).order_by(MaintenanceRun.id.desc()).limit(limit)
    return list((await session.scalars(query)).all())


async def last_finished(session: AsyncSession, *, vacuumed: bool = False) -> datetime | None:
    """When the last real run (or the last one that compacted the database) ended."""
    query = select(func.max(MaintenanceRun.finished_at)).where(
        MaintenanceRun.dry_run.is_(False), MaintenanceRun.status == "done"
    )
    if vacuumed:
        query = query.where(MaintenanceRun.vacuumed.is_(True))
    return await session.scalar(query)


async def fail_unfinished_runs(session: AsyncSession, at: datetime) -> int:
    """Runs a killed process left `running`: marked failed (their journal is finished separately)."""
    result = await session.execute(
        update(MaintenanceRun)
        .where(MaintenanceRun.status == "running")
        .values(status="failed", finished_at=at, summary={"error": "interrupted"})
    )
    return int(getattr(result, "rowcount", 0) or 0)


# --- the call log and the Civitai cache ------------------------------------------------------------------


def _prunable_bodies(cutoff: datetime) -> ColumnElement[bool]:
    # A submit keeps its body while its job exists with its files (replay makes a new job from it).
    live_job = exists().where(Job.id == ComfyCall.job_id, Job.purged_at.is_(None))
    kept_submit = (ComfyCall.operation == "submit") & live_job
    return (
        (ComfyCall.started_at < cutoff)
        & ComfyCall.body_pruned_at.is_(None)
        & (ComfyCall.request.is_not(None) | ComfyCall.response.is_not(None))
        & ~kept_submit
    )


async def prunable_call_bodies(session: AsyncSession, cutoff: datetime) -> tuple[int, int]:
    """How many call bodies started before ``cutoff`` may go, and about how many bytes they hold."""
    size = func.coalesce(func.length(cast(ComfyCall.request, Text)), 0) + func.coalesce(
        func.length(cast(ComfyCall.response, Text)), 0
    )
    row = (
        await session.execute(select(func.count(), func.coalesce(func.sum(size), 0)).where(_prunable_bodies(cutoff)))
    ).one()
    return int(row[0]), int(row[1])


async def prune_call_bodies(session: AsyncSession, cutoff: datetime, at: datetime, reason: str) -> int:
    result = await session.execute(
        update(ComfyCall)
        .where(_prunable_bodies(cutoff))
        .values(request=None, response=None, body_pruned_at=at, body_pruned_reason=reason)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def civitai_prunable(session: AsyncSession, expired_before: float, max_bytes: int) -> tuple[list[str], int]:
    """Keys of cached Civitai answers to drop (expired too long ago, then the oldest over the size cap)."""
    size = func.length(CivitaiCache.body)
    rows = (
        await session.execute(
            select(
                CivitaiCache.key,
                size,
                case((CivitaiCache.expires_at < expired_before, 1), else_=0),
            ).order_by(CivitaiCache.fetched_at.desc())
        )
    ).all()
    keep_bytes = 0
    drop: list[str] = []
    dropped_bytes = 0
    for key, nbytes, expired in rows:
        if expired or keep_bytes + int(nbytes) > max_bytes:
            drop.append(key)
            dropped_bytes += int(nbytes)
        else:
            keep_bytes += int(nbytes)
    return drop, dropped_bytes


async def drop_civitai(session: AsyncSession, keys: list[str]) -> None:
    for start in range(0, len(keys), 500):
        await session.execute(delete(CivitaiCache).where(CivitaiCache.key.in_(keys[start : start + 500])))


# --- the database itself -----------------------------------------------------------------------------------


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def optimize(session: AsyncSession) -> None:
    """Fresh statistics for the query planner (ANALYZE), then SQLite's own tuning (PRAGMA optimize)."""
    await session.execute(text("ANALYZE"))
    if _dialect(session) == "sqlite":
        await session.execute(text("PRAGMA optimize"))


async def integrity(session: AsyncSession) -> list[str]:
    """SQLite's integrity check: ["ok"] when the file is sound, else what it found.

    PostgreSQL has no such check in SQL (its tool is pg_amcheck): the report says it was not run.
    """
    if _dialect(session) == "postgresql":
        return ["not checked on PostgreSQL (use pg_amcheck)"]
    return [str(row[0]) for row in (await session.execute(text("PRAGMA integrity_check"))).all()]


async def explain(session: AsyncSession, sql: str) -> list[str]:
    """The query plan the database chooses (for the benchmark's check that indexes are used)."""
    if _dialect(session) == "postgresql":
        return [str(row[0]) for row in (await session.execute(text("EXPLAIN " + sql))).all()]
    return [str(row[-1]) for row in (await session.execute(text("EXPLAIN QUERY PLAN " + sql))).all()]
