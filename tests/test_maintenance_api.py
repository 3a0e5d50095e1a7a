"""The storage routes: the owner's reports and runs, each user's usage and Trash, 410 for a pruned call."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import aiohttp
from harness import StudioRun
from sqlalchemy import insert, update
from studio_api import Api, load_workflow
from test_api_jobs import wait_for_state
from test_shortcode_routes import second_user

from comfyui_studio.db.models import ComfyCall, utcnow


async def _done_job(api: Api) -> dict:
    status, body = await api.post("/jobs", json={"graph": load_workflow("t2i_standin")})
    assert status in (200, 201), body
    return await wait_for_state(api, body["data"]["id"], {"done"})


async def _wait_run(api: Api) -> dict:
    for _ in range(200):
        status, body = await api.get("/maintenance/progress")
        assert status == 200
        if not body["data"]["running"]:
            return body["data"]
        await asyncio.sleep(0.05)
    raise AssertionError("the run never finished")


async def test_replaying_a_call_whose_body_was_pruned_is_410_with_the_reason(run: StudioRun, api: Api) -> None:
    job = await _done_job(api)
    await run.studio.live.drain()
    old = utcnow() - timedelta(days=45)
    async with run.studio.store.transaction() as session:
        result = await session.execute(
            insert(ComfyCall).returning(ComfyCall.id),
            [{"operation": "history", "method": "GET", "path": "/history", "request": {"prompt_id": None},
              "response": {}, "status": 200, "ok": True, "started_at": old, "ended_at": old, "runtime_ms": 1.0,
              "owner_id": run.studio.owner_id}],
        )  # fmt: skip
        history_id = result.scalar_one()
        await session.execute(update(ComfyCall).values(started_at=old))  # every call of the job is old too
    status, body = await api.post("/maintenance/run", json={})
    assert status == 200 and body["data"]["started"], body
    await _wait_run(api)

    status, body = await api.post(f"/calls/{history_id}/replay", json={})
    assert (status, body["error"]["code"]) == (410, "gone"), body
    assert "pruned" in body["error"]["message"] and "30 days" in body["error"]["message"]
    status, shown = await api.get(f"/calls/{history_id}")
    assert shown["data"]["request"] is None and shown["data"]["body_pruned_at"]
    # the submit of a job that still exists keeps its body: replay still works
    status, listing = await api.get("/calls", params={"job_id": job["id"]})
    submit = next(c for c in listing["data"]["items"] if c["operation"] == "submit")
    assert submit["body_pruned_at"] is None
    status, replayed = await api.post(f"/calls/{submit['id']}/replay", json={})
    assert status == 201, replayed


async def test_a_deleted_job_is_in_the_trash_and_comes_back(run: StudioRun, api: Api) -> None:
    job = await _done_job(api)
    status, _ = await api.delete(f"/jobs/{job['id']}")
    assert status == 200
    status, body = await api.get("/trash")
    assert status == 200
    [item] = body["data"]["items"]
    assert item["id"] == job["id"] and item["images"] and item["purge_after"] > item["deleted_at"]
    status, body = await api.post(f"/trash/{job['id']}/restore", json={})
    assert status == 200 and body["data"] == {"id": job["id"], "restored": True}
    status, body = await api.get("/trash")
    assert body["data"]["items"] == []
    status, body = await api.get(f"/jobs/{job['id']}")
    assert status == 200 and body["data"]["images"]
    status, body = await api.post(f"/trash/{job['id']}/restore", json={})
    assert (status, body["error"]["code"]) == (404, "not_found")


async def test_the_owner_reports_dry_runs_and_lists_runs(run: StudioRun, api: Api) -> None:
    job = await _done_job(api)
    status, body = await api.get("/maintenance/report")
    assert status == 200
    report = body["data"]
    assert report["usage"]["originals"] > 0 and report["usage"]["thumbnails"] > 0 and report["usage"]["database"] > 0
    assert report["runs"] == [] and report["progress"]["running"] is False
    status, body = await api.post("/maintenance/run", json={"dry_run": True})
    assert status == 200 and body["data"]["items"] == []
    await api.post("/maintenance/run", json={})
    await _wait_run(api)
    status, body = await api.get("/maintenance/runs")
    runs = body["data"]["items"]
    assert [r["dry_run"] for r in runs] == [False, True] and runs[0]["status"] == "done"
    status, body = await api.get(f"/maintenance/runs/{runs[0]['id']}")
    assert status == 200 and body["data"]["removed"] == []
    image_id = job["images"][0]["id"]
    status, body = await api.call("PUT", f"/images/{image_id}/expirable")
    assert status == 200 and body["data"]["expirable"] is True
    status, body = await api.get("/storage/usage")
    assert status == 200 and body["data"]["usage"]["originals"] > 0


async def test_only_the_owner_runs_maintenance_but_everyone_sees_their_usage(run: StudioRun, api: Api) -> None:
    async with aiohttp.ClientSession() as session:
        user = await second_user(run, api, session)
        for method, path in (("GET", "/maintenance/report"), ("POST", "/maintenance/run"),
                             ("GET", "/maintenance/runs"), ("POST", "/maintenance/backup")):  # fmt: skip
            status, body = await user.call(method, path, json={}) if method == "POST" else await user.get(path)
            assert (status, body["error"]["code"]) == (403, "forbidden"), path
        status, body = await user.get("/storage/usage")
        assert status == 200 and body["data"]["total_bytes"] == 0
        status, body = await user.get("/trash")
        assert status == 200 and body["data"]["items"] == []


async def test_the_owner_backs_the_database_up_into_the_data_directory(run: StudioRun, api: Api) -> None:
    status, body = await api.post("/maintenance/backup", json={})
    assert status == 200 and body["data"]["bytes"] > 0
    assert body["data"]["path"].startswith("backups/studio-")
    assert (run.data_dir / body["data"]["path"]).stat().st_size == body["data"]["bytes"]
