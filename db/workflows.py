"""Workflows (with their version history) and actions: the models of migration 0004, and the workflows' queries.

A workflow's graph is never edited in place: every edit writes a new `WorkflowVersion`, and jobs point at
the version they ran. Workflows are soft-deleted (`deleted_at`) so the versions that jobs ran stay readable.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from ..engine.ids import ACTION, WORKFLOW, WORKFLOW_VERSION, new_id
from .models import Base, utcnow


class Workflow(Base):
    __tablename__ = "workflows"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id(WORKFLOW))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    source_format: Mapped[str] = mapped_column(String(16), default="api")  # api | ui | png | editor
    tags: Mapped[list] = mapped_column(JSON, default=list)
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    # Set on the workflows the studio ships ("default:generate"): seeded once, then edited like any other.
    builtin_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    head_version: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column()


class WorkflowVersion(Base):
    __tablename__ = "workflow_versions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id(WORKFLOW_VERSION))
    workflow_id: Mapped[str] = mapped_column(ForeignKey("workflows.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    graph: Mapped[dict] = mapped_column(JSON)  # API format, what ComfyUI runs
    source: Mapped[dict | None] = mapped_column(JSON)  # the UI-format workflow it was converted from
    parameters: Mapped[list] = mapped_column(JSON, default=list)
    bindings: Mapped[dict] = mapped_column(JSON, default=dict)
    outputs: Mapped[list] = mapped_column(JSON, default=list)
    note: Mapped[str] = mapped_column(String(500), default="")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("workflow_id", "number", name="uq_workflow_versions_workflow_id_number"),)


class Action(Base):
    __tablename__ = "actions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id(ACTION))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    slot: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(100))
    icon: Mapped[str] = mapped_column(String(64), default="")
    position: Mapped[int] = mapped_column(Integer, default=0)
    # RESTRICT: a workflow that an action runs cannot disappear under it.
    workflow_id: Mapped[str] = mapped_column(ForeignKey("workflows.id", ondelete="RESTRICT"), index=True)
    # The action's own parameter schema, merged over the workflow version's by name.
    parameters: Mapped[list] = mapped_column(JSON, default=list)
    # What the action computes before patching: "" | "zoom" | "pan" (padding from the source size).
    compute: Mapped[str] = mapped_column(String(16), default="")
    needs_image: Mapped[bool] = mapped_column(Boolean, default=True)
    needs_mask: Mapped[bool] = mapped_column(Boolean, default=False)
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("owner_id", "slot", name="uq_actions_owner_id_slot"),
        Index("ix_actions_shared", "shared"),
    )


# --- queries ---------------------------------------------------------------------------------------


async def visible(session: AsyncSession, user_id: int) -> list[Workflow]:
    """The workflows this user sees (their own and the shared ones, not deleted), by name."""
    query = (
        select(Workflow)
        .where(Workflow.deleted_at.is_(None), or_(Workflow.owner_id == user_id, Workflow.shared.is_(True)))
        .order_by(Workflow.name)
    )
    return list((await session.scalars(query)).all())


async def heads(session: AsyncSession, workflow_ids: list[str]) -> dict[str, WorkflowVersion]:
    """The head version of each of these workflows, by workflow id."""
    query = select(WorkflowVersion).where(
        WorkflowVersion.workflow_id.in_(workflow_ids),
        WorkflowVersion.number == Workflow.head_version,
        WorkflowVersion.workflow_id == Workflow.id,
    )
    return {v.workflow_id: v for v in (await session.scalars(query)).all()}


async def get(session: AsyncSession, workflow_id: str) -> Workflow | None:
    return await session.get(Workflow, workflow_id)


async def version(session: AsyncSession, workflow_id: str, number: int) -> WorkflowVersion | None:
    query = select(WorkflowVersion).where(WorkflowVersion.workflow_id == workflow_id, WorkflowVersion.number == number)
    return await session.scalar(query)


async def version_by_id(session: AsyncSession, version_id: str) -> WorkflowVersion | None:
    return await session.get(WorkflowVersion, version_id)


async def history(session: AsyncSession, workflow_id: str, limit: int) -> list[WorkflowVersion]:
    """A workflow's versions, newest first."""
    query = (
        select(WorkflowVersion)
        .where(WorkflowVersion.workflow_id == workflow_id)
        .order_by(WorkflowVersion.number.desc())
        .limit(limit)
    )
    return list((await session.scalars(query)).all())


async def next_version_number(session: AsyncSession, workflow_id: str) -> int:
    query = select(func.max(WorkflowVersion.number)).where(WorkflowVersion.workflow_id == workflow_id)
    return (await session.scalar(query) or 0) + 1


async def add(session: AsyncSession, **fields: object) -> Workflow:
    """A new workflow row, flushed so its id is known."""
    row = Workflow(**fields)
    session.add(row)
    await session.flush()
    return row


def add_version(session: AsyncSession, **fields: object) -> None:
    session.add(WorkflowVersion(**fields))


async def slots_using(session: AsyncSession, workflow_id: str) -> list[str]:
    """The slots of every action (anyone's) that runs this workflow."""
    return list((await session.scalars(select(Action.slot).where(Action.workflow_id == workflow_id))).all())


async def visible_action_slots(session: AsyncSession, user_id: int) -> list[tuple[str, str]]:
    """(workflow id, slot) of the actions this user sees: their own and the shared ones."""
    query = select(Action.workflow_id, Action.slot).where(or_(Action.owner_id == user_id, Action.shared.is_(True)))
    return [(wf, slot) for wf, slot in (await session.execute(query)).all()]
