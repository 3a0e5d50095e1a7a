"""Users: look-ups by id and name, the owner, and new rows."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import User


async def get(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def by_username(session: AsyncSession, username: str) -> User | None:
    return await session.scalar(select(User).where(User.username == username))


async def name_taken(session: AsyncSession, username: str, *, except_id: int | None = None) -> bool:
    query = select(User.id).where(User.username == username)
    if except_id is not None:
        query = query.where(User.id != except_id)
    return await session.scalar(query) is not None


async def all_users(session: AsyncSession) -> list[User]:
    return list((await session.scalars(select(User).order_by(User.id))).all())


async def add(session: AsyncSession, **fields: object) -> User:
    """A new user row, flushed so its id is known."""
    user = User(**fields)
    session.add(user)
    await session.flush()
    return user


async def first_owner(session: AsyncSession) -> User | None:
    return await session.scalar(select(User).where(User.role == "owner").order_by(User.id).limit(1))


async def ensure_owner(session: AsyncSession) -> int:
    """The id of the first owner, made (named "owner", no password) when there is none."""
    owner = await first_owner(session)
    if owner is None:
        owner = await add(session, username="owner", role="owner")
    return owner.id
