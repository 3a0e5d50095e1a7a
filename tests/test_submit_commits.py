"""A submit is two commits: the job before ComfyUI is asked (in the request), ComfyUI's answer after (by the
lifecycle's ordered writer); a crash between them leaves a job that still belongs to its user and is reconciled
at the next start."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from harness import StudioRun, start_studio
from sqlalchemy import event, select
from studio_api import Api, load_workflow
from test_api_jobs import wait_for_state

from comfyui_studio.db.models import ComfyCall, Job
from comfyui_studio.services.comfy_calls import LoggedComfy

BACKGROUND = ("studio-job-writer", "studio-queue")


def count_request_commits(run: StudioRun) -> list[str]:
    """Commit events on the store made by tasks other than the lifecycle's background writer."""
    seen: list[str] = []

    def on_commit(_conn: object) -> None:
        task = asyncio.current_task()
        name = task.get_name() if task is not None else "?"
        if name not in BACKGROUND:
            seen.append(name)

    event.listen(run.studio.store.engine.sync_engine, "commit", on_commit)
    return seen


async def test_a_submit_commits_once_in_the_request_and_answers_without_reading_back(run: StudioRun, api: Api) -> None:
    await api.open_session()
    await api.post("/jobs", json={"graph": load_workflow("t2i_standin"), "prompt": "warm-up"})
    commits = count_request_commits(run)
    status, body = await api.post("/jobs", json={"graph": load_workflow("t2i_standin"), "prompt": "a red square"})
    assert status == 201, body
    assert len(commits) == 1, commits  # the job; ComfyUI's answer is the writer's commit
    job = body["data"]
    assert job["state"] == "queued" and job["prompt_text"] == "a red square" and job["images"] == []
    done = await wait_for_state(api, job["id"], {"done"})
    assert set(done) == set(job)  # the answer has the shape of every job read
    async with run.studio.store.session() as session:
        calls = (await session.scalars(select(ComfyCall).where(ComfyCall.job_id == job["id"]))).all()
        row = await session.get(Job, job["id"])
    assert [c.operation for c in calls][:1] == ["submit"] and row is not None and row.number is not None


async def test_a_crash_between_comfyuis_accept_and_the_second_commit_keeps_the_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = await start_studio(tmp_path, node_delay=0.3)
    real_submit = LoggedComfy.submit
    crashed: dict[str, str] = {}

    async def accept_then_die(self, graph, **kwargs):
        await real_submit(self, graph, **kwargs)
        crashed["prompt_id"] = kwargs["prompt_id"]
        # The process dies here: nothing after ComfyUI's accept reaches the store or the stream.
        self.host._sinks.clear()
        raise asyncio.CancelledError  # the request's task ends here, as in a killed process

    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, run.api)
            await api.open_session()
            monkeypatch.setattr(LoggedComfy, "submit", accept_then_die)
            with pytest.raises((aiohttp.ClientError, asyncio.TimeoutError)):
                await asyncio.wait_for(
                    api.post("/jobs", json={"graph": load_workflow("t2i_standin"), "prompt": "survives"}), 5
                )
            monkeypatch.setattr(LoggedComfy, "submit", real_submit)
    finally:
        await run.stop()
    async with run.studio.store.session() as s:
        row = await s.scalar(select(Job).where(Job.prompt_id == crashed["prompt_id"]))
    assert row is not None and row.state == "queued" and row.number is None

    run = await start_studio(tmp_path)  # ComfyUI restarted too: it forgot its queue
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, run.api)
            job = await wait_for_state(api, row.id, {"done", "lost"})
            assert job["prompt_text"] == "survives"
            status, listing = await api.get("/jobs")
            assert row.id in {j["id"] for j in listing["data"]["items"]}
    finally:
        await run.stop()
