"""Every call to ComfyUI is recorded; calls can be listed, read and replayed (route and command line)."""

from __future__ import annotations

import asyncio
import io
import json
from contextlib import redirect_stdout

from harness import StudioRun
from sqlalchemy import select
from studio_api import Api, load_workflow
from test_api_jobs import wait_for_state

from comfyui_studio.__main__ import main as cli_main
from comfyui_studio.db.models import ComfyCall


async def _calls(run: StudioRun) -> list[ComfyCall]:
    async with run.studio.store.session() as session:
        return list((await session.scalars(select(ComfyCall).order_by(ComfyCall.id))).all())


async def test_submit_history_view_are_recorded_with_request_response_and_timings(run: StudioRun, api: Api) -> None:
    graph = load_workflow("t2i_standin")
    status, body = await api.post("/jobs", json={"graph": graph})
    job = await wait_for_state(api, body["data"]["id"], {"done"})
    await run.studio.live.drain()
    calls = await _calls(run)
    submit = next(c for c in calls if c.operation == "submit")
    assert submit.method == "POST" and submit.path == "/prompt" and submit.status == 200 and submit.ok
    assert submit.request["prompt"] == graph and submit.request["prompt_id"] == job["prompt_id"]
    assert submit.response["prompt_id"] == job["prompt_id"]
    assert submit.job_id == job["id"]
    assert submit.ended_at >= submit.started_at and submit.runtime_ms >= 0
    view = next(c for c in calls if c.operation == "view")
    assert view.job_id == job["id"] and view.response["bytes"] > 0 and len(view.response["sha256"]) == 64


async def test_a_refused_submit_is_recorded_with_comfyuis_answer(run: StudioRun, api: Api) -> None:
    status, body = await api.post("/jobs", json={"graph": {"1": {"class_type": "Nope", "inputs": {}}}})
    assert status == 400
    submit = next(c for c in await _calls(run) if c.operation == "submit")
    assert submit.status == 400 and submit.ok is False
    assert submit.response["error"]["type"] == "invalid_prompt"


async def test_calls_routes_list_show_and_replay_a_submit_as_a_new_linked_job(run: StudioRun, api: Api) -> None:
    status, body = await api.post("/jobs", json={"graph": load_workflow("t2i_standin")})
    original = await wait_for_state(api, body["data"]["id"], {"done"})
    status, listing = await api.get("/calls", params={"job_id": original["id"]})
    assert status == 200
    operations = [c["operation"] for c in listing["data"]["items"]]
    assert "submit" in operations
    submit_id = next(c["id"] for c in listing["data"]["items"] if c["operation"] == "submit")
    status, shown = await api.get(f"/calls/{submit_id}")
    assert status == 200 and shown["data"]["request"]["prompt"]["4"]["class_type"] == "SaveImage"

    status, replayed = await api.post(f"/calls/{submit_id}/replay", json={})
    assert status == 201, replayed
    new_job = replayed["data"]["job"]
    assert new_job["id"] != original["id"] and new_job["replay_of"] == original["id"]
    done = await wait_for_state(api, new_job["id"], {"done"})
    assert done["images"]
    replay_call = next(c for c in await _calls(run) if c.operation == "submit" and c.replay_of == submit_id)
    assert replay_call.job_id == new_job["id"]


async def test_replaying_an_unknown_call_is_404(api: Api) -> None:
    status, body = await api.post("/calls/999999/replay", json={})
    assert (status, body["error"]["code"]) == (404, "not_found")


def _cli(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = cli_main(list(args))
    return code, out.getvalue()


async def test_command_line_lists_shows_and_replays_through_remote_host(run: StudioRun, api: Api) -> None:
    status, body = await api.post("/jobs", json={"graph": load_workflow("t2i_standin")})
    original = await wait_for_state(api, body["data"]["id"], {"done"})
    await run.studio.live.drain()
    data_dir = str(run.data_dir)
    submit_id = next(c.id for c in await _calls(run) if c.operation == "submit")

    def use_cli() -> tuple[tuple[int, str], tuple[int, str], tuple[int, str]]:
        return (
            _cli("--data-dir", data_dir, "calls", "list"),
            _cli("--data-dir", data_dir, "calls", "show", str(submit_id)),
            _cli("--data-dir", data_dir, "calls", "--comfy-url", run.host.url, "replay", str(submit_id)),
        )

    (code, listing), (code2, shown), (code3, replayed) = await asyncio.to_thread(use_cli)
    assert code == 0 and "submit" in listing and original["id"] in listing
    assert code2 == 0 and json.loads(shown)["request"]["prompt_id"] == original["prompt_id"]
    assert code3 == 0
    new_job = json.loads(replayed)["job"]
    assert new_job["replay_of"] == original["id"] and new_job["state"] in {"queued", "running", "done"}
    # The command line wrote to the same store the studio reads.
    status, body = await api.get(f"/jobs/{new_job['id']}")
    assert status == 200 and body["data"]["replay_of"] == original["id"]
