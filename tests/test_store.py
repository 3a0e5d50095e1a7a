"""The store: migrations from empty to head, models equal to head, backups, audit rows, pragmas."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, inspect, select, text

from comfyui_studio.db.models import AuditLog, Base, Job, Prompt, User
from comfyui_studio.db.store import Store, include_name, include_object_for, migrate

both_databases = pytest.mark.both_databases


@both_databases
async def test_migrations_bring_an_empty_database_to_head(store: Store) -> None:
    async with store.engine.connect() as conn:
        tables = set(await conn.run_sync(lambda sync_conn: inspect(sync_conn).get_table_names()))
        version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
    assert {"users", "prompts", "jobs", "images", "comfy_calls", "audit_log", "settings"} <= tables
    assert version


@both_databases
async def test_models_equal_head_so_autogenerate_finds_nothing(store: Store) -> None:
    def diff(sync_conn):
        include_object = include_object_for(sync_conn.dialect.name)
        opts = {"compare_type": True, "include_name": include_name, "include_object": include_object}
        context = MigrationContext.configure(sync_conn, opts=opts)
        return compare_metadata(context, Base.metadata)

    async with store.engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_wal_and_foreign_keys_are_on(store: Store) -> None:
    async with store.engine.connect() as conn:
        assert (await conn.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"
        assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one() == 1


async def test_a_migrated_database_is_left_alone_at_start(store: Store, tmp_path: Path) -> None:
    await migrate(store.engine)
    assert not list(tmp_path.glob("studio.db.bak-*"))


async def test_an_upgrade_backs_the_file_up_first(tmp_path: Path) -> None:
    path = tmp_path / "studio.db"
    store = Store(f"sqlite+aiosqlite:///{path}")
    await store.open()
    async with store.session() as session, session.begin():
        session.add(User(username="kept", role="owner"))
    # Pretend the file is one revision behind: the next start must back it up before upgrading.
    async with store.engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = 'older'"))
    await store.close()
    store = Store(f"sqlite+aiosqlite:///{path}")
    with pytest.raises(Exception):  # noqa: B017  ('older' is no revision alembic knows)
        await store.open()
    await store.close()
    backup = tmp_path / "studio.db.bak-older"
    assert backup.exists()
    with sqlite3.connect(backup) as conn:
        assert conn.execute("SELECT username FROM users").fetchall() == [("kept",)]
    with sqlite3.connect(path) as conn:
        # The failed upgrade restored the backup: the data is intact.
        assert conn.execute("SELECT username FROM users").fetchall() == [("kept",)]


@both_databases
async def test_every_create_update_delete_writes_an_audit_row(store: Store) -> None:
    async with store.session(actor_id=None) as session, session.begin():
        user = User(username="alice", role="owner")
        session.add(user)
    async with store.session(actor_id=user.id) as session, session.begin():
        prompt = Prompt(owner_id=user.id, text="a cat")
        session.add(prompt)
        await session.flush()
        prompt.text = "a dog"
        await session.flush()
        await session.delete(prompt)
    async with store.session() as session:
        rows = (await session.scalars(select(AuditLog).order_by(AuditLog.id))).all()
    assert [(r.action, r.entity) for r in rows] == [
        ("create", "users"),
        ("create", "prompts"),
        ("update", "prompts"),
        ("delete", "prompts"),
    ]
    assert rows[2].changes == {"text": "a dog"}
    assert rows[1].actor_id == user.id


@both_databases
async def test_progress_ticks_alone_write_no_audit_row(store: Store) -> None:
    async with store.session() as session, session.begin():
        user = User(username="bob", role="owner")
        session.add(user)
        await session.flush()
        job = Job(owner_id=user.id, graph={}, state="running")
        session.add(job)
    async with store.session() as session, session.begin():
        row = await session.get(Job, job.id)
        row.progress = {"value": 3, "max": 10}
    async with store.session() as session, session.begin():
        row = await session.get(Job, job.id)
        row.state = "done"
    async with store.session() as session:
        actions = (
            await session.execute(
                select(AuditLog.action, func.count()).where(AuditLog.entity == "jobs").group_by(AuditLog.action)
            )
        ).all()
    assert dict(actions) == {"create": 1, "update": 1}


@both_databases
async def test_foreign_keys_refuse_a_job_of_a_missing_user(store: Store) -> None:
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError):
        async with store.session() as session, session.begin():
            session.add(Job(owner_id=999, graph={}))
