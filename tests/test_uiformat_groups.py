"""Legacy group nodes (``extra.groupNodes``) in UI-format import: expanded like the frontend's groupNode.ts."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from studio_api import Api
from test_api_jobs import wait_for_state

from comfyui_studio.engine.uiformat import ConversionError, convert

FIXTURES = Path(__file__).parent / "fixtures"
OBJECT_INFO = json.loads((FIXTURES / "comfyui" / "object_info.json").read_text())


def ui(name: str) -> dict:
    return json.loads((FIXTURES / "ui_workflows" / f"{name}.json").read_text())


def node(class_type: str, title: str, **inputs: object) -> dict:
    return {"inputs": inputs, "class_type": class_type, "_meta": {"title": title}}


def test_a_group_node_expands_into_its_inner_nodes_with_widgets_links_and_outputs() -> None:
    graph = convert(ui("group_node"), OBJECT_INFO).graph
    assert graph == {
        "1": node("EmptyImage", "EmptyImage", width=64, height=48, batch_size=1, color=16711680),
        # the group's widgets_values [3, 1.5 | 2, 0.8, 0.4 | "bilinear", 2.0] split over the inner widgets in order
        "5:0": node("ImageBlur", "ImageBlur", image=["1", 0], blur_radius=3, sigma=1.5),
        "5:1": node("ImageSharpen", "Crisp", image=["5:0", 0], sharpen_radius=2, sigma=0.8, alpha=0.4),
        "5:2": node("ImageScaleBy", "Upscale Image By", image=["5:1", 0], upscale_method="bilinear", scale_by=2.0),
        "5:3": node("ImageInvert", "Invert Image", image=["5:2", 0]),
        # output 0: Sharpen's, linked inside but listed in `external`; output 1: Invert's, not linked inside
        "8": node("SaveImage", "Save Image", images=["5:1", 0], filename_prefix="ui_group_sharpened"),
        "9": node("SaveImage", "Save scaled", images=["5:3", 0], filename_prefix="ui_group"),
    }


def test_a_group_node_inside_a_subgraph_with_the_older_prefix_and_an_inner_reroute() -> None:
    graph = convert(ui("group_in_subgraph"), OBJECT_INFO).graph
    assert set(graph) == {"1", "10:1", "10:4:0", "10:4:2", "12"}, "the inner Reroute (10:4:1) resolves away"
    assert graph["10:4:0"]["inputs"] == {"image": ["10:1", 0], "blur_radius": 5, "sigma": 2.5}
    assert graph["10:4:2"]["inputs"] == {"image": ["10:4:0", 0]}
    assert graph["12"]["inputs"]["images"] == ["10:4:2", 0]


def test_both_type_spellings_and_defaults_from_the_inner_nodes() -> None:
    workflow = ui("group_node")
    workflow["nodes"][1]["type"] = "workflow/Soften and scale"  # before ComfyUI_frontend 1.2.63
    del workflow["nodes"][1]["widgets_values"]
    graph = convert(workflow, OBJECT_INFO).graph
    assert graph["5:0"]["inputs"]["blur_radius"] == 1, "without group values, the inner nodes' own ones"
    assert graph["5:2"]["inputs"]["upscale_method"] == "nearest-exact"
    workflow["nodes"][1]["mode"] = 4  # a bypassed group passes its input through
    graph = convert(workflow, OBJECT_INFO).graph
    assert not any(nid.startswith("5:") for nid in graph)
    assert graph["8"]["inputs"]["images"] == graph["9"]["inputs"]["images"] == ["1", 0]


def test_seed_control_values_are_skipped_and_inputs_map_to_unlinked_inner_inputs() -> None:
    workflow = ui("group_node")
    workflow["extra"]["groupNodes"]["Sample"] = {
        "nodes": [
            {"index": 0, "type": "EmptyLatentImage", "inputs": [], "widgets_values": [512, 512, 1]},
            {"index": 1, "type": "KSampler", "inputs": [], "widgets_values": [0, "fixed", 20, 8, "euler", "normal", 1]},
        ],
        "links": [[0, 0, 1, 3, 30, "LATENT"]],  # latent_image is KSampler's 4th link slot
        "external": [],
    }
    workflow["nodes"].append(
        {
            "id": 20,
            "type": "workflow>Sample",
            "mode": 0,
            "inputs": [
                {"name": "model", "type": "MODEL", "link": None},
                {"name": "positive", "type": "CONDITIONING", "link": 40},
                {"name": "negative", "type": "CONDITIONING", "link": 40},
            ],
            "outputs": [{"name": "LATENT", "type": "LATENT", "links": []}],
            # width, height, batch | seed, control_after_generate, steps, cfg, sampler, scheduler, denoise
            "widgets_values": [768, 640, 1, 42, "randomize", 30, 6.5, "dpmpp_2m", "karras", 0.75],
        }
    )
    workflow["nodes"].append({"id": 21, "type": "CLIPTextEncode", "mode": 0, "inputs": [], "widgets_values": ["x"]})
    workflow["links"].append([40, 21, 0, 20, 1, "CONDITIONING"])
    graph = convert(workflow, OBJECT_INFO).graph
    assert graph["20:0"]["inputs"] == {"width": 768, "height": 640, "batch_size": 1}
    assert graph["20:1"]["inputs"] == {
        "seed": 42,
        "steps": 30,
        "cfg": 6.5,
        "sampler_name": "dpmpp_2m",
        "scheduler": "karras",
        "positive": ["21", 0],
        "negative": ["21", 0],
        "latent_image": ["20:0", 0],
        "denoise": 0.75,
    }


def test_instance_widget_inputs_map_by_the_group_widget_name_and_sockets_by_position() -> None:
    workflow = ui("group_node")
    group = workflow["nodes"][1]
    # A newer frontend lists widget inputs too, before the sockets; the second "sigma" is "<title> sigma".
    group["inputs"][:0] = [{"name": "blur_radius", "type": "INT", "widget": {"name": "blur_radius"}, "link": None}]
    group["inputs"].append({"name": "Crisp sigma", "type": "FLOAT", "widget": {"name": "Crisp sigma"}, "link": 50})
    workflow["nodes"].append({"id": 30, "type": "PrimitiveNode", "mode": 0, "widgets_values": [2.25, "fixed"]})
    workflow["links"].append([50, 30, 0, 5, 2, "FLOAT"])
    graph = convert(workflow, OBJECT_INFO).graph
    assert graph["5:0"]["inputs"] == {"image": ["1", 0], "blur_radius": 3, "sigma": 1.5}
    assert graph["5:1"]["inputs"]["sigma"] == 2.25, "the primitive feeds ImageSharpen's sigma, not ImageBlur's"


def _mutate_group(change):
    def apply(workflow: dict) -> None:
        change(workflow["extra"]["groupNodes"]["Soften and scale"])

    return apply


@pytest.mark.parametrize(
    "mutate,words",
    [
        (_mutate_group(lambda g: g.update(nodes="x")), "no list of inner nodes"),
        (_mutate_group(lambda g: g["nodes"][2].pop("type")), "inner node 2 has no type"),
        (_mutate_group(lambda g: g["links"].append([0, 0, 9, 0])), "names an inner node it does not have"),
        (_mutate_group(lambda g: g["links"].append("0>1")), "is not [from, from_slot, to, to_slot"),
        (_mutate_group(lambda g: g["links"].append([0, 0, 1, 5])), "input 5 of inner node 1 (ImageSharpen)"),
        (_mutate_group(lambda g: g.update(external=[["a"]])), "external output"),
        (lambda w: w["extra"].pop("groupNodes"), "definition is missing from the workflow's extra.groupNodes"),
        (lambda w: w["nodes"][1].update(widgets_values="oops"), "malformed widgets_values"),
    ],
)
def test_a_malformed_group_definition_is_an_error_naming_the_group_node(mutate, words: str) -> None:
    workflow = copy.deepcopy(ui("group_node"))
    mutate(workflow)
    with pytest.raises(ConversionError) as info:
        convert(workflow, OBJECT_INFO)
    assert words in str(info.value) and info.value.node_id == "5"


def test_an_unknown_inner_type_names_the_inner_node() -> None:
    workflow = ui("group_node")
    workflow["extra"]["groupNodes"]["Soften and scale"]["nodes"][3]["type"] = "WombatInvert"
    with pytest.raises(ConversionError) as info:
        convert(workflow, OBJECT_INFO)
    assert "'WombatInvert'" in str(info.value) and info.value.node_id == "5:3"


async def test_a_ui_workflow_with_a_group_node_imports_and_runs_on_the_test_host(api: Api) -> None:
    status, body = await api.post("/workflows", json={"name": "group", "document": ui("group_node")})
    assert status == 201, body
    wf = body["data"]
    assert wf["source_format"] == "ui" and "5:3" in wf["head"]["graph"]
    status, body = await api.post("/jobs", json={"graph": wf["head"]["graph"]})
    assert status == 201, body
    job = await wait_for_state(api, body["data"]["id"], {"done", "error"})
    assert job["state"] == "done", job
    sizes = sorted((image["width"], image["height"]) for image in job["images"])
    assert sizes == [(64, 48), (128, 96)], "the sharpened image as it is, and the one the group scaled 2x"
