"""Which studio process follows which job, when several share one PostgreSQL database.

Every process has a name (host, pid and a random part) and holds a session advisory lock named after it on a
connection of its own, for as long as it runs: the server lets go of it when the process or its connection
dies, so "is that process alive?" is one ``pg_try_advisory_lock``. Jobs carry the name of the process that sent
them to ComfyUI (``jobs.dispatcher``); a process reconciles only its own jobs, and takes over a dead process's
by holding that process's lock while it re-stamps them with a conditional UPDATE, so two survivors never both
adopt (and re-queue) the same job. On SQLite there is one process per file: nothing is stamped or locked.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import secrets
import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import update
from sqlalchemy.engine import make_url

from .models import Job

if TYPE_CHECKING:
    import asyncpg

    from .store import Store  # db.store imports this module

log = logging.getLogger("comfyui_studio.db")

# session.info key: the dispatcher name a session stamps on the jobs it inserts.
DISPATCHER_KEY = "dispatcher"


def lock_key(name: str) -> int:
    """A dispatcher's advisory lock: a signed 64-bit number from its name."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


def asyncpg_dsn(url: str) -> str:
    """The SQLAlchemy URL as a plain DSN asyncpg connects to (for connections outside the pool)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class Dispatchers:
    """This process's dispatcher name and the lock that says it is alive (PostgreSQL only)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.shared = make_url(url).get_backend_name() == "postgresql"
        self.name = f"{socket.gethostname()[:32]}-{os.getpid()}-{secrets.token_hex(4)}"
        self._conn: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()  # one statement at a time on the lock connection

    @property
    def stamp(self) -> str | None:
        """What new jobs carry in ``jobs.dispatcher`` (None on SQLite)."""
        return self.name if self.shared else None

    async def open(self) -> None:
        if not self.shared or self._conn is not None:
            return
        import asyncpg  # only with a PostgreSQL store: a SQLite install needs no driver for it

        self._conn = await asyncpg.connect(asyncpg_dsn(self.url))
        await self._conn.execute("SELECT pg_advisory_lock($1)", lock_key(self.name))

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()  # the server releases the lock with the session

    async def alive(self, name: str) -> bool:
        """Does a process hold ``name``'s lock? (Always True for this process's own name.)"""
        if name == self.name or self._conn is None:
            return True
        async with self._lock:
            if await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", lock_key(name)):
                await self._conn.fetchval("SELECT pg_advisory_unlock($1)", lock_key(name))
                return False
            return True

    async def claim(self, store: Store, jobs: Sequence[Job]) -> list[Job]:
        """The jobs this process is to reconcile: its own, and those of dead processes it takes over now."""
        if self._conn is None:
            return list(jobs)
        by_dispatcher: dict[str | None, list[Job]] = {}
        for job in jobs:
            by_dispatcher.setdefault(job.dispatcher, []).append(job)
        mine = list(by_dispatcher.pop(self.name, []))
        for other, theirs in by_dispatcher.items():
            async with self._lock:
                if other is not None and not await self._conn.fetchval(
                    "SELECT pg_try_advisory_lock($1)", lock_key(other)
                ):
                    continue  # alive: it follows its own jobs
                try:
                    claimed = await self._restamp(store, [j.id for j in theirs], other)
                finally:
                    if other is not None:
                        await self._conn.fetchval("SELECT pg_advisory_unlock($1)", lock_key(other))
            if claimed:
                log.info("Took over %d active jobs of %s", len(claimed), other or "no recorded process")
            for job in theirs:
                if job.id in claimed:
                    job.dispatcher = self.name
                    mine.append(job)
        return mine

    async def _restamp(self, store: Store, job_ids: list[str], previous: str | None) -> set[str]:
        async with store.transaction() as session:
            result = await session.execute(
                update(Job)
                .where(Job.id.in_(job_ids), Job.dispatcher.is_not_distinct_from(previous))
                .values(dispatcher=self.name)
                .returning(Job.id)
                .execution_options(synchronize_session=False)
            )
            return set(result.scalars().all())
