"""Stored setting overrides: rows of the `settings` table, one key per global setting and per user's own."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import Setting

JSONValue = dict | list | str | int | float | bool | None


def user_key(user_id: int, name: str) -> str:
    """A user's own value of a setting: ``user:<id>:<name>`` (global settings are stored under their name)."""
    return f"user:{user_id}:{name}"


async def read(session: AsyncSession, keys: list[str]) -> dict[str, JSONValue]:
    rows = (await session.scalars(select(Setting).where(Setting.key.in_(keys)))).all()
    return {r.key: r.value for r in rows}


async def write(session: AsyncSession, key: str, value: JSONValue) -> None:
    row = await session.get(Setting, key)
    if row is None:
        session.add(Setting(key=key, value=value))
    else:
        row.value = value


async def remove(session: AsyncSession, key: str) -> None:
    await session.execute(delete(Setting).where(Setting.key == key))
