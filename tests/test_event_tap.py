"""The event tap on PromptServer.send: installed once, chained, harmless to ComfyUI and its /ws clients."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import aiohttp
from harness import StudioRun, attach_studio
from studio_api import Api, load_workflow
from test_api_jobs import wait_for_state
from testhost import FakePromptServer, start_test_host

from comfyui_studio.plugin import install_event_tap


class BareServer:
    """Just PromptServer's `send`, recording what reaches ComfyUI's own delivery."""

    def __init__(self) -> None:
        self.delivered: list[tuple[Any, Any, str | None]] = []

    async def send(self, event: Any, data: Any, sid: str | None = None) -> None:
        self.delivered.append((event, data, sid))


async def test_tap_installs_once() -> None:
    server = BareServer()
    seen: list[Any] = []
    assert install_event_tap(server, lambda event, data, sid: seen.append(event)) is True
    tapped = server.send
    assert install_event_tap(server, lambda event, data, sid: seen.append(("again", event))) is False
    assert server.send is tapped
    await server.send("status", {}, None)
    assert seen == ["status"]
    assert server.delivered == [("status", {}, None)]


async def test_tap_never_raises_into_comfyui_and_still_delivers() -> None:
    server = BareServer()

    def broken(event: Any, data: Any, sid: str | None) -> None:
        raise RuntimeError("studio bug")

    install_event_tap(server, broken)
    for i in range(3):
        await server.send("progress", {"i": i}, "sid")
    assert server.delivered == [("progress", {"i": i}, "sid") for i in range(3)]


def _load_with_other_extension(seen_by_other: list[Any], holder: dict[str, Any], data_dir: Path) -> Any:
    def load_custom_nodes(server: FakePromptServer) -> None:
        # "Another extension", loaded before the studio, wrapped send its own way.
        previous = server.send

        async def other_send(event: Any, data: Any, sid: str | None = None) -> None:
            seen_by_other.append((event, data))
            await previous(event, data, sid)

        server.send = other_send  # type: ignore[method-assign]
        holder["studio"] = attach_studio(server, data_dir)

    return load_custom_nodes


async def test_tap_chains_to_a_wrapper_another_extension_installed_first(tmp_path: Path) -> None:
    seen_by_other: list[Any] = []
    holder: dict[str, Any] = {}
    host = await start_test_host(
        tmp_path, before_start=_load_with_other_extension(seen_by_other, holder, tmp_path / "user" / "__studio")
    )
    try:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(host.url + "/ws?clientId=editor-tab") as comfy_ws:
                first = json.loads((await comfy_ws.receive()).data)
                assert first["type"] == "status"  # ComfyUI's own greeting, untouched
                api = Api(session, host.url + "/studio/api/v1")
                status, body = await api.post("/jobs", json={"graph": load_workflow("t2i_standin")})
                assert status == 201, body
                job = await wait_for_state(api, body["data"]["id"], {"done"})
                assert len(job["images"]) == 1
                # The editor's socket still gets ComfyUI's broadcasts (queue status) through both wrappers.
                msg = json.loads((await asyncio.wait_for(comfy_ws.receive(), 5)).data)
                assert msg["type"] == "status"
        seen = [event for event, data in seen_by_other if isinstance(data, dict)]
        assert "execution_start" in seen and "execution_success" in seen
    finally:
        await host.stop()


def _emit(server: FakePromptServer, count: int) -> threading.Thread:
    def run() -> None:
        for i in range(count):
            server.send_sync("studio_tap_probe", {"i": i}, None)

    thread = threading.Thread(target=run, name="fake-executor")
    thread.start()
    return thread


async def test_a_failing_sink_never_drops_or_reorders_comfyuis_messages(run: StudioRun, api: Api) -> None:
    failures: list[Any] = []

    def failing_sink(event: Any, data: Any) -> None:
        failures.append(event)
        raise RuntimeError("a sink that always fails")

    run.studio.host.subscribe(failing_sink)  # type: ignore[attr-defined]
    count = 300
    async with aiohttp.ClientSession() as session, session.ws_connect(run.host.url + "/ws") as comfy_ws:
        assert json.loads((await comfy_ws.receive()).data)["type"] == "status"
        thread = _emit(run.host.server, count)
        received: list[int] = []
        async with asyncio.timeout(10):
            while len(received) < count:
                msg = json.loads((await comfy_ws.receive()).data)
                if msg["type"] == "studio_tap_probe":
                    received.append(msg["data"]["i"])
        thread.join()
    assert received == list(range(count))
    assert failures.count("studio_tap_probe") == count
    # The studio's own sink, before the failing one, still follows jobs.
    status, body = await api.post("/jobs", json={"graph": load_workflow("t2i_standin")})
    assert status == 201, body
    assert (await wait_for_state(api, body["data"]["id"], {"done"}))["state"] == "done"


async def test_the_studio_sends_nothing_of_its_own_on_comfyuis_socket(run: StudioRun, api: Api) -> None:
    async with aiohttp.ClientSession() as session, session.ws_connect(run.host.url + "/ws") as comfy_ws:
        status, body = await api.post("/jobs", json={"graph": load_workflow("t2i_standin")})
        await wait_for_state(api, body["data"]["id"], {"done"})
        types: set[str] = set()
        while True:
            try:
                msg = await asyncio.wait_for(comfy_ws.receive(), 0.3)
            except TimeoutError:
                break
            types.add(json.loads(msg.data)["type"])
    # This socket did not submit: ComfyUI sends it only status broadcasts; unknown types would break its frontend.
    assert types == {"status"}
