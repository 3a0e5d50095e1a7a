"""Queries on actions, the workflow versions they run, and the lineage of images they make."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import Image, Job, Prompt, Setting
from .workflows import Action, Workflow, WorkflowVersion


async def builtin_workflows(session: AsyncSession, prefix: str) -> dict[str, str]:
    """The library's workflows by their key (``builtin_key`` without ``prefix``)."""
    rows = (await session.scalars(select(Workflow).where(Workflow.builtin_key.like(f"{prefix}%")))).all()
    return {r.builtin_key[len(prefix) :]: r.id for r in rows if r.builtin_key}


async def builtin_slots(session: AsyncSession) -> set[str]:
    return set((await session.scalars(select(Action.slot).where(Action.builtin.is_(True)))).all())


async def builtin_workflow_ids(session: AsyncSession) -> set[str]:
    return set((await session.scalars(select(Workflow.id).where(Workflow.builtin_key.is_not(None)))).all())


async def setting_values(session: AsyncSession, keys: list[str]) -> dict[str, object]:
    rows = (await session.scalars(select(Setting).where(Setting.key.in_(keys)))).all()
    return {r.key: r.value for r in rows}


async def visible_actions(session: AsyncSession, user_id: int) -> list[Action]:
    """This user's actions and everyone's shared ones, by position."""
    query = select(Action).where(or_(Action.owner_id == user_id, Action.shared.is_(True))).order_by(Action.position)
    return list((await session.scalars(query)).all())


async def own_action(session: AsyncSession, user_id: int, slot: str) -> Action | None:
    return await session.scalar(select(Action).where(Action.owner_id == user_id, Action.slot == slot))


async def add(session: AsyncSession, rows: list[Action]) -> None:
    session.add_all(rows)


async def delete(session: AsyncSession, action: Action) -> None:
    await session.delete(action)


async def workflow_version(
    session: AsyncSession, workflow_id: str, version_id: str | None
) -> tuple[Workflow | None, WorkflowVersion | None]:
    """A workflow and one of its versions: ``version_id``, else its head."""
    workflow = await session.get(Workflow, workflow_id)
    if version_id is not None:
        return workflow, await session.get(WorkflowVersion, version_id)
    version = await session.scalar(
        select(WorkflowVersion).where(
            WorkflowVersion.workflow_id == workflow_id,
            WorkflowVersion.number == (workflow.head_version if workflow else 0),
        )
    )
    return workflow, version


async def version(session: AsyncSession, version_id: str) -> WorkflowVersion | None:
    return await session.get(WorkflowVersion, version_id)


# -- lineage ------------------------------------------------------------------------------------------


async def image(session: AsyncSession, image_id: str) -> Image | None:
    return await session.get(Image, image_id)


async def job(session: AsyncSession, job_id: str) -> Job | None:
    return await session.get(Job, job_id)


async def prompt_text(session: AsyncSession, prompt_row_id: int | None) -> str | None:
    if not prompt_row_id:
        return None
    prompt = await session.get(Prompt, prompt_row_id)
    return prompt.text if prompt else None


async def jobs_from_image(session: AsyncSession, image_id: str, owner_id: int) -> list[Job]:
    """The jobs run on an image (its children in the lineage), oldest first."""
    query = select(Job).where(Job.parent_image_id == image_id, Job.owner_id == owner_id).order_by(Job.id)
    return list((await session.scalars(query)).all())


async def outputs_of(session: AsyncSession, job_id: str) -> list[Image]:
    return list((await session.scalars(select(Image).where(Image.job_id == job_id).order_by(Image.id))).all())
