"""Session families and their refresh tokens (stored as SHA-256 digests only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from .models import RefreshToken, SessionFamily, User


async def family_with_user(session: AsyncSession, family_id: str) -> tuple[SessionFamily, User] | None:
    row = (
        await session.execute(
            select(SessionFamily, User)
            .join(User, User.id == SessionFamily.user_id)
            .where(SessionFamily.id == family_id)
        )
    ).first()
    return None if row is None else (row[0], row[1])


async def get_family(session: AsyncSession, family_id: str) -> SessionFamily | None:
    return await session.get(SessionFamily, family_id)


async def add_family(
    session: AsyncSession, family_id: str, user_id: int, *, local: bool, now: datetime, expires_at: datetime
) -> SessionFamily:
    family = SessionFamily(
        id=family_id, user_id=user_id, local=local, created_at=now, last_used_at=now, expires_at=expires_at
    )
    session.add(family)
    await session.flush()  # the family row first: its tokens' foreign key names it
    return family


def add_token(session: AsyncSession, family_id: str, digest: str, created_at: datetime, expires_at: datetime) -> None:
    session.add(RefreshToken(family_id=family_id, token_hash=digest, created_at=created_at, expires_at=expires_at))


async def token_by_hash(session: AsyncSession, digest: str) -> RefreshToken | None:
    return await session.scalar(select(RefreshToken).where(RefreshToken.token_hash == digest))


async def claim_token(session: AsyncSession, token_id: int, at: datetime) -> bool:
    """Mark an unused token used; False when another request used it first."""
    claimed = await session.execute(
        update(RefreshToken).where(RefreshToken.id == token_id, RefreshToken.used_at.is_(None)).values(used_at=at)
    )
    # An UPDATE's result is a CursorResult (with its rowcount); SQLAlchemy types execute() as returning any Result.
    return cast("CursorResult[Any]", claimed).rowcount == 1


async def live_families(session: AsyncSession, user_id: int) -> list[SessionFamily]:
    query = select(SessionFamily).where(SessionFamily.user_id == user_id, SessionFamily.revoked_at.is_(None))
    return list((await session.scalars(query)).all())


async def prune(session: AsyncSession, cutoff: datetime) -> int:
    """Delete the families expired or revoked before cutoff, with their tokens; how many went."""
    stale = select(SessionFamily.id).where(or_(SessionFamily.expires_at < cutoff, SessionFamily.revoked_at < cutoff))
    ids = list((await session.scalars(stale)).all())
    if ids:
        await session.execute(delete(RefreshToken).where(RefreshToken.family_id.in_(ids)))
        await session.execute(delete(SessionFamily).where(SessionFamily.id.in_(ids)))
    return len(ids)
