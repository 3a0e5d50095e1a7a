"""The gallery's page queries on PostgreSQL: the same rows as on SQLite, page after page, each page served from an
index (no Seq Scan on jobs or images), on a store seeded at a realistic shape and copied into PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from pg import PostgresServer
from test_gallery_plans import FILTERS, OWNER, brute_force, seed, some_date

from comfyui_studio.db.gallery import prompt_history_query
from comfyui_studio.db.search import JobFilter, page_query
from comfyui_studio.db.store import Store

JOBS = 20000
TABLES = ("users", "workflows", "workflow_versions", "prompts", "jobs", "images", "boards", "board_items")


@pytest.fixture(scope="module")
def seeded_pg(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: PostgresServer
) -> Iterator[tuple[Store, Store, Path]]:
    """The gallery seeded into SQLite, then copied table by table into a fresh PostgreSQL database."""
    path = tmp_path_factory.mktemp("gallery-pg") / "studio.db"
    sqlite_store = Store(f"sqlite+aiosqlite:///{path}")
    asyncio.run(sqlite_store.open())
    asyncio.run(sqlite_store.close())
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO users (id, username, role, disabled, created_at) VALUES (?, 'owner', 'admin', 0, ?)",
            (OWNER, "2026-01-01 00:00:00"),
        )
    seed(path, JOBS, owner_id=OWNER)
    name = asyncio.run(postgres_server.create_database())
    asyncio.run(_copy(path, postgres_server.dsn(name)))
    yield sqlite_store, Store(postgres_server.url(name)), path
    asyncio.run(postgres_server.drop_database(name))


def _converter(data_type: str) -> Any:
    if data_type.startswith("timestamp"):
        return lambda v: None if v is None else datetime.fromisoformat(v)
    if data_type == "boolean":
        return lambda v: None if v is None else bool(v)
    return lambda v: v


async def _copy(path: Path, dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        # jobs and images refer to each other: load them with the foreign-key triggers off (a superuser's right)
        await conn.execute("SET session_replication_role = replica")
        with sqlite3.connect(path) as db:
            for table in TABLES:
                types = dict(
                    await conn.fetch(
                        "SELECT column_name, data_type FROM information_schema.columns"
                        " WHERE table_name = $1 AND is_generated = 'NEVER'",
                        table,
                    )
                )
                columns = [row[1] for row in db.execute(f"PRAGMA table_info({table})") if row[1] in types]
                convert = [_converter(types[c]) for c in columns]
                quoted = ", ".join(f'"{c}"' for c in columns)
                rows = [
                    tuple(f(v) for f, v in zip(convert, row, strict=True))
                    for row in db.execute(f"SELECT {quoted} FROM {table}")
                ]
                await conn.copy_records_to_table(table, records=rows, columns=columns)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def _pg(store: Store, query: Any, *, explain: bool = False) -> list[Any]:
    compiled = query.compile(dialect=store.engine.dialect)
    params = tuple(compiled.params[name] for name in compiled.positiontup)
    try:
        async with store.engine.connect() as conn:
            sql = ("EXPLAIN " if explain else "") + str(compiled)
            rows = (await conn.exec_driver_sql(sql, params)).all()
    finally:
        await store.engine.dispose()
    return [row[0] for row in rows] if explain else [tuple(row) for row in rows]


def _sqlite(path: Path, store: Store, query: Any) -> list[tuple[Any, ...]]:
    compiled = query.compile(dialect=store.engine.dialect)
    with sqlite3.connect(path) as db:
        return db.execute(str(compiled), tuple(compiled.params[n] for n in compiled.positiontup)).fetchall()


def _filters(path: Path, name: str) -> JobFilter:
    return FILTERS.get(name) or JobFilter(since=some_date(path, 3000), until=some_date(path, 1000))


NAMES = [*FILTERS, "date range"]
# the filters the seed has matches for (as in test_gallery_plans)
WITH_ROWS = [n for n in NAMES if n not in ("workflow", "board and action")]


@pytest.mark.parametrize("name", WITH_ROWS)
def test_postgresql_pages_the_same_jobs_as_sqlite_newest_first(seeded_pg: tuple[Store, Store, Path], name: str):
    lite, pg, path = seeded_pg
    filters = _filters(path, name)
    expected = brute_force(path, filters)
    assert expected, "the seed has matches for every filter"
    got: list[str] = []
    cursor = None
    while len(got) < min(len(expected), 450):
        page = asyncio.run(_pg(pg, page_query(pg, OWNER, cursor, 150, filters)))
        # the same page as SQLite's query gives
        assert [r[0] for r in page] == [
            r[0] for r in _sqlite(path, lite, page_query(lite, OWNER, cursor, 150, filters))
        ]
        if not page:
            break
        got += [r[0] for r in page]
        cursor = page[-1][0]
    assert got[:450] == expected[:450]


@pytest.mark.parametrize("name", NAMES)
def test_every_page_query_is_served_by_an_index_on_postgresql(seeded_pg: tuple[Store, Store, Path], name: str):
    _lite, pg, path = seeded_pg
    filters = _filters(path, name)
    middle = asyncio.run(_pg(pg, page_query(pg, OWNER, None, JOBS // 2, JobFilter())))[-1][0]
    for cursor in (None, middle):
        steps = asyncio.run(_pg(pg, page_query(pg, OWNER, cursor, 51, filters), explain=True))
        scanned = ("Seq Scan on jobs", "Seq Scan on images", "Seq Scan on prompts")
        assert not any(table in s for s in steps for table in scanned), "\n".join(steps)


def test_the_prompt_history_probes_the_md5_index_on_postgresql(seeded_pg: tuple[Store, Store, Path]) -> None:
    lite, pg, path = seeded_pg
    for before in (None, JOBS // 2):
        query = prompt_history_query(OWNER, 50, before, "postgresql")
        steps = asyncio.run(_pg(pg, query, explain=True))
        assert any("ix_prompts_owner_id_text_id" in s for s in steps), "\n".join(steps)
        assert not any("Seq Scan on prompts" in s for s in steps), "\n".join(steps)
        expected = _sqlite(path, lite, prompt_history_query(OWNER, 50, before))
        assert asyncio.run(_pg(pg, query)) == expected
