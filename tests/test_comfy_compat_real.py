"""The ComfyUI-compatible routes of the standalone studio in front of a real ComfyUI (COMFYUI_DIR; skipped otherwise).

The history entry the studio builds from its stored job is compared with the one ComfyUI keeps for the very same
prompt id, and a ComfyUI client library from PyPI drives the studio as it would drive ComfyUI.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from comfy_api_simplified import ComfyApiWrapper
from studio_api import load_workflow
from test_real_comfyui import COMFYUI_DIR, comfyui  # noqa: F401 (the module's ComfyUI fixture)

from comfyui_studio.config import StudioConfig
from comfyui_studio.plugin import mount_standalone
from comfyui_studio.services.comfy_remote import RemoteHost
from comfyui_studio.services.studio import Studio

pytestmark = [
    pytest.mark.comfyui,
    pytest.mark.skipif(not COMFYUI_DIR, reason="set COMFYUI_DIR to a ComfyUI checkout to run against it"),
]


@pytest.fixture
async def front(comfyui: tuple[str, Path], tmp_path: Path) -> AsyncIterator[tuple[Studio, str, str]]:  # noqa: F811
    url, _base = comfyui
    studio = Studio.build(StudioConfig(data_dir=tmp_path / "studio"), RemoteHost(url))
    runner = web.AppRunner(mount_standalone(studio), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        assert isinstance(studio.host, RemoteHost)
        await asyncio.wait_for(studio.host.connected.wait(), 20)
        yield studio, f"http://127.0.0.1:{runner.addresses[0][1]}", url
    finally:
        await runner.cleanup()


def shape(value: object) -> object:
    """Keys and types, not values: what a client's parsing depends on."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value[:1]]
    return type(value).__name__


async def test_the_history_entry_has_comfyuis_shape_for_the_same_prompt(front: tuple[Studio, str, str]) -> None:
    studio, studio_url, comfy_url = front
    assert studio.security.tokens is not None
    token = str((await studio.security.tokens.create(studio.owner_id, "real"))["token"])
    client_id = uuid.uuid4().hex
    headers = {"Authorization": f"Bearer {token}"}
    graph = load_workflow("t2i_standin")
    graph["1"]["inputs"]["color"] = uuid.uuid4().int % 16_000_000  # not cached by an earlier run
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"{studio_url}/ws?clientId={client_id}", headers=headers) as ws:
            await ws.receive_json()
            async with session.post(
                f"{studio_url}/prompt", json={"prompt": graph, "client_id": client_id}, headers=headers
            ) as resp:
                assert resp.status == 200, await resp.text()
                prompt_id = (await resp.json())["prompt_id"]
            kinds = []
            async with asyncio.timeout(60):
                while True:
                    message = await ws.receive()
                    if message.type is not aiohttp.WSMsgType.TEXT:
                        continue
                    body = message.json()
                    kinds.append(body["type"])
                    if body["type"] == "executing" and body["data"]["node"] is None:
                        assert body["data"]["prompt_id"] == prompt_id
                        break
        assert {"execution_start", "executing", "executed", "execution_success"} <= set(kinds)
        async with session.get(f"{studio_url}/history/{prompt_id}", headers=headers) as resp:
            ours = (await resp.json())[prompt_id]
        async with session.get(f"{comfy_url}/history/{prompt_id}") as resp:
            theirs = (await resp.json())[prompt_id]
    assert set(ours) == set(theirs) == {"prompt", "outputs", "status", "meta"}
    assert ours["outputs"] == theirs["outputs"]  # the very files ComfyUI wrote, by ComfyUI's names
    assert shape(ours["status"]) == shape(theirs["status"])
    # ComfyUI also lists execution_cached; the start and the ending are the messages clients read
    assert [m[0] for m in ours["status"]["messages"]] == ["execution_start", "execution_success"]
    assert {m[0] for m in theirs["status"]["messages"]} >= {"execution_start", "execution_success"}
    assert ours["status"]["status_str"] == theirs["status"]["status_str"] == "success"
    assert ours["prompt"][1:3] == theirs["prompt"][1:3] and ours["prompt"][4] == theirs["prompt"][4]
    assert ours["meta"] == theirs["meta"]


async def test_a_comfyui_client_library_drives_the_studio_in_front_of_real_comfyui(
    front: tuple[Studio, str, str],
) -> None:
    studio, studio_url, _comfy_url = front
    assert studio.security.tokens is not None
    token = str((await studio.security.tokens.create(studio.owner_id, "library"))["token"])
    graph = load_workflow("t2i_standin")
    graph["1"]["inputs"]["color"] = uuid.uuid4().int % 16_000_000
    for node_id, node in graph.items():
        node["_meta"] = {"title": "Save Image" if node_id == "4" else node["class_type"]}
    client = ComfyApiWrapper(studio_url, user="script", password=token)
    images = await asyncio.to_thread(client.queue_and_wait_images, graph, "Save Image")
    assert len(images) == 1 and next(iter(images.values()))[:4] == b"\x89PNG"
    page = await studio.jobs.list(studio.owner_id, cursor=None, limit=5)
    assert page["items"][0]["state"] == "done" and len(page["items"][0]["images"]) == 1
