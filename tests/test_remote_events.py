"""The standalone studio in front of a remote ComfyUI (the test host over HTTP and /ws)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from studio_api import Api, load_workflow
from test_api_jobs import wait_for_state
from test_live_api import WsClient, job_done, resynced, states, stream_headers
from testhost import ComfyTestHost, start_test_host

from comfyui_studio.config import StudioConfig
from comfyui_studio.plugin import mount_standalone
from comfyui_studio.services.comfy_remote import RemoteHost
from comfyui_studio.services.studio import Studio


@dataclass
class Standalone:
    studio: Studio
    runner: web.AppRunner
    url: str

    @property
    def api(self) -> str:
        return self.url + "/studio/api/v1"

    @property
    def remote(self) -> RemoteHost:
        assert isinstance(self.studio.host, RemoteHost)
        return self.studio.host


async def start_standalone(data_dir: Path, comfy_url: str) -> Standalone:
    """What `python -m comfyui_studio serve --comfy URL` runs, on a free port of 127.0.0.1."""
    studio = Studio.build(StudioConfig(data_dir=data_dir), RemoteHost(comfy_url))
    runner = web.AppRunner(mount_standalone(studio), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return Standalone(studio, runner, f"http://127.0.0.1:{runner.addresses[0][1]}")


@pytest.fixture
async def comfy(tmp_path: Path) -> AsyncIterator[ComfyTestHost]:
    host = await start_test_host(tmp_path / "comfy", node_delay=0.05)
    yield host
    await host.stop()


@pytest.fixture
async def standalone(tmp_path: Path, comfy: ComfyTestHost) -> AsyncIterator[Standalone]:
    app = await start_standalone(tmp_path / "studio", comfy.url)
    async with asyncio.timeout(5):
        await app.remote.connected.wait()
    yield app
    await app.runner.cleanup()


async def test_standalone_follows_a_job_to_done_over_comfyuis_websocket(standalone: Standalone) -> None:
    async with aiohttp.ClientSession() as session:
        api = Api(session, standalone.api)
        async with WsClient(session, standalone.api + "/ws", headers=await stream_headers(api)) as ws:
            await ws.wait_for(lambda c: resynced(c.events))
            graph = load_workflow("progress_probe")
            graph["2"]["class_type"] = "StudioTestProgress"
            graph["2"]["inputs"].update({"steps": 3, "delay": 0.02})
            status, body = await api.post("/jobs", json={"graph": graph})
            assert status == 201, body
            job = body["data"]
            await ws.wait_for(lambda c: job_done(job["id"])(c.events))
            assert states(job["id"], ws.events) == ["queued", "running", "done"]
            progress = [e.data["progress"] for e in ws.events if e.kind == "progress" and e.data["job_id"] == job["id"]]
            assert any(p["node"] == "2" and p["value"] == 3 for p in progress)
            # Previews came over ComfyUI's /ws as metadata frames (the feature flag was sent first).
            previews = [(h, img) for h, img in ws.previews if h["prompt_id"] == job["prompt_id"]]
            assert previews and previews[0][1][:2] == b"\xff\xd8"


async def test_standalone_survives_comfyui_restarting(tmp_path: Path) -> None:
    comfy = await start_test_host(tmp_path / "comfy", node_delay=0.3)
    port = comfy.server.port
    app = await start_standalone(tmp_path / "studio", comfy.url)
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, app.api)
            async with asyncio.timeout(5):
                await app.remote.connected.wait()
            jobs = []
            for color in (1, 2):
                graph = load_workflow("t2i_standin")
                graph["1"]["inputs"]["color"] = color
                status, body = await api.post("/jobs", json={"graph": graph})
                assert status == 201, body
                jobs.append(body["data"])
            running, pending = jobs
            await wait_for_state(api, running["id"], {"running"})

            await comfy.stop()
            status, body = await api.post("/jobs", json={"graph": load_workflow("t2i_standin")})
            assert (status, body["error"]["code"]) == (502, "comfy_unavailable")
            await asyncio.sleep(0.3)
            comfy = await start_test_host(tmp_path / "comfy", port=port)  # ComfyUI back, queue and history empty

            first = await wait_for_state(api, running["id"], {"lost", "interrupted", "done"})
            assert first["state"] in {"lost", "interrupted", "done"}
            again = await wait_for_state(api, pending["id"], {"done"}, timeout=15)
            assert (again["id"], again["prompt_id"]) == (pending["id"], pending["prompt_id"])
            assert app.remote.connects >= 2

            graph = load_workflow("t2i_standin")
            graph["1"]["inputs"]["color"] = 3
            status, body = await api.post("/jobs", json={"graph": graph})
            assert status == 201, body
            assert (await wait_for_state(api, body["data"]["id"], {"done"}))["images"]
    finally:
        await app.runner.cleanup()
        await comfy.stop()


async def test_remote_host_stops_its_socket_cleanly(comfy: ComfyTestHost) -> None:
    host = RemoteHost(comfy.url)
    seen: list[object] = []
    host.subscribe(lambda event, data: seen.append(event))
    host.start_events()
    async with asyncio.timeout(5):
        await host.connected.wait()
        while "feature_flags" not in seen:
            await asyncio.sleep(0.01)
    assert seen[0] == "status"  # ComfyUI's greeting, then its answer to our feature flags
    await host.close()
    assert not host.connected.is_set()
    async with asyncio.timeout(2):  # ComfyUI drops the socket once our close frame arrives
        while host.client_id in comfy.server.sockets:
            await asyncio.sleep(0.01)
