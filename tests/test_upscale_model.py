"""The default upscale slots use an upscale model when ComfyUI lists one, and the plain resize otherwise.

The test host has no model nodes it can run, so these tests look at the graph the slot builds (and at the
graph a run would submit), with the service's ``object_info`` replaced for the one test.
"""

from __future__ import annotations

import copy

import pytest
from harness import StudioRun
from studio_api import Api
from test_actions_api import png, upload

from comfyui_studio.engine.params import check_graph_values
from comfyui_studio.engine.planner import upscale_model_ops
from comfyui_studio.services.actions import upscale_models

MODEL = "RealESRGAN_x4plus.pth"
CHECKPOINT = "sd15.safetensors"


@pytest.fixture
async def with_models(run: StudioRun, monkeypatch: pytest.MonkeyPatch) -> dict:
    """The host's object_info as if a checkpoint and an upscale model were installed (this test only)."""
    workflows = run.studio.workflows
    info = copy.deepcopy(await workflows.object_info())
    info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0] = [CHECKPOINT]
    info["UpscaleModelLoader"]["input"]["required"]["model_name"][1]["options"] = ["4x_other.pth", MODEL][::-1]

    async def object_info(*, fresh: bool = False) -> dict:
        return info

    monkeypatch.setattr(workflows, "object_info", object_info)
    return info


def by_class(graph: dict, class_type: str) -> list[str]:
    return [nid for nid, node in graph.items() if node["class_type"] == class_type]


async def test_the_upscale_slot_runs_the_installed_upscale_model_then_scales_to_the_factor(
    run: StudioRun, api: Api, with_models: dict
) -> None:
    actions = run.studio.actions
    status, body = await api.get("/actions/status")
    assert body["data"]["upscale"] == "model" and body["data"]["upscale_model"] == MODEL
    assert body["data"]["checkpoint"] == CHECKPOINT
    graph = await actions.graph_for_slot(run.studio.owner_id, "upscale")
    (loader,) = by_class(graph, "UpscaleModelLoader")
    (upscaled,) = by_class(graph, "ImageUpscaleWithModel")
    (size,) = by_class(graph, "GetImageSize")
    (resized,) = by_class(graph, "ImageScale")
    assert graph[loader]["inputs"] == {"model_name": MODEL}
    assert graph[upscaled]["inputs"] == {"upscale_model": [loader, 0], "image": ["10", 0]}, "the source, unscaled"
    assert graph[size]["inputs"] == {"image": ["12", 0]}, "the target size: the source scaled by the factor"
    assert graph[resized]["inputs"] == {
        "image": [upscaled, 0],
        "upscale_method": "lanczos",
        "width": [size, 0],
        "height": [size, 1],
        "crop": "disabled",
    }
    assert graph["11"]["inputs"]["pixels"] == [resized, 0], "the low-denoise pass encodes the model's result"
    assert graph["3"]["inputs"]["denoise"] == 0.382 and graph["4"]["inputs"]["ckpt_name"] == CHECKPOINT
    assert check_graph_values(graph, with_models) == []
    again = await actions.graph_for_slot(run.studio.owner_id, "upscale_creative")
    assert by_class(again, "ImageUpscaleWithModel") and by_class(again, "ImageScaleBy") == ["12"]


async def test_a_run_submits_the_model_graph_with_the_requested_factor_and_records_the_patches(
    run: StudioRun, api: Api, with_models: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    actions = run.studio.actions
    source = await upload(api, png((64, 48)))
    submitted: list[tuple[dict, list]] = []

    async def submit(user_id: int, graph: dict, **kwargs: object) -> dict:
        submitted.append((graph, kwargs["patches"]))  # type: ignore[arg-type]
        return {"id": "job-not-run", "parameters": kwargs["parameters"]}

    monkeypatch.setattr(actions.jobs, "submit", submit)
    job = await actions.run(run.studio.owner_id, "upscale", image_id=source["id"], parameters={"scale": 3.0})
    assert job["parameters"]["scale"] == 3.0
    ((graph, patches),) = submitted
    assert graph["12"]["inputs"]["scale_by"] == 3.0 and graph["10"]["inputs"]["image"] != "example.png"
    (upscaled,) = by_class(graph, "ImageUpscaleWithModel")
    assert graph[upscaled]["inputs"]["image"] == ["10", 0]
    assert {"op": "replace", "path": "/11/inputs/pixels", "value": [by_class(graph, "ImageScale")[0], 0]} in patches


async def test_without_an_upscale_model_the_slot_keeps_the_plain_resize(run: StudioRun, api: Api, monkeypatch) -> None:
    workflows, actions = run.studio.workflows, run.studio.actions
    info = copy.deepcopy(await workflows.object_info())
    info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0] = [CHECKPOINT]

    async def object_info(*, fresh: bool = False) -> dict:
        return info

    monkeypatch.setattr(workflows, "object_info", object_info)
    status, body = await api.get("/actions/status")
    assert body["data"]["upscale"] == "resize" and body["data"]["upscale_model"] is None
    graph = await actions.graph_for_slot(run.studio.owner_id, "upscale")
    assert by_class(graph, "ImageScaleBy") == ["12"] and graph["11"]["inputs"]["pixels"] == ["12", 0]
    assert not by_class(graph, "UpscaleModelLoader") and not by_class(graph, "ImageUpscaleWithModel")


def test_model_choices_in_both_object_info_forms_and_patches_only_for_the_titled_resize() -> None:
    info = {
        "UpscaleModelLoader": {"input": {"required": {"model_name": [["a.pth", "b.safetensors"], {}]}}},
        "ImageUpscaleWithModel": {},
        "GetImageSize": {},
    }
    assert upscale_models(info) == ["a.pth", "b.safetensors"]
    info["UpscaleModelLoader"]["input"]["required"]["model_name"] = ["COMBO", {"options": ["c.pth"]}]
    assert upscale_models(info) == ["c.pth"]
    assert upscale_models({"UpscaleModelLoader": info["UpscaleModelLoader"]}) == [], "a host without the nodes"
    graph = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "x.png"}, "_meta": {"title": "Source"}},
        "2": {"class_type": "ImageScaleBy", "inputs": {"image": ["1", 0], "scale_by": 2}, "_meta": {"title": "Zoom"}},
    }
    assert upscale_model_ops(graph, "c.pth") == [], "a resize not titled Upscale is left alone"
