"""Live model lists: a file dropped into ComfyUI's model folders reaches the API and the event stream in seconds."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from harness import StudioRun
from studio_api import Api
from test_live_api import SseClient, stream_headers

from comfyui_studio.services.comfy_host import HostNotFound
from comfyui_studio.services.models import WATCHED_FOLDERS

LIVE_WITHIN_S = 10.0


def drop(run: StudioRun, folder: str, name: str, data: bytes = b"not really a model") -> Path:
    """A file in the test host's models/<folder>, as a user copying a download there."""
    path = run.host.server.registry.models.folder(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


async def until(check, timeout: float = LIVE_WITHIN_S) -> float:  # noqa: ANN001
    """Seconds until ``await check()`` is truthy; fails after ``timeout``."""
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < timeout, "not seen in time"
        await asyncio.sleep(0.1)
    return time.monotonic() - started


# -- the test host lists folders as ComfyUI does ----------------------------------------------------------


async def test_the_test_host_lists_model_folders_through_comfyuis_mtime_cache(run: StudioRun, api: Api) -> None:
    folders = run.host.server.registry.models
    async with api.session.get(run.host.url + "/models/checkpoints") as resp:
        assert resp.status == 200 and await resp.json() == []
    reads = folders.reads
    async with api.session.get(run.host.url + "/api/models/checkpoints") as resp:
        assert await resp.json() == []
    assert folders.reads == reads, "an unchanged folder is answered from the cache"

    drop(run, "checkpoints", "sd15.safetensors")
    drop(run, "checkpoints", "notes.txt")  # not a model extension
    drop(run, "checkpoints", "sdxl/base.safetensors")
    async with api.session.get(run.host.url + "/models/checkpoints") as resp:
        assert await resp.json() == ["sd15.safetensors", "sdxl/base.safetensors"]
    async with api.session.get(run.host.url + "/object_info") as resp:
        info = await resp.json()
    assert info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0] == [
        "sd15.safetensors",
        "sdxl/base.safetensors",
    ]
    assert info["UpscaleModelLoader"]["input"]["required"]["model_name"][1]["options"] == []

    drop(run, "embeddings", "easynegative.safetensors")
    async with api.session.get(run.host.url + "/embeddings") as resp:
        assert await resp.json() == ["easynegative"]
    async with api.session.get(run.host.url + "/models/nonsense") as resp:
        assert resp.status == 404


# -- the studio sees new files ------------------------------------------------------------------------------


async def test_a_checkpoint_dropped_into_the_folder_makes_the_default_actions_ready_within_seconds(
    run: StudioRun, api: Api
) -> None:
    status, body = await api.get("/actions/status")
    assert body["data"]["checkpoint"] is None and "models/checkpoints" in body["data"]["message"]
    status, body = await api.get("/actions")
    assert not any(a["ready"] for a in body["data"] if a["slot"] == "generate")

    drop(run, "checkpoints", "dreamshaper_8.safetensors")

    async def ready() -> bool:
        _, body = await api.get("/actions/status")
        return body["data"]["checkpoint"] == "dreamshaper_8.safetensors"

    took = await until(ready)
    assert took < LIVE_WITHIN_S
    status, body = await api.get("/actions")
    assert all(a["ready"] for a in body["data"]), body["data"]
    status, body = await api.get("/models")
    assert status == 200 and body["data"]["checkpoints"] == ["dreamshaper_8.safetensors"]
    # The default workflow now runs on it: the graph the prompt bar would submit names the new file.
    graph = await run.studio.actions.graph_for_slot(run.studio.owner_id, "generate")
    assert [n["inputs"]["ckpt_name"] for n in graph.values() if n["class_type"] == "CheckpointLoaderSimple"] == [
        "dreamshaper_8.safetensors"
    ]


async def test_the_event_stream_announces_new_loras_and_embeddings(run: StudioRun, api: Api) -> None:
    async with SseClient(api.session, run.api + "/events", headers=await stream_headers(api)) as sse:
        await sse.wait_for(lambda events: any(e.kind == "resync" for e in events))
        started = time.monotonic()
        drop(run, "loras", "add_detail.safetensors")
        drop(run, "embeddings", "bad_hands.pt")

        def announced(events: list) -> bool:
            models = [e.data["models"] for e in events if e.kind == "models"]
            return bool(models) and models[-1]["loras"] == ["add_detail.safetensors"] and bool(models[-1]["embeddings"])

        await sse.wait_for(announced, timeout=LIVE_WITHIN_S)
        assert time.monotonic() - started < LIVE_WITHIN_S
        event = [e for e in sse.events if e.kind == "models"][-1]
        assert set(event.data["models"]) == set(WATCHED_FOLDERS)
        assert event.data["models"]["embeddings"] == ["bad_hands.pt"]
        # What the banner needs comes along: still no checkpoint.
        assert event.data["status"]["checkpoint"] is None and event.data["status"]["message"]

        drop(run, "checkpoints", "sd15.safetensors")
        await sse.wait_for(
            lambda events: any(e.kind == "models" and e.data["status"]["checkpoint"] for e in events),
            timeout=LIVE_WITHIN_S,
        )


async def test_nobody_watching_means_no_polling(run: StudioRun, monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[str] = []
    read = run.studio.host.model_files

    async def counted(folder: str) -> list[str]:
        reads.append(folder)
        return await read(folder)

    monkeypatch.setattr(run.studio.host, "model_files", counted)
    await asyncio.sleep(run.studio.models.poll_s * 2.5)
    assert reads == [], "the watcher polls only while a client follows the stream"


async def test_model_lists_in_responses_name_files_never_server_paths(run: StudioRun, api: Api) -> None:
    drop(run, "checkpoints", "sub/model.safetensors")
    await until(lambda: _has_checkpoint(api))
    for path in ("/models", "/actions/status", "/status"):
        status, body = await api.get(path)
        assert status == 200, body
        assert str(run.host.base_dir) not in str(body), path


async def _has_checkpoint(api: Api) -> bool:
    _, body = await api.get("/models")
    return bool(body["data"]["checkpoints"])


async def test_a_comfyui_without_the_models_route_is_watched_through_its_node_definitions(
    run: StudioRun, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def no_route(folder: str) -> list[str]:
        raise HostNotFound(f"ComfyUI has no /models/{folder}")

    monkeypatch.setattr(run.studio.host, "model_files", no_route)
    drop(run, "checkpoints", "old_comfy.safetensors")
    drop(run, "loras", "old_lora.safetensors")

    async def seen() -> bool:
        _, body = await api.get("/actions/status")
        return body["data"]["checkpoint"] == "old_comfy.safetensors"

    await until(seen)
    _, body = await api.get("/models")
    assert body["data"]["loras"] == ["old_lora.safetensors"]
    assert body["data"]["embeddings"] == []  # not in the node definitions: unknown without the route


async def test_the_in_process_host_calls_comfyuis_plain_function_handlers_too() -> None:
    from aiohttp import web

    from comfyui_studio.services.comfy_inprocess import InProcessHost

    class Server:
        routes = web.RouteTableDef()

    def get_models(request: web.Request) -> web.Response:  # server.py's handlers are not all coroutines
        folder = request.match_info["folder"]
        if folder != "checkpoints":
            return web.Response(status=404)
        return web.json_response(["a.safetensors"])

    Server.routes.get("/models/{folder}")(get_models)

    async def validate(*_: object) -> tuple:
        return (True, None, [], {})

    host = InProcessHost(
        Server(),
        validate_prompt=validate,
        interrupt_processing=lambda: None,
        folder_for_type=lambda _: None,
        client_id="x",
    )
    assert await host.model_files("checkpoints") == ["a.safetensors"]
    with pytest.raises(HostNotFound):
        await host.model_files("nonsense")
