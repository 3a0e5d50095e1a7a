"""UI-format → API-format conversion on ComfyUI's own templates and on hand-made workflows."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from comfyui_studio.engine.selectors import is_link
from comfyui_studio.engine.uiformat import ConversionError, convert, workflow_from_png

FIXTURES = Path(__file__).parent / "fixtures"
OBJECT_INFO = json.loads((FIXTURES / "comfyui" / "object_info.json").read_text())
templates_pkg = pytest.importorskip("comfyui_workflow_templates")
TEMPLATES = Path(templates_pkg.__file__).parent / "templates"


def template(name: str) -> dict:
    return json.loads((TEMPLATES / f"{name}.json").read_text())


def ui(name: str) -> dict:
    return json.loads((FIXTURES / "ui_workflows" / f"{name}.json").read_text())


def assert_links_resolve(graph: dict) -> None:
    for nid, node in graph.items():
        for name, value in node["inputs"].items():
            if is_link(value):
                assert value[0] in graph, f"node {nid} input {name} points at missing node {value[0]}"


def test_default_template_becomes_the_api_graph_the_frontend_sends() -> None:
    graph = convert(template("default"), OBJECT_INFO).graph
    assert set(graph) == {"3", "4", "5", "6", "7", "8", "9"}
    ks = graph["3"]["inputs"]
    # seed, then the unserialised control_after_generate value skipped, then steps…
    assert ks["steps"] == 20 and ks["cfg"] == 8 and ks["sampler_name"] == "euler" and ks["scheduler"] == "normal"
    assert isinstance(ks["seed"], int) and ks["denoise"] == 1
    assert ks["model"] == ["4", 0] and ks["positive"] == ["6", 0] and ks["negative"] == ["7", 0]
    assert graph["8"]["inputs"] == {"samples": ["3", 0], "vae": ["4", 2]}
    assert graph["4"]["_meta"]["title"] == "Load Checkpoint"


@pytest.mark.parametrize(
    "name", ["default", "image2image", "inpaint_example", "inpaint_model_outpainting", "lora", "sdxl_simple_example"]
)
def test_core_templates_convert_with_every_link_resolved(name: str) -> None:
    result = convert(template(name), OBJECT_INFO)
    assert result.graph
    assert_links_resolve(result.graph)
    types = {n["class_type"] for n in result.graph.values()}
    assert not types & {"Note", "MarkdownNote", "PrimitiveNode", "Reroute"}
    for node in result.graph.values():
        for value in node["inputs"].values():
            assert value not in ("randomize", "fixed"), "control_after_generate is never serialised"


def test_load_image_upload_widget_is_skipped() -> None:
    graph = convert(template("inpaint_example"), OBJECT_INFO).graph
    loader = next(n for n in graph.values() if n["class_type"] == "LoadImage")
    assert loader["inputs"] == {"image": "yosemite_inpaint_example.png"} or set(loader["inputs"]) == {"image"}


def test_bypassed_lora_is_rewired_to_its_same_typed_input() -> None:
    workflow = template("lora")
    graph = convert(workflow, OBJECT_INFO).graph
    assert "13" not in graph  # mode 4
    bypassed = next(n for n in workflow["nodes"] if n["id"] == 13)
    # whatever fed the bypassed LoraLoader's model/clip now feeds its consumers directly
    assert_links_resolve(graph)
    fed = {tuple(v) for n in graph.values() for v in n["inputs"].values() if is_link(v)}
    assert not any(src == "13" for src, _ in fed)
    assert bypassed["mode"] == 4


def test_primitive_nodes_write_their_value_into_the_widgets_they_feed() -> None:
    graph = convert(template("sdxl_simple_example"), OBJECT_INFO).graph
    base, refiner = graph["10"]["inputs"], graph["11"]["inputs"]
    assert base["steps"] == refiner["steps"] == 25
    assert base["end_at_step"] == refiner["start_at_step"] == 20
    assert graph["6"]["inputs"]["text"].startswith("evening sunset scenery")
    assert graph["10"]["inputs"]["add_noise"] == "enable" and graph["10"]["inputs"]["cfg"] == 8


def test_subgraphs_expand_with_outer_colon_inner_ids_through_bypassed_inner_nodes() -> None:
    result = convert(template("image_qwen_image_edit_2509"), OBJECT_INFO)
    assert_links_resolve(result.graph)
    assert not any(nid.startswith("383:") for nid in result.graph), "every inner node of 383 is bypassed"
    handmade = convert(ui("subgraph"), OBJECT_INFO).graph
    assert set(handmade) == {"1", "10:1", "12"}
    assert handmade["10:1"]["inputs"]["image"] == ["1", 0]
    assert handmade["12"]["inputs"]["images"] == ["10:1", 0], "the bypassed inner Sharpen passes Invert through"


def test_reroute_primitive_note_bypass_and_mute_on_a_hand_made_workflow() -> None:
    result = convert(ui("passthrough"), OBJECT_INFO)
    assert result.graph == {
        "1": {
            "inputs": {"width": 256, "height": 128, "batch_size": 1, "color": 3381759},
            "class_type": "EmptyImage",
            "_meta": {"title": "Canvas"},
        },
        "4": {
            "inputs": {"image": ["1", 0], "upscale_method": "bilinear", "scale_by": 1.5},
            "class_type": "ImageScaleBy",
            "_meta": {"title": result.graph["4"]["_meta"]["title"]},
        },
        "8": {
            "inputs": {"images": ["4", 0], "filename_prefix": "ui_passthrough"},
            "class_type": "SaveImage",
            "_meta": {"title": result.graph["8"]["_meta"]["title"]},
        },
    }
    assert result.linear_inputs == [("1", "width", {"label": "Canvas width"}), ("4", "upscale_method", {})]
    assert result.linear_outputs == ["8"]


def test_array_values_are_wrapped() -> None:
    workflow = ui("passthrough")
    workflow["nodes"][0]["widgets_values"] = [[1, 2], 128, 1, 0]
    graph = convert(workflow, OBJECT_INFO).graph
    assert graph["1"]["inputs"]["width"] == {"__value__": [1, 2]}


@pytest.mark.parametrize(
    "mutate,words,node",
    [
        (lambda w: w["nodes"][0].update(type="WombatSampler"), "unknown node type 'WombatSampler'", "1"),
        (lambda w: w["nodes"][7]["inputs"][0].update(link=99), "link 99", "8"),
        (lambda w: w["links"].__setitem__(5, [6, 42, 0, 8, 0, "IMAGE"]), "node 42", "8"),
        (lambda w: w["nodes"][7].update(widgets_values="oops"), "malformed widgets_values", "8"),
    ],
)
def test_a_broken_workflow_is_an_error_naming_the_node(mutate, words: str, node: str) -> None:
    workflow = copy.deepcopy(ui("passthrough"))
    mutate(workflow)
    with pytest.raises(ConversionError) as info:
        convert(workflow, OBJECT_INFO)
    assert words in str(info.value) and info.value.node_id == node


@pytest.mark.parametrize("document", [{}, {"nodes": "x"}, [], {"nodes": [{"id": "x", "type": "A"}], "links": []}])
def test_malformed_files_are_refused(document) -> None:
    with pytest.raises(ConversionError):
        convert(document, OBJECT_INFO)


def test_png_metadata_gives_back_the_prompt_and_workflow() -> None:
    info = PngInfo()
    prompt = convert(ui("sd15_txt2img"), OBJECT_INFO).graph
    info.add_text("prompt", json.dumps(prompt))
    info.add_text("workflow", json.dumps(ui("sd15_txt2img")), zip=True)
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "PNG", pnginfo=info)
    got_prompt, got_workflow = workflow_from_png(out.getvalue())
    assert got_prompt == prompt and got_workflow == ui("sd15_txt2img")
    with pytest.raises(ConversionError):
        workflow_from_png(b"GIF89a")
