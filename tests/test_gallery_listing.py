"""The gallery's listing maps raw rows to the API's shape in the read thread: it must write exactly what
services/jobs.job_to_dict writes for the same job (the Job of docs/api.md), byte for byte once encoded."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

from comfyui_studio.db import accounts
from comfyui_studio.db import jobs as repo
from comfyui_studio.db.models import Image, Job, Prompt
from comfyui_studio.db.search import page_query
from comfyui_studio.db.store import Store
from comfyui_studio.engine.jsoncodec import dumps
from comfyui_studio.services.jobs import job_to_dict

AT = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=timezone.utc)
ON_THE_SECOND = datetime(2026, 3, 4, 5, 6, 8, tzinfo=timezone.utc)


async def _seed(store: Store, path: Path) -> int:
    async with store.transaction() as session:
        owner = await accounts.ensure_owner(session)
    async with store.transaction(owner) as session:
        prompt = Prompt(owner_id=owner, text="a café at dusk — ☕", clean_text="a café at dusk")
        session.add(prompt)
        await session.flush()
        session.add_all(
            [
                Job(
                    id="j_01",
                    owner_id=owner,
                    graph={},
                    prompt_row_id=prompt.id,
                    state="success",
                    created_at=AT,
                    started_at=ON_THE_SECOND,
                    finished_at=AT,
                    progress={"value": 3, "max": 3},
                    parameters={"seed": 2**40, "cfg": 6.5, "tiny": 1e-7, "big": 1e16, "name": "ñ"},
                    extra={
                        "workflow_id": "w_1",
                        "workflow_version": 3,
                        "action_warnings": ["slow"],
                        "expansion": {"text": "a", "place": [1, 2]},
                    },
                ),
                Job(
                    id="j_02",
                    owner_id=owner,
                    graph={},
                    state="error",
                    created_at=ON_THE_SECOND,
                    foreign=True,
                    error={"type": "execution_error", "message": "out of memory"},
                    node_errors={"3": {"errors": []}},
                    action_slot="upscale",
                    parent_image_id=None,
                    replay_of="j_01",
                ),
                Job(id="j_03", owner_id=owner, graph={}, state="queued", created_at=AT),
            ]
        )
        await session.flush()
        session.add_all(
            [
                Image(
                    id="i_01",
                    owner_id=owner,
                    job_id="j_01",
                    kind="output",
                    filename="a.png",
                    subfolder="",
                    folder_type="output",
                    node_id="9",
                    width=1344,
                    height=768,
                    created_at=AT,
                    liked_at=AT,
                    expirable=True,
                ),
                Image(
                    id="i_02",
                    owner_id=owner,
                    job_id="j_01",
                    kind="output",
                    filename="b.webp",
                    subfolder="s",
                    folder_type="output",
                    mime="image/webp",
                    created_at=ON_THE_SECOND,
                    purged_at=AT,
                ),
                Image(
                    id="i_03",
                    owner_id=owner,
                    job_id="j_01",
                    kind="output",
                    filename="c.png",
                    subfolder="",
                    folder_type="output",
                    created_at=AT,
                    deleted_at=AT,
                ),
                Image(
                    id="i_04",
                    owner_id=owner,
                    job_id="j_02",
                    kind="output",
                    filename="d.png",
                    subfolder="",
                    folder_type="output",
                    created_at=AT,
                ),
            ]
        )
    with sqlite3.connect(path) as db:
        # rows written outside SQLAlchemy: a time without its fraction, JSON with spaces
        db.execute(
            "UPDATE jobs SET finished_at = '2026-03-04 05:06:09', parameters = '{\"seed\": 1}' WHERE id = 'j_02'"
        )
    return owner


async def test_the_listing_writes_what_job_to_dict_writes_for_every_job(store: Store, tmp_path: Path) -> None:
    owner = await _seed(store, tmp_path / "studio.db")
    listing = await store.read(partial(repo.read_listing, query=page_query(store, owner, None, 3), limit=2))
    rest = await store.read(partial(repo.read_listing, query=page_query(store, owner, "j_02", 3), limit=2))
    assert listing.next_cursor == "j_02" and rest.next_cursor is None
    async with store.transaction() as session:
        jobs = [await session.get(Job, job_id) for job_id in ("j_03", "j_02", "j_01")]
        by_job = await repo.images_of(session, ["j_01", "j_02", "j_03"])
        texts = await repo.prompt_texts(session, {j.prompt_row_id for j in jobs if j and j.prompt_row_id})
    expected = [job_to_dict(j, by_job.get(j.id, []), texts.get(j.prompt_row_id or 0)) for j in jobs if j]
    items = listing.items + rest.items
    assert [i["id"] for i in items] == ["j_03", "j_02", "j_01"]
    assert items == expected
    assert dumps(items) == dumps(expected)
    # what the fast paths had to get right
    assert items[1]["finished_at"] == "2026-03-04T05:06:09Z" and items[1]["foreign"] is True
    assert items[2]["started_at"] == "2026-03-04T05:06:08Z" and items[2]["created_at"] == "2026-03-04T05:06:07.891011Z"
    assert [i["id"] for i in items[2]["images"]] == ["i_01", "i_02"]


async def test_an_empty_page_has_no_cursor(store: Store) -> None:
    async with store.transaction() as session:
        owner = await accounts.ensure_owner(session)
    listing = await store.read(partial(repo.read_listing, query=page_query(store, owner, None, 51), limit=50))
    assert listing.items == [] and listing.next_cursor is None
