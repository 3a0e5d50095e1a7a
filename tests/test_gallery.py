"""Finding past work: prompt history, full-text search and filters, likes, deleting, bulk work, zips."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import aiohttp
import pytest
from harness import StudioRun, start_studio
from sqlalchemy import select
from studio_api import Api, load_workflow
from test_api_jobs import wait_for_state

from comfyui_studio.db.models import AuditLog, Image, Job
from comfyui_studio.services.search import fts_query

pytestmark = pytest.mark.both_databases


async def make_job(api: Api, prompt: str, color: int = 1) -> dict:
    graph = load_workflow("t2i_standin")
    graph["1"]["inputs"]["color"] = color
    status, body = await api.post("/jobs", json={"graph": graph, "prompt": prompt})
    assert status == 201, body
    return await wait_for_state(api, body["data"]["id"], {"done"})


def test_user_text_becomes_a_safe_fts_query() -> None:
    assert fts_query("red fox") == '"red" "fox"*'
    assert fts_query('NEAR(a b) OR "x" AND text:y*') == '"NEAR" "a" "b" "OR" "x" "AND" "text" "y"*'
    assert fts_query("  ,;!  ") is None
    assert fts_query("café crème") == '"café" "crème"*'


async def test_prompt_history_is_distinct_and_most_recent_first(api: Api) -> None:
    for text in ("a red fox", "a blue whale", "a red fox", "neon city"):
        await make_job(api, text, color=len(text))
    status, body = await api.get("/prompts/history")
    assert status == 200
    assert [item["text"] for item in body["data"]["items"]] == ["neon city", "a red fox", "a blue whale"]
    status, page = await api.get("/prompts/history", params={"limit": "2"})
    assert [i["text"] for i in page["data"]["items"]] == ["neon city", "a red fox"]
    status, rest = await api.get("/prompts/history", params={"cursor": str(page["data"]["next_cursor"])})
    assert [i["text"] for i in rest["data"]["items"]] == ["a blue whale"]


async def test_full_text_search_finds_words_and_prefixes_and_ignores_operators(api: Api) -> None:
    fox = await make_job(api, "a red fox in the snow", 1)
    whale = await make_job(api, "a blue whale, cinematic", 2)
    await make_job(api, "neon city at night", 3)

    async def search(**params: str) -> list[str]:
        status, body = await api.get("/jobs/search", params=params)
        assert status == 200, body
        return [j["id"] for j in body["data"]["items"]]

    assert await search(q="fox") == [fox["id"]]
    assert await search(q="cinem") == [whale["id"]]
    assert await search(q="red snow") == [fox["id"]]
    assert await search(q="NEAR(red") == []
    assert await search(q='" OR 1=1 --') == []
    assert len(await search()) == 3


async def test_likes_filter_and_survive_reload(run: StudioRun, api: Api) -> None:
    liked = await make_job(api, "keep this one", 4)
    await make_job(api, "not this one", 5)
    image_id = liked["images"][0]["id"]
    status, body = await api.call("PUT", f"/images/{image_id}/like")
    assert status == 200 and body["data"]["liked"] is True
    status, body = await api.get(f"/jobs/{liked['id']}")
    assert body["data"]["images"][0]["liked"] is True
    status, body = await api.get("/jobs/search", params={"liked": "true"})
    assert [j["id"] for j in body["data"]["items"]] == [liked["id"]]
    status, body = await api.delete(f"/images/{image_id}/like")
    assert status == 200 and body["data"]["liked"] is False
    status, body = await api.get("/jobs/search", params={"liked": "true"})
    assert body["data"]["items"] == []


async def test_deleting_hides_a_job_but_keeps_every_row(run: StudioRun, api: Api) -> None:
    job = await make_job(api, "delete me", 6)
    status, body = await api.delete(f"/jobs/{job['id']}")
    assert status == 200 and body["data"]["deleted"] is True
    status, listing = await api.get("/jobs")
    assert job["id"] not in [j["id"] for j in listing["data"]["items"]]
    async with run.studio.store.session() as session:
        row = await session.get(Job, job["id"])
        assert row is not None and row.deleted_at is not None
        images = (await session.scalars(select(Image).where(Image.job_id == job["id"]))).all()
        assert images and all(i.deleted_at is not None for i in images)


async def test_bulk_operations_report_each_job(run: StudioRun, api: Api) -> None:
    first = await make_job(api, "bulk one", 7)
    second = await make_job(api, "bulk two", 8)
    missing = "j_00000000000000000000000000"
    status, body = await api.post("/jobs/bulk", json={"ids": [first["id"], second["id"], missing], "op": "like"})
    assert status == 200
    assert body["data"]["done"] == [first["id"], second["id"]]
    assert body["data"]["failed"] == [{"id": missing, "code": "not_found", "message": "Job not found"}]
    for job in (first, second):
        status, read = await api.get(f"/jobs/{job['id']}")
        assert [i["liked"] for i in read["data"]["images"]] == [True]
    status, body = await api.post("/jobs/bulk", json={"ids": [second["id"]], "op": "unlike"})
    assert body["data"]["done"] == [second["id"]]
    # liking again changes nothing and writes nothing
    status, body = await api.post("/jobs/bulk", json={"ids": [first["id"]], "op": "like"})
    assert body["data"]["done"] == [first["id"]]
    async with run.studio.store.session() as session:
        audit = (
            await session.execute(
                select(AuditLog.action, AuditLog.entity_id, AuditLog.changes).where(
                    AuditLog.entity == "images", AuditLog.action != "create"
                )
            )
        ).all()
    # one audit row per request, naming the images it changed
    liked = sorted(i["id"] for job in (first, second) for i in job["images"])
    assert [tuple(row) for row in audit] == [
        ("like", "bulk", {"images": liked}),
        ("unlike", "bulk", {"images": [second["images"][0]["id"]]}),
    ]
    status, read = await api.get(f"/jobs/{second['id']}")
    assert [i["liked"] for i in read["data"]["images"]] == [False]
    status, body = await api.post("/jobs/bulk", json={"ids": [first["id"]], "op": "delete"})
    assert body["data"]["done"] == [first["id"]]
    status, body = await api.post("/jobs/bulk", json={"ids": ["../etc/passwd"], "op": "delete"})
    assert (status, body["error"]["code"]) == (400, "validation_error")
    status, body = await api.post("/jobs/bulk", json={"ids": [first["id"]], "op": "explode"})
    assert (status, body["error"]["code"]) == (400, "validation_error")
    # a deleted job is no longer liked in bulk
    status, body = await api.post("/jobs/bulk", json={"ids": [first["id"]], "op": "like"})
    assert body["data"]["failed"] == [{"id": first["id"], "code": "not_found", "message": "Job not found"}]


async def test_a_zip_of_chosen_images_downloads_with_id_names(run: StudioRun, api: Api) -> None:
    first = await make_job(api, "zip one", 9)
    second = await make_job(api, "zip two", 10)
    ids = [first["images"][0]["id"], second["images"][0]["id"]]
    async with api.session.get(run.api + "/images/archive", params={"ids": ",".join(ids)}) as resp:
        assert resp.status == 200 and resp.content_type == "application/zip"
        data = await resp.read()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = sorted(archive.namelist())
        assert names == sorted(f"{j['id']}-{j['images'][0]['id']}.png" for j in (first, second))
        assert archive.read(names[0])[:4] == b"\x89PNG"
        assert archive.testzip() is None  # streamed with data descriptors: every entry's CRC checks out
    status, body = await api.get("/images/archive", params={"ids": "../../x"})
    assert (status, body["error"]["code"]) == (400, "validation_error")
    # an unknown image is refused before the first byte, in the envelope
    status, body = await api.get("/images/archive", params={"ids": f"{ids[0]},i_01JZZZZZZZZZZZZZZZZZZZZZZZ"})
    assert (status, body["error"]["code"]) == (404, "not_found")


async def test_a_running_job_cannot_be_deleted_and_a_queued_one_is_cancelled_first(tmp_path: Path) -> None:
    run = await start_studio(tmp_path, node_delay=0.4)
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, run.api)
            jobs = []
            for color in (11, 12):
                graph = load_workflow("t2i_standin")
                graph["1"]["inputs"]["color"] = color
                status, body = await api.post("/jobs", json={"graph": graph})
                jobs.append(body["data"]["id"])
            running, queued = jobs
            await wait_for_state(api, running, {"running"})
            status, body = await api.delete(f"/jobs/{running}")
            assert (status, body["error"]["code"]) == (409, "conflict")
            status, body = await api.delete(f"/jobs/{queued}")
            assert status == 200, body
            async with run.studio.store.session() as db:
                row = await db.get(Job, queued)
                assert row.state == "cancelled" and row.deleted_at is not None
            assert run.host.server.prompt_queue.get_current_queue_volatile()[1] == []
    finally:
        await run.stop()
