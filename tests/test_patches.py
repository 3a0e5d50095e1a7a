"""Shortcodes → JSON Patch on real API-format graphs; selectors and role finders."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path

import jsonpatch
import jsonpointer
import pytest

from comfyui_studio.engine import selectors
from comfyui_studio.engine.patches import apply_patches, build_patches, copy_graph, patch_graph
from comfyui_studio.engine.selectors import Graph, GraphIndex, parse_selector, select
from comfyui_studio.engine.shortcodes import (
    BUILTIN_CODES,
    Choice,
    CodeDefinition,
    Registry,
    Target,
    parse,
)

FIXTURES = Path(__file__).parent / "fixtures"
GRAPHS = FIXTURES / "graphs"
STANDINS = FIXTURES / "comfyui" / "workflows"


def load(name: str) -> Graph:
    path = GRAPHS / f"{name}.api.json"
    if not path.exists():
        path = STANDINS / f"{name}.api.json"
    return json.loads(path.read_text())


def run(name: str, prompt: str, registry: Registry | None = None, **kw: object):  # type: ignore[no-untyped-def]
    graph = load(name)
    before = copy.deepcopy(graph)
    result = parse(prompt) if registry is None else parse(prompt, registry)
    assert result.errors == []
    args = {"rng": random.Random(7), **kw}
    if registry is not None:
        args["registry"] = registry
    out, plan = patch_graph(graph, result, **args)  # type: ignore[arg-type]
    assert graph == before, "the stored graph is never mutated"
    json.dumps(plan.to_dict())
    return out, plan


def report(plan, code):  # type: ignore[no-untyped-def]
    return next(r for r in plan.reports if r.code == code)


# --- role finders


@pytest.mark.parametrize(
    ("name", "samplers", "positive", "negative", "size"),
    [
        ("sd15", ["3"], ["6"], ["7"], ["5"]),
        ("sdxl_refiner", ["10", "11"], ["20", "15"], ["7", "16"], ["5"]),
        ("flux_dev", ["16", "13"], ["6"], [], ["27"]),
        ("flux_schnell_ksampler", ["31"], ["6"], [], ["27"]),
        ("sdxl_40_nodes", ["18", "20"], ["11"], ["12"], ["17"]),
        ("t2i_standin", [], [], [], ["1"]),
        ("inpaint_standin", [], [], [], ["3"]),
        ("upscale_standin", [], [], [], []),
        ("progress_probe", [], [], [], ["1"]),
    ],
)
def test_role_finders(
    name: str, samplers: list[str], positive: list[str], negative: list[str], size: list[str]
) -> None:
    g = load(name)
    assert selectors.find_samplers(g) == samplers
    assert selectors.find_positive(g) == positive
    assert selectors.find_negative(g) == negative
    assert selectors.find_size_nodes(g) == size


def test_negative_through_controlnet_follows_the_output_index() -> None:
    g = load("sdxl_40_nodes")
    assert g["16"]["class_type"] == "ControlNetApplyAdvanced"
    assert selectors.find_negative(g) == ["12"]


def test_zeroed_negative_is_not_the_positive() -> None:
    assert selectors.find_negative(load("flux_schnell_ksampler")) == []


def test_flux_roles() -> None:
    g = load("flux_dev")
    assert selectors.find_noise(g) == ["25"]
    assert selectors.find_schedulers(g) == ["17"]
    assert selectors.find_flux_guidance(g) == ["26"]
    assert selectors.find_guiders(g) == []


# --- selectors


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("id:3", ["3"]),
        ("id:999", []),
        ("class:KSampler", ["3"]),
        ("class:ksampler", []),
        ("title:positive", ["6"]),
        ("title:Negative", ["7"]),
        ("has:seed", ["3"]),
        ("has:text", ["6", "7"]),
        ("role:sampler", ["3"]),
        ("role:negative", ["7"]),
        ("3", ["3"]),
        ("Positive", ["6"]),
        ("CLIPTextEncode", ["6", "7"]),
        ("nothing-like-this", []),
        ({"class": "CLIPTextEncode", "title": "Negative"}, ["7"]),
        ({"class": "CLIPTextEncode", "title": "Nope"}, []),
        ({"role": "positive", "has": "text"}, ["6"]),
        ("role:bogus", []),
        ("", []),
        ({}, []),
    ],
)
def test_selectors_on_sd15(selector: str | dict[str, str], expected: list[str]) -> None:
    assert select(load("sd15"), selector) == expected


def test_studio_input_selector() -> None:
    g = load("sdxl_refiner")
    assert select(g, "input:tile") == ["21"]
    assert select(g, "input:subject") == ["20"]
    assert select(g, "subject") == ["20"]
    assert select(g, "input:Base") == []


@pytest.mark.parametrize(
    ("selector", "error"),
    [
        ("role:bogus", "unknown role"),
        ("id:", "no value"),
        ({"colour": "red"}, "unknown selector key"),
        ({"class": ""}, "non-empty"),
        (42, "a selector is"),
    ],
)
def test_malformed_selectors_are_reported(selector: object, error: str) -> None:
    _, err = parse_selector(selector)
    assert err is not None and error in err


def test_selectors_skip_malformed_nodes() -> None:
    g = {"1": "junk", "2": {"class_type": "KSampler"}, "3": {"class_type": "KSampler", "inputs": {"seed": 1}}}
    assert select(g, "class:KSampler") == ["3"]  # type: ignore[arg-type]
    assert GraphIndex(g).role("positive") == []  # type: ignore[arg-type]


# --- built-ins on real graphs


def test_sd15_full_prompt() -> None:
    out, plan = run("sd15", "a cat --ar 16:9 --seed 42 --no text, watermark --steps 30 --cfg 6 --batch 2")
    assert (out["5"]["inputs"]["width"], out["5"]["inputs"]["height"]) == (704, 384)  # native 512² pixels
    assert out["3"]["inputs"]["seed"] == 42
    assert out["3"]["inputs"]["steps"] == 30
    assert out["3"]["inputs"]["cfg"] == 6.0
    assert out["5"]["inputs"]["batch_size"] == 2
    assert out["7"]["inputs"]["text"] == "blurry, lowres, text, watermark"
    assert plan.warnings == []
    assert {op["path"] for op in plan.ops} >= {"/5/inputs/width", "/3/inputs/seed", "/7/inputs/text"}
    assert all(op["op"] == "replace" for op in plan.ops)


def test_ar_uses_1mp_without_a_native_size() -> None:
    g = load("sd15")
    del g["5"]["inputs"]["width"]
    g["5"]["inputs"]["width"] = ["99", 0]  # wired: not a number
    plan = build_patches(g, parse("--ar 16:9"))
    assert {op["path"]: op["value"] for op in plan.ops} == {"/5/inputs/height": 768}


def test_size_sets_exact_dimensions() -> None:
    out, _ = run("sdxl_refiner", "x --size 832x1216")
    assert (out["5"]["inputs"]["width"], out["5"]["inputs"]["height"]) == (832, 1216)


def test_seed_hits_every_sampler_and_noise_seed() -> None:
    out, plan = run("sdxl_refiner", "x --seed 5")
    assert out["10"]["inputs"]["noise_seed"] == 5 and out["11"]["inputs"]["noise_seed"] == 5
    assert report(plan, "seed").nodes == ["10", "11"]
    out, _ = run("flux_dev", "x --seed 5")
    assert out["25"]["inputs"]["noise_seed"] == 5


def test_random_seed_comes_from_the_callers_rng() -> None:
    g = load("sd15")
    r = parse("x --seed random")
    a = build_patches(g, r, rng=random.Random(1))
    b = build_patches(g, r, rng=random.Random(1))
    assert a.ops == b.ops
    seed = report(a, "seed").value
    assert isinstance(seed, int) and 0 <= seed < 2**53
    assert a.ops == [{"op": "replace", "path": "/3/inputs/seed", "value": seed}]


def test_style_appends_suffix_and_negative() -> None:
    out, plan = run("sd15", "x --style vivid")
    assert out["6"]["inputs"]["text"].startswith("a photo of a cat, vivid colors")
    assert out["7"]["inputs"]["text"].startswith("blurry, lowres, dull")
    assert report(plan, "style").nodes == ["6", "7"]


def test_style_reaches_a_linked_studio_prompt_and_an_empty_negative() -> None:
    out, _ = run("sdxl_refiner", "x --style photo")
    assert out["20"]["inputs"]["value"].startswith("a lighthouse at dusk, professional photograph")
    assert out["6"]["inputs"]["text"] == ["20", 0]  # the link is kept
    assert out["7"]["inputs"]["text"].startswith("illustration")


def test_quality_multiplies_steps_in_either_order() -> None:
    a, _ = run("sd15", "x --steps 30 --q 2")
    b, _ = run("sd15", "x --q 2 --steps 30")
    assert a["3"]["inputs"]["steps"] == b["3"]["inputs"]["steps"] == 60
    c, _ = run("sd15", "x --q .25")
    assert c["3"]["inputs"]["steps"] == 5
    d, _ = run("flux_dev", "x --q 0.5")
    assert d["17"]["inputs"]["steps"] == 10


def test_stylize_maps_to_cfg_and_flux_guidance() -> None:
    out, _ = run("sd15", "x --s 100")
    assert out["3"]["inputs"]["cfg"] == 7.0
    out, _ = run("sd15", "x --stylize 1000")
    assert out["3"]["inputs"]["cfg"] == 3.0
    out, _ = run("sd15", "x --s 0")
    assert out["3"]["inputs"]["cfg"] == 9.0
    out, plan = run("flux_dev", "x --s 1000")
    assert out["26"]["inputs"]["guidance"] == 1.5
    assert plan.warnings == []


def test_stylize_leaves_distilled_cfg_alone_and_says_so() -> None:
    out, plan = run("flux_schnell_ksampler", "x --s 500")
    assert out["31"]["inputs"]["cfg"] == 1.0
    (warning,) = plan.warnings
    assert warning.startswith("--stylize left cfg of node 31 at 1")


def test_chaos_switches_to_ancestral_and_lowers_guidance() -> None:
    out, _ = run("sd15", "x --chaos 100")
    assert out["3"]["inputs"]["sampler_name"] == "euler_ancestral"
    assert out["3"]["inputs"]["cfg"] == pytest.approx(8.0 * 0.6)
    out, plan = run("sd15", "x --chaos 0")
    assert out == load("sd15") and plan.ops == [] and plan.warnings == []
    out, _ = run("sdxl_refiner", "x --chaos 50")
    assert out["10"]["inputs"]["sampler_name"] == "dpmpp_2m_sde"
    out, _ = run("flux_dev", "x --chaos 50")
    assert out["16"]["inputs"]["sampler_name"] == "euler_ancestral"
    assert out["26"]["inputs"]["guidance"] == pytest.approx(3.5 * 0.8)


def test_ar_keeps_model_sampling_flux_in_step() -> None:
    out, plan = run("flux_dev", "x --ar 9:16")
    assert (out["27"]["inputs"]["width"], out["27"]["inputs"]["height"]) == (768, 1344)
    assert (out["30"]["inputs"]["width"], out["30"]["inputs"]["height"]) == (768, 1344)
    assert report(plan, "ar").nodes == ["27", "30"]


@pytest.mark.parametrize(
    ("name", "prompt", "code"),
    [
        ("flux_dev", "x --no text", "no"),
        ("flux_schnell_ksampler", "x --no text", "no"),
        ("sd15", "x --tile", "tile"),
        ("upscale_standin", "x --ar 16:9", "ar"),
        ("upscale_standin", "x --seed 1", "seed"),
        ("t2i_standin", "x --steps 20", "steps"),
        ("t2i_standin", "x --style vivid", "style"),
        ("inpaint_standin", "x --cfg 5", "cfg"),
        ("progress_probe", "x --q 2", "quality"),
    ],
)
def test_codes_a_workflow_cannot_honour_warn(name: str, prompt: str, code: str) -> None:
    out, plan = run(name, prompt)
    (warning,) = report(plan, code).warnings
    assert warning.startswith(f"--{code} has no effect on this workflow")
    assert out == load(name)


def test_standin_t2i_takes_ar_and_batch() -> None:
    out, plan = run("t2i_standin", "x --ar 16:9 --batch 3")
    # EmptyImage at 256² keeps its pixel count: 341×192 → multiples of 64.
    assert (out["1"]["inputs"]["width"], out["1"]["inputs"]["height"]) == (320, 192)
    assert out["1"]["inputs"]["batch_size"] == 3
    assert plan.warnings == []


def test_studio_tile_input() -> None:
    out, _ = run("sdxl_refiner", "x --tile")
    assert out["21"]["inputs"]["value"] is True


def test_forty_node_graph_everything() -> None:
    out, plan = run("sdxl_40_nodes", "astronaut --ar 2:3 --seed 9 --style anime --no hat --steps 40 --q 0.5 --chaos 10")
    assert (out["17"]["inputs"]["width"], out["17"]["inputs"]["height"]) == (832, 1280)
    assert out["18"]["inputs"]["seed"] == out["20"]["inputs"]["seed"] == 9
    assert out["18"]["inputs"]["steps"] == 20
    assert out["12"]["inputs"]["text"] == "lowres, bad anatomy, photo, realistic, 3d render, hat"
    assert out["11"]["inputs"]["text"].endswith("clean line art")
    assert plan.warnings == []


# --- user-defined codes


def test_user_code_with_title_selector_and_templates() -> None:
    defs = [
        CodeDefinition(
            "mood",
            "string",
            targets=(Target("title:Positive", "text", "{value}, masterpiece", mode="append"),),
        ),
        CodeDefinition(
            "look",
            "enum",
            choices=(Choice("soft"), Choice("hard")),
            targets=(
                Target("class:KSampler", "", {"soft": {"cfg": 4, "scheduler": "karras"}, "hard": {"cfg": 12}}),
                Target("id:7", "text", {"soft": "harsh light"}, mode="append"),
            ),
        ),
    ]
    reg = Registry.with_user_codes(defs)
    out, plan = run("sd15", 'x --mood "golden hour" --look soft', reg)
    assert out["6"]["inputs"]["text"] == "a photo of a cat, golden hour, masterpiece"
    assert out["3"]["inputs"]["cfg"] == 4 and out["3"]["inputs"]["scheduler"] == "karras"
    assert out["7"]["inputs"]["text"] == "blurry, lowres, harsh light"
    out, _ = run("sd15", "x --look hard", reg)
    assert out["3"]["inputs"]["cfg"] == 12
    assert out["7"]["inputs"]["text"] == "blurry, lowres"


def test_selector_matching_several_nodes_patches_all() -> None:
    reg = Registry.with_user_codes([CodeDefinition("enc", "string", targets=(Target("class:CLIPTextEncode", "text"),))])
    out, plan = run("sd15", "x --enc hello", reg)
    assert out["6"]["inputs"]["text"] == out["7"]["inputs"]["text"] == "hello"
    assert report(plan, "enc").nodes == ["6", "7"]


def test_target_limited_to_one_workflow() -> None:
    reg = Registry.with_user_codes(
        [CodeDefinition("d", "float", targets=(Target("class:KSampler", "denoise", workflow="wf-a"),))]
    )
    out, plan = run("sd15", "x --d 0.5", reg, workflow="wf-a")
    assert out["3"]["inputs"]["denoise"] == 0.5
    out, plan = run("sd15", "x --d 0.5", reg, workflow="wf-b")
    assert out["3"]["inputs"]["denoise"] == 1.0
    assert report(plan, "d").warnings


def test_user_ratio_code_renders_width_and_height_typed() -> None:
    reg = Registry.with_user_codes(
        [CodeDefinition("canvas", "ratio", targets=(Target("class:EmptyLatentImage", "width", "{width}"),))]
    )
    out, _ = run("sd15", "x --canvas 2:1", reg)
    assert out["5"]["inputs"]["width"] == 704


def test_edited_builtin_style_row_is_used() -> None:
    style = next(d for d in BUILTIN_CODES if d.code == "style")
    edited = CodeDefinition.from_dict(
        {**style.to_dict(), "choices": [{"value": "noir", "extras": {"suffix": "film noir", "negative": ""}}]}
    )
    reg = Registry.with_user_codes([edited])
    out, _ = run("sd15", "x --style noir", reg)
    assert out["6"]["inputs"]["text"] == "a photo of a cat, film noir"
    assert out["7"]["inputs"]["text"] == "blurry, lowres"


# --- applying


def test_apply_copies_once_and_leaves_the_input_alone() -> None:
    g = load("sdxl_40_nodes")
    ops = [{"op": "replace", "path": "/18/inputs/seed", "value": 1}]
    out = apply_patches(g, ops)  # type: ignore[arg-type]
    assert out["18"]["inputs"]["seed"] == 1 and g["18"]["inputs"]["seed"] == 42
    out["18"]["inputs"]["model"][0] = "zzz"
    assert g["18"]["inputs"]["model"][0] != "zzz"


@pytest.mark.parametrize("name", ["sd15", "sdxl_refiner", "flux_dev", "sdxl_40_nodes", "inpaint_standin"])
def test_copy_graph_equals_deepcopy_and_shares_no_containers(name: str) -> None:
    g = load(name)
    c = copy_graph(g)
    assert c == copy.deepcopy(g)
    seen = set()

    def ids(x: object) -> None:
        if isinstance(x, dict | list):
            seen.add(id(x))
            for v in x.values() if isinstance(x, dict) else x:
                ids(v)

    ids(g)
    stack: list[object] = [c]
    while stack:
        x = stack.pop()
        if isinstance(x, dict | list):
            assert id(x) not in seen
            stack.extend(x.values() if isinstance(x, dict) else x)


def test_ops_are_valid_rfc6902_and_match_jsonpatch() -> None:
    g = load("sdxl_refiner")
    plan = build_patches(g, parse("x --ar 3:2 --seed 3 --style vivid --no cars"))
    assert jsonpatch.apply_patch(g, plan.ops) == apply_patches(g, plan.ops)


def test_json_pointer_escapes_odd_node_ids() -> None:
    g = {"a/b~c": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 2, "cfg": 3.0}}}
    plan = build_patches(g, parse("--seed 9"))  # type: ignore[arg-type]
    assert plan.ops[0]["path"] == "/a~1b~0c/inputs/seed"
    assert apply_patches(g, plan.ops)["a/b~c"]["inputs"]["seed"] == 9  # type: ignore[arg-type]


def test_invalid_and_overridden_tokens_do_nothing() -> None:
    g = load("sd15")
    plan = build_patches(g, parse("x --seed 1 --seed 2 --steps 0"))
    assert plan.ops == [{"op": "replace", "path": "/3/inputs/seed", "value": 2}]


def test_one_op_per_input_even_when_several_codes_write_it() -> None:
    g = load("sd15")
    plan = build_patches(g, parse("x --steps 30 --q 2 --style vivid --no cars"))
    paths = [op["path"] for op in plan.ops]
    assert len(paths) == len(set(paths))
    out = apply_patches(g, plan.ops)
    assert out["3"]["inputs"]["steps"] == 60
    assert out["7"]["inputs"]["text"] == "blurry, lowres, dull, washed out, muted colors, cars"


@pytest.mark.parametrize(
    ("ops", "error"),
    [
        ([{"op": "explode", "path": "/3"}], jsonpatch.InvalidJsonPatch),
        (["nope"], jsonpatch.InvalidJsonPatch),
        ([{"op": "replace", "path": "/999/inputs/seed", "value": 1}], jsonpointer.JsonPointerException),
        ([{"op": "test", "path": "/3/inputs/seed", "value": -1}], jsonpatch.JsonPatchTestFailed),
    ],
)
def test_apply_rejects_bad_ops_with_jsonpatch_errors(ops: list[object], error: type[Exception]) -> None:
    with pytest.raises(error):
        apply_patches(load("sd15"), ops)  # type: ignore[arg-type]


def test_apply_supports_every_rfc6902_operation() -> None:
    ops = [
        {"op": "add", "path": "/3/inputs/extra", "value": [1, 2]},
        {"op": "copy", "from": "/3/inputs/extra", "path": "/3/inputs/copy"},
        {"op": "move", "from": "/3/inputs/copy", "path": "/3/inputs/moved"},
        {"op": "remove", "path": "/3/inputs/extra"},
        {"op": "test", "path": "/3/inputs/moved", "value": [1, 2]},
    ]
    out = apply_patches(load("sd15"), ops)  # type: ignore[arg-type]
    assert out["3"]["inputs"]["moved"] == [1, 2] and "extra" not in out["3"]["inputs"]
