"""The same API scenario against a real ComfyUI, when COMFYUI_DIR points at a checkout (skipped otherwise).

ComfyUI is started on the CPU with a fresh base directory whose custom_nodes/ links this repository,
using $COMFYUI_PYTHON, else $COMFYUI_DIR/.venv/bin/python, else this interpreter.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import socket
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from PIL import Image
from studio_api import Api, load_workflow
from test_api_jobs import wait_for_state

REPO = Path(__file__).resolve().parent.parent
COMFYUI_DIR = os.environ.get("COMFYUI_DIR")

pytestmark = [
    pytest.mark.comfyui,
    pytest.mark.skipif(not COMFYUI_DIR, reason="set COMFYUI_DIR to a ComfyUI checkout to run against it"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _python() -> str:
    explicit = os.environ.get("COMFYUI_PYTHON")
    if explicit:
        return explicit
    venv = Path(COMFYUI_DIR or "") / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


@pytest.fixture(scope="module")
def comfyui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    base = tmp_path_factory.mktemp("comfyui")
    (base / "custom_nodes").mkdir()
    (base / "custom_nodes" / "any-folder-name").symlink_to(REPO)
    port = _free_port()
    log_path = base / "comfyui.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                _python(),
                "main.py",
                "--cpu",
                "--listen",
                "127.0.0.1",
                "--port",
                str(port),
                "--disable-auto-launch",
                "--base-directory",
                str(base),
            ],
            cwd=COMFYUI_DIR,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail("ComfyUI exited:\n" + log_path.read_text()[-4000:])
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("ComfyUI did not start:\n" + log_path.read_text()[-4000:])
        time.sleep(1.0)
        yield url, base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    text = log_path.read_text()
    assert "ComfyUI Studio mounted at /studio" in text


@pytest.fixture
async def real_api(comfyui: tuple[str, Path]) -> AsyncIterator[Api]:
    url, _base = comfyui
    async with aiohttp.ClientSession() as session:
        yield Api(session, url + "/studio/api/v1")


async def test_studio_is_mounted_and_sees_comfyui(real_api: Api, comfyui: tuple[str, Path]) -> None:
    status, body = await real_api.get("/status")
    assert status == 200 and body["data"]["comfy"]["connected"] is True
    async with real_api.session.get(comfyui[0] + "/studio") as resp:
        assert resp.status == 200 and "text/html" in resp.content_type
    async with real_api.session.get(comfyui[0] + "/api/prompt") as resp:
        assert resp.status == 200, "ComfyUI's own routes are untouched"


async def test_a_model_free_job_runs_to_done_with_its_image(real_api: Api, comfyui: tuple[str, Path]) -> None:
    status, body = await real_api.post("/jobs", json={"graph": load_workflow("t2i_standin"), "prompt": "real"})
    assert status == 201, body
    job = await wait_for_state(real_api, body["data"]["id"], {"done", "error"}, timeout=60)
    assert job["state"] == "done", job
    assert job["images"] and job["images"][0]["width"] == 512
    async with real_api.session.get(comfyui[0] + job["images"][0]["url"]) as resp:
        assert resp.status == 200 and (await resp.read())[:4] == b"\x89PNG"
    status, history = await real_api.get(f"/jobs/{job['id']}/history")
    assert history["data"]["status"]["status_str"] == "success"


async def test_a_graph_comfyui_refuses_becomes_a_rejected_job(real_api: Api) -> None:
    graph = load_workflow("t2i_standin")
    graph["1"]["inputs"]["width"] = 0
    status, body = await real_api.post("/jobs", json={"graph": graph})
    assert status == 400 and body["error"]["code"] == "validation_error"
    assert body["error"]["details"][0]["node_id"] == "1"
    status, listing = await real_api.get("/jobs", params={"limit": "1"})
    assert listing["data"]["items"][0]["state"] == "rejected"


async def test_upload_then_upscale_from_it(real_api: Api) -> None:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 200, 30)).save(out, "PNG")
    form = aiohttp.FormData()
    form.add_field("image", out.getvalue(), filename="x.png", content_type="image/png")
    status, body = await real_api.post("/uploads", data=form)
    assert status == 201, body
    upload = body["data"]
    graph = load_workflow("upscale_standin")
    loader = next(n for n in graph.values() if n["class_type"] == "LoadImage")
    loader["inputs"]["image"] = "studio/" + upload["url"].rsplit("/", 1)[-1]  # replaced below
    async with real_api.session.get(real_api.base + "/calls?limit=1") as resp:
        call = (await resp.json())["data"]["items"][0]
    status, shown = await real_api.get(f"/calls/{call['id']}")
    loader["inputs"]["image"] = f"{shown['data']['response']['subfolder']}/{shown['data']['response']['name']}"
    status, body = await real_api.post("/jobs", json={"graph": graph})
    assert status == 201, body
    job = await wait_for_state(real_api, body["data"]["id"], {"done", "error"}, timeout=60)
    assert job["state"] == "done", job
    assert (job["images"][0]["width"], job["images"][0]["height"]) == (128, 96)


async def test_interrupting_a_slow_job(real_api: Api) -> None:
    graph = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 4096, "height": 4096, "batch_size": 4, "color": 7}},
        "2": {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "blur_radius": 31, "sigma": 10.0}},
        "3": {"class_type": "ImageBlur", "inputs": {"image": ["2", 0], "blur_radius": 31, "sigma": 10.0}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "studio_slow"}},
    }
    status, body = await real_api.post("/jobs", json={"graph": graph})
    assert status == 201, body
    job_id = body["data"]["id"]
    await wait_for_state(real_api, job_id, {"running"}, timeout=30)
    status, body = await real_api.post("/queue/interrupt", json={})
    assert status == 200, body
    job = await wait_for_state(real_api, job_id, {"interrupted", "done", "error"}, timeout=120)
    assert job["state"] == "interrupted"


async def test_the_studio_data_is_unreachable_through_comfyuis_routes(real_api: Api, comfyui: tuple[str, Path]) -> None:
    url, base = comfyui
    assert (base / "user" / "__studio" / "studio.db").exists()
    probes = [
        "/api/userdata?dir=__studio",
        "/api/userdata/__studio%2Fstudio.db",
        "/api/userdata/..%2F__studio%2Fstudio.db",
        "/api/view?filename=studio.db&subfolder=../user/__studio&type=output",
        "/api/view?filename=studio.db&subfolder=__studio&type=input",
    ]
    for probe in probes:
        async with real_api.session.get(url + probe) as resp:
            body = await resp.read()
            assert resp.status in (400, 403, 404), (probe, resp.status)
            assert b"SQLite format" not in body
    await asyncio.sleep(0)


async def test_the_data_directory_is_private_and_import_attacks_are_400(
    real_api: Api, comfyui: tuple[str, Path]
) -> None:
    _url, base = comfyui
    data_dir = base / "user" / "__studio"
    assert data_dir.stat().st_mode & 0o777 == 0o700
    db = data_dir / "studio.db"
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in (db, Path(f"{db}-wal")) if p.exists())
    # a zTXt bomb, a deeply nested file and a NUL in a file name: 4xx envelopes, never a 500
    bomb = b"\x89PNG\r\n\x1a\n" + _text_chunk(b"zTXt", b"workflow\0\0" + zlib.compress(b" " * (64 * 2**20), 9))
    for name, data in (("bomb.png", bomb), ("deep.json", b"[" * 5000 + b"]" * 5000)):
        form = aiohttp.FormData()
        form.add_field("file", data, filename=name)
        status, body = await real_api.post("/workflows/import", data=form)
        assert status == 400 and body["error"]["code"] == "validation_error", (name, body)
    raw = b'--b\r\nContent-Disposition: form-data; name="image"; filename="x.png\x00.html"\r\n\r\nx\r\n--b--\r\n'
    status, body = await real_api.post(
        "/uploads", data=raw, headers={"Content-Type": "multipart/form-data; boundary=b"}
    )
    assert status == 400 and body["error"]["code"] == "validation_error", body


def _text_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


async def test_model_files_copied_into_comfyui_reach_the_studio_within_seconds(
    real_api: Api, comfyui: tuple[str, Path]
) -> None:
    """ComfyUI's folder_paths caches listings by folder mtime: a new file must still reach the studio live."""
    from test_live_api import SseClient, stream_headers

    _url, base = comfyui
    status, body = await real_api.get("/actions/status")
    assert status == 200 and body["data"]["checkpoint"] is None, body
    # Read the (empty) lists once, so ComfyUI's cache holds them before the files appear.
    status, body = await real_api.get("/models")
    assert body["data"]["checkpoints"] == [] and body["data"]["embeddings"] == []
    async with SseClient(real_api.session, real_api.base + "/events", headers=await stream_headers(real_api)) as sse:
        await sse.wait_for(lambda events: any(e.kind == "resync" for e in events))
        started = time.monotonic()
        for folder, name in (
            ("checkpoints", "studio_probe.safetensors"),
            ("loras", "studio_probe_lora.safetensors"),
            ("embeddings", "studio_probe_embedding.pt"),
        ):
            (base / "models" / folder).mkdir(parents=True, exist_ok=True)
            (base / "models" / folder / name).write_bytes(b"not a real model: only listed, never loaded")

        def announced(events: list) -> bool:
            lists = [e.data["models"] for e in events if e.kind == "models"]
            return bool(lists) and all(lists[-1][f] for f in ("checkpoints", "loras", "embeddings"))

        await sse.wait_for(announced, timeout=10.0)
        took = time.monotonic() - started
    assert took < 10.0
    event = [e for e in sse.events if e.kind == "models"][-1]
    assert event.data["status"]["checkpoint"] == "studio_probe.safetensors"
    status, body = await real_api.get("/actions/status")
    assert body["data"]["checkpoint"] == "studio_probe.safetensors"
    status, body = await real_api.get("/actions")
    assert all(a["ready"] for a in body["data"]), body["data"]
    status, body = await real_api.get("/models")
    assert body["data"]["embeddings"] == ["studio_probe_embedding.pt"]
    assert str(base) not in str(body)


async def test_a_model_downloaded_from_civitai_lands_where_comfyui_lists_it(
    real_api: Api, comfyui: tuple[str, Path]
) -> None:
    """Downloads go into ComfyUI's own models folder for their type and ComfyUI lists them without a restart;
    the key is sent to Civitai's host only, never to the storage host its download URL redirects to."""
    from civitai_fake import FakeCivitai

    version = 2094881  # the fake's LoRA
    async with FakeCivitai() as fake:
        fake.login_required.add(version)
        await real_api.open_session()
        status, body = await real_api.call("PATCH", "/settings", json={"values": {"civitai_url": fake.url}})
        assert status == 200, body
        status, body = await real_api.call("PUT", "/civitai/key", json={"key": "valid-key-alice"})
        assert status == 200, body
        status, body = await real_api.post("/civitai/downloads", json={"model_version_id": version})
        assert status == 202, body
        download_id = body["data"]["id"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            _, listing = await real_api.get("/civitai/downloads")
            item = next(i for i in listing["data"]["items"] if i["id"] == download_id)
            if item["state"] in ("done", "error", "cancelled"):
                break
            await asyncio.sleep(0.2)
        assert item["state"] == "done", item
        assert fake.storage_requests and all("Authorization" not in h for h in fake.storage_requests)
        name = item["file_name"]
        assert (comfyui[1] / "models" / "loras" / name).read_bytes() == fake.files[version]
        async with real_api.session.get(comfyui[0] + "/object_info/LoraLoader") as resp:
            choices = (await resp.json())["LoraLoader"]["input"]["required"]["lora_name"][0]
        assert name in choices, "ComfyUI sees the new file without a restart"
        await real_api.call("DELETE", "/civitai/key")


def _preview_graph(color: int) -> dict:
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": color}},
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
    }


async def test_maintenance_finds_and_ages_out_comfyuis_real_temp_previews(
    real_api: Api, comfyui: tuple[str, Path]
) -> None:
    url, base = comfyui
    temp = base / "temp"
    before = set(temp.glob("*.png")) if temp.exists() else set()
    # a preview made in ComfyUI's own editor (its /prompt; the studio follows it as a foreign job)
    async with real_api.session.post(url + "/prompt", json={"prompt": _preview_graph(0x123456)}) as resp:
        assert resp.status == 200, await resp.text()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (set(temp.glob("*.png")) - before):
        await asyncio.sleep(0.2)
    foreign = set(temp.glob("*.png")) - before
    assert foreign, "ComfyUI wrote no preview into its temp folder"
    # and a preview of a studio job
    status, body = await real_api.post("/jobs", json={"graph": _preview_graph(0x654321)})
    assert status == 201, body
    job = await wait_for_state(real_api, body["data"]["id"], {"done", "error"}, timeout=60)
    assert job["state"] == "done" and job["images"], job
    previews = set(temp.glob("*.png")) - before
    assert len(previews) > len(foreign)
    status, body = await real_api.post("/maintenance/run", json={"dry_run": True})
    assert status == 200, body
    assert not [i for i in body["data"]["items"] if i["category"] == "previews"], "fresh previews stay"
    old = time.time() - 3 * 86400
    for path in previews:
        os.utime(path, (old, old))

    status, body = await real_api.post("/maintenance/run", json={"dry_run": True})
    listed = {item["path"] for item in body["data"]["items"] if item["category"] == "previews"}
    assert {f"temp/{p.name}" for p in previews} <= listed
    assert all(p.exists() for p in previews), "a dry run removes nothing"
    status, body = await real_api.post("/maintenance/run", json={})
    assert status == 200 and body["data"]["started"], body
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status, progress = await real_api.get("/maintenance/progress")
        if not progress["data"]["running"]:
            break
        await asyncio.sleep(0.2)
    assert not any(p.exists() for p in previews), "ComfyUI's old previews are gone"
    status, body = await real_api.get("/maintenance/runs")
    assert body["data"]["items"][0]["status"] == "done" and body["data"]["items"][0]["bytes_freed"] > 0
    # the studio job stays, with its tile: the row and the thumbnail outlive the preview file
    status, body = await real_api.get(f"/jobs/{job['id']}")
    assert status == 200 and body["data"]["images"]
    async with real_api.session.get(url + body["data"]["images"][0]["thumb_url"]) as resp:
        assert resp.status == 200 and (await resp.read())[8:12] == b"WEBP"


async def test_sampler_and_scheduler_names_come_from_comfyuis_own_object_info(
    real_api: Api, comfyui: tuple[str, Path]
) -> None:
    """--sampler/--scheduler are matched against, and suggested from, the real KSampler's choices."""
    async with real_api.session.get(comfyui[0] + "/object_info/KSampler") as resp:
        required = (await resp.json())["KSampler"]["input"]["required"]
    samplers, schedulers = required["sampler_name"][0], required["scheduler"][0]
    text = "--sampler "
    status, body = await real_api.get("/shortcodes/suggest", params={"text": text, "cursor": len(text)})
    assert status == 200, body
    assert [i["label"] for i in body["data"]["items"]] == samplers[:10]
    graph = load_workflow("t2i_standin")
    status, body = await real_api.post(
        "/prompt/preview", json={"text": "a fox --sampler dpmpp_2m_s --scheduler KARR", "graph": graph}
    )
    assert status == 200 and body["data"]["errors"] == [], body
    tokens = {t["code"]: t["value"] for t in body["data"]["tokens"]}
    assert tokens == {"sampler": "dpmpp_2m_sde", "scheduler": "karras"}
    assert "dpmpp_2m_sde" in samplers and "karras" in schedulers
    status, body = await real_api.post("/prompt/preview", json={"text": "--sampler eulerr", "graph": graph})
    assert body["data"]["errors"][0]["kind"] == "unknown_name"
    assert "did you mean euler" in body["data"]["errors"][0]["message"]


async def test_comfyui_accepts_the_lora_loaders_a_prompt_inserts(real_api: Api, comfyui: tuple[str, Path]) -> None:
    """The LoRA operations make a graph ComfyUI's own validation takes (the files are stand-ins: the run then fails
    loading them, after ComfyUI accepted the graph)."""
    _url, base = comfyui
    for folder, name in (("checkpoints", "grammar_probe.safetensors"), ("loras", "grammar_probe_lora.safetensors")):
        (base / "models" / folder).mkdir(parents=True, exist_ok=True)
        (base / "models" / folder / name).write_bytes(b"not a real model: only listed, never loaded")
    graph = json.loads((Path(__file__).parent.parent / "workflows" / "generate.api.json").read_text())
    graph["4"]["inputs"]["ckpt_name"] = "grammar_probe.safetensors"
    deadline = time.monotonic() + 10
    while True:  # the studio reads ComfyUI's lists every 2 s
        status, body = await real_api.post("/jobs", json={"graph": graph, "prompt": "a fox --lora grammar_probe_l:0.5"})
        if status != 400 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    assert status == 201, body
    job = await wait_for_state(real_api, body["data"]["id"], {"done", "error", "rejected"}, timeout=60)
    assert job["state"] == "error", job  # not "rejected": ComfyUI validated the rewired graph


@pytest.mark.parametrize("loader", ["LoadImage", "LoadImageMask"])
async def test_an_inpaint_job_with_an_uploaded_mask_repaints_exactly_the_masked_pixels(
    real_api: Api, loader: str
) -> None:
    """The editor's upload, run through the inpaint stand-in on ComfyUI's own loaders (alpha and grayscale)."""
    size, box = (97, 61), (10, 5, 31, 22)
    picture, mask = io.BytesIO(), io.BytesIO()
    Image.new("RGB", size, (0, 0, 255)).save(picture, "PNG")
    drawn = Image.new("RGBA", size, (0, 0, 0, 255))
    drawn.paste((0, 0, 0, 0), box)  # the editor's form: transparent where repainted
    drawn.save(mask, "PNG")
    form = aiohttp.FormData()
    form.add_field("image", picture.getvalue(), filename="edit.png", content_type="image/png")
    form.add_field("mask", mask.getvalue(), filename="mask.png", content_type="image/png")
    status, body = await real_api.post("/edits", data=form)
    assert status == 201, body
    edit = body["data"]
    document = json.loads((REPO / "tests" / "fixtures" / "actions" / "inpaint.api.json").read_text())
    if loader == "LoadImageMask":
        document["2"] = {"class_type": "LoadImageMask", "inputs": {"image": "example.png", "channel": "red"}}
        document["4"]["inputs"]["mask"] = ["2", 0]
    status, body = await real_api.post("/workflows", json={"name": f"inpaint via {loader}", "document": document})
    assert status == 201, body
    status, body = await real_api.call("PATCH", "/actions/inpaint", json={"workflow_id": body["data"]["id"]})
    assert status == 200, body
    status, body = await real_api.post(
        "/actions/inpaint/run", json={"image_id": edit["image"]["id"], "mask_id": edit["mask"]["id"]}
    )
    assert status == 201, body
    job = await wait_for_state(real_api, body["data"]["id"], {"done", "error", "rejected"}, timeout=60)
    assert job["state"] == "done", job
    async with real_api.session.get(real_api.base.removesuffix("/studio/api/v1") + job["images"][0]["url"]) as resp:
        assert resp.status == 200
        out = Image.open(io.BytesIO(await resp.read())).convert("RGB")
    assert out.size == size
    for y in range(size[1]):
        for x in range(size[0]):
            inside = box[0] <= x < box[2] and box[1] <= y < box[3]
            assert out.getpixel((x, y)) == ((255, 0, 0) if inside else (0, 0, 255)), (x, y)
