"""Submitting graphs through the studio and following them to their outputs, on the ComfyUI test host."""

from __future__ import annotations

import asyncio

from conftest import Api, load_workflow
from harness import StudioRun


async def wait_for_state(api: Api, job_id: str, states: set[str], timeout: float = 10.0) -> dict:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        status, body = await api.get(f"/jobs/{job_id}")
        assert status == 200, body
        job = body["data"]
        if job["state"] in states:
            return job
        assert loop.time() < deadline, f"job stayed {job['state']}"
        await asyncio.sleep(0.05)


async def test_submitted_graph_runs_to_done_with_its_image(run: StudioRun, api: Api) -> None:
    status, body = await api.post("/jobs", json={"graph": load_workflow("t2i_standin"), "prompt": "a blue square"})
    assert status == 201, body
    assert body["ok"] is True and body["error"] is None and body["meta"]["request_id"]
    job = body["data"]
    assert job["id"].startswith("j_") and job["prompt_id"] and job["state"] in {"queued", "running", "done"}
    assert job["prompt_text"] == "a blue square"

    done = await wait_for_state(api, job["id"], {"done"})
    assert len(done["images"]) == 1
    image = done["images"][0]
    assert (image["width"], image["height"]) == (512, 512)
    async with api.session.get(run.host.url + image["url"]) as resp:
        assert resp.status == 200 and resp.content_type == "image/png"
        assert (await resp.read())[:8] == b"\x89PNG\r\n\x1a\n"
    async with api.session.get(run.host.url + image["thumb_url"]) as resp:
        assert resp.status == 200 and resp.content_type == "image/webp"
