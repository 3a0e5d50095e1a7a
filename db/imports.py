"""Queries of the import of ComfyUI's outputs: its runs, which files are known, and a batch's rows."""

from __future__ import annotations

from sqlalchemy import insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from .models import Image, ImportRun, Job, Prompt


async def last_run(session: AsyncSession) -> ImportRun | None:
    return (await session.execute(select(ImportRun).order_by(ImportRun.id.desc()).limit(1))).scalar()


async def known_output_files(session: AsyncSession, pairs: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which (subfolder, filename) of ComfyUI's output folder already have an image (ix_images_folder_type_…)."""
    if not pairs:
        return set()
    rows = await session.execute(
        select(Image.subfolder, Image.filename).where(
            Image.folder_type == "output", tuple_(Image.subfolder, Image.filename).in_(pairs)
        )
    )
    return {(str(sub), str(name)) for sub, name in rows.all()}


async def insert_batch(
    session: AsyncSession,
    prompts: list[dict[str, object]],
    jobs: list[dict[str, object]],
    images: list[dict[str, object]],
) -> None:
    """A batch's rows in three statements; each job's ``prompt_index`` names its prompt in ``prompts``."""
    prompt_ids: list[int] = []
    if prompts:
        result = await session.execute(insert(Prompt).returning(Prompt.id, sort_by_parameter_order=True), prompts)
        prompt_ids = [int(pid) for pid in result.scalars().all()]
    if not jobs:
        return
    rows = []
    for job in jobs:
        index = job.get("prompt_index")
        row = {k: v for k, v in job.items() if k != "prompt_index"}
        row["prompt_row_id"] = prompt_ids[index] if isinstance(index, int) else None
        rows.append(row)
    await session.execute(insert(Job), rows)
    await session.execute(insert(Image), images)


async def set_status(session: AsyncSession, run_id: int, values: dict[str, object]) -> ImportRun:
    await session.execute(update(ImportRun).where(ImportRun.id == run_id).values(**values))
    row = await session.get(ImportRun, run_id, populate_existing=True)
    assert row is not None
    return row
