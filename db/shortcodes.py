"""Shortcode definitions: the model of migration 0003.

Built-in codes are ordinary rows here (``builtin`` set, no owner), seeded at start-up when missing and
edited by the owner like any other row; user codes belong to their owner and are private unless ``shared``.
The columns mirror ``engine.shortcodes.CodeDefinition`` field by field, so a row converts both ways.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, String, Text, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from ..engine.ids import SHORTCODE, new_id
from .models import Base, utcnow


class Shortcode(Base):
    __tablename__ = "shortcodes"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id(SHORTCODE))
    # None for built-ins: they are shared by everyone and edited by the owner.
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    code: Mapped[str] = mapped_column(String(32))
    aliases: Mapped[list] = mapped_column(JSON, default=list)
    description: Mapped[str] = mapped_column(Text, default="")
    type: Mapped[str] = mapped_column(String(16))
    choices: Mapped[list] = mapped_column(JSON, default=list)
    default: Mapped[dict | list | str | int | float | bool | None] = mapped_column(JSON)
    min: Mapped[float | None] = mapped_column(Float)
    max: Mapped[float | None] = mapped_column(Float)
    scale: Mapped[dict] = mapped_column(JSON, default=dict)
    targets: Mapped[list] = mapped_column(JSON, default=list)
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    # Limits the code to one workflow; a plain string until the workflows table exists (no FK yet).
    workflow_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        # One code per owner (built-ins have no owner: the service keeps their codes unique).
        Index("ix_shortcodes_owner_id_code", "owner_id", "code", unique=True),
        Index("ix_shortcodes_builtin_shared", "builtin", "shared"),
    )


# -- queries ------------------------------------------------------------------------------------------


async def builtin_codes(session: AsyncSession) -> set[str]:
    return set((await session.scalars(select(Shortcode.code).where(Shortcode.builtin))).all())


async def visible(session: AsyncSession, user_id: int) -> list[Shortcode]:
    """Built-ins, this user's codes and everyone's shared ones, in creation order."""
    query = (
        select(Shortcode)
        .where(or_(Shortcode.builtin, Shortcode.owner_id == user_id, Shortcode.shared))
        .order_by(Shortcode.id)
    )
    return list((await session.scalars(query)).all())


async def get(session: AsyncSession, shortcode_id: str) -> Shortcode | None:
    return await session.get(Shortcode, shortcode_id)


async def add(session: AsyncSession, rows: list[Shortcode]) -> None:
    """New rows, flushed: their ids and defaults are known on return."""
    session.add_all(rows)
    await session.flush()


async def save(session: AsyncSession) -> None:
    """Write the changes made to loaded rows now (their new values are read back within the transaction)."""
    await session.flush()


async def delete(session: AsyncSession, row: Shortcode) -> None:
    await session.delete(row)
