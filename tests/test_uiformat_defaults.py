"""UI import: every widget the saved values do not cover gets the value the frontend's widget starts with."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from comfyui_studio.engine.uiformat import convert

FIXTURES = Path(__file__).parent / "fixtures"
OBJECT_INFO = json.loads((FIXTURES / "comfyui" / "object_info.json").read_text())
templates_pkg = pytest.importorskip("comfyui_workflow_templates")
TEMPLATES = Path(templates_pkg.__file__).parent / "templates"


def template(name: str) -> dict:
    return json.loads((TEMPLATES / f"{name}.json").read_text())


@pytest.mark.parametrize(
    "name", ["flux_fill_inpaint_example", "flux_fill_outpaint_example", "image_flux.1_fill_dev_OneReward"]
)
def test_an_optional_widget_saved_without_values_gets_its_default(name: str) -> None:
    workflow = template(name)
    saved = next(n for n in workflow["nodes"] if n["id"] == 39)
    assert saved["type"] == "DifferentialDiffusion" and saved["widgets_values"] == []
    inputs = convert(workflow, OBJECT_INFO).graph["39"]["inputs"]
    assert inputs["strength"] == 1.0  # optional FLOAT, default 1.0: what the frontend sends
    assert set(inputs) == {"model", "strength"}


def node(widgets_values: object, inputs: list | None = None) -> dict:
    return {
        "id": 1,
        "type": "Probe",
        "mode": 0,
        "inputs": inputs or [],
        "outputs": [],
        "widgets_values": widgets_values,
    }


PROBE = {
    "input": {
        "required": {
            "count": ["INT", {"min": 1}],
            "scale": ["FLOAT", {}],
            "flag": ["BOOLEAN", {}],
            "name": ["STRING", {"multiline": True}],
            "mode": [["first", "second"], {"default": ""}],
            "kind": ["COMBO", {"options": ["a", "b"]}],
            "empty": [[], {}],
        },
        "optional": {
            "level": ["INT", {"default": 3}],
            "method": [["x", "y"], {"default": "y"}],
            "wired": ["STRING", {"forceInput": True, "default": "never"}],
        },
    },
    "input_order": {
        "required": ["count", "scale", "flag", "name", "mode", "kind", "empty"],
        "optional": ["level", "method", "wired"],
    },
    "output": [],
}


def convert_probe(workflow_node: dict) -> dict:
    workflow = {"nodes": [workflow_node], "links": []}
    return convert(workflow, {**OBJECT_INFO, "Probe": copy.deepcopy(PROBE)}).graph["1"]["inputs"]


def test_widget_defaults_follow_the_frontends_widget_constructors() -> None:
    assert convert_probe(node([])) == {
        "count": 0,  # INT and FLOAT without a default start at 0, whatever the minimum
        "scale": 0,
        "flag": False,
        "name": "",
        "mode": "first",  # an empty default falls back to the first choice, as getDefaultValue tests truthiness
        "kind": "a",  # the ["COMBO", {"options": …}] form too
        # "empty": a combo without choices holds undefined, which JSON drops
        "level": 3,
        "method": "y",
        # "wired": an input only (forceInput), no widget, nothing sent
    }


def test_saved_values_win_and_only_the_uncovered_tail_is_filled() -> None:
    inputs = convert_probe(node([5, 1.5]))
    assert (inputs["count"], inputs["scale"], inputs["flag"], inputs["level"]) == (5, 1.5, False, 3)
    named = convert_probe(node({"flag": True, "method": "x"}))
    assert (named["flag"], named["method"], named["count"]) == (True, "x", 0)


def wired_width(source: dict) -> dict:
    """EmptyImage's width widget wired to ``source`` (node 2); checked against the frontend in Chromium."""
    empty = {
        "id": 1,
        "type": "EmptyImage",
        "mode": 0,
        "inputs": [{"name": "width", "type": "INT", "widget": {"name": "width"}, "link": 1}],
        "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [9]}],
        "widgets_values": [256, 128, 1, 0],
    }
    preview = {"id": 3, "type": "PreviewImage", "mode": 0, "inputs": [{"name": "images", "type": "IMAGE", "link": 9}]}
    workflow = {"nodes": [empty, preview, source], "links": [[1, 2, 0, 1, 0, "INT"], [9, 1, 0, 3, 0, "IMAGE"]]}
    return convert(workflow, OBJECT_INFO).graph["1"]["inputs"]


def primitive_node(mode: int) -> dict:
    outputs = [{"name": "INT", "type": "INT", "links": [1], "widget": {"name": "width"}}]
    return {"id": 2, "type": "PrimitiveNode", "mode": mode, "outputs": outputs, "widgets_values": [640, "fixed"]}


def primitive_int(mode: int) -> dict:
    outputs = [{"name": "INT", "type": "INT", "links": [1]}]
    return {"id": 2, "type": "PrimitiveInt", "mode": mode, "inputs": [], "outputs": outputs, "widgets_values": [640]}


@pytest.mark.parametrize("mode", [0, 2, 4])
def test_a_primitive_node_gives_its_value_even_muted_or_bypassed(mode: int) -> None:
    assert wired_width(primitive_node(mode))["width"] == 640


def test_a_widget_wired_to_a_muted_node_is_left_out_as_the_frontend_does() -> None:
    inputs = wired_width(primitive_int(2))
    assert "width" not in inputs and inputs["height"] == 128


def test_a_widget_wired_to_a_bypassed_node_with_nothing_to_pass_keeps_its_own_value() -> None:
    assert wired_width(primitive_int(4))["width"] == 256
    assert wired_width(primitive_int(0))["width"] == ["2", 0]
