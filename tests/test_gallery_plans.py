"""The gallery's page queries at a realistic shape: served from indexes (no full scan of jobs or images), and
returning exactly the rows a brute-force reading of the store gives, page after page."""

from __future__ import annotations

import sqlite3
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.dialects import sqlite

from comfyui_studio.db.gallery import prompt_history_query
from comfyui_studio.db.search import JobFilter, page_query
from comfyui_studio.db.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from seed_gallery import COMMON_WORD, RARE_WORD, seed  # noqa: E402

JOBS = 20000
OWNER = 1
PARTIAL_INDEX = "ix_images_liked_job_id"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, Path]:
    import asyncio

    path = tmp_path_factory.mktemp("gallery") / "studio.db"
    store = Store(f"sqlite+aiosqlite:///{path}")
    asyncio.run(store.open())
    asyncio.run(store.close())
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO users (id, username, role, disabled, created_at) VALUES (?, 'owner', 'admin', 0, ?)",
            (OWNER, "2026-01-01 00:00:00"),
        )
    seed(path, JOBS, owner_id=OWNER)
    with sqlite3.connect(path) as db:
        db.execute("ANALYZE")
    return store, path


def sql_of(query: Any) -> tuple[str, tuple[Any, ...]]:
    compiled = query.compile(dialect=sqlite.dialect())
    return str(compiled), tuple(compiled.params[name] for name in compiled.positiontup)


def run(path: Path, query: Any) -> list[tuple[Any, ...]]:
    sql, params = sql_of(query)
    with sqlite3.connect(path) as db:
        return db.execute(sql, params).fetchall()


def plan(path: Path, query: Any) -> list[str]:
    sql, params = sql_of(query)
    with sqlite3.connect(path) as db:
        return [row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql, params)]


def some_date(path: Path, rank: int) -> datetime:
    with sqlite3.connect(path) as db:
        (stamp,) = db.execute("SELECT created_at FROM jobs ORDER BY id DESC LIMIT 1 OFFSET ?", (rank,)).fetchone()
    return datetime.fromisoformat(stamp)


FILTERS = {
    "feed": JobFilter(),
    "common word": JobFilter(q=COMMON_WORD),
    "rare word": JobFilter(q=RARE_WORD),
    "liked": JobFilter(liked=True),
    "not liked": JobFilter(liked=False),
    "action": JobFilter(action="upscale"),
    "workflow": JobFilter(workflow_id="w_01JBENCHWORKF1OW000000000A"),
    "word and liked": JobFilter(q=COMMON_WORD, liked=True),
    "word and action": JobFilter(q=COMMON_WORD, action="vary"),
}


@pytest.mark.parametrize("name", [*FILTERS, "date range"])
def test_every_page_query_is_served_by_an_index(seeded: tuple[Store, Path], name: str) -> None:
    store, path = seeded
    filters = FILTERS.get(name) or JobFilter(since=some_date(path, 3000), until=some_date(path, 1000))
    for cursor in (None, run(path, page_query(store, OWNER, None, JOBS // 2, JobFilter()))[-1][0]):
        steps = plan(path, page_query(store, OWNER, cursor, 51, filters))
        # a scan of a partial index reads only what it holds (liked images), not the table
        scans = [s for s in steps if s.startswith(("SCAN jobs", "SCAN images")) and PARTIAL_INDEX not in s]
        assert scans == [], f"{name}: {steps}"
        # newest first straight from the walk: a sort would read every matching job before the first row
        assert not any("TEMP B-TREE FOR ORDER BY" in s for s in steps), f"{name}: {steps}"


def brute_force(path: Path, filters: JobFilter) -> list[str]:
    """Every visible job of the owner matching the filters, newest first, read row by row in Python."""
    with sqlite3.connect(path) as db:
        jobs = db.execute(
            "SELECT j.id, p.text, j.action_slot, j.created_at FROM jobs j LEFT JOIN prompts p ON p.id = j.prompt_row_id"
            " WHERE j.owner_id = ? AND j.deleted_at IS NULL ORDER BY j.id DESC",
            (OWNER,),
        ).fetchall()
        liked = {
            r[0] for r in db.execute("SELECT job_id FROM images WHERE liked_at IS NOT NULL AND deleted_at IS NULL")
        }
    out = []
    for job_id, text, action, created in jobs:
        words = (text or "").lower().split()
        if filters.q and not any(w.startswith(filters.q) for w in words):
            continue
        if filters.liked is not None and (job_id in liked) != filters.liked:
            continue
        if filters.action and action != filters.action:
            continue
        at = datetime.fromisoformat(created)
        if filters.since and at < filters.since or filters.until and at >= filters.until:
            continue
        out.append(job_id)
    return out


@pytest.mark.parametrize("name", ["feed", "common word", "rare word", "liked", "word and liked", "date range"])
def test_pages_return_exactly_the_matching_jobs_newest_first(seeded: tuple[Store, Path], name: str) -> None:
    store, path = seeded
    filters = FILTERS.get(name) or JobFilter(since=some_date(path, 3000), until=some_date(path, 1000))
    expected = brute_force(path, filters)
    got: list[str] = []
    cursor = None
    while len(got) < min(len(expected), 600):
        rows = run(path, page_query(store, OWNER, cursor, 200, filters))
        if not rows:
            break
        got += [r[0] for r in rows]
        cursor = rows[-1][0]
    assert got[:600] == expected[:600]
    assert len(expected) > 0


def test_a_date_bound_becomes_an_id_range(seeded: tuple[Store, Path]) -> None:
    """since/until also bound the job id (its first characters are its time), so the walk starts and stops there."""
    store, path = seeded
    until = some_date(path, 4000)
    steps = plan(path, page_query(store, OWNER, None, 51, JobFilter(since=until - timedelta(days=30), until=until)))
    assert any("id<?" in s.replace(" ", "") or "id>?" in s.replace(" ", "") for s in steps), steps


def test_the_prompt_history_walks_prompts_newest_first_and_probes_each_text_once(seeded: tuple[Store, Path]) -> None:
    """Not a grouping of every prompt (seconds at a million): a walk of the owner's prompts, one probe each."""
    _store, path = seeded
    for before in (None, JOBS // 2):
        steps = plan(path, prompt_history_query(OWNER, 50, before))
        assert steps[0].startswith("SEARCH prompts USING"), steps  # newest first by id, from an index
        assert any("ix_prompts_owner_id_text_id (owner_id=? AND text=? AND id>?)" in s for s in steps), steps
        assert not any("TEMP B-TREE" in s or s.startswith("SCAN prompts") for s in steps), steps
