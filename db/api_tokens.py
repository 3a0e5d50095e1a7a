"""API tokens (migration 0012): a user's tokens for the ComfyUI-compatible routes, found by digest."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from .models import ApiToken, User
from .store import ReadSession


@dataclass(frozen=True)
class TokenHolder:
    """Who a live token speaks for."""

    token_id: int
    token_digest: str
    user_id: int
    role: str
    last_used_at: datetime | None


async def add(session: AsyncSession, *, owner_id: int, name: str, digest: str, prefix: str) -> ApiToken:
    row = ApiToken(owner_id=owner_id, name=name, token_digest=digest, prefix=prefix)
    session.add(row)
    await session.flush()
    return row


async def of_owner(session: AsyncSession, owner_id: int) -> list[ApiToken]:
    query = select(ApiToken).where(ApiToken.owner_id == owner_id).order_by(ApiToken.id.desc())
    return list((await session.execute(query)).scalars())


async def owned(session: AsyncSession, owner_id: int, token_id: int) -> ApiToken | None:
    row = await session.get(ApiToken, token_id)
    return row if row is not None and row.owner_id == owner_id else None


def holder(session: ReadSession, digest: str) -> TokenHolder | None:
    """The unrevoked token with this digest and its enabled user, or None (a `Store.read` unit of work)."""
    query = (
        select(ApiToken.id, ApiToken.token_digest, User.id, User.role, ApiToken.last_used_at)
        .join(User, User.id == ApiToken.owner_id)
        .where(ApiToken.token_digest == digest, ApiToken.revoked_at.is_(None), User.disabled.is_(False))
    )
    found = session.execute(query).first()
    return TokenHolder(*found) if found is not None else None


async def touch(session: AsyncSession, token_id: int, at: datetime) -> None:
    await session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=at))
