"""The queue through the studio: positions, cancelling pending jobs, clearing, interrupting."""

from __future__ import annotations

import asyncio

from harness import StudioRun
from studio_api import Api, load_workflow
from test_api_jobs import wait_for_state


async def submit(api: Api, color: int) -> str:
    graph = load_workflow("t2i_standin")
    graph["1"]["inputs"]["color"] = color
    status, body = await api.post("/jobs", json={"graph": graph})
    assert status == 201, body
    return body["data"]["id"]


async def test_queue_shows_running_and_pending_with_positions(slow_api: Api) -> None:
    first, second, third = [await submit(slow_api, c) for c in (1, 2, 3)]
    await wait_for_state(slow_api, first, {"running"})
    status, body = await slow_api.get("/queue")
    assert status == 200
    queue = body["data"]
    assert [(e["job_id"], e["position"], e["mine"]) for e in queue["items"]] == [
        (first, 0, True),
        (second, 1, True),
        (third, 2, True),
    ]
    # the counts and positions the `queue` event carries, from the same builder
    assert (queue["running"], queue["pending"], queue["connected"]) == (1, 2, True)
    assert queue["positions"] == {first: 0, second: 1, third: 2}


async def test_cancelling_a_pending_job_removes_it_from_comfyui(slow_run: StudioRun, slow_api: Api) -> None:
    first, second = [await submit(slow_api, c) for c in (4, 5)]
    await wait_for_state(slow_api, first, {"running"})
    status, body = await slow_api.delete(f"/queue/{second}")
    assert status == 200, body
    assert body["data"]["state"] == "cancelled"
    pending = slow_run.host.server.prompt_queue.get_current_queue_volatile()[1]
    assert pending == []
    status, body = await slow_api.delete(f"/queue/{first}")
    assert (status, body["error"]["code"]) == (409, "conflict")


async def test_clearing_cancels_every_pending_job_of_the_user(slow_api: Api) -> None:
    first, second, third = [await submit(slow_api, c) for c in (6, 7, 8)]
    await wait_for_state(slow_api, first, {"running"})
    status, body = await slow_api.post("/queue/clear", json={})
    assert status == 200
    assert sorted(body["data"]["cancelled"]) == sorted([second, third])
    for job_id in (second, third):
        assert (await wait_for_state(slow_api, job_id, {"cancelled"}))["state"] == "cancelled"
    assert (await wait_for_state(slow_api, first, {"done"}))["state"] == "done"


async def test_interrupting_the_running_job_ends_it_interrupted(slow_api: Api) -> None:
    job_id = await submit(slow_api, 9)
    await wait_for_state(slow_api, job_id, {"running"})
    status, body = await slow_api.post("/queue/interrupt", json={})
    assert status == 200, body
    assert body["data"]["interrupted"] == job_id
    job = await wait_for_state(slow_api, job_id, {"interrupted", "done"})
    assert job["state"] == "interrupted"
    assert job["error"]["node_id"]


async def test_interrupting_a_named_job_interrupts_it_only_while_it_runs(slow_api: Api) -> None:
    running, waiting = await submit(slow_api, 10), await submit(slow_api, 11)
    await wait_for_state(slow_api, running, {"running"})
    status, body = await slow_api.post("/queue/interrupt", json={"job_id": waiting})
    assert (status, body["error"]["code"]) == (409, "conflict"), body
    assert waiting in body["error"]["message"]
    status, body = await slow_api.post("/queue/interrupt", json={"job_id": "j_" + "0" * 26})
    assert (status, body["error"]["code"]) == (404, "not_found"), body
    status, body = await slow_api.post("/queue/interrupt", json={"job_id": "../etc"})
    assert (status, body["error"]["code"]) == (400, "validation_error"), body
    status, body = await slow_api.post("/queue/interrupt", json={"job_id": running})
    assert status == 200 and body["data"]["interrupted"] == running, body
    assert (await wait_for_state(slow_api, running, {"interrupted", "done"}))["state"] == "interrupted"
    assert (await wait_for_state(slow_api, waiting, {"done"}))["state"] == "done"


async def test_interrupting_with_nothing_running_is_a_conflict(slow_api: Api) -> None:
    status, body = await slow_api.post("/queue/interrupt", json={})
    assert (status, body["error"]["code"]) == (409, "conflict")
    await asyncio.sleep(0)


async def test_a_prompt_of_several_jobs_put_in_front_runs_in_the_prompt_s_order(slow_api: Api) -> None:
    running, waiting = [await submit(slow_api, c) for c in (21, 22)]
    await wait_for_state(slow_api, running, {"running"})
    graph = load_workflow("t2i_standin")
    status, body = await slow_api.post(
        "/jobs", json={"graph": graph, "prompt": "a {red, green, blue} cube", "front": True}
    )
    assert status == 201, body
    made = body["data"]["jobs"]
    assert [j["expansion"]["text"] for j in made] == ["a red cube", "a green cube", "a blue cube"]
    status, queue = await slow_api.get("/queue")
    assert [e["job_id"] for e in queue["data"]["items"]] == [running, *(j["id"] for j in made), waiting]
