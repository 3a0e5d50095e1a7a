"""A ComfyUI restart under the studio: jobs in flight end lost or done, never missing; pending ones run again."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from harness import start_studio
from sqlalchemy import select
from studio_api import Api, load_workflow
from test_api_jobs import wait_for_state

from comfyui_studio.db.models import ComfyCall


async def submit(api: Api, color: int) -> dict:
    graph = load_workflow("t2i_standin")
    graph["1"]["inputs"]["color"] = color
    status, body = await api.post("/jobs", json={"graph": graph})
    assert status == 201, body
    return body["data"]


async def test_restart_mid_job_ends_it_lost_or_done_and_requeues_the_pending_one(tmp_path: Path) -> None:
    run = await start_studio(tmp_path, node_delay=0.3)
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, run.api)
            running = await submit(api, 11)
            pending = await submit(api, 12)
            await wait_for_state(api, running["id"], {"running"})
    finally:
        await run.stop()

    run = await start_studio(tmp_path)  # the same base_dir: ComfyUI restarted, the studio's store kept
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, run.api)
            first = await wait_for_state(api, running["id"], {"lost", "done", "interrupted"})
            # A stop that lets the worker see its interrupt ends it `interrupted`; a killed one leaves it lost.
            assert first["state"] in {"lost", "done", "interrupted"}
            if first["state"] == "lost":
                assert "ComfyUI" in first["error"]["message"]
            again = await wait_for_state(api, pending["id"], {"done"})
            assert (again["id"], again["prompt_id"]) == (pending["id"], pending["prompt_id"])
            assert len(again["images"]) == 1
            status, listing = await api.get("/jobs")
            assert {running["id"], pending["id"]} <= {j["id"] for j in listing["data"]["items"]}
        async with run.studio.store.session() as s:
            submits = (
                await s.scalars(
                    select(ComfyCall).where(ComfyCall.job_id == pending["id"], ComfyCall.operation == "submit")
                )
            ).all()
        assert len(submits) == 2 and {c.request["prompt_id"] for c in submits} == {pending["prompt_id"]}
    finally:
        await run.stop()


async def test_a_job_running_when_comfyui_dies_unseen_is_marked_lost_with_the_reason(tmp_path: Path) -> None:
    run = await start_studio(tmp_path, node_delay=0.3)
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, run.api)
            job = await submit(api, 21)
            await wait_for_state(api, job["id"], {"running"})
        # A hard kill: the studio hears nothing more from this ComfyUI.
        run.studio.host._sinks.clear()  # type: ignore[attr-defined]
    finally:
        await run.stop()

    run = await start_studio(tmp_path)
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, run.api)
            lost = await wait_for_state(api, job["id"], {"lost"})
            assert lost["error"]["type"] == "lost"
            assert "forgets its queue and history" in lost["error"]["message"]
            assert lost["finished_at"]
    finally:
        await run.stop()


async def test_pending_jobs_keep_their_order_when_requeued(tmp_path: Path) -> None:
    run = await start_studio(tmp_path, node_delay=0.3)
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, run.api)
            blocker = await submit(api, 30)
            waiting = [await submit(api, 31 + i) for i in range(3)]
            await wait_for_state(api, blocker["id"], {"running"})
    finally:
        await run.stop()

    run = await start_studio(tmp_path, node_delay=0.05)
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, run.api)
            done = [await wait_for_state(api, j["id"], {"done"}) for j in waiting]
            starts = [d["started_at"] for d in done]
            assert starts == sorted(starts)
            assert [d["prompt_id"] for d in done] == [j["prompt_id"] for j in waiting]
    finally:
        await run.stop()


async def test_requeue_off_marks_never_started_jobs_lost(tmp_path: Path) -> None:
    run = await start_studio(tmp_path, node_delay=0.3)
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, run.api)
            blocker = await submit(api, 40)
            pending = await submit(api, 41)
            await wait_for_state(api, blocker["id"], {"running"})
    finally:
        await run.stop()

    run = await start_studio(tmp_path, requeue_pending_on_start=False)
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, run.api)
            lost = await wait_for_state(api, pending["id"], {"lost"})
            assert "requeue_pending_on_start" in lost["error"]["message"]
    finally:
        await run.stop()


async def test_a_job_finished_while_the_studio_was_away_is_settled_from_history(tmp_path: Path) -> None:
    run = await start_studio(tmp_path)
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, run.api)
            studio = run.studio
            studio.host._sinks.clear()  # type: ignore[attr-defined]  # the studio stops listening
            job = await submit(api, 50)
            for _ in range(200):
                if studio.host.local.server.prompt_queue.get_history(prompt_id=job["prompt_id"]):  # type: ignore[attr-defined]
                    break
                await asyncio.sleep(0.02)
            status, body = await api.get(f"/jobs/{job['id']}")
            assert body["data"]["state"] == "queued"
            report = await studio.reconciler.run()  # type: ignore[union-attr]
            assert report.settled == [job["id"]]
            done = await wait_for_state(api, job["id"], {"done"})
            assert len(done["images"]) == 1
    finally:
        await run.stop()
