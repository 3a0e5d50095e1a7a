"""Midjourney's grammar and this ComfyUI's names: permutations, --repeat, :: weights, --iw, --lora and friends."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import jsonpatch
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from comfyui_studio.engine import grammar, planner
from comfyui_studio.engine.errors import StudioError
from comfyui_studio.engine.shortcodes import DEFAULT_REGISTRY, parse

GENERATE = json.loads((Path(__file__).parent.parent / "workflows" / "generate.api.json").read_text())
IMG2IMG = json.loads((Path(__file__).parent.parent / "workflows" / "img2img.api.json").read_text())
RESOURCES = grammar.Resources(
    checkpoints=("sd15.safetensors", "sdxl/juggernautXL_v9.safetensors"),
    loras=("add_detail.safetensors", "styles/film_grain.safetensors", "styles/film_noir.safetensors"),
    embeddings=("EasyNegative.safetensors", "bad_hands.pt"),
    samplers=("euler", "euler_ancestral", "dpmpp_2m", "dpmpp_2m_sde"),
    schedulers=("normal", "karras", "exponential"),
)


def texts(source: str) -> list[str]:
    return [e.text for e in grammar.permutations(source).expansions]


# -- permutations ------------------------------------------------------------------------------------------

PERMUTATIONS = [
    ("a bird", ["a bird"]),
    ("a {red, green} bird", ["a red bird", "a green bird"]),
    (
        "a {red, green, blue} bird --ar {1:1, 16:9}",
        [
            "a red bird --ar 1:1",
            "a red bird --ar 16:9",
            "a green bird --ar 1:1",
            "a green bird --ar 16:9",
            "a blue bird --ar 1:1",
            "a blue bird --ar 16:9",
        ],
    ),
    ("a {cat, dog {in a hat, on a boat}}", ["a cat", "a dog in a hat", "a dog on a boat"]),
    ("a {red|blue} fox", ["a {red|blue} fox"]),  # bars choose: ComfyUI's dynamic prompt, kept
    ("a {red, blue|green} fox", ["a {red, blue|green} fox"]),  # a bar at the group's level: dynamic
    ("a {x|{red, blue}} fox", ["a {x|red} fox", "a {x|blue} fox"]),  # permutations expand inside choices
    ("{cat}", ["{cat}"]),
    (r"a \{red, blue\} fox", [r"a \{red, blue\} fox"]),
    (r"{salt\, pepper, oil}", ["salt, pepper", "oil"]),
    ("a {red, blue", ["a {red, blue"]),  # never closed: text
    ("a {, big} house", ["a  house", "a big house"]),
    ("日本 {🐱, 🐶} 猫", ["日本 🐱 猫", "日本 🐶 猫"]),
]


@pytest.mark.parametrize(("source", "expected"), PERMUTATIONS)
def test_permutations_expand_in_order(source: str, expected: list[str]) -> None:
    assert texts(source) == expected


def test_more_than_forty_permutations_are_refused_without_expanding() -> None:
    got = grammar.permutations("{a,b,c,d,e,f,g} {a,b,c,d,e,f,g}")
    assert got.expansions == [] and got.count > 40 and "at most 40" in (got.error or "")
    huge = grammar.permutations("{a,b} " * 200)  # 2^200: counted, never built
    assert huge.expansions == [] and huge.error


def test_every_character_of_an_expansion_maps_back_to_the_same_typed_character() -> None:
    source = "a {red, green {dark, light}} bird --ar {1:1, 16:9}"
    for e in grammar.permutations(source).expansions:
        assert all(source[e.origin(i)] == ch for i, ch in enumerate(e.text))


brace_text = st.text(alphabet=st.sampled_from(list("ab {},|\\:-- 🐱é")), max_size=40)


@settings(max_examples=300, deadline=None)
@given(brace_text)
def test_permutations_never_raise_and_map_every_character_back(source: str) -> None:
    got = grammar.permutations(source, cap=10_000)
    assert got.error is None or got.expansions == []
    for e in got.expansions:
        for i, ch in enumerate(e.text):
            assert source[e.origin(i)] == ch


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.text(alphabet="abcxyz", min_size=1, max_size=5), min_size=1, max_size=3), max_size=3))
def test_no_option_word_is_lost(groups: list[list[str]]) -> None:
    source = " ".join("{" + ", ".join(options) + "}" if len(options) > 1 else options[0] for options in groups)
    made = texts(source)
    expected = 1
    for options in groups:
        expected *= len(options)
    assert len(made) == expected
    for options in groups:
        for word in options:
            assert any(word in m.split() for m in made)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_a_plan_of_any_text_never_raises_and_its_spans_are_utf16_offsets_of_the_text(text: str) -> None:
    prompt = planner.plan_prompt(text, DEFAULT_REGISTRY, None)
    limit = len(text.encode("utf-16-le")) // 2
    for item in [*prompt.errors, *prompt.warnings, *(t for p in prompt.plans for t in p.tokens)]:
        for key in ("start", "end"):
            value = item[key]
            assert value is None or (isinstance(value, int) and 0 <= value <= limit)


def test_errors_in_a_permuted_value_point_into_the_typed_text_in_utf16() -> None:
    text = "🐱 {cat, dog} --ar {1:1, 16:0}"
    prompt = planner.plan_prompt(text, DEFAULT_REGISTRY, GENERATE)
    assert len(prompt.plans) == 4
    (error,) = prompt.errors  # the same mistake in two expansions is reported once
    units = text.encode("utf-16-le")
    shown = units[2 * error["start"] : 2 * error["end"]].decode("utf-16-le")
    assert shown == "--ar {1:1, 16:0}" or shown.startswith("--ar")
    assert "16:0" in str(error["message"])


# -- --repeat ----------------------------------------------------------------------------------------------


def seeds(prompt: planner.PromptPlan) -> list[object]:
    return [p.graph["3"]["inputs"]["seed"] for p in prompt.plans if p.graph is not None]


def test_repeat_makes_n_jobs_each_with_its_own_seed() -> None:
    prompt = planner.plan_prompt("a fox --repeat 4", DEFAULT_REGISTRY, GENERATE, rng=random.Random(1))
    assert prompt.count == 4 and len(set(seeds(prompt))) == 4
    assert [p.text for p in prompt.plans] == ["a fox"] * 4  # a re-run of one job is one job
    given = planner.plan_prompt("a fox --seed 41 --repeat 3", DEFAULT_REGISTRY, GENERATE)
    assert seeds(given) == [41, 42, 43]


def test_repeat_times_permutations_is_capped_at_forty() -> None:
    assert planner.plan_prompt("{a, b} --repeat 20", DEFAULT_REGISTRY, GENERATE).count == 40
    over = planner.plan_prompt("{a, b, c} --repeat 20", DEFAULT_REGISTRY, GENERATE)
    assert (
        over.plans == [] and over.errors[0]["kind"] == "too_many_jobs" and "60 jobs" in str(over.errors[0]["message"])
    )
    assert parse("--repeat 41").errors[0].message == "--repeat 41: must be between 1 and 40"


# -- multi-prompts -----------------------------------------------------------------------------------------

MULTI = [
    ("cat:: dog::2", "(cat:0.67), (dog:1.33)", ""),
    ("hot:: dog", "hot, dog", ""),
    ("space:: ship::3", "(space:0.5), (ship:1.5)", ""),
    ("still life painting:: fruit::-0.5", "still life painting", "(fruit:0.5)"),
    ("a (red) cat::2 dog", r"(a \(red\) cat:1.33), (dog:0.67)", ""),
]


@pytest.mark.parametrize(("text", "positive", "negative"), MULTI)
def test_multi_prompt_weights_become_comfyui_emphasis(text: str, positive: str, negative: str) -> None:
    got = grammar.multiprompt(text)
    assert got is not None and (got.positive, got.negative, got.error) == (positive, negative, None)


def test_weights_that_add_up_to_nothing_are_an_error() -> None:
    assert grammar.multiprompt("cat::-1 dog::-1") is not None
    prompt = planner.plan_prompt("cat::-1 dog::-1", DEFAULT_REGISTRY, GENERATE)
    assert prompt.errors[0]["kind"] == "invalid_weights"


def test_negative_weights_go_to_the_negative_prompt_after_no() -> None:
    plan = planner.plan_prompt("still life:: fruit::-0.5 --no text", DEFAULT_REGISTRY, GENERATE).first
    assert plan.graph is not None
    assert plan.graph["6"]["inputs"]["text"] == "still life"
    assert plan.graph["7"]["inputs"]["text"].endswith(", text, (fruit:0.5)")
    assert (plan.positive, plan.negative) == ("still life", "(fruit:0.5)")
    assert [op["path"] for op in plan.ops].count("/7/inputs/text") == 1


# -- names ---------------------------------------------------------------------------------------------------

RESOLVE = [
    ("juggernaut", RESOURCES.checkpoints, "sdxl/juggernautXL_v9.safetensors"),
    ("SD15", RESOURCES.checkpoints, "sd15.safetensors"),
    ("sdxl/juggernautxl_v9", RESOURCES.checkpoints, "sdxl/juggernautXL_v9.safetensors"),
    ("add_det", RESOURCES.loras, "add_detail.safetensors"),
    ("film_grain", RESOURCES.loras, "styles/film_grain.safetensors"),
    ("DPMPP_2M", RESOURCES.samplers, "dpmpp_2m"),  # exact beats the longer prefix match
    ("kar", RESOURCES.schedulers, "karras"),
]


@pytest.mark.parametrize(("typed", "choices", "expected"), RESOLVE)
def test_names_match_case_insensitively_whole_or_by_their_start(typed: str, choices: tuple, expected: str) -> None:
    assert grammar.resolve(typed, choices, "thing", "x") == (expected, None)


def test_an_unknown_name_lists_the_near_misses_and_an_ambiguous_one_the_candidates() -> None:
    name, error = grammar.resolve("add_detial", RESOURCES.loras, "LoRA", "lora")
    assert name is None and error == "--lora add_detial: unknown LoRA; did you mean add_detail.safetensors?"
    name, error = grammar.resolve("film", RESOURCES.loras, "LoRA", "lora")
    assert name is None and "styles/film_grain.safetensors, styles/film_noir.safetensors" in (error or "")
    _, error = grammar.resolve("x", (), "checkpoint", "model")
    assert error == "--model x: no checkpoint is installed in this ComfyUI"


def test_model_sampler_scheduler_and_denoise_patch_the_generate_workflow() -> None:
    text = "a fox --model jugg --sampler dpmpp_2m_s --scheduler KARRAS --denoise 0.9"
    plan = planner.plan_prompt(text, DEFAULT_REGISTRY, GENERATE, resources=RESOURCES).first
    assert plan.errors == [] and plan.graph is not None
    assert plan.graph["4"]["inputs"]["ckpt_name"] == "sdxl/juggernautXL_v9.safetensors"
    sampler = plan.graph["3"]["inputs"]
    assert (sampler["sampler_name"], sampler["scheduler"], sampler["denoise"]) == ("dpmpp_2m_sde", "karras", 0.9)
    assert plan.codes == {"model": "jugg", "sampler": "dpmpp_2m_s", "scheduler": "KARRAS", "denoise": "0.9"}


def test_unknown_names_refuse_the_prompt_with_spans_on_the_name() -> None:
    text = "a fox --lora add_detial --sampler eulr, embedding:easyneg embedding:nothere"
    prompt = planner.plan_prompt(text, DEFAULT_REGISTRY, GENERATE, resources=RESOURCES)
    assert [e["kind"] for e in prompt.errors] == ["unknown_name"] * 3
    spans = [text[e["start"] : e["end"]] for e in prompt.errors]
    assert spans == ["add_detial", "eulr,", "nothere"]
    assert "did you mean add_detail.safetensors?" in str(prompt.errors[0]["message"])


def test_embeddings_are_written_with_their_installed_names_in_the_prompt_and_in_no() -> None:
    text = "a castle, embedding:easyneg --no embedding:bad_h"
    plan = planner.plan_prompt(text, DEFAULT_REGISTRY, GENERATE, resources=RESOURCES).first
    assert plan.errors == [] and plan.graph is not None
    assert plan.graph["6"]["inputs"]["text"] == "a castle, embedding:EasyNegative.safetensors"
    assert plan.graph["7"]["inputs"]["text"].endswith(", embedding:bad_hands.pt")


def test_two_loras_are_chained_between_the_checkpoint_and_its_consumers_as_exact_ops() -> None:
    text = "a fox --lora add_det:0.7 --lora film_grain"
    plan = planner.plan_prompt(text, DEFAULT_REGISTRY, GENERATE, resources=RESOURCES).first
    assert plan.errors == []
    fresh = max(int(k) for k in GENERATE) + 1
    a, b = str(fresh), str(fresh + 1)
    adds = [op for op in plan.ops if op["op"] == "add"]
    assert adds == [
        {"op": "add", "path": f"/{a}", "value": {"class_type": "LoraLoader", "inputs": {
            "model": ["4", 0], "clip": ["4", 1], "lora_name": "add_detail.safetensors", "strength_model": 0.7,
            "strength_clip": 0.7}, "_meta": {"title": "LoRA add_detail.safetensors"}}},
        {"op": "add", "path": f"/{b}", "value": {"class_type": "LoraLoader", "inputs": {
            "model": [a, 0], "clip": [a, 1], "lora_name": "styles/film_grain.safetensors", "strength_model": 1.0,
            "strength_clip": 1.0}, "_meta": {"title": "LoRA styles/film_grain.safetensors"}}},
    ]  # fmt: skip
    rewired = {op["path"]: op["value"] for op in plan.ops if op["op"] == "replace" and isinstance(op["value"], list)}
    assert rewired == {"/3/inputs/model": [b, 0], "/6/inputs/clip": [b, 1], "/7/inputs/clip": [b, 1]}
    assert jsonpatch.apply_patch(GENERATE, plan.ops) == plan.graph  # standard RFC 6902 on the graph as stored
    assert plan.codes["lora"] == ["add_det:0.7", "film_grain"]


def test_a_lora_weight_out_of_range_is_an_error() -> None:
    prompt = planner.plan_prompt("a --lora add_detail:11", DEFAULT_REGISTRY, GENERATE, resources=RESOURCES)
    assert "between -10 and 10" in str(prompt.errors[0]["message"])


def test_without_the_lists_a_preview_warns_that_names_were_not_checked() -> None:
    prompt = planner.plan_prompt("a --sampler eulr", DEFAULT_REGISTRY, GENERATE)
    assert prompt.errors == [] and "unchecked" in [w["kind"] for w in prompt.warnings]


# -- --iw --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("iw", "denoise"), [(0, 1.0), (0.5, 0.8), (1, 0.6), (1.5, 0.475), (2, 0.35), (3, 0.15)])
def test_image_weight_maps_to_denoise_along_the_documented_curve(iw: float, denoise: float) -> None:
    assert grammar.iw_denoise(iw) == pytest.approx(denoise)


def test_iw_sets_the_img2img_denoise_only_with_an_image() -> None:
    bindings = {"image": {"selector": "class:LoadImage", "input": "image"}}
    plan = planner.plan_prompt(
        "a fox --iw 2", DEFAULT_REGISTRY, IMG2IMG, bindings=bindings, bound={"image": "in.png"}
    ).first
    sampler = next(n for n in plan.graph.values() if n["class_type"] == "KSampler")  # type: ignore[union-attr]
    assert sampler["inputs"]["denoise"] == 0.35
    alone = planner.plan_prompt("a fox --iw 2", DEFAULT_REGISTRY, GENERATE).first
    assert any("needs an image prompt" in m for m in alone.messages)


def test_a_graph_the_lora_ops_cannot_fit_is_a_warning_not_a_crash() -> None:
    graph = {"1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}}}
    plan = planner.plan_prompt("--lora add_det", DEFAULT_REGISTRY, graph, resources=RESOURCES).first
    assert plan.ops == [] and any("--lora has no effect" in m for m in plan.messages)
    with pytest.raises(StudioError):
        raise planner.plan_prompt("--ar 16:0", DEFAULT_REGISTRY, graph).refusal("prompt")


# -- the docs say what the grammar does ------------------------------------------------------------------------

DOCS = (Path(__file__).parent.parent / "docs" / "shortcodes.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    start = DOCS.index(title)
    return DOCS[start : DOCS.index("\n## ", start + 1)]


def test_the_documented_multi_prompt_translations_are_what_the_planner_writes() -> None:
    rows = re.findall(
        r"^\| `([^`]+)` \| (?:`([^`]*)`)?[^|]*\| (?:`([^`]*)`)?[^|]*\|$", _section("## Multi-prompts"), re.M
    )
    assert len(rows) == 3
    for typed, positive, negative in rows:
        got = grammar.multiprompt(typed)
        assert got is not None and (got.positive, got.negative) == (positive, negative), typed


def test_the_documented_image_weight_curve_is_the_one_applied() -> None:
    section = _section("## Image prompts")
    weights = re.search(r"^\| `--iw` \|(.+)\|$", section, re.M)
    denoise = re.search(r"^\| `denoise` \|(.+)\|$", section, re.M)
    assert weights and denoise
    xs = [float(re.sub(r"[^\d.]", "", c.split("(")[0])) for c in weights.group(1).split("|")]
    ys = [float(c) for c in denoise.group(1).split("|")]
    assert [grammar.iw_denoise(x) for x in xs] == pytest.approx(ys)


def test_the_documented_permutation_examples_expand_as_written() -> None:
    section = _section("## Permutations")
    assert "a {red, green, blue} bird --ar {1:1, 16:9}" in section
    assert texts("a {red, green, blue} bird --ar {1:1, 16:9}")[:3] == [
        "a red bird --ar 1:1", "a red bird --ar 16:9", "a green bird --ar 1:1"
    ]  # fmt: skip
    assert texts("a {cat, dog {in a hat, on a boat}}") == ["a cat", "a dog in a hat", "a dog on a boat"]
    assert texts(r"{salt\, pepper, oil}") == ["salt, pepper", "oil"]
    assert planner.plan_prompt("a {cat, dog} --repeat 3", DEFAULT_REGISTRY, None).count == 6
    assert grammar.permutations("{a,b,c,d,e,f,g} {a,b,c,d,e,f,g}").error == (
        "The permutations make more than 40 prompts; at most 40 per submit"
    )


def test_a_permuted_codes_token_covers_its_whole_group_in_the_typed_text() -> None:
    text = "🐱 a {red, blue} fox --ar {1:1, 16:9} --seed 3"
    prompt = planner.plan_prompt(text, DEFAULT_REGISTRY, None)
    units = text.encode("utf-16-le")
    shown = [units[2 * t["start"] : 2 * t["end"]].decode("utf-16-le") for t in prompt.first.tokens]  # type: ignore[operator]
    assert shown == ["--ar {1:1, 16:9}", "--seed 3"]
