"""Queue management beyond ComfyUI's own, seen at once on the event stream."""

from __future__ import annotations

from harness import StudioRun
from studio_api import Api, load_workflow
from test_api_jobs import wait_for_state
from test_live_api import SseClient, StreamEvent, resynced, stream_headers


async def submit(api: Api, color: int) -> dict:
    graph = load_workflow("t2i_standin")
    graph["1"]["inputs"]["color"] = color
    status, body = await api.post("/jobs", json={"graph": graph})
    assert status == 201, body
    return body["data"]


def last_queue(events: list[StreamEvent]) -> dict:
    return [e for e in events if e.kind == "queue"][-1].data


async def test_moving_a_pending_job_to_the_front_runs_it_next(slow_run: StudioRun, slow_api: Api) -> None:
    async with SseClient(slow_api.session, slow_run.api + "/events", headers=await stream_headers(slow_api)) as sse:
        await sse.wait_for(resynced)
        blocker = await submit(slow_api, 1)
        a, b, c = [await submit(slow_api, color) for color in (2, 3, 4)]
        await wait_for_state(slow_api, blocker["id"], {"running"})

        status, body = await slow_api.post(f"/queue/{c['id']}/front", json={})
        assert status == 200, body
        moved = body["data"]
        assert (moved["id"], moved["prompt_id"], moved["state"]) == (c["id"], c["prompt_id"], "queued")

        status, body = await slow_api.get("/queue")
        pending = [e["job_id"] for e in body["data"]["items"] if e["position"] > 0]
        assert pending == [c["id"], a["id"], b["id"]]
        expected = {blocker["id"]: 0, c["id"]: 1, a["id"]: 2, b["id"]: 3}
        assert body["data"]["positions"] == expected
        await sse.wait_for(lambda events: any(e.kind == "queue" and e.data["positions"] == expected for e in events))

        done = {j["id"]: await wait_for_state(slow_api, j["id"], {"done"}, timeout=15) for j in (a, b, c)}
        assert done[c["id"]]["started_at"] < done[a["id"]]["started_at"] < done[b["id"]]["started_at"]
        assert not any(
            e.kind == "job" and e.data["job"]["id"] == c["id"] and e.data["job"]["state"] == "cancelled"
            for e in sse.events
        )


async def test_only_a_pending_job_can_be_moved(slow_api: Api) -> None:
    running = await submit(slow_api, 5)
    await wait_for_state(slow_api, running["id"], {"running"})
    status, body = await slow_api.post(f"/queue/{running['id']}/front", json={})
    assert (status, body["error"]["code"]) == (409, "conflict")
    done = await wait_for_state(slow_api, running["id"], {"done"})
    status, body = await slow_api.post(f"/queue/{done['id']}/front", json={})
    assert (status, body["error"]["code"]) == (409, "conflict")
    status, body = await slow_api.post("/queue/j_00000000000000000000000000/front", json={})
    assert (status, body["error"]["code"]) == (404, "not_found")


async def test_clearing_everyone_keeps_the_running_job_and_shows_at_once(slow_run: StudioRun, slow_api: Api) -> None:
    async with SseClient(slow_api.session, slow_run.api + "/events", headers=await stream_headers(slow_api)) as sse:
        await sse.wait_for(resynced)
        running = await submit(slow_api, 6)
        pending = [await submit(slow_api, color) for color in (7, 8)]
        await wait_for_state(slow_api, running["id"], {"running"})
        status, body = await slow_api.post("/queue/clear", json={"scope": "all"})
        assert status == 200, body
        assert sorted(body["data"]["cancelled"]) == sorted(j["id"] for j in pending)
        # Published before the request returned: the stream has them without any polling of ComfyUI.
        targets = {j["id"] for j in pending}

        def cancelled(events: list[StreamEvent]) -> set[str]:
            return {e.data["job"]["id"] for e in events if e.kind == "job" and e.data["job"]["state"] == "cancelled"}

        await sse.wait_for(lambda events: cancelled(events) == targets, timeout=1.0)
        await sse.wait_for(
            lambda events: (
                last_queue(events) == {"running": 1, "pending": 0, "positions": {running["id"]: 0}, "connected": True}
            )
        )
        assert (await wait_for_state(slow_api, running["id"], {"done"}))["state"] == "done"
