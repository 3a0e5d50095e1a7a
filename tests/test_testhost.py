"""The test host against recordings of a real ComfyUI 0.3.64 (tests/fixtures/comfyui/traces).

Each trace's workflow is run again on the test host over a real /ws client and the message sequence
is compared with the recording after normalising what must differ (ids, timestamps, file counters).
"""

from __future__ import annotations

import asyncio
import copy
import io
import json
import re
import struct
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import testhost
from aiohttp import web
from PIL import Image
from testhost import ComfyTestHost, FakePromptServer, start_test_host

FIXTURES = Path(__file__).parent / "fixtures" / "comfyui"
TRACES = FIXTURES / "traces"
WORKFLOWS = FIXTURES / "workflows"


def load_trace(name: str) -> dict[str, Any]:
    return json.loads((TRACES / name).read_text())


def load_workflow(name: str) -> dict[str, Any]:
    return json.loads((WORKFLOWS / name).read_text())


def traced_prompt(trace: dict[str, Any]) -> dict[str, Any]:
    """The exact graph the recording submitted, as kept in its history entry."""
    return copy.deepcopy(trace["history"][trace["prompt_id"]]["prompt"][2])


# --- normalising messages ---------------------------------------------------------------------------

_COUNTER = re.compile(r"_\d{5}_\.png$")
_TEMP_PREFIX = re.compile(r"^ComfyUI_temp_[a-z]{5}_")


def _norm(value: Any, key: str | None = None) -> Any:
    if key in ("prompt_id", "sid"):
        assert isinstance(value, str) and value
        return f"<{key}>"
    if key == "timestamp":
        assert isinstance(value, int) and value > 1_600_000_000_000  # milliseconds
        return "<ms>"
    if key == "filename":
        return _TEMP_PREFIX.sub("ComfyUI_temp_xxxxx_", _COUNTER.sub("_NNNNN_.png", value))
    if key == "traceback":
        assert isinstance(value, list) and all(isinstance(line, str) for line in value)
        return "<traceback>"
    if key == "current_inputs":
        assert all(isinstance(v, list) for v in value.values())
        return sorted(value)
    if key in ("executed", "current_outputs"):
        return sorted(value)
    if isinstance(value, dict):
        return {k: _norm(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_norm(v) for v in value]
    return value


def norm_trace(log: list[dict[str, Any]]) -> list[Any]:
    out: list[Any] = []
    for entry in log:
        if "ws" in entry:
            out.append(("json", entry["ws"]["type"], _norm(entry["ws"]["data"])))
        elif "wsbin" in entry:
            b = entry["wsbin"]
            if b["binary_event"] == 1:
                out.append(("bin", 1, b.get("image_type", "JPEG"), b.get("magic", "ffd8ffe0")))
            else:
                out.append(("bin", b["binary_event"], _norm(b["metadata"]), b["magic"]))
    return out


def norm_binary(data: bytes) -> tuple[Any, ...]:
    event = struct.unpack(">I", data[:4])[0]
    if event == 1:
        image_type = {1: "JPEG", 2: "PNG"}[struct.unpack(">I", data[4:8])[0]]
        return ("bin", 1, image_type, data[8:12].hex())
    if event == 4:
        size = struct.unpack(">I", data[4:8])[0]
        metadata = json.loads(data[8 : 8 + size])
        return ("bin", 4, _norm(metadata), data[8 + size : 12 + size].hex())
    return ("bin", event, data[4:].hex())


# --- a /ws client -----------------------------------------------------------------------------------


class WsClient:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse, sid: str) -> None:
        self.ws = ws
        self.sid = sid
        self.received: list[Any] = []

    async def next(self, timeout: float = 5.0) -> Any:
        msg = await self.ws.receive(timeout=timeout)
        if msg.type == aiohttp.WSMsgType.TEXT:
            data = json.loads(msg.data)
            item = ("json", data["type"], data["data"])
        elif msg.type == aiohttp.WSMsgType.BINARY:
            item = norm_binary(msg.data)
        else:
            raise AssertionError(f"socket closed: {msg}")
        self.received.append(item)
        return item

    async def until(self, predicate: Any, timeout: float = 5.0) -> Any:
        while True:
            item = await self.next(timeout)
            if predicate(item):
                return item

    async def until_done(self, prompt_id: str) -> None:
        await self.until(lambda m: m[:2] == ("json", "executing") and m[2] == {"node": None, "prompt_id": prompt_id})

    def normalised(self) -> list[Any]:
        return _normalised(self.received)


def _normalised(items: list[Any]) -> list[Any]:
    out = []
    for item in items:
        if item[0] == "json":
            out.append(("json", item[1], _norm(item[2])))
        else:
            out.append(item)
    return out


@pytest.fixture
async def host(tmp_path: Path) -> AsyncIterator[ComfyTestHost]:
    h = await start_test_host(tmp_path / "comfy")
    yield h
    await h.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def connect(
    http: aiohttp.ClientSession, host: ComfyTestHost, *, metadata: bool = False, sid: str | None = None
) -> WsClient:
    sid = sid or uuid.uuid4().hex
    ws = await http.ws_connect(f"{host.url}/ws?clientId={sid}")
    client = WsClient(ws, sid)
    if metadata:
        await ws.send_json({"type": "feature_flags", "data": {"supports_preview_metadata": True}})
    await client.until(lambda m: m[1] == "status")
    if metadata:
        await client.until(lambda m: m[1] == "feature_flags")
    return client


async def post_prompt(
    http: aiohttp.ClientSession, host: ComfyTestHost, prompt: dict[str, Any], **body: Any
) -> dict[str, Any]:
    async with http.post(f"{host.url}/prompt", json={"prompt": prompt, **body}) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def get_json(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as resp:
        assert resp.status == 200
        return await resp.json()


def png_bytes(color: tuple[int, ...] = (200, 30, 30, 255), size: tuple[int, int] = (96, 64)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGBA", size, color).save(buf, format="PNG")
    return buf.getvalue()


async def upload(
    http: aiohttp.ClientSession, host: ComfyTestHost, data: bytes, name: str, **fields: str
) -> tuple[int, Any]:
    form = aiohttp.FormData()
    form.add_field("image", data, filename=name, content_type="image/png")
    for key, value in fields.items():
        form.add_field(key, value)
    async with http.post(f"{host.url}/upload/image", data=form) as resp:
        return resp.status, (await resp.json() if resp.status == 200 else await resp.text())


def history_shape(entry: dict[str, Any]) -> Any:
    return _norm({k: v for k, v in entry.items()})


# --- event sequences --------------------------------------------------------------------------------


async def run_and_compare(
    http: aiohttp.ClientSession, host: ComfyTestHost, trace: dict[str, Any], *, metadata: bool = False
) -> dict[str, Any]:
    client = await connect(http, host, metadata=metadata)
    body = await post_prompt(http, host, traced_prompt(trace), client_id=client.sid)
    await client.until_done(body["prompt_id"])
    assert client.normalised() == norm_trace(trace["log"])
    history = await get_json(http, f"{host.url}/history/{body['prompt_id']}")
    expected = trace["history"][trace["prompt_id"]]
    got = history[body["prompt_id"]]
    got["prompt"][3]["client_id"] = "<sid>"
    expected = copy.deepcopy(expected)
    expected["prompt"][3]["client_id"] = "<sid>"
    got["prompt"][0] = expected["prompt"][0] = "<number>"
    got["prompt"][1] = expected["prompt"][1] = "<prompt_id>"
    assert history_shape(got) == history_shape(expected)
    await client.ws.close()
    return body


async def test_fresh_t2i_run_matches_trace(host: ComfyTestHost, http: aiohttp.ClientSession) -> None:
    body = await run_and_compare(http, host, load_trace("t2i_success.json"))
    outputs = (await get_json(http, f"{host.url}/history/{body['prompt_id']}"))[body["prompt_id"]]["outputs"]
    image = outputs["4"]["images"][0]
    assert image == {"filename": "studio_t2i_00001_.png", "subfolder": "", "type": "output"}
    with Image.open(host.output_dir / image["filename"]) as png:
        assert png.size == (512, 512)
        assert json.loads(png.text["prompt"])["4"]["class_type"] == "SaveImage"


async def test_identical_resubmit_is_fully_cached_like_trace(host: ComfyTestHost, http: aiohttp.ClientSession) -> None:
    await run_and_compare(http, host, load_trace("t2i_success.json"))
    await run_and_compare(http, host, load_trace("t2i_cached_resubmit.json"))
    assert sorted(p.name for p in host.output_dir.iterdir()) == ["studio_t2i_00001_.png"]


async def test_progress_previews_legacy_then_with_metadata_match_traces(
    host: ComfyTestHost, http: aiohttp.ClientSession
) -> None:
    await run_and_compare(http, host, load_trace("progress_previews_legacy.json"))
    # recorded right after the legacy run: EmptyImage comes from the cache
    await run_and_compare(http, host, load_trace("progress_previews_metadata.json"), metadata=True)


async def test_upload_then_upscale_matches_trace(host: ComfyTestHost, http: aiohttp.ClientSession) -> None:
    status, body = await upload(http, host, png_bytes(), "studio_probe_src.png")
    assert (status, body) == (200, {"name": "studio_probe_src.png", "subfolder": "", "type": "input"})
    await run_and_compare(http, host, load_trace("upload_upscale.json"))


async def test_node_exception_matches_execution_error_trace(host: ComfyTestHost, http: aiohttp.ClientSession) -> None:
    trace = load_trace("execution_error.json")
    await run_and_compare(http, host, trace)
    error = next(m for m in trace["log"] if m.get("ws", {}).get("type") == "execution_error")["ws"]["data"]
    assert error["exception_message"] == "StudioProbeProgress asked to fail\n"


async def test_prompt_without_client_id_only_broadcasts_like_trace(
    host: ComfyTestHost, http: aiohttp.ClientSession
) -> None:
    trace = load_trace("no_client_id.json")
    observer = await connect(http, host)
    body = await post_prompt(http, host, traced_prompt(trace))
    # no executing-null for the submitter's sid: the end shows as the queue emptying
    await observer.until(lambda m: m[1] == "status" and m[2]["status"]["exec_info"]["queue_remaining"] == 0)
    with pytest.raises(asyncio.TimeoutError):
        await observer.next(timeout=0.2)
    assert observer.normalised() == norm_trace(trace["log"])
    entry = (await get_json(http, f"{host.url}/history/{body['prompt_id']}"))[body["prompt_id"]]
    assert entry["prompt"][3] == {}
    assert entry["status"]["status_str"] == "success"
    await observer.ws.close()


def _without_steps(items: list[Any]) -> list[Any]:
    """Drop per-step progress messages, whose count depends on timing."""
    out = []
    for item in items:
        if item[0] == "bin" or item[1] == "progress":
            continue
        if item[1] == "progress_state" and any(
            n["state"] == "running" and n["value"] >= 1 for n in item[2]["nodes"].values()
        ):
            continue
        out.append(item)
    return out


async def test_queue_ops_and_interrupts_match_trace(host: ComfyTestHost, http: aiohttp.ClientSession) -> None:
    ops = load_trace("interrupt_queue_validation.json")["interrupt_and_queue_ops"]

    def probe(color: int) -> dict[str, Any]:
        graph = load_workflow("progress_probe.api.json")
        graph["1"]["inputs"]["color"] = color
        graph["2"]["class_type"] = "StudioProbeProgress"
        graph["2"]["inputs"].update(steps=40, delay=0.1)
        return graph

    client = await connect(http, host)
    sid = client.sid
    running = (await post_prompt(http, host, probe(1), client_id=sid))["prompt_id"]
    await client.until(lambda m: m[1] == "executing" and m[2].get("node") == "2")
    p2 = (await post_prompt(http, host, probe(2), client_id=sid))["prompt_id"]
    p3 = (await post_prompt(http, host, probe(3), client_id=sid))["prompt_id"]
    front = await post_prompt(http, host, probe(4), client_id=sid, front=True)
    p4 = front["prompt_id"]
    assert front["number"] == -3
    await client.until(lambda m: m[1] == "progress")
    await client.next()  # its legacy preview frame

    queue = await get_json(http, f"{host.url}/queue")
    assert [[i[0], i[1]] for i in queue["queue_running"]] == [[0, running]]
    assert [[i[0], i[1]] for i in queue["queue_pending"]] == [[-3, p4], [2, p3], [1, p2]]
    assert all(len(i) == 5 for i in queue["queue_running"] + queue["queue_pending"])
    async with http.post(f"{host.url}/queue", json={"delete": [p3]}) as resp:
        assert resp.status == 200
    async with http.post(f"{host.url}/interrupt") as resp:
        assert resp.status == 200
    await client.until_done(running)
    await client.until(lambda m: m[1] == "executing" and m[2].get("node") == "2" and m[2]["prompt_id"] == p4)
    async with http.post(f"{host.url}/queue", json={"clear": True}) as resp:
        assert resp.status == 200
    async with http.post(f"{host.url}/interrupt", json={"prompt_id": p4}) as resp:
        assert resp.status == 200
    await client.until_done(p4)

    expected = _without_steps(norm_trace(ops["log"]))
    assert _without_steps(client.normalised()) == expected
    entry = (await get_json(http, f"{host.url}/history/{running}"))[running]
    recorded = next(e["http"]["status"] for e in ops["log"] if "GET /history/run_id" in e.get("http", {}))
    assert _norm(entry["status"]) == _norm(recorded)
    assert entry["outputs"] == {}
    assert p2 not in await get_json(http, f"{host.url}/history")
    await client.ws.close()


async def test_interrupt_for_another_prompt_id_is_ignored(host: ComfyTestHost, http: aiohttp.ClientSession) -> None:
    graph = load_workflow("progress_probe.api.json")
    graph["2"]["class_type"] = "StudioTestProgress"
    graph["2"]["inputs"].update(steps=3, delay=0.02)
    client = await connect(http, host)
    pid = (await post_prompt(http, host, graph, client_id=client.sid))["prompt_id"]
    await client.until(lambda m: m[1] == "progress")
    async with http.post(f"{host.url}/interrupt", json={"prompt_id": "not-running"}) as resp:
        assert resp.status == 200
    await client.until_done(pid)
    assert not any(m[1] == "execution_interrupted" for m in client.received)
    await client.ws.close()


# --- /prompt validation -----------------------------------------------------------------------------

VALIDATION_PROMPTS: dict[str, Any] = {
    "unknown class_type": {"1": {"class_type": "NoSuchNode", "inputs": {}}},
    "value below min": {
        "1": {"class_type": "EmptyImage", "inputs": {"width": -5, "height": 64, "batch_size": 1, "color": 0}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}},
    },
    "no output node": {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}}
    },
    "link to missing node": {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["9", 0], "filename_prefix": "x"}},
    },
}


@pytest.mark.parametrize(
    "case", [c for c in load_trace("interrupt_queue_validation.json")["validation_errors"]], ids=lambda c: c["case"]
)
async def test_validation_failures_answer_like_comfyui(
    host: ComfyTestHost, http: aiohttp.ClientSession, case: dict[str, Any]
) -> None:
    if case["case"] == "malformed json":
        async with http.post(
            f"{host.url}/prompt", data=b"{not json", headers={"Content-Type": "application/json"}
        ) as r:
            assert (r.status, await r.text()) == (case["status"], case["text"])
        return
    async with http.post(f"{host.url}/prompt", json={"prompt": VALIDATION_PROMPTS[case["case"]]}) as resp:
        assert resp.status == case["status"]
        assert _norm(await resp.json()) == _norm(case["body"])


def _one_node_error(result: tuple[bool, Any, list[str], dict[str, Any]], node: str) -> dict[str, Any]:
    ok, error, outputs, node_errors = result
    assert not ok and outputs == []
    assert error["type"] == "prompt_outputs_failed_validation"
    (err,) = node_errors[node]["errors"]
    return err


async def test_validate_prompt_reports_each_input_error_type(host: ComfyTestHost) -> None:
    def graph(**blur: Any) -> dict[str, Any]:
        return {
            "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
            "2": {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "blur_radius": 4, "sigma": 1.0, **blur}},
            "3": {
                "class_type": "ImageScaleBy",
                "inputs": {"image": ["2", 0], "upscale_method": "bilinear", "scale_by": 2},
            },
            "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "v"}},
        }

    ok = await host.validate_prompt("p", (g := graph()), None)
    assert ok == (True, None, ["4"], {})
    assert g["3"]["inputs"]["scale_by"] == 2.0 and isinstance(g["3"]["inputs"]["scale_by"], float)

    err = _one_node_error(await host.validate_prompt("p", graph(blur_radius=99), None), "2")
    assert err["type"] == "value_bigger_than_max" and err["message"] == "Value 99 bigger than max of 31"

    bad = graph()
    bad["3"]["inputs"]["upscale_method"] = "magic"
    err = _one_node_error(await host.validate_prompt("p", bad, None), "3")
    assert err["type"] == "value_not_in_list"
    assert (
        err["details"] == "upscale_method: 'magic' not in ['nearest-exact', 'bilinear', 'area', 'bicubic', 'lanczos']"
    )

    missing = graph()
    del missing["2"]["inputs"]["sigma"]
    err = _one_node_error(await host.validate_prompt("p", missing, None), "2")
    assert (err["type"], err["details"]) == ("required_input_missing", "sigma")

    mistyped = graph()
    mistyped["4"]["inputs"]["images"] = ["5", 0]
    mistyped["5"] = {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": 8, "height": 8}}
    err = _one_node_error(await host.validate_prompt("p", mistyped, None), "4")
    assert err["type"] == "return_type_mismatch"
    assert err["details"] == "images, received_type(MASK) mismatch input_type(IMAGE)"

    err = _one_node_error(await host.validate_prompt("p", graph(sigma="x"), None), "2")
    assert err["type"] == "invalid_input_type"

    load = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "nope.png"}},
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
    }
    err = _one_node_error(await host.validate_prompt("p", load, None), "1")
    assert (err["type"], err["details"]) == ("custom_validation_failed", "image - Invalid image file: nope.png")


async def test_only_ancestors_of_requested_outputs_are_validated(host: ComfyTestHost) -> None:
    graph = load_workflow("t2i_standin.api.json")
    graph["9"] = {"class_type": "ImageInvert", "inputs": {}}  # dangling and broken: not reported
    graph["10"] = {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}
    graph["11"] = {"class_type": "PreviewImage", "inputs": {}}
    ok, error, outputs, node_errors = await host.validate_prompt("p", graph, ["4", "10"])
    assert (ok, error, sorted(outputs), node_errors) == (True, None, ["10", "4"], {})
    ok, error, outputs, node_errors = await host.validate_prompt("p", copy.deepcopy(graph), None)
    assert ok and sorted(outputs) == ["10", "4"]
    assert node_errors["11"]["errors"][0]["type"] == "required_input_missing"


# --- files ------------------------------------------------------------------------------------------


async def test_upload_dedupes_names_and_view_serves_it_back(host: ComfyTestHost, http: aiohttp.ClientSession) -> None:
    red, blue = png_bytes((255, 0, 0, 255)), png_bytes((0, 0, 255, 255))
    assert (await upload(http, host, red, "a.png"))[1]["name"] == "a.png"
    assert (await upload(http, host, red, "a.png"))[1]["name"] == "a.png"  # same bytes: same name
    assert (await upload(http, host, blue, "a.png"))[1]["name"] == "a (1).png"
    assert (await upload(http, host, blue, "a.png", overwrite="true"))[1]["name"] == "a.png"
    assert (await upload(http, host, red, "b.png", subfolder="sub", type="temp"))[1] == {
        "name": "b.png",
        "subfolder": "sub",
        "type": "temp",
    }
    assert (await upload(http, host, red, "c.png", subfolder="../../x"))[0] == 400

    async with http.get(f"{host.url}/view", params={"filename": "a.png", "type": "input"}) as resp:
        assert resp.status == 200 and await resp.read() == blue
    async with http.get(f"{host.url}/api/view", params={"filename": "b.png", "type": "temp", "subfolder": "sub"}) as r:
        assert r.status == 200 and await r.read() == red
    async with http.get(f"{host.url}/view", params={"filename": "a.png", "type": "input", "preview": "webp;50"}) as r:
        assert r.status == 200 and r.content_type == "image/webp"
    for params, status in [
        ({"filename": "../input/a.png", "type": "output"}, 400),
        ({"filename": "a.png", "type": "input", "subfolder": "../output"}, 403),
        ({"filename": "a.png", "type": "models"}, 400),
        ({"filename": "missing.png", "type": "input"}, 404),
    ]:
        async with http.get(f"{host.url}/view", params=params) as resp:
            assert resp.status == status, params

    info = await get_json(http, f"{host.url}/object_info/LoadImage")
    assert info["LoadImage"]["input"]["required"]["image"][0] == ["a (1).png", "a.png"]


async def test_userdata_serves_default_user_only(host: ComfyTestHost, http: aiohttp.ClientSession) -> None:
    secret = host.user_dir / "__studio" / "studio.db"
    secret.parent.mkdir()
    secret.write_bytes(b"SQLite format 3\0")
    async with http.post(f"{host.url}/api/userdata/workflows%2Fa.json", data=b"{}") as resp:
        assert resp.status == 200 and await resp.json() == "workflows/a.json"
    assert await get_json(http, f"{host.url}/userdata?dir=workflows") == ["a.json"]
    async with http.get(f"{host.url}/userdata/workflows%2Fa.json") as resp:
        assert resp.status == 200 and await resp.read() == b"{}"
    for url in [
        "/userdata/..%2F__studio%2Fstudio.db",
        "/api/userdata/%2E%2E%2F__studio%2Fstudio.db",
        "/userdata?dir=../__studio",
        "/userdata?dir=..%2F__studio",
    ]:
        async with http.get(f"{host.url}{url}") as resp:
            assert resp.status in (403, 404), url
            assert b"SQLite" not in await resp.read()
    async with http.post(f"{host.url}/userdata/..%2F__studio%2Fstudio.db", data=b"x") as resp:
        assert resp.status == 403
    assert secret.read_bytes() == b"SQLite format 3\0"


# --- server surface ---------------------------------------------------------------------------------


async def test_custom_node_hooks_see_what_they_would_in_comfyui(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    seen: list[Any] = []

    def plugin(server: FakePromptServer) -> None:
        assert FakePromptServer.instance is server

        @server.routes.get("/studio_probe/ping")
        async def ping(request: web.Request) -> web.Response:
            return web.json_response({"pong": True})

        sub = web.Application()

        async def index(request: web.Request) -> web.Response:
            return web.Response(text="studio")

        sub.router.add_get("/", index)
        server.app.add_subapp("/studio", sub)

        previous = server.send

        async def tap(event: Any, data: Any, sid: str | None = None) -> None:
            seen.append(event)
            await previous(event, data, sid)

        server.send = tap  # type: ignore[method-assign]
        server.add_on_prompt_handler(lambda body: {**body, "client_id": body.get("client_id", "forced")})

    host = await start_test_host(tmp_path / "comfy", before_start=plugin, listen=["0.0.0.0"])
    try:
        for path in ("/studio_probe/ping", "/api/studio_probe/ping"):
            assert await get_json(http, host.url + path) == {"pong": True}
        async with http.get(f"{host.url}/studio/") as resp:
            assert await resp.text() == "studio"
        client = await connect(http, host)
        body = await post_prompt(http, host, load_workflow("t2i_standin.api.json"), client_id=client.sid)
        await client.until_done(body["prompt_id"])
        assert "execution_success" in seen and "executing" in seen
        stats = await get_json(http, f"{host.url}/system_stats")
        assert stats["system"]["argv"][-2:] == ["--listen", "0.0.0.0"] and stats["devices"][0]["type"] == "cpu"
        assert host.listen == ["0.0.0.0"]
        assert await get_json(http, f"{host.url}/features") == {
            "supports_preview_metadata": True,
            "max_upload_size": 104857600,
        }
        await client.ws.close()
    finally:
        await host.stop()


async def test_object_info_has_core_and_test_nodes(host: ComfyTestHost, http: aiohttp.ClientSession) -> None:
    info = await get_json(http, f"{host.url}/object_info")
    assert {"KSampler", "SaveImage", "StudioTestProgress", "StudioTestFail", "StudioProbeProgress"} <= set(info)
    assert await get_json(http, f"{host.url}/api/object_info/Nope") == {}
    assert info["StudioTestProgress"]["input"]["required"]["steps"][0] == "INT"


async def test_origin_check_like_comfyui(host: ComfyTestHost, http: aiohttp.ClientSession) -> None:
    for origin, status in [("http://evil.example", 403), (host.url, 200), ("null", 200)]:
        async with http.get(f"{host.url}/prompt", headers={"Origin": origin}) as resp:
            assert resp.status == status, origin


async def test_post_prompt_extras(host: ComfyTestHost, http: aiohttp.ClientSession) -> None:
    graph = load_workflow("t2i_standin.api.json")
    client = await connect(http, host)
    body = await post_prompt(
        http,
        host,
        graph,
        client_id=client.sid,
        prompt_id="my-id",
        number=7,
        extra_data={"extra_pnginfo": {"workflow": {"nodes": []}}, "api_key_comfy_org": "secret"},
    )
    assert body == {"prompt_id": "my-id", "number": 7.0, "node_errors": {}}
    await client.until_done("my-id")
    entry = (await get_json(http, f"{host.url}/history"))["my-id"]
    assert entry["prompt"][3] == {"extra_pnginfo": {"workflow": {"nodes": []}}, "client_id": client.sid}
    with Image.open(host.output_dir / entry["outputs"]["4"]["images"][0]["filename"]) as png:
        assert json.loads(png.text["workflow"]) == {"nodes": []}
    async with http.post(f"{host.url}/prompt", json={"client_id": "x"}) as resp:
        assert resp.status == 400 and (await resp.json())["error"]["type"] == "no_prompt"
    async with http.post(f"{host.url}/history", json={"delete": ["my-id"]}) as resp:
        assert resp.status == 200
    assert await get_json(http, f"{host.url}/history/my-id") == {}
    await client.ws.close()


async def test_model_free_workflows_run(host: ComfyTestHost, http: aiohttp.ClientSession) -> None:
    await upload(http, host, png_bytes(size=(128, 128)), "studio_probe_src.png")
    outpaint = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "studio_probe_src.png"}},
        "2": {
            "class_type": "ImagePadForOutpaint",
            "inputs": {"image": ["1", 0], "left": 16, "top": 0, "right": 16, "bottom": 8, "feathering": 8},
        },
        "3": {"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}},
        "4": {
            "class_type": "ImageCompositeMasked",
            "inputs": {
                "destination": ["2", 0],
                "source": ["3", 0],
                "x": 0,
                "y": 0,
                "resize_source": False,
                "mask": ["2", 1],
            },
        },
        "5": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "sub/outpaint"}},
    }
    client = await connect(http, host)
    ids = []
    for graph in (load_workflow("inpaint_standin.api.json"), outpaint):
        ids.append((await post_prompt(http, host, graph, client_id=client.sid))["prompt_id"])
    for pid in ids:
        await client.until_done(pid)
    history = await get_json(http, f"{host.url}/history")
    assert history[ids[0]]["outputs"]["5"]["images"][0]["filename"] == "studio_inpaint_00001_.png"
    assert history[ids[1]]["outputs"]["5"]["images"][0] == {
        "filename": "outpaint_00001_.png",
        "subfolder": "sub",
        "type": "output",
    }
    with Image.open(host.output_dir / "sub" / "outpaint_00001_.png") as png:
        assert png.size == (160, 136)
    await client.ws.close()


async def test_failing_test_node_and_unimplemented_class(host: ComfyTestHost, http: aiohttp.ClientSession) -> None:
    graph = load_workflow("progress_probe.api.json")
    graph["2"] = {"class_type": "StudioTestFail", "inputs": {"image": ["1", 0], "message": "boom"}}
    client = await connect(http, host)
    pid = (await post_prompt(http, host, graph, client_id=client.sid))["prompt_id"]
    await client.until_done(pid)
    error = next(m[2] for m in client.received if m[1] == "execution_error")
    assert (error["node_id"], error["exception_type"], error["exception_message"]) == ("2", "RuntimeError", "boom\n")
    await client.ws.close()


async def test_node_delay_shows_queued_and_running(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    host = await start_test_host(tmp_path / "comfy", node_delay=0.1)
    try:
        graph = load_workflow("t2i_standin.api.json")
        first = await post_prompt(http, host, graph)
        graph2 = copy.deepcopy(graph)
        graph2["1"]["inputs"]["color"] = 1
        second = await post_prompt(http, host, graph2)
        await asyncio.sleep(0.05)
        queue = await get_json(http, f"{host.url}/queue")
        assert [i[1] for i in queue["queue_running"]] == [first["prompt_id"]]
        assert [i[1] for i in queue["queue_pending"]] == [second["prompt_id"]]
        assert await get_json(http, f"{host.url}/prompt") == {"exec_info": {"queue_remaining": 2}}
    finally:
        await host.stop()


async def test_restart_forgets_queue_and_history_but_keeps_files(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    base = tmp_path / "comfy"
    host = await start_test_host(base)
    client = await connect(http, host)
    pid = (await post_prompt(http, host, load_workflow("t2i_standin.api.json"), client_id=client.sid))["prompt_id"]
    await client.until_done(pid)
    await post_prompt(
        http,
        host,
        load_workflow("progress_probe.api.json")
        | {"2": {"class_type": "StudioTestProgress", "inputs": {"image": ["1", 0], "steps": 100, "delay": 0.05}}},
    )
    (host.temp_dir / "stale.png").write_bytes(b"x")
    await host.stop()
    while (msg := await client.ws.receive(timeout=2)).type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
        pass  # what the worker sent before it stopped
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == aiohttp.WSCloseCode.GOING_AWAY
    await client.ws.close()

    again = await start_test_host(base)
    try:
        assert again.server is FakePromptServer.instance and again.server is not host.server
        assert await get_json(http, f"{again.url}/history") == {}
        assert await get_json(http, f"{again.url}/queue") == {"queue_running": [], "queue_pending": []}
        assert (again.output_dir / "studio_t2i_00001_.png").is_file()
        assert not (again.temp_dir / "stale.png").exists()
        client = await connect(http, again)
        pid = (await post_prompt(http, again, load_workflow("t2i_standin.api.json"), client_id=client.sid))["prompt_id"]
        await client.until_done(pid)
        assert (again.output_dir / "studio_t2i_00002_.png").is_file()  # counter continues from the files
        await client.ws.close()
    finally:
        await again.stop()


def test_package_exports() -> None:
    assert set(testhost.__all__) >= {"ComfyTestHost", "FakePromptServer", "start_test_host"}


async def test_reconnecting_submitter_is_told_the_running_node(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    host = await start_test_host(tmp_path / "comfy", node_delay=0.15)
    try:
        first = await connect(http, host)
        pid = (await post_prompt(http, host, load_workflow("t2i_standin.api.json"), client_id=first.sid))["prompt_id"]
        await first.until(lambda m: m[1] == "executing" and m[2].get("node") == "1")
        await first.ws.close()
        again = await connect(http, host, sid=first.sid)
        assert await again.next() == ("json", "executing", {"node": "1"})
        await again.until_done(pid)
        assert len(await get_json(http, f"{host.url}/history?max_items=1")) == 1
        await again.ws.close()
    finally:
        await host.stop()


async def test_upload_mask_copies_alpha_onto_the_original(host: ComfyTestHost, http: aiohttp.ClientSession) -> None:
    await upload(http, host, png_bytes((10, 20, 30, 255)), "photo.png")
    form = aiohttp.FormData()
    form.add_field("image", png_bytes((0, 0, 0, 0)), filename="mask.png", content_type="image/png")
    form.add_field("original_ref", json.dumps({"filename": "photo.png", "type": "input", "subfolder": ""}))
    form.add_field("subfolder", "clipspace")
    async with http.post(f"{host.url}/upload/mask", data=form) as resp:
        assert await resp.json() == {"name": "mask.png", "subfolder": "clipspace", "type": "input"}
    with Image.open(host.input_dir / "clipspace" / "mask.png") as out:
        assert out.mode == "RGBA" and out.getpixel((0, 0)) == (10, 20, 30, 0)
