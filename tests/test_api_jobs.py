"""Submitting graphs through the studio and following them to their outputs, on the ComfyUI test host."""

from __future__ import annotations

import asyncio

from harness import StudioRun
from studio_api import Api, load_workflow


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


async def test_graph_comfyui_refuses_is_kept_as_rejected_job_naming_the_nodes(api: Api) -> None:
    graph = load_workflow("t2i_standin")
    graph["1"]["inputs"]["width"] = 0
    status, body = await api.post("/jobs", json={"graph": graph})
    assert status == 400
    assert body["ok"] is False and body["error"]["code"] == "validation_error"
    assert "node 1 (EmptyImage)" in body["error"]["message"]
    assert body["error"]["details"][0]["node_id"] == "1"
    assert body["error"]["details"][0]["errors"][0]["type"] == "value_smaller_than_min"

    status, listing = await api.get("/jobs")
    job = listing["data"]["items"][0]
    assert job["state"] == "rejected"
    assert job["node_errors"]["1"]["class_type"] == "EmptyImage"
    assert "node 1" in job["error"]["message"]


async def test_unknown_node_type_is_rejected_with_comfyuis_message(api: Api) -> None:
    status, body = await api.post("/jobs", json={"graph": {"1": {"class_type": "Nope", "inputs": {}}}})
    assert status == 400
    assert "Cannot execute because node Nope does not exist" in body["error"]["message"]


async def test_jobs_list_pages_newest_first_by_cursor(api: Api) -> None:
    ids = []
    for color in range(5):
        graph = load_workflow("t2i_standin")
        graph["1"]["inputs"]["color"] = color
        status, body = await api.post("/jobs", json={"graph": graph})
        assert status == 201
        ids.append(body["data"]["id"])
    seen: list[str] = []
    cursor = None
    while True:
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        status, body = await api.get("/jobs", params=query)
        assert status == 200
        seen += [j["id"] for j in body["data"]["items"]]
        cursor = body["data"]["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))


async def test_history_route_returns_comfyuis_entry_for_the_job(api: Api) -> None:
    status, body = await api.post("/jobs", json={"graph": load_workflow("t2i_standin")})
    job = await wait_for_state(api, body["data"]["id"], {"done"})
    status, body = await api.get(f"/jobs/{job['id']}/history")
    assert status == 200
    assert body["data"]["status"]["status_str"] == "success"
    assert body["data"]["outputs"]["4"]["images"][0]["type"] == "output"


async def test_unknown_job_is_404_and_malformed_id_is_400(api: Api) -> None:
    status, body = await api.get("/jobs/j_00000000000000000000000000")
    assert (status, body["error"]["code"]) == (404, "not_found")
    status, body = await api.get("/jobs/..%2F..%2Fetc%2Fpasswd")
    assert status in (400, 404) and body["ok"] is False
