"""Civitai's rows: cached answers (by request key, with their expiry) and the SHA-256 of local model files."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import CivitaiCache, ModelFileHash


async def cached(session: AsyncSession, key: str) -> CivitaiCache | None:
    return await session.get(CivitaiCache, key)


async def store_cached(
    session: AsyncSession, key: str, endpoint: str, body: str, fetched_at: float, expires_at: float
) -> None:
    row = await session.get(CivitaiCache, key)
    if row is None:
        session.add(CivitaiCache(key=key, endpoint=endpoint, body=body, fetched_at=fetched_at, expires_at=expires_at))
    else:
        row.endpoint, row.body, row.fetched_at, row.expires_at = endpoint, body, fetched_at, expires_at


async def prune_cached(session: AsyncSession, older_than: float) -> int:
    """Drop answers expired before ``older_than`` (too old to serve even as stale)."""
    result = await session.execute(delete(CivitaiCache).where(CivitaiCache.expires_at < older_than))
    return int(getattr(result, "rowcount", 0) or 0)


async def model_hashes(session: AsyncSession) -> list[ModelFileHash]:
    return list((await session.scalars(select(ModelFileHash))).all())


async def put_model_hash(
    session: AsyncSession, path: str, folder: str, name: str, size: int, mtime: float, sha256: str
) -> None:
    row = await session.get(ModelFileHash, path)
    if row is None:
        session.add(ModelFileHash(path=path, folder=folder, name=name, size=size, mtime=mtime, sha256=sha256))
    else:
        row.folder, row.name, row.size, row.mtime, row.sha256 = folder, name, size, mtime, sha256


async def remove_model_hashes(session: AsyncSession, paths: list[str]) -> None:
    if paths:
        await session.execute(delete(ModelFileHash).where(ModelFileHash.path.in_(paths)))
