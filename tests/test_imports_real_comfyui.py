"""A real ComfyUI used before the studio was installed: its SaveImage and SaveAnimatedWEBP files, imported.

Skipped unless COMFYUI_DIR points at a ComfyUI checkout. ComfyUI first runs alone (no custom nodes) and writes
outputs from a model-free graph (EmptyImage → SaveImage / SaveAnimatedWEBP); then it starts again on the same base
directory with the studio installed, and the import reads those files with their prompt graph.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import pytest
from studio_api import Api
from test_real_comfyui import COMFYUI_DIR, REPO, _free_port, _python

pytestmark = [
    pytest.mark.comfyui,
    pytest.mark.skipif(not COMFYUI_DIR, reason="set COMFYUI_DIR to a ComfyUI checkout to run against it"),
]

UNUSED_SAMPLER = {
    # Not an ancestor of an output: ComfyUI checks the class names but never runs these, and SaveImage still
    # writes the whole graph into the file, as it does for a real text-to-image graph.
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15/dreamshaper_8.safetensors"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 768, "batch_size": 1}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "harbour lights in fog", "clip": ["4", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "text, watermark", "clip": ["4", 1]}},
    "3": {
        "class_type": "KSampler",
        "inputs": {
            "seed": 8675309,
            "steps": 24,
            "cfg": 5.5,
            "sampler_name": "euler_ancestral",
            "scheduler": "normal",
            "denoise": 1.0,
            "model": ["4", 0],
            "positive": ["6", 0],
            "negative": ["7", 0],
            "latent_image": ["5", 0],
        },
    },
}


def graph(save: dict) -> dict:
    return {
        **UNUSED_SAMPLER,
        "1": {"class_type": "EmptyImage", "inputs": {"width": 96, "height": 64, "batch_size": 2, "color": 0x3399FF}},
        "9": save,
    }


@contextmanager
def comfyui(base: Path, *, with_studio: bool) -> Iterator[str]:
    port = _free_port()
    args = [_python(), "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port)]
    args += ["--disable-auto-launch", "--base-directory", str(base)]
    if not with_studio:
        args.append("--disable-all-custom-nodes")
    log_path = base / ("studio.log" if with_studio else "plain.log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(args, cwd=COMFYUI_DIR, stdout=log, stderr=subprocess.STDOUT)
    try:
        import socket

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
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _run_in_plain_comfyui(url: str) -> list[dict]:
    outputs = []
    async with aiohttp.ClientSession() as session:
        for save in (
            {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "before/studio_import"}},
            {
                "class_type": "SaveAnimatedWEBP",
                "inputs": {
                    "images": ["1", 0],
                    "filename_prefix": "before/anim",
                    "fps": 6.0,
                    "lossless": True,
                    "quality": 80,
                    "method": "default",
                },
            },
        ):
            body = {"prompt": graph(save), "extra_data": {"extra_pnginfo": {"workflow": {"nodes": [], "links": []}}}}
            async with session.post(url + "/prompt", json=body) as resp:
                answer = await resp.json()
                assert resp.status == 200, answer
            prompt_id = answer["prompt_id"]
            for _ in range(300):
                async with session.get(f"{url}/history/{prompt_id}") as resp:
                    history = await resp.json()
                if prompt_id in history:
                    outputs.append(history[prompt_id]["outputs"]["9"])
                    break
                await asyncio.sleep(0.1)
            else:
                pytest.fail("ComfyUI never finished the graph")
    return outputs


@pytest.fixture
async def studio_api(tmp_path: Path) -> AsyncIterator[tuple[Api, Path, list[dict]]]:
    base = tmp_path / "comfy"
    (base / "custom_nodes").mkdir(parents=True)
    with comfyui(base, with_studio=False) as url:
        outputs = await _run_in_plain_comfyui(url)
    (base / "custom_nodes" / "studio-pack").symlink_to(REPO)  # the user installs the studio
    with comfyui(base, with_studio=True) as url:
        async with aiohttp.ClientSession() as session:
            yield Api(session, url + "/studio/api/v1"), base, outputs


async def test_outputs_saved_before_the_studio_are_imported_with_their_graph(
    studio_api: tuple[Api, Path, list[dict]],
) -> None:
    api, base, outputs = studio_api
    files = [ref for out in outputs for ref in out["images"]]
    assert len(files) == 3  # two PNGs (a batch of 2) and one animated WebP
    before = {p: p.read_bytes() for p in (base / "output").rglob("*") if p.is_file()}
    status, body = await api.post("/imports/start", json={})
    assert status == 200, body
    for _ in range(600):
        status, body = await api.get("/imports")
        if body["data"]["run"]["status"] != "running":
            break
        await asyncio.sleep(0.1)
    run = body["data"]["run"]
    assert run["status"] == "done", run
    assert run["imported"] == 3 and run["with_metadata"] == 3, run
    assert {p: p.read_bytes() for p in (base / "output").rglob("*") if p.is_file()} == before

    status, body = await api.get("/jobs/search", params={"q": "harbour fog"})
    assert status == 200, body
    jobs = body["data"]["items"]
    assert len(jobs) == 3
    for job in jobs:
        assert job["foreign"] is True and job["prompt_text"] == "harbour lights in fog"
        params = job["parameters"]
        assert (params["seed"], params["steps"], params["cfg"]) == (8675309, 24, 5.5)
        assert (params["sampler"], params["scheduler"]) == ("euler_ancestral", "normal")
        assert params["model"] == "sd15/dreamshaper_8.safetensors"
        assert params["negative_prompt"] == "text, watermark"
    mimes = sorted(job["images"][0]["mime"] for job in jobs)
    assert mimes == ["image/png", "image/png", "image/webp"]

    # importing again finds nothing new
    await api.post("/imports/start", json={})
    for _ in range(600):
        status, body = await api.get("/imports")
        if body["data"]["run"]["status"] != "running":
            break
        await asyncio.sleep(0.1)
    assert body["data"]["run"]["imported"] == 0 and body["data"]["run"]["known"] == 3
