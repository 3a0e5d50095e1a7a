"""Studio nodes and actions on a real ComfyUI (COMFYUI_DIR): loaded by its own loader, run in a graph."""

from __future__ import annotations

import io

import aiohttp
from PIL import Image
from studio_api import Api
from test_actions_api import SLOT_STANDIN, run_action, use_standins
from test_api_jobs import wait_for_state
from test_real_comfyui import comfyui, pytestmark, real_api  # noqa: F401  # the module-scoped ComfyUI

__all__ = ["pytestmark"]


async def test_comfyui_loads_the_studio_nodes_with_their_conventions(real_api: Api, comfyui) -> None:  # noqa: F811
    async with real_api.session.get(comfyui[0] + "/object_info") as resp:
        info = await resp.json()
    for name in (
        "StudioText",
        "StudioInt",
        "StudioFloat",
        "StudioSeed",
        "StudioChoice",
        "StudioImage",
        "StudioMask",
        "StudioPrompt",
        "StudioAspectRatio",
        "StudioSaveImage",
    ):
        assert info[name]["category"] == "Studio" and info[name]["display_name"].startswith("Studio ")
    assert info["StudioSaveImage"]["output_node"] is True


async def test_a_graph_of_studio_nodes_runs_on_comfyui(real_api: Api) -> None:  # noqa: F811
    graph = {
        "1": {"class_type": "StudioAspectRatio", "inputs": {"ratio": "2:1", "megapixels": 0.0625}},
        "2": {
            "class_type": "EmptyImage",
            "inputs": {"width": ["1", 0], "height": ["1", 1], "batch_size": 1, "color": 255},
        },
        "3": {"class_type": "StudioInt", "inputs": {"name": "blur", "value": 3, "min": 1, "max": 9}},
        "4": {"class_type": "ImageBlur", "inputs": {"image": ["2", 0], "blur_radius": ["3", 0], "sigma": 1.0}},
        "5": {"class_type": "StudioSaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "studio/nodes"}},
    }
    status, body = await real_api.post("/jobs", json={"graph": graph})
    assert status == 201, body
    job = await wait_for_state(real_api, body["data"]["id"], {"done", "error"}, timeout=60)
    assert job["state"] == "done", job
    assert (job["images"][0]["width"], job["images"][0]["height"]) == (384, 192)


async def test_the_pan_action_runs_on_comfyui_with_its_stand_in(real_api: Api) -> None:  # noqa: F811
    assert "pan_left" in SLOT_STANDIN
    await use_standins(real_api)
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 200, 30)).save(out, "PNG")
    form = aiohttp.FormData()
    form.add_field("image", out.getvalue(), filename="x.png", content_type="image/png")
    status, body = await real_api.post("/uploads", data=form)
    assert status == 201, body
    job = await run_action(real_api, "pan_left", image_id=body["data"]["id"])
    assert (job["images"][0]["width"], job["images"][0]["height"]) == (64 + 24, 48)
