"""Boards: a user's named collections of gallery images (InvokeAI's boards, Midjourney's folders).

Each user sees only their own boards (another user's board is not found). An image may be in several boards;
deleting a board removes its memberships only, never an image.
"""

from __future__ import annotations

import builtins
import unicodedata
from functools import partial

from ..db import audit
from ..db import boards as boards_db
from ..db.models import utcnow
from ..db.store import Session, Store
from ..engine.errors import StudioError, not_found, validation_error
from .jobs import JSON, iso

MAX_NAME = 64
MAX_BOARDS = 500
MAX_CHANGE = 200


def board_name(raw: str) -> tuple[str, str]:
    """A board's name as stored, and its uniqueness key: trimmed, NFC, 1–64 characters, no control characters."""
    name = unicodedata.normalize("NFC", raw).strip()
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        raise validation_error("A board name cannot hold control characters", ["body", "name"], "control_characters")
    if not name:
        raise validation_error("A board needs a name", ["body", "name"], "string_too_short")
    if len(name) > MAX_NAME:
        raise validation_error(f"A board name has at most {MAX_NAME} characters", ["body", "name"], "string_too_long")
    return name, " ".join(name.casefold().split())


def board_to_dict(row: boards_db.BoardRow) -> dict[str, JSON]:
    cover = row.cover_image_id
    return {
        "id": row.board.id,
        "name": row.board.name,
        "count": row.count,
        "cover": None if cover is None else {"id": cover, "thumb_url": f"/studio/api/v1/images/{cover}/thumb"},
        "created_at": iso(row.board.created_at),
        "updated_at": iso(row.board.updated_at),
    }


class Boards:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def list(self, owner_id: int) -> dict[str, JSON]:
        """The user's boards by name, with counts and covers."""
        async with self.store.transaction(owner_id) as session:
            rows = await boards_db.boards_of(session, owner_id)
        return {"items": [board_to_dict(row) for row in rows]}

    async def require(self, owner_id: int, board_id: str) -> None:
        """Not found unless the board is this user's (the board filter answers 404 for anyone else's)."""
        if not await self.store.read(partial(boards_db.owns_board, owner_id=owner_id, board_id=board_id)):
            raise not_found("Board")

    async def create(self, owner_id: int, raw_name: str) -> dict[str, JSON]:
        name, key = board_name(raw_name)
        async with self.store.transaction(owner_id) as session:
            if await boards_db.board_count(session, owner_id) >= MAX_BOARDS:
                raise StudioError("conflict", f"You have {MAX_BOARDS} boards, the most there can be: delete one first")
            await self._refuse_taken(session, owner_id, key, name)
            board = boards_db.Board(owner_id=owner_id, name=name, name_key=key)
            await boards_db.add_board(session, board)
        return board_to_dict(boards_db.BoardRow(board, 0, None))

    async def rename(self, owner_id: int, board_id: str, raw_name: str) -> dict[str, JSON]:
        name, key = board_name(raw_name)
        async with self.store.transaction(owner_id) as session:
            board = await self._owned(session, owner_id, board_id)
            if key != board.name_key:
                await self._refuse_taken(session, owner_id, key, name)
            if name != board.name:
                board.name, board.name_key, board.updated_at = name, key, utcnow()
            await session.flush()
            (row,) = await boards_db.boards_of(session, owner_id, [board_id])
        return board_to_dict(row)

    async def delete(self, owner_id: int, board_id: str) -> dict[str, JSON]:
        """Delete the board and its memberships; its images stay in the gallery."""
        async with self.store.transaction(owner_id) as session:
            board = await self._owned(session, owner_id, board_id)
            removed = await boards_db.delete_board(session, board)
        return {"id": board_id, "deleted": True, "removed": removed}

    async def change_images(
        self, owner_id: int, board_id: str, add: builtins.list[str], remove: builtins.list[str]
    ) -> dict[str, JSON]:
        """Add and remove images in one transaction; each id succeeds or fails on its own, reported per id.

        Adding an image already there, or removing one that is not, succeeds and changes nothing.
        """
        add, remove = builtins.list(dict.fromkeys(add)), builtins.list(dict.fromkeys(remove))
        if set(add) & set(remove):
            raise validation_error("An image cannot be added and removed at once", ["body", "remove"], "conflict")
        if len(add) + len(remove) > MAX_CHANGE:
            raise validation_error(f"At most {MAX_CHANGE} images at a time", ["body"], "too_long")
        failed: builtins.list[JSON] = []
        async with self.store.transaction(owner_id) as session:
            board = await self._owned(session, owner_id, board_id)
            images = await boards_db.owned_images(session, owner_id, add)
            present = await boards_db.members(session, board_id, [*add, *remove])
            failed += [{"id": i, "code": "not_found", "message": "Image not found"} for i in add if i not in images]
            new = [images[i] for i in add if i in images and i not in present]
            gone = [i for i in remove if i in present]
            await boards_db.add_items(session, board_id, new)
            await boards_db.remove_items(session, board_id, gone)
            if new or gone:
                board.updated_at = utcnow()
                changes: dict[str, object] = {"added": [i.id for i in new], "removed": gone}
                audit.record(session, owner_id, "board_images", "boards", board_id, changes)
            await session.flush()
            (row,) = await boards_db.boards_of(session, owner_id, [board_id])
        return {
            "board": board_to_dict(row),
            "added": [i for i in add if i in images],
            "removed": remove,
            "failed": failed,
        }

    async def _owned(self, session: Session, owner_id: int, board_id: str) -> boards_db.Board:
        board = await boards_db.owned_board(session, owner_id, board_id)
        if board is None:
            raise not_found("Board")
        return board

    async def _refuse_taken(self, session: Session, owner_id: int, key: str, name: str) -> None:
        if await boards_db.board_named(session, owner_id, key) is not None:
            raise StudioError(
                "conflict",
                f"You already have a board named {name!r}",
                [{"loc": ["body", "name"], "message": "name taken", "type": "duplicate"}],
            )
