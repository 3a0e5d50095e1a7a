"""Expired and revoked sessions are removed at start-up, live ones are kept."""

from __future__ import annotations

import time

from harness import StudioRun
from sqlalchemy import func, select

from comfyui_studio.db.models import RefreshToken, SessionFamily, User

from .conftest import Clock, security_of


async def _families(run: StudioRun) -> tuple[int, int]:
    async with run.studio.store.session() as session:
        families = await session.scalar(select(func.count()).select_from(SessionFamily))
        tokens = await session.scalar(select(func.count()).select_from(RefreshToken))
    return families, tokens


async def test_prune_removes_only_sessions_expired_or_revoked_long_ago(local_run: StudioRun) -> None:
    security = security_of(local_run)
    sessions = security.sessions
    async with local_run.studio.store.session() as session:
        owner = await session.get(User, local_run.studio.owner_id)
    clock = Clock(time.time())
    security.set_clock(clock)
    old = await sessions.open(owner, reason="login")
    revoked = await sessions.open(owner, reason="login")
    await sessions.revoke_family(revoked.family_id, "logout")
    clock.advance(40 * 86400)  # both far past expiry and revocation
    live = await sessions.open(owner, reason="login")
    before = await _families(local_run)
    assert await sessions.prune() >= 2
    families, tokens = await _families(local_run)
    assert families == before[0] - 2 and tokens < before[1]
    async with local_run.studio.store.session() as session:
        assert await session.get(SessionFamily, live.family_id) is not None
        assert await session.get(SessionFamily, old.family_id) is None
