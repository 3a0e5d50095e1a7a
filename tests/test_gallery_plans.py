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

from comfyui_studio.db import calls as calls_db
from comfyui_studio.db.gallery import prompt_history_query
from comfyui_studio.db.search import JobFilter, page_query
from comfyui_studio.db.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from seed_gallery import COMMON_WORD, RARE_WORD, board_ids, seed, seed_calls  # noqa: E402

JOBS = 20000
OWNER = 1
PARTIAL_INDEX = "ix_images_liked_job_id"
BIG_BOARD, *_, SMALL_BOARD = board_ids(OWNER)


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
    seed_calls(path, JOBS, owner_id=OWNER)
    with sqlite3.connect(path) as db:
        # a few boarded jobs get a second image in the same board: the board filter still shows each job once
        for n, (job_id, image_id) in enumerate(
            db.execute(
                "SELECT job_id, image_id FROM board_items WHERE board_id = ? ORDER BY job_id DESC LIMIT 5", (BIG_BOARD,)
            ).fetchall()
        ):
            second = image_id[:-1] + ("Z" if image_id[-1] != "Z" else "Y")
            db.execute(
                "INSERT INTO images (id, owner_id, job_id, kind, filename, subfolder, folder_type, mime, has_thumb,"
                " created_at, expirable) SELECT ?, owner_id, job_id, kind, 'second' || ? || '.png', subfolder,"
                " folder_type, mime, 0, created_at, 0 FROM images WHERE id = ?",
                (second, n, image_id),
            )
            db.execute(
                "INSERT INTO board_items (board_id, image_id, job_id, added_at) VALUES (?, ?, ?, '2026-01-01')",
                (BIG_BOARD, second, job_id),
            )
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
    "board": JobFilter(board_id=BIG_BOARD),
    "small board": JobFilter(board_id=SMALL_BOARD),
    "board and liked": JobFilter(board_id=BIG_BOARD, liked=False),
    "board and action": JobFilter(board_id=BIG_BOARD, action="upscale"),
    "word and board": JobFilter(q=COMMON_WORD, board_id=BIG_BOARD),
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
        boarded = {r[0] for r in db.execute("SELECT job_id FROM board_items WHERE board_id = ?", (filters.board_id,))}
    out = []
    for job_id, text, action, created in jobs:
        words = (text or "").lower().split()
        if filters.q and not any(w.startswith(filters.q) for w in words):
            continue
        if filters.liked is not None and (job_id in liked) != filters.liked:
            continue
        if filters.action and action != filters.action:
            continue
        if filters.board_id and job_id not in boarded:
            continue
        at = datetime.fromisoformat(created)
        if filters.since and at < filters.since or filters.until and at >= filters.until:
            continue
        out.append(job_id)
    return out


@pytest.mark.parametrize(
    "name",
    [
        "feed",
        "common word",
        "rare word",
        "liked",
        "word and liked",
        "date range",
        "board",
        "small board",
        "board and liked",
        "word and board",
    ],
)
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


@pytest.mark.parametrize("board", ["board", "small board", "board and action"])
def test_the_board_filter_walks_its_memberships_newest_job_first(seeded: tuple[Store, Path], board: str) -> None:
    """However few jobs a board holds, a page reads its next memberships, not a walk over every job."""
    store, path = seeded
    for cursor in (None, run(path, page_query(store, OWNER, None, JOBS // 2, JobFilter()))[-1][0]):
        steps = plan(path, page_query(store, OWNER, cursor, 51, FILTERS[board]))
        assert steps[0].startswith("SEARCH board_items USING COVERING INDEX ix_board_items_board_id_job_id"), steps
        # each membership's job is one probe by its id
        assert any(s.startswith("SEARCH jobs USING") and "id=?)" in s for s in steps), steps
        assert not any("TEMP B-TREE" in s or s.startswith("SCAN") for s in steps), steps


def guest(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT id FROM users WHERE username = 'bench-guest'").fetchone()[0]


def test_the_call_log_list_is_keyset_paged_on_an_index(seeded: tuple[Store, Path]) -> None:
    """An owner's page (the other user's calls are ~2 %) and a job's page probe their index, never walk the log."""
    _store, path = seeded
    with sqlite3.connect(path) as db:
        (job_id,) = db.execute("SELECT job_id FROM comfy_calls WHERE job_id IS NOT NULL LIMIT 1 OFFSET 5000").fetchone()
    middle = run(path, calls_db.page_query(JOBS // 2, owner_id=OWNER))[-1][0]
    for owner in (OWNER, guest(path)):
        for before in (None, middle):
            for job in (None, job_id):
                steps = plan(path, calls_db.page_query(51, owner_id=owner, before=before, job_id=job))
                assert steps and all(s.startswith("SEARCH comfy_calls USING INDEX") for s in steps[:1]), steps
                if job is None:
                    assert "ix_comfy_calls_owner_id_id (owner_id=?" in steps[0], steps
                    assert len(steps) == 1, steps  # newest first from the walk: no sort
                else:
                    # a job's few calls (a handful: submit, history, views) may be sorted
                    assert "ix_comfy_calls_job_id (job_id=?" in steps[0], steps


@pytest.mark.parametrize("who", ["owner", "guest"])
def test_call_log_pages_return_exactly_the_owners_calls_newest_first(seeded: tuple[Store, Path], who: str) -> None:
    _store, path = seeded
    owner = OWNER if who == "owner" else guest(path)
    with sqlite3.connect(path) as db:
        expected = [r[0] for r in db.execute("SELECT id, owner_id FROM comfy_calls ORDER BY id DESC") if r[1] == owner]
    got: list[int] = []
    before = None
    while len(got) < min(len(expected), 600):
        rows = run(path, calls_db.page_query(200, owner_id=owner, before=before))
        if not rows:
            break
        got += [r[0] for r in rows]
        before = rows[-1][0]
    assert expected and got[:600] == expected[:600]
