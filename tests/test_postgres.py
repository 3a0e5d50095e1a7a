"""Several studio processes on one PostgreSQL database: live events across them, each job dispatched once.

Each "process" is a studio with its own engine, event hub, dispatcher name and ComfyUI test host; they share
only the database, as two `serve` processes on two machines would.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import aiohttp
import pytest
from harness import StudioRun, start_studio
from pg import PostgresServer
from sqlalchemy import func, select, text
from studio_api import Api, load_workflow
from test_api_jobs import wait_for_state
from test_live_api import SseClient, job_done, stream_headers

from comfyui_studio.db import accounts
from comfyui_studio.db import jobs as repo
from comfyui_studio.db.dispatch import lock_key
from comfyui_studio.db.models import ComfyCall, Job
from comfyui_studio.db.store import Store
from comfyui_studio.engine.ids import JOB, new_id
from comfyui_studio.services.eventhub import Event
from comfyui_studio.services.notify import MAX_PAYLOAD_BYTES, envelope


async def _studio(base: Path, url: str, **options: object) -> StudioRun:
    return await start_studio(base, db_url=url, **options)


async def test_a_job_submitted_through_one_process_is_seen_live_through_the_other(
    tmp_path: Path, postgres_url: str
) -> None:
    a = await _studio(tmp_path / "a", postgres_url)
    b = await _studio(tmp_path / "b", postgres_url)
    try:
        assert a.studio.relay is not None and a.studio.relay.active
        async with aiohttp.ClientSession() as session:
            api_a, api_b = Api(session, a.api), Api(session, b.api)
            async with SseClient(session, b.api + "/events", headers=await stream_headers(api_b)) as stream_b:
                status, body = await api_a.post("/jobs", json={"graph": load_workflow("t2i_standin"), "prompt": "fox"})
                assert status == 201, body
                job_id = body["data"]["id"]
                await stream_b.wait_for(job_done(job_id), timeout=20)
            seen = [e for e in stream_b.events if e.kind == "job" and e.data["job"]["id"] == job_id]
            assert seen[0].data["job"]["state"] == "queued", "B's stream saw the job from its submit on"
            assert any(e.kind == "progress" and e.data["job_id"] == job_id for e in stream_b.events)
            assert any(e.kind == "output" and e.data["job_id"] == job_id for e in stream_b.events)
            # B reads it from the shared store as A stored it, and its own ComfyUI never saw it.
            job = await wait_for_state(api_b, job_id, {"done"})
            assert job["images"] and job["prompt_text"] == "fox"
            async with b.studio.store.transaction() as db:
                dispatcher = await db.scalar(select(Job.dispatcher).where(Job.id == job_id))
            assert dispatcher == a.studio.store.dispatch.name
            assert await _submit_count(b.studio.store, job_id) == 1, "sent to ComfyUI once, by A"
    finally:
        await b.stop()
        await a.stop()


async def _submit_count(store: Store, job_id: str) -> int:
    async with store.transaction() as db:
        query = select(func.count()).where(ComfyCall.job_id == job_id, ComfyCall.operation == "submit")
        return int(await db.scalar(query) or 0)


async def test_reconciling_in_both_processes_leaves_the_others_live_jobs_alone(
    tmp_path: Path, postgres_url: str
) -> None:
    a = await _studio(tmp_path / "a", postgres_url, node_delay=0.3)
    b = await _studio(tmp_path / "b", postgres_url)
    try:
        async with aiohttp.ClientSession() as session:
            api_a = Api(session, a.api)
            ids = []
            for color in (1, 2):  # the second waits in A's ComfyUI queue behind the first
                graph = load_workflow("t2i_standin")
                graph["1"]["inputs"]["color"] = color
                status, body = await api_a.post("/jobs", json={"graph": graph})
                assert status == 201, body
                ids.append(body["data"]["id"])
            # Both reconcile the same state at once: A follows its jobs, B (whose ComfyUI never heard of them,
            # so would call them lost or re-queue them) leaves them to A.
            report_a, report_b = await asyncio.gather(a.studio.reconciler.run(), b.studio.reconciler.run())
            assert set(report_a.following) | set(report_a.settled) == set(ids)
            assert (report_b.following, report_b.settled, report_b.requeued, report_b.lost) == ([], [], [], [])
            for job_id in ids:
                await wait_for_state(api_a, job_id, {"done"}, timeout=20)
                assert await _submit_count(a.studio.store, job_id) == 1, "dispatched once"
    finally:
        await b.stop()
        await a.stop()


async def test_cancelling_and_moving_through_the_other_process_happen_where_the_job_was_dispatched(
    tmp_path: Path, postgres_url: str
) -> None:
    a = await _studio(tmp_path / "a", postgres_url, node_delay=0.3)
    b = await _studio(tmp_path / "b", postgres_url)
    try:
        async with aiohttp.ClientSession() as session:
            api_a, api_b = Api(session, a.api), Api(session, b.api)
            ids = []
            for color in (1, 2, 3, 4):
                graph = load_workflow("t2i_standin")
                graph["1"]["inputs"]["color"] = color
                status, body = await api_a.post("/jobs", json={"graph": graph})
                assert status == 201, body
                ids.append(body["data"]["id"])
            first, second, third, fourth = ids
            await wait_for_state(api_b, first, {"running"})
            # B's own ComfyUI never held these: B asks A, which cancels in its ComfyUI and stores it.
            status, body = await api_b.delete(f"/queue/{second}")
            assert status == 200, body
            assert body["data"]["state"] == "cancelled"
            status, body = await api_b.post(f"/queue/{fourth}/front", json={})
            assert status == 200, body
            # A's own rule, answered through B: a running job cannot be cancelled.
            status, body = await api_b.delete(f"/queue/{first}")
            assert (status, body["error"]["code"]) == (409, "conflict"), body
            done = {job_id: await wait_for_state(api_b, job_id, {"done"}, timeout=20) for job_id in (third, fourth)}
            assert done[fourth]["started_at"] < done[third]["started_at"], "moved to the front of A's queue"
            assert (await wait_for_state(api_a, second, {"cancelled"}))["state"] == "cancelled"
            assert b.host.server.prompt_queue.get_history() == {}, "nothing ran on B's ComfyUI"
    finally:
        await b.stop()
        await a.stop()


async def test_a_dead_processs_jobs_are_taken_over_by_exactly_one_survivor(postgres_url: str) -> None:
    stores = [Store(postgres_url) for _ in range(3)]
    for store in stores:
        await store.open()
    dead, b, c = stores
    try:
        async with dead.transaction() as session:
            owner = await accounts.ensure_owner(session)
        for n in range(4):
            async with dead.transaction(owner) as session:
                job = {"id": f"j_{n}", "owner_id": owner, "prompt_id": f"p_{n}", "graph": {}}
                await repo.insert_submitted(session, prompt=None, job=job)
        async with b.transaction() as session:
            rows = await repo.active_jobs(session, None, None)
        assert {r.dispatcher for r in rows} == {dead.dispatch.name}
        # While it lives, neither survivor claims its jobs.
        assert await b.dispatch.claim(b, rows) == [] and await c.dispatch.claim(c, rows) == []
        assert await b.dispatch.alive(dead.dispatch.name)
        await dead.close()  # its lock goes with its connection
        assert not await b.dispatch.alive(dead.dispatch.name)
        async with c.transaction() as session:
            rows_c = await repo.active_jobs(session, None, None)
        got_b, got_c = await asyncio.gather(b.dispatch.claim(b, rows), c.dispatch.claim(c, rows_c))
        assert sorted(j.id for j in got_b + got_c) == [f"j_{n}" for n in range(4)], "each job adopted once"
        assert not (got_b and got_c), "one survivor took them all (it held the dead one's lock while claiming)"
        winner = b if got_b else c
        async with c.transaction() as session:
            stamped = set((await session.scalars(select(Job.dispatcher))).all())
        assert stamped == {winner.dispatch.name}
    finally:
        for store in (b, c):
            await store.close()


async def test_a_process_that_dies_leaves_no_job_hanging_while_another_runs_on(
    tmp_path: Path, postgres_url: str
) -> None:
    b = await _studio(tmp_path / "b", postgres_url, dead_process_sweep_s=0.2)
    orphan = new_id(JOB)
    dead = Store(postgres_url)
    await dead.open()
    try:
        async with dead.transaction() as session:
            owner = await accounts.ensure_owner(session)
        async with dead.transaction(owner) as session:  # stored, never handed to a ComfyUI: then the process died
            job = {
                "id": orphan,
                "owner_id": owner,
                "prompt_id": str(uuid.uuid4()),
                "graph": load_workflow("t2i_standin"),
            }
            await repo.insert_submitted(session, prompt=None, job=job)
        await asyncio.sleep(0.5)
        async with aiohttp.ClientSession() as session:
            api_b = Api(session, b.api)
            status, body = await api_b.get(f"/jobs/{orphan}")
            assert status == 200 and body["data"]["state"] == "queued", "a live process's job is left alone"
            await dead.close()  # its lock goes with its connection; B is never restarted
            done = await wait_for_state(api_b, orphan, {"done"})
            assert done["images"], "B re-queued it on its ComfyUI and it ran"
        async with b.studio.store.transaction() as db:
            dispatcher = await db.scalar(select(Job.dispatcher).where(Job.id == orphan))
        assert dispatcher == b.studio.store.dispatch.name, "B took it over"
        assert await _submit_count(b.studio.store, orphan) == 1, "sent once"
    finally:
        await dead.close()
        await b.stop()


async def test_each_process_holds_the_advisory_lock_of_its_name(postgres_url: str, postgres_server: PostgresServer):
    store = Store(postgres_url)
    await store.open()
    try:
        async with store.engine.connect() as conn:
            held = await conn.scalar(
                text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid = :low"),
                {"low": lock_key(store.dispatch.name) & 0xFFFFFFFF},
            )
        assert held == 1
    finally:
        await store.close()


def test_an_event_too_large_for_notify_goes_out_as_a_reference_to_its_job() -> None:
    small = Event("e-1", 1, "job", '{"job":{"id":"j_1","state":"queued"}}', 7)
    assert envelope("me", small) == '{"o":"me","k":"job","u":7,"d":{"job":{"id":"j_1","state":"queued"}}}'
    big_text = "x" * MAX_PAYLOAD_BYTES
    big = Event("e-2", 2, "job", '{"job":{"id":"j_2","prompt_text":"' + big_text + '"}}', 7)
    assert envelope("me", big) == '{"o":"me","k":"job","u":7,"j":"j_2"}'
    assert envelope("me", Event("e-3", 3, "progress", '{"job_id":"j_2","x":"' + big_text + '"}', 7)) is None


@pytest.mark.both_databases
async def test_a_long_prompt_is_stored_and_found(store: Store) -> None:
    import secrets

    async with store.transaction() as session:
        owner = await accounts.ensure_owner(session)
    # Incompressible text far over a B-tree entry's limit (2704 bytes on PostgreSQL).
    words = " ".join(secrets.token_hex(6) for _ in range(1500))
    async with store.transaction(owner) as session:
        job = {"id": "j_long", "owner_id": owner, "prompt_id": "p_long", "graph": {}}
        await repo.insert_submitted(session, prompt={"owner_id": owner, "text": words, "clean_text": words}, job=job)
    async with store.transaction() as session:
        assert (await repo.job(session, "j_long")) is not None


async def test_maintenance_on_postgresql_vacuums_and_sends_backups_to_pg_dump(
    tmp_path: Path, postgres_url: str
) -> None:
    from maintenance_store import build_studio

    from comfyui_studio.db import maintenance as maintenance_db
    from comfyui_studio.engine.errors import StudioError

    studio = build_studio(tmp_path, db_url=postgres_url)
    await studio.start(follow_comfy=False)
    try:
        assert await studio.store.vacuum() is True  # VACUUM (ANALYZE), outside a transaction
        async with studio.store.transaction() as session:
            await maintenance_db.optimize(session)
            assert await maintenance_db.integrity(session) == ["not checked on PostgreSQL (use pg_amcheck)"]
            plan = await maintenance_db.explain(session, "SELECT id FROM jobs WHERE id = 'x'")
        assert plan and "on jobs" in plan[0], plan  # PostgreSQL's EXPLAIN, not SQLite's EXPLAIN QUERY PLAN
        with pytest.raises(StudioError, match="pg_dump"):
            await studio.maintenance.backup(tmp_path / "copy.db")
    finally:
        await studio.stop()


async def test_the_relay_listens_again_after_its_connection_is_cut_and_resyncs_its_streams(postgres_url: str) -> None:
    from comfyui_studio.services.eventhub import EventHub, Resync
    from comfyui_studio.services.notify import EventRelay

    async def no_job(_owner: int, _job: str) -> dict:
        raise AssertionError("small events travel whole")

    stores = [Store(postgres_url), Store(postgres_url)]
    hubs = [EventHub(), EventHub()]
    relays = [EventRelay(store, hub, no_job) for store, hub in zip(stores, hubs, strict=True)]
    for store, relay in zip(stores, relays, strict=True):
        await store.open()
        await relay.start()
    try:
        sub = hubs[1].subscribe(hubs[1].last_id, user_id=7)

        async def next_item() -> object:
            async with asyncio.timeout(10):
                while True:
                    item = await sub.next(timeout=0.1)
                    if item is not None:
                        return item

        hubs[0].publish("job", {"job": {"id": "j_1", "state": "queued"}}, user_id=7)
        hubs[0].publish("queue", {"pending": 1}, user_id=7)  # a process's own queue view stays with it
        hubs[0].publish("progress", {"job_id": "j_1", "value": 0.5}, user_id=7)
        first, second = await next_item(), await next_item()
        assert (
            isinstance(first, Event) and first.kind == "job" and first.data == {"job": {"id": "j_1", "state": "queued"}}
        )
        assert isinstance(second, Event) and second.kind == "progress"
        listener = relays[1]._listener
        assert listener is not None
        async with stores[0].engine.connect() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": listener.get_server_pid()})
        assert isinstance(await next_item(), Resync), "the streams start again from a snapshot"
        assert relays[1]._listener is not listener
        hubs[0].publish("job", {"job": {"id": "j_1", "state": "running"}}, user_id=7)
        after = await next_item()
        assert isinstance(after, Event) and after.data == {"job": {"id": "j_1", "state": "running"}}
    finally:
        for store, relay in zip(stores, relays, strict=True):
            await relay.stop()
            await store.close()
