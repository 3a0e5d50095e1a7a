"""Users' encrypted values: rows keyed by owner and name (the ciphertext is sealed by the service).

Rows named with SHARED_PREFIX are the studio's own (the session signing keys every process on a PostgreSQL
database shares): no user's secret can have such a name, and no user's listing shows them.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from .models import Secret, utcnow

SHARED_PREFIX = "studio:"  # ':' is outside a user secret's name alphabet


async def get(session: AsyncSession, owner_id: int, name: str) -> Secret | None:
    return await session.scalar(select(Secret).where(Secret.owner_id == owner_id, Secret.name == name))


async def of_owner(session: AsyncSession, owner_id: int) -> list[Secret]:
    query = select(Secret).where(Secret.owner_id == owner_id, ~Secret.name.startswith(SHARED_PREFIX))
    query = query.order_by(Secret.name)
    return list((await session.scalars(query)).all())


async def every(session: AsyncSession) -> list[Secret]:
    """Every user's rows (re-encrypting them under a new key)."""
    return list((await session.scalars(select(Secret).order_by(Secret.id))).all())


async def put(session: AsyncSession, owner_id: int, name: str, ciphertext: bytes) -> tuple[Secret, bool]:
    """The row holding this ciphertext now, and whether it is new."""
    row = await get(session, owner_id, name)
    created = row is None
    if row is None:
        row = Secret(owner_id=owner_id, name=name, ciphertext=ciphertext)
        session.add(row)
    else:
        row.ciphertext = ciphertext
        row.updated_at = utcnow()
    await session.flush()
    return row, created


async def remove(session: AsyncSession, secret_id: int) -> None:
    await session.execute(delete(Secret).where(Secret.id == secret_id))


async def shared(session: AsyncSession, name: str, *, for_update: bool = False) -> Secret | None:
    """The studio-wide row of this name (the first one made, whoever its owner)."""
    query = select(Secret).where(Secret.name == name).order_by(Secret.id).limit(1)
    return await session.scalar(query.with_for_update() if for_update else query)


async def insert_absent(session: AsyncSession, owner_id: int, name: str, ciphertext: bytes) -> None:
    """Insert the row unless one with this owner and name exists (two processes at once: the first wins)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    now = utcnow()
    statement = dialect.insert(Secret).values(
        owner_id=owner_id, name=name, ciphertext=ciphertext, created_at=now, updated_at=now
    )
    await session.execute(statement.on_conflict_do_nothing(index_elements=["owner_id", "name"]))
