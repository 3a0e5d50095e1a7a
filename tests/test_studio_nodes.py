"""Studio nodes called directly, as ComfyUI's executor calls them (no ComfyUI needed)."""

from __future__ import annotations

import pytest

from comfyui_studio.engine.params import discover_parameters
from comfyui_studio.nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
from comfyui_studio.nodes.studio_nodes import (
    ANY,
    StudioAspectRatio,
    StudioChoice,
    StudioFloat,
    StudioInt,
    StudioPrompt,
    StudioSaveImage,
    StudioText,
)


@pytest.mark.parametrize("name,cls", sorted(NODE_CLASS_MAPPINGS.items()))
def test_every_node_follows_comfyuis_v1_contract(name: str, cls: type) -> None:
    assert name.startswith("Studio") and NODE_DISPLAY_NAME_MAPPINGS[name].startswith("Studio ")
    spec = cls.INPUT_TYPES()
    assert set(spec) <= {"required", "optional", "hidden"}
    for section in ("required", "optional"):
        for input_name, definition in spec.get(section, {}).items():
            assert isinstance(definition, tuple) and definition, (name, input_name)
    assert cls.CATEGORY == "Studio" and isinstance(cls.RETURN_TYPES, tuple)
    assert callable(getattr(cls(), cls.FUNCTION))
    if hasattr(cls, "RETURN_NAMES"):
        assert len(cls.RETURN_NAMES) == len(cls.RETURN_TYPES)


def test_inputs_pass_their_value_through_and_check_their_limits() -> None:
    assert StudioText().run("caption", "hello") == ("hello",)
    assert StudioInt().run("steps", 20, 1, 50) == (20,)
    assert StudioFloat().run("denoise", 0.5, 0.0, 1.0) == (0.5,)
    with pytest.raises(ValueError, match="outside"):
        StudioInt().run("steps", 80, 1, 50)
    assert StudioChoice().run("sampler", "euler", "euler\ndpmpp_2m\n") == ("euler",)
    with pytest.raises(ValueError, match="not one of"):
        StudioChoice().run("sampler", "wombat", "euler\ndpmpp_2m")
    assert not (ANY != ["euler", "dpmpp_2m"]), "a choice links into any list input"


def test_prompt_node_uses_the_shortcode_parser() -> None:
    out = StudioPrompt().run(
        "a lighthouse --ar 16:9 --seed 42 --steps 30 --cfg 5 --no text, blur", "ugly", 1024, 1024, 0, 25, 7.0
    )
    prompt, negative, width, height, seed, steps, cfg = out
    assert prompt == "a lighthouse" and negative == "ugly, text, blur"
    assert (width, height) == (1344, 768) and (seed, steps, cfg) == (42, 30, 5.0)
    with pytest.raises(ValueError):
        StudioPrompt().run("x --ar 16:0", "", 1024, 1024, 0, 25, 7.0)


@pytest.mark.parametrize(
    "ratio,mp,size", [("1:1", 1.0, (1024, 1024)), ("16:9", 1.0, (1344, 768)), ("2:3", 0.25, (448, 640))]
)
def test_aspect_ratio_gives_multiples_of_64(ratio: str, mp: float, size: tuple[int, int]) -> None:
    width, height = StudioAspectRatio().run(ratio, mp)
    assert (width, height) == size and width % 64 == 0 and height % 64 == 0


def test_aspect_ratio_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        StudioAspectRatio().run("wide", 1.0)


def test_save_image_collects_the_studio_parameters_of_the_graph() -> None:
    graph = {
        "1": {"class_type": "StudioInt", "inputs": {"name": "steps", "value": 30}},
        "2": {"class_type": "StudioSeed", "inputs": {"name": "seed", "seed": 7}},
        "3": {"class_type": "StudioText", "inputs": {"name": "caption", "value": ["9", 0]}},
        "4": {"class_type": "KSampler", "inputs": {"seed": 1}},
    }
    assert StudioSaveImage.studio_parameters(graph) == {"steps": 30, "seed": 7}


def test_studio_input_nodes_declare_the_graphs_parameters() -> None:
    graph = {
        "1": {"class_type": "StudioInt", "inputs": {"name": "steps", "value": 30, "min": 1, "max": 60}},
        "2": {"class_type": "StudioChoice", "inputs": {"name": "sampler", "value": "euler", "choices": "euler\nddim"}},
        "3": {"class_type": "KSampler", "inputs": {"steps": ["1", 0], "sampler_name": ["2", 0]}},
    }
    params = {p["name"]: p for p in discover_parameters(graph, {})}
    assert params["steps"] == {
        "name": "steps",
        "type": "INT",
        "default": 30,
        "min": 1,
        "max": 60,
        "label": "Steps",
        "selector": "input:steps",
        "input": "value",
    }
    assert params["sampler"]["choices"] == ["euler", "ddim"]
