"""Users' encrypted values: rows keyed by owner and name (the ciphertext is sealed by the service)."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import Secret, utcnow


async def get(session: AsyncSession, owner_id: int, name: str) -> Secret | None:
    return await session.scalar(select(Secret).where(Secret.owner_id == owner_id, Secret.name == name))


async def of_owner(session: AsyncSession, owner_id: int) -> list[Secret]:
    query = select(Secret).where(Secret.owner_id == owner_id).order_by(Secret.name)
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
