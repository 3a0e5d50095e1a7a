"""The store's engine: SQLite pragmas or PostgreSQL, migrations (with a backup on SQLite), audit rows, sessions."""

from __future__ import annotations

import asyncio
import logging
import shutil
import sqlite3
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, event, insert, inspect, text
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session as OrmSession

from ..engine.jsoncodec import dumps
from .dispatch import DISPATCHER_KEY, Dispatchers
from .models import AuditLog, Base, utcnow
from .private import ensure_private_file

log = logging.getLogger("comfyui_studio.db")

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Set on a session (session.info["actor_id"]) so audit rows name who did it.
ACTOR_KEY = "actor_id"
# Read connections beside the one writer (WAL lets readers run while it writes).
READERS = 4
# Two studio processes starting on one PostgreSQL database migrate one after the other (a transaction-scoped
# advisory lock; any fixed number both agree on).
MIGRATION_LOCK = 0x5354_5544_494F_0001

T = TypeVar("T")


def backend_name(url: str) -> str:
    """ "sqlite" or "postgresql" (SQLAlchemy's dialect name of a database URL)."""
    return make_url(url).get_backend_name()


def _sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def create_engine(url: str) -> AsyncEngine:
    """An async engine; on SQLite with WAL, foreign keys and a busy timeout on every connection.

    On PostgreSQL (``postgresql+asyncpg://``) the server has its own concurrency: a pool of connections, each
    checked before use so a restarted server costs one failed ping, not a failed request.
    """
    # The file and its folder are made private in Store.open, before SQLite first creates anything.
    path = _sqlite_path(url)
    options: dict[str, object] = {}
    if path is not None:
        # SQLite has one writer: transactions queue here, in order, instead of in SQLite's busy handler,
        # whose growing sleeps (up to 100 ms a try) collapse throughput when writers contend.
        options = {"pool_size": 1, "max_overflow": 0, "pool_timeout": 60}
    elif backend_name(url) == "postgresql":
        options = {"pool_size": 10, "max_overflow": 10, "pool_pre_ping": True}
    engine = create_async_engine(url, json_serializer=dumps, **options)
    if backend_name(url) == "sqlite":

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_connection: sqlite3.Connection, _record: object) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()
            # Transactions are begun by SQLAlchemy below, not by the driver's legacy implicit BEGIN.
            dbapi_connection.isolation_level = None

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(connection: Connection) -> None:
            # Reads inside a transaction see one snapshot (the driver's own BEGIN came only before writes).
            connection.exec_driver_sql("BEGIN")

    return engine


# Full-text search lives outside the models: SQLite's FTS5 tables, PostgreSQL's tsvector column and its index.
_FTS_COLUMNS = {"text_search"}
_FTS_INDEXES = {"ix_prompts_text_search"}


# Indexes PostgreSQL builds its own way (migration 0009: md5 of the prompt text, as a B-tree entry is limited).
_POSTGRESQL_OWN_INDEXES = {"ix_prompts_owner_id_text_id"}


def include_name(name: str | None, type_: str, _parents: object) -> bool:
    """What autogenerate compares: not the full-text search objects, which live outside the models."""
    if name is None:
        return True
    if type_ == "table":
        return not name.startswith("prompts_fts")
    if type_ == "column":
        return name not in _FTS_COLUMNS
    if type_ == "index":
        return name not in _FTS_INDEXES
    return True


def include_object_for(dialect: str) -> Callable[[object, str | None, str, bool, object], bool]:
    """What autogenerate compares on this database, of the models and the schema alike: on PostgreSQL not the
    indexes it builds its own way."""

    def include(_object: object, name: str | None, type_: str, _reflected: bool, _compare_to: object) -> bool:
        return not (dialect == "postgresql" and type_ == "index" and name in _POSTGRESQL_OWN_INDEXES)

    return include


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["target_metadata"] = Base.metadata
    cfg.attributes["include_name"] = include_name
    return cfg


def _current_and_head(connection: Connection) -> tuple[str | None, str | None]:
    current = MigrationContext.configure(connection).get_current_revision()
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    return current, head


def _upgrade(connection: Connection) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")


def _backup(path: Path, revision: str | None) -> Path:
    backup = path.with_name(f"{path.name}.bak-{revision or 'none'}")
    # sqlite's backup API copies a consistent snapshot, WAL included.
    src = sqlite3.connect(path)
    try:
        dst = sqlite3.connect(backup)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()
    return backup


def _restore(backup: Path, path: Path) -> None:
    shutil.copyfile(backup, path)
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to head; back the SQLite file up first and restore it if the upgrade fails.

    PostgreSQL's DDL is transactional: a failed upgrade rolls back whole, so no copy is taken (pg_dump is the
    tool for backups there). Processes starting together take turns under an advisory lock.
    """
    async with engine.connect() as conn:
        current, head = await conn.run_sync(_current_and_head)
    if current == head:
        return
    if engine.dialect.name == "postgresql":
        async with engine.begin() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            current, head = await conn.run_sync(_current_and_head)
            if current != head:
                await conn.run_sync(_upgrade)
        return
    path = _sqlite_path(str(engine.url))
    backup = None
    if path is not None and current is not None:
        backup = await asyncio.to_thread(_backup, path, current)
        log.info("Backed up the studio database before upgrading from %s to %s", current, head)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade)
    except Exception:
        if backup is not None and path is not None:
            await engine.dispose()
            await asyncio.to_thread(_restore, backup, path)
            log.exception("Database upgrade failed; restored the backup taken before it")
        raise


# Columns whose values never go into the audit log (password hashes, token digests, ciphertexts).
_AUDIT_REDACT = ("password", "secret", "token", "ciphertext")


def _audit_changes(obj: Base) -> dict[str, object]:
    state = inspect(obj)
    changes: dict[str, object] = {}
    for attr in state.mapper.column_attrs:
        hist = state.attrs[attr.key].history
        if hist.has_changes():
            new = hist.added[0] if hist.added else None
            if any(word in attr.key for word in _AUDIT_REDACT):
                new = "<redacted>"
            changes[attr.key] = new if isinstance(new, (str, int, float, bool, type(None))) else "<changed>"
    return changes


def _primary_key(obj: Base) -> str:
    identity = inspect(obj).identity
    if identity:
        return ",".join(str(v) for v in identity)
    mapper = inspect(type(obj))
    return ",".join(str(getattr(obj, mapper.get_property_by_column(c).key)) for c in mapper.primary_key)


# Flush events fire on the ORM session under every AsyncSession.
@event.listens_for(OrmSession, "before_flush")
def _collect_audit_rows(session: OrmSession, _ctx: object, _instances: object) -> None:
    pending: list[tuple[str, Base, dict[str, object]]] = session.info.setdefault("_pending_audit", [])
    for action, objects in (("create", session.new), ("update", session.dirty), ("delete", session.deleted)):
        for obj in objects:
            if not isinstance(obj, Base) or "*" in obj.__audit_ignore__:
                continue
            changes: dict[str, object] = {}
            if action == "update":
                if not session.is_modified(obj, include_collections=False):
                    continue
                changes = _audit_changes(obj)
                if not set(changes) - obj.__audit_ignore__:
                    continue
            pending.append((action, obj, changes))


@event.listens_for(OrmSession, "after_flush")
def _write_audit_rows(session: OrmSession, _ctx: object) -> None:
    pending: list[tuple[str, Base, dict[str, object]]] = session.info.pop("_pending_audit", [])
    if not pending:
        return
    actor = session.info.get(ACTOR_KEY)
    now = utcnow()
    # Primary keys exist only after the flush; insert with Core so the flush is not re-entered.
    session.connection().execute(
        insert(AuditLog),
        [
            {
                "at": now,
                "actor_id": actor,
                "action": action,
                "entity": obj.__tablename__,
                "entity_id": _primary_key(obj),
                "changes": changes,
            }
            for action, obj, changes in pending
        ],
    )


def create_read_engine(path: Path) -> Engine:
    """A pool of synchronous, read-only SQLite connections for `Store.read`."""
    engine = create_sync_engine(
        f"sqlite:///{path}",
        json_serializer=dumps,
        pool_size=READERS,
        max_overflow=0,
        connect_args={"check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA query_only=ON")
        cursor.close()
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN")  # one snapshot for the whole read

    return engine


class Store:
    """The engine and its session factory, opened and migrated once per application."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._readers: tuple[Engine, ThreadPoolExecutor] | None = None
        # This process among others on one PostgreSQL database (db.dispatch); inert on SQLite.
        self.dispatch = Dispatchers(url)

    async def open(self) -> None:
        path = _sqlite_path(self.url)
        if path is not None:
            await asyncio.to_thread(ensure_private_file, path)
        await migrate(self.engine)
        await self.dispatch.open()

    async def close(self) -> None:
        await self.dispatch.close()
        if self._readers is not None:
            engine, threads = self._readers
            self._readers = None
            threads.shutdown(wait=True)
            engine.dispose()
        await self.engine.dispose()

    @property
    def sqlite_path(self) -> Path | None:
        """The database file (None: not SQLite, or in memory)."""
        return _sqlite_path(self.url)

    @property
    def dialect(self) -> str:
        """ "sqlite" or "postgresql"."""
        return self.engine.dialect.name

    async def vacuum(self) -> bool:
        """Compact the SQLite file, or VACUUM (ANALYZE) on PostgreSQL (both run outside any transaction)."""
        if self.dialect == "postgresql":
            async with self.engine.connect() as conn:
                autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await autocommit.execute(text("VACUUM (ANALYZE)"))
            return True
        if self.sqlite_path is None:
            return False
        async with self.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            await driver.execute("VACUUM")
            # VACUUM rewrote every page through the WAL: fold it back so the disk shrinks now.
            await driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return True

    async def backup_to(self, target: Path) -> int:
        """A consistent copy of the live SQLite database at ``target`` (SQLite's online backup API), in bytes.

        Written beside the target and renamed into place, so a crash never leaves a half backup under its name.
        """
        source = self.sqlite_path
        if source is None:
            raise ValueError("only a SQLite store is backed up by the studio; back PostgreSQL up with pg_dump")
        part = target.with_name(target.name + ".part")

        def copy() -> int:
            target.parent.mkdir(parents=True, exist_ok=True)
            part.unlink(missing_ok=True)
            ensure_private_file(part)  # 0600 before SQLite writes a byte of it
            src = sqlite3.connect(source)
            try:
                dst = sqlite3.connect(part)
                try:
                    src.backup(dst)
                finally:
                    dst.close()
            finally:
                src.close()
            part.replace(target)
            return target.stat().st_size

        return await asyncio.to_thread(copy)

    def session(self, actor_id: int | None = None) -> AsyncSession:
        session = self.sessions()
        session.info[ACTOR_KEY] = actor_id
        session.info[DISPATCHER_KEY] = self.dispatch.stamp
        return session

    @asynccontextmanager
    async def transaction(self, actor_id: int | None = None) -> AsyncIterator[AsyncSession]:
        """One use case's unit of work: a session in a transaction, committed on exit, rolled back on error."""
        async with self.session(actor_id) as session, session.begin():
            yield session

    async def read(self, work: Callable[[OrmSession], T]) -> T:
        """A read-only unit of work, run whole: ``work`` gets a synchronous session in one snapshot.

        On SQLite it runs on a pool of read connections in a worker thread: one thread hop for the whole read
        instead of several per statement, and never queued behind the writer's transactions. Elsewhere it runs
        on the async engine's own connection (``run_sync``).
        """
        path = _sqlite_path(self.url)
        if path is None:
            async with self.sessions() as session:
                return await session.run_sync(work)
        if self._readers is None:
            self._readers = create_read_engine(path), ThreadPoolExecutor(READERS, thread_name_prefix="studio-read")
        engine, threads = self._readers

        def run() -> T:
            with OrmSession(engine) as session, session.begin():
                return work(session)

        return await asyncio.get_running_loop().run_in_executor(threads, run)


# The session type services hold between a transaction and the repository functions they call.
Session = AsyncSession
# The one a `Store.read` unit of work gets.
ReadSession = OrmSession

__all__ = ["Base", "ReadSession", "Session", "Store", "create_engine", "migrate"]
