"""Boards: a user's named collections of gallery images (migration 0010), and their queries.

An image may be in several boards; a board holds each image once. Memberships keep the image's job id, so the
gallery's board filter walks ``ix_board_items_board_id_job_id_image_id`` newest job first (db/search.py), and
deleting a board removes its memberships only: the images stay in the gallery.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from ..engine.ids import BOARD, new_id
from .models import Base, Image, utcnow
from .store import ReadSession


class Board(Base):
    __tablename__ = "boards"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id(BOARD))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(64))
    # the name as uniqueness reads it (case-folded): "Cats" and "cats" are one board
    name_key: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("owner_id", "name_key", name="uq_boards_owner_id_name_key"),)


class BoardItem(Base):
    __tablename__ = "board_items"
    # one audit row per change of a board's images (services/boards.py), not one per membership
    __audit_ignore__ = frozenset({"*"})
    board_id: Mapped[str] = mapped_column(ForeignKey("boards.id"), primary_key=True)
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id"), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"))
    added_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        # the board filter's walk, newest job first, and "is this its job's first image here?" probes
        Index("ix_board_items_board_id_job_id_image_id", "board_id", "job_id", "image_id"),
        Index("ix_board_items_image_id", "image_id"),
    )


BOARD_ITEMS = Base.metadata.tables[BoardItem.__tablename__]


@dataclass(frozen=True)
class BoardRow:
    board: Board
    count: int
    cover_image_id: str | None


async def boards_of(session: AsyncSession, owner_id: int, board_ids: list[str] | None = None) -> list[BoardRow]:
    """The owner's boards by name, each with how many visible images it holds and its newest one (the cover)."""
    visible = (
        select(BoardItem.image_id)
        .join(Image, Image.id == BoardItem.image_id)
        .where(BoardItem.board_id == Board.id, Image.deleted_at.is_(None))
    )
    count = (
        select(func.count())
        .select_from(BoardItem)
        .join(Image, Image.id == BoardItem.image_id)
        .where(BoardItem.board_id == Board.id, Image.deleted_at.is_(None))
        .scalar_subquery()
    )
    cover = visible.order_by(BoardItem.job_id.desc(), BoardItem.image_id.desc()).limit(1).scalar_subquery()
    query = select(Board, count, cover).where(Board.owner_id == owner_id)
    if board_ids is not None:
        query = query.where(Board.id.in_(board_ids))
    rows = (await session.execute(query.order_by(Board.name_key, Board.id))).all()
    return [BoardRow(board, int(n or 0), image_id) for board, n, image_id in rows]


async def board_count(session: AsyncSession, owner_id: int) -> int:
    return int((await session.scalar(select(func.count()).where(Board.owner_id == owner_id))) or 0)


async def owned_board(session: AsyncSession, owner_id: int, board_id: str) -> Board | None:
    board = await session.get(Board, board_id)
    return board if board is not None and board.owner_id == owner_id else None


def owns_board(session: ReadSession, owner_id: int, board_id: str) -> bool:
    """Whether the board is this owner's (a read-pool read: the board filter checks it before each page)."""
    found = session.scalar(select(Board.id).where(Board.id == board_id, Board.owner_id == owner_id))
    return found is not None


async def board_named(session: AsyncSession, owner_id: int, name_key: str) -> Board | None:
    return await session.scalar(select(Board).where(Board.owner_id == owner_id, Board.name_key == name_key))


async def add_board(session: AsyncSession, board: Board) -> None:
    session.add(board)
    await session.flush()


async def delete_board(session: AsyncSession, board: Board) -> int:
    """Remove a board and its memberships (never its images); returns how many memberships went."""
    result = await session.execute(delete(BoardItem).where(BoardItem.board_id == board.id))
    await session.delete(board)
    await session.flush()
    return int(getattr(result, "rowcount", 0) or 0)


async def owned_images(session: AsyncSession, owner_id: int, image_ids: list[str]) -> dict[str, Image]:
    """Those of ``image_ids`` that are the owner's visible gallery images (with a job), by id."""
    if not image_ids:
        return {}
    rows = await session.scalars(
        select(Image).where(
            Image.id.in_(image_ids),
            Image.owner_id == owner_id,
            Image.deleted_at.is_(None),
            Image.job_id.is_not(None),
        )
    )
    return {image.id: image for image in rows}


async def members(session: AsyncSession, board_id: str, image_ids: list[str]) -> set[str]:
    if not image_ids:
        return set()
    rows = await session.scalars(
        select(BoardItem.image_id).where(BoardItem.board_id == board_id, BoardItem.image_id.in_(image_ids))
    )
    return set(rows)


async def add_items(session: AsyncSession, board_id: str, images: list[Image]) -> None:
    if images:
        now = utcnow()
        rows = [{"board_id": board_id, "image_id": i.id, "job_id": i.job_id, "added_at": now} for i in images]
        await session.execute(insert(BOARD_ITEMS), rows)


async def remove_items(session: AsyncSession, board_id: str, image_ids: list[str]) -> None:
    if image_ids:
        await session.execute(
            delete(BoardItem).where(BoardItem.board_id == board_id, BoardItem.image_id.in_(image_ids))
        )
