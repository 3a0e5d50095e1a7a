"""The job queries of db/jobs.py on a real migrated store (SQLite and PostgreSQL): the submit's two commits and the
writer's batch."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from comfyui_studio.db import accounts
from comfyui_studio.db import jobs as repo
from comfyui_studio.db.models import AuditLog, ComfyCall, Image
from comfyui_studio.db.store import Store

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
T1 = datetime(2026, 1, 1, 0, 1, tzinfo=timezone.utc)


async def _owner(store: Store) -> int:
    async with store.transaction() as session:
        return await accounts.ensure_owner(session)


pytestmark = pytest.mark.both_databases


async def _audit(store: Store) -> list[tuple]:
    columns = (AuditLog.actor_id, AuditLog.action, AuditLog.entity, AuditLog.entity_id)
    async with store.transaction() as session:
        return [tuple(row) for row in (await session.execute(select(*columns).order_by(AuditLog.id))).all()]


async def _submitted(store: Store, owner: int, job_id: str, text: str | None = "a cat") -> None:
    prompt = {"owner_id": owner, "text": text, "clean_text": text} if text else None
    job = {"id": job_id, "owner_id": owner, "prompt_id": f"p-{job_id}", "graph": {"1": {"class_type": "X"}}}
    async with store.transaction(owner) as session:
        await repo.insert_submitted(session, prompt=prompt, job=job)


async def test_the_submits_commits_write_the_job_its_prompt_and_comfyuis_answer_with_audit_rows(
    store: Store,
) -> None:
    owner = await _owner(store)
    await _submitted(store, owner, "j_a")
    call = ComfyCall(operation="submit", method="POST", path="/prompt", ok=True, started_at=T0, ended_at=T0,
                     runtime_ms=1.0, job_id="j_a", owner_id=owner)  # fmt: skip
    async with store.transaction() as session:
        await repo.record_accepted(session, [repo.Accepted("j_a", owner, 7.0, {"3": {"errors": []}}, [call])])
    async with store.transaction() as session:
        job = await repo.owned_job(session, owner, "j_a")
        assert (
            job is not None and job.state == "queued" and job.number == 7.0 and job.node_errors == {"3": {"errors": []}}
        )
        assert await repo.prompt_texts(session, {job.prompt_row_id or 0}) == {job.prompt_row_id: "a cat"}
        assert await repo.owned_job(session, owner + 1, "j_a") is None
    audit = await _audit(store)
    assert ("create", "prompts") in [(a, e) for _u, a, e, _i in audit]
    assert (owner, "create", "jobs", "j_a") in audit and (owner, "update", "jobs", "j_a") in audit


async def test_the_writer_stores_states_progress_foreign_jobs_and_images_in_one_batch(
    store: Store,
) -> None:
    owner = await _owner(store)
    for job_id in ("j_run", "j_done"):
        await _submitted(store, owner, job_id, text=None)
    image = Image(id="i_1", owner_id=owner, job_id="j_done", kind="output", filename="a.png", subfolder="",
                  folder_type="output", node_id="9")  # fmt: skip
    async with store.transaction() as session:
        await repo.insert_foreign(session, [{"id": "j_far", "owner_id": owner, "prompt_id": "p-far", "graph": {}}])
        await repo.add_owned(session, [image], owner)
        await repo.write_states(
            session,
            [
                repo.StateWrite("j_run", owner, "running", {"overall": 0.1}, None, T0, None),
                repo.StateWrite("j_done", owner, "done", {"overall": 1.0}, None, T0, T1, {"node_errors": {}}),
            ],
            [("j_run", {"overall": 0.5}), ("j_done", {"overall": 0.2})],
        )
        shown = await repo.jobs_to_show(session, ["j_done", "j_far", "j_missing"])
        keys = await repo.image_keys_of(session, ["j_done", "j_run"])
    assert [j.id for j in shown] == ["j_done", "j_far"] and shown[1].foreign
    assert keys == {"j_done": {("a.png", "", "output")}, "j_run": set()}
    async with store.transaction() as session:
        running, done = await repo.job(session, "j_run"), await repo.job(session, "j_done")
    assert running is not None and done is not None
    assert running.progress == {"overall": 0.5}, "progress is written while a job is active"
    assert done.progress == {"overall": 1.0}, "never after it ended"
    assert done.finished_at is not None and done.started_at is not None
    # A later state without a start time keeps the one stored.
    async with store.transaction() as session:
        await repo.write_states(session, [repo.StateWrite("j_run", owner, "done", {}, None, None, T1)], [])
    async with store.transaction() as session:
        assert (await repo.job(session, "j_run")).started_at is not None  # type: ignore[union-attr]
    audit = await _audit(store)
    assert (owner, "create", "jobs", "j_far") in audit and (owner, "create", "images", "i_1") in audit
    assert sum(1 for row in audit if row[1:] == ("update", "jobs", "j_run")) == 2
