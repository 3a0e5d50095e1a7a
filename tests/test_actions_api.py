"""Actions end to end on the test host: every default slot runs on a model-free stand-in, lineage, re-run."""

from __future__ import annotations

import io
import json
from pathlib import Path

import aiohttp
import pytest
from harness import StudioRun
from PIL import Image
from studio_api import Api
from test_api_jobs import wait_for_state

STANDINS = Path(__file__).parent / "fixtures" / "actions"
# Slot → the stand-in that replaces its default workflow (the real ones need a checkpoint).
SLOT_STANDIN = {
    "generate": "generate",
    "upscale": "upscale",
    "upscale_creative": "upscale",
    "vary_subtle": "img2img",
    "vary_strong": "img2img",
    "img2img": "img2img",
    "remix": "img2img",
    "inpaint": "inpaint",
    "outpaint": "outpaint",
    "zoom_out_1_5": "outpaint",
    "zoom_out_2": "outpaint",
    "pan_left": "outpaint",
    "pan_right": "outpaint",
    "pan_up": "outpaint",
    "pan_down": "outpaint",
}


def png(size: tuple[int, int], color: tuple[int, ...] = (200, 40, 90), mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, color).save(out, "PNG")
    return out.getvalue()


async def upload(api: Api, data: bytes) -> dict:
    form = aiohttp.FormData()
    form.add_field("image", data, filename="x.png", content_type="image/png")
    status, body = await api.post("/uploads", data=form)
    assert status == 201, body
    return body["data"]


async def use_standins(api: Api) -> dict[str, str]:
    """Import each stand-in once and reassign every default slot to it, as a user would."""
    ids: dict[str, str] = {}
    for name in sorted(set(SLOT_STANDIN.values())):
        document = json.loads((STANDINS / f"{name}.api.json").read_text())
        status, body = await api.post("/workflows", json={"name": f"stand-in {name}", "document": document})
        assert status == 201, body
        ids[name] = body["data"]["id"]
    for slot, name in SLOT_STANDIN.items():
        status, body = await api.call("PATCH", f"/actions/{slot}", json={"workflow_id": ids[name]})
        assert status == 200, body
    return ids


async def run_action(api: Api, slot: str, **body: object) -> dict:
    status, resp = await api.post(f"/actions/{slot}/run", json=body)
    assert status == 201, resp
    assert resp["data"]["action_slot"] == slot  # the answer names its action like every other job read
    job = await wait_for_state(api, resp["data"]["id"], {"done", "error", "rejected"}, timeout=20)
    assert job["state"] == "done", job
    assert job["images"], job
    return {**resp["data"], **job}


async def test_the_default_library_lists_every_slot_in_the_ui_shape(api: Api) -> None:
    status, body = await api.get("/actions")
    assert status == 200, body
    slots = [a["slot"] for a in body["data"]]
    assert set(SLOT_STANDIN) <= set(slots)
    for action in body["data"]:
        assert {"slot", "label", "icon"} <= set(action)
        assert action["builtin"] and action["shared"]
    # The test host has no checkpoint: the defaults say so instead of failing later.
    assert body["data"][0]["ready"] is False and "checkpoint" in body["data"][0]["problem"]
    status, body = await api.get("/actions/status")
    assert body["data"]["checkpoint"] is None and "No checkpoint" in body["data"]["message"]


async def test_a_default_action_without_a_checkpoint_is_a_clear_conflict(api: Api) -> None:
    status, body = await api.post("/actions/generate/run", json={"text": "a lighthouse"})
    assert status == 409, body
    assert "checkpoint" in body["error"]["message"]


async def test_every_default_slot_runs_end_to_end_on_its_stand_in(run: StudioRun, api: Api) -> None:
    await use_standins(api)
    source = await upload(api, png((96, 64)))
    mask = await upload(api, png((96, 64), (0, 0, 0, 0), "RGBA"))
    sizes: dict[str, tuple[int, int]] = {}
    for slot in SLOT_STANDIN:
        body: dict[str, object] = {"text": f"a red fox --seed 7 {slot}"}
        if slot != "generate":
            body["image_id"] = source["id"]
        if slot == "inpaint":
            body["mask_id"] = mask["id"]
        if slot == "outpaint":
            body["parameters"] = {"left": 16, "bottom": 24}
        job = await run_action(api, slot, **body)
        image = job["images"][0]
        sizes[slot] = (image["width"], image["height"])
        assert job["action"] == slot and job["workflow_version"] == 1
        if slot != "generate":
            assert job["parent_image_id"] == source["id"]
    assert sizes["generate"] == (256, 192)
    assert sizes["upscale"] == (192, 128)
    assert sizes["vary_subtle"] == sizes["inpaint"] == (96, 64)
    assert sizes["zoom_out_2"] == (96 + 2 * 48, 64 + 2 * 32)
    assert sizes["zoom_out_1_5"] == (96 + 2 * 24, 64 + 2 * 16)
    assert sizes["pan_left"] == sizes["pan_right"] == (96 + 32, 64)  # 30% of 96, up to a multiple of 8
    assert sizes["pan_up"] == sizes["pan_down"] == (96, 64 + 24)
    assert sizes["outpaint"] == (96 + 16, 64 + 24)


async def test_parameters_are_checked_before_anything_is_queued(run: StudioRun, api: Api) -> None:
    await use_standins(api)
    source = await upload(api, png((64, 64)))
    cases = [
        ("upscale", {"scale": 9.0}, "above its maximum"),
        ("upscale", {"scale": "big"}, "must be a number"),
        ("pan_left", {"direction": "sideways"}, "must be one of"),
        ("vary_subtle", {"wombat": 1}, "unknown parameter"),
    ]
    for slot, params, words in cases:
        status, body = await api.post(f"/actions/{slot}/run", json={"image_id": source["id"], "parameters": params})
        assert status == 400 and body["error"]["code"] == "validation_error", body
        assert words in body["error"]["message"]
    status, body = await api.post("/actions/inpaint/run", json={"image_id": source["id"]})
    assert status == 400 and "mask" in body["error"]["message"]
    status, listing = await api.get("/jobs")
    assert listing["data"]["items"] == [], "a refused run writes no job"


async def test_custom_zoom_and_pan_pixels(run: StudioRun, api: Api) -> None:
    await use_standins(api)
    source = await upload(api, png((80, 40)))
    job = await run_action(api, "zoom_out_2", image_id=source["id"], parameters={"factor": 3.0})
    assert (job["images"][0]["width"], job["images"][0]["height"]) == (80 * 3, 40 * 3)
    job = await run_action(api, "pan_down", image_id=source["id"], parameters={"pixels": 100})
    assert (job["images"][0]["width"], job["images"][0]["height"]) == (80, 40 + 104)


async def test_lineage_is_a_tree_and_any_step_reruns(run: StudioRun, api: Api) -> None:
    await use_standins(api)
    first = await run_action(api, "generate", text="a castle")
    root_image = first["images"][0]["id"]
    vary = await run_action(api, "vary_subtle", image_id=root_image, text="a castle, dusk")
    up = await run_action(api, "upscale", image_id=vary["images"][0]["id"])
    pan = await run_action(api, "pan_right", image_id=up["images"][0]["id"])
    leaf = pan["images"][0]["id"]
    status, body = await api.get(f"/lineage/{leaf}")
    assert status == 200, body
    tree = body["data"]
    assert tree["path"] == [root_image, vary["images"][0]["id"], up["images"][0]["id"], leaf]
    node = tree["root"]
    actions = []
    while node["children"]:
        node = node["children"][0]
        actions.append(node["job"]["action"])
    assert actions == ["vary_subtle", "upscale", "pan_right"]
    assert node["job"]["parameters"]["pad_right"] == 160  # 30% of the 512 px upscaled width, to a step of 8
    status, body = await api.post(f"/lineage/jobs/{vary['id']}/rerun", json={"same_seed": True})
    assert status == 201, body
    again = await wait_for_state(api, body["data"]["id"], {"done", "error"})
    assert again["state"] == "done"
    assert body["data"]["parent_image_id"] == root_image and body["data"]["action"] == "vary_subtle"
    status, body = await api.get(f"/lineage/{root_image}")
    assert len(body["data"]["root"]["children"]) == 2


async def test_a_workflow_an_action_uses_cannot_be_deleted_until_reassigned(api: Api) -> None:
    ids = await use_standins(api)
    status, body = await api.delete(f"/workflows/{ids['outpaint']}")
    assert status == 409 and "pan_left" in body["error"]["message"]
    for slot in [s for s, n in SLOT_STANDIN.items() if n == "outpaint"]:
        status, _ = await api.call("PATCH", f"/actions/{slot}", json={"workflow_id": ids["img2img"]})
        assert status == 200
    status, body = await api.delete(f"/workflows/{ids['outpaint']}")
    assert status == 200, body
    status, body = await api.get(f"/workflows/{ids['outpaint']}")
    assert status == 404


@pytest.mark.parametrize("slot", ["pan_left"])
async def test_the_job_records_action_version_values_and_patches(run: StudioRun, api: Api, slot: str) -> None:
    await use_standins(api)
    source = await upload(api, png((64, 64)))
    job = await run_action(api, slot, image_id=source["id"])
    from comfyui_studio.db.models import Job

    async with run.studio.store.session() as session:
        row = await session.get(Job, job["id"])
    assert row.action_slot == slot and row.parent_image_id == source["id"] and row.workflow_version_id
    assert row.parameters["direction"] == "left" and row.parameters["pad_left"] == 24
    paths = {op["path"] for op in row.patches}
    assert "/1/inputs/image" in paths and "/2/inputs/left" in paths
    assert row.graph["2"]["inputs"]["left"] == 24


async def test_the_generate_slot_graph_is_what_the_prompt_bar_runs(run: StudioRun, api: Api) -> None:

    actions = run.studio.actions
    owner = run.studio.owner_id
    assert await actions.graph_for_slot(owner, "wombat") is None
    await use_standins(api)
    graph = await actions.graph_for_slot(owner, "generate")
    assert graph == json.loads((STANDINS / "generate.api.json").read_text())


async def test_search_filters_by_a_real_workflow_id(api: Api) -> None:
    ids = await use_standins(api)
    job = await run_action(api, "generate", text="a lighthouse at dusk")
    status, body = await api.get("/jobs/search", params={"workflow_id": ids["generate"]})
    assert status == 200, body
    assert [j["id"] for j in body["data"]["items"]] == [job["id"]]
    status, body = await api.get("/jobs/search", params={"workflow_id": ids["upscale"]})
    assert status == 200 and body["data"]["items"] == []
