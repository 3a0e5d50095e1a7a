"""Civitai meta → prompt-bar text (engine/civitai_prompt.py): the free-form shapes and the conversion rules."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from comfyui_studio.engine import civitai_prompt as cp
from comfyui_studio.engine.shortcodes import DEFAULT_REGISTRY, parse

SAMPLES = Path(__file__).parent / "fixtures" / "civitai"
CODES = {d.code for d in DEFAULT_REGISTRY.definitions}
IMAGES = json.loads((SAMPLES / "images.json").read_text())["items"]


def convert(
    raw_meta: object, *, width: int | None = None, height: int | None = None, codes=CODES, local=None, embeddings=()
) -> cp.PromptResult:
    return cp.build_prompt(
        cp.normalize_meta(raw_meta),
        width=width,
        height=height,
        resources=cp.image_resources(raw_meta),
        codes=codes,
        local=local or {},
        local_embeddings=embeddings,
    )


def test_the_builtin_registry_has_every_code_the_conversion_emits() -> None:
    assert {"no", "ar", "seed", "steps", "cfg"} <= CODES


def test_generator_meta_becomes_text_and_shortcodes_the_parser_reads() -> None:
    result = convert(IMAGES[0]["meta"])
    assert result.text == (
        "masterpiece, best quality, 1girl, silver hair, glowing runes, night forest, volumetric light "
        "--no lowres, bad anatomy, worst quality, low quality, watermark --ar 2:3 --seed 1739201184 --steps 28 --cfg 5"
    )
    assert result.warnings == []
    parsed = parse(result.text, DEFAULT_REGISTRY)
    assert not parsed.errors
    assert [t.code for t in parsed.tokens if t.code] == ["no", "ar", "seed", "steps", "cfg"]


def test_the_nested_shape_reads_like_the_flat_one() -> None:
    nested = json.loads((SAMPLES / "images-nested-meta.json").read_text())["items"][0]["meta"]
    assert cp.normalize_meta(nested) == cp.normalize_meta(IMAGES[0]["meta"]) | {"model": None}
    assert cp.normalize_meta({"id": 5, "meta": None}) is None


def test_a1111_meta_with_a_lora_tag_and_no_lora_code() -> None:
    result = convert(IMAGES[1]["meta"], codes=CODES - {"lora"})
    assert "<lora:" not in result.text and "glowing_runes_v2" not in result.text
    assert result.text.startswith("score_9, score_8_up, 1girl, armor, glowing runes, dramatic lighting --no ")
    assert "--cfg 7" in result.text and "--ar 2:3" in result.text
    assert result.warnings == ["LoRA glowing_runes_v2:0.7 removed from the prompt: the studio has no --lora code yet"]
    meta = cp.normalize_meta(IMAGES[1]["meta"])
    assert meta is not None and meta["clip_skip"] == 2 and meta["model"] == "ponyDiffusionV6XL_v6StartWithThisOne"


def test_a_lora_tag_becomes_the_lora_code_with_the_local_file_name() -> None:
    sha = "5d1e0a9c7b32" + "0" * 52  # the sample's hashes entry is this SHA-256's first 12 digits
    local = {sha: cp.LocalFile("loras", "styles/runes_local.safetensors")}
    result = convert(IMAGES[1]["meta"], codes=CODES | {"lora"}, local=local)
    assert "--lora runes_local:0.7" in result.text and "<lora:" not in result.text
    by_type = {r["type"]: r for r in result.resources}
    assert by_type["lora"]["present"] is True and by_type["lora"]["local_name"] == "styles/runes_local.safetensors"
    assert by_type["checkpoint"]["present"] is False and by_type["checkpoint"]["hash"] == "67ab2fd8ec"


def test_embeddings_stay_when_installed_and_go_with_a_warning_otherwise() -> None:
    meta = {
        "prompt": "a fox, embedding:goodHands, forest",
        "negativePrompt": "(embedding:EasyNegative:1.2), blurry",
    }
    result = convert(meta, embeddings=["EasyNegative.safetensors"])
    assert result.text == "a fox, forest --no (embedding:EasyNegative:1.2), blurry"
    assert result.warnings == ["Embedding goodHands removed: it is not installed here"]


def test_hypernetworks_are_removed_with_a_warning() -> None:
    result = convert({"prompt": "a cat <hypernet:anime:1>"})
    assert result.text == "a cat" and "Hypernetwork anime" in result.warnings[0]


@pytest.mark.parametrize(
    ("width", "height", "ratio"),
    [
        (832, 1216, "2:3"),
        (1024, 1024, "1:1"),
        (1920, 1080, "16:9"),
        (1216, 832, "3:2"),
        (1000, 333, "1000:333"),
        (1600, 600, "8:3"),
    ],
)
def test_aspect_ratio_is_a_standard_one_when_near_else_exact(width: int, height: int, ratio: str) -> None:
    assert cp.aspect_ratio(width, height) == ratio


def test_only_codes_in_the_registry_are_emitted() -> None:
    result = convert(IMAGES[0]["meta"], codes={"no", "ar"})
    assert "--seed" not in result.text and "--steps" not in result.text and "--cfg" not in result.text
    assert len(result.warnings) == 3 and all("left out" in w for w in result.warnings)


def test_free_form_values() -> None:
    meta = {
        "prompt": "a--b",
        "seed": "4294967313",
        "steps": "30",
        "cfgScale": "4.5",
        "Clip skip": "2",
        "Model": {"name": "juggernautXL"},
        "width": 768,
        "height": 1344,
    }
    normal = cp.normalize_meta(meta)
    assert normal is not None
    assert normal["seed"] == 2**32 + 17 and normal["steps"] == 30 and normal["cfg_scale"] == 4.5
    assert normal["clip_skip"] == 2 and normal["model"] == "juggernautXL"
    result = convert(meta)
    assert result.text == "a-b --ar 9:16 --seed 4294967313 --steps 30 --cfg 4.5"


def test_a_comfy_graph_as_a_json_string() -> None:
    graph = {
        "3": {
            "class_type": "KSampler",
            "inputs": {
                "seed": 9,
                "steps": 25,
                "cfg": 6,
                "sampler_name": "euler",
                "positive": ["6", 0],
                "negative": ["7", 0],
            },
        },
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a harbour at dawn"}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "fog"}},
    }
    meta = {"comfy": json.dumps({"prompt": graph, "workflow": {}}), "Size": "1216x832"}
    assert convert(meta).text == "a harbour at dawn --no fog --ar 3:2 --seed 9 --steps 25 --cfg 6"
    assert cp.normalize_meta({"comfy": "{not json", "prompt": "x"})["prompt"] == "x"  # type: ignore[index]


def test_hidden_meta_gives_a_warning_and_no_text() -> None:
    result = convert(None)
    assert result.text == "" and result.warnings == ["This image has no generation data (its author hid it)"]


def test_resources_are_merged_from_every_source() -> None:
    meta = {
        "civitaiResources": [
            {"type": "checkpoint", "modelVersionId": 11},
            {"type": "lora", "weight": 0.5, "modelVersionId": 12},
        ],
        "resources": [{"name": "detail", "type": "lora", "weight": 0.3, "hash": "ABCDEF0123"}],
        "hashes": {"lora:detail": "abcdef0123", "model": "0123456789"},
        "additionalResources": [{"name": "vae-ft-mse", "type": "vae", "strength": 1}],
    }
    resources = cp.image_resources(meta)
    assert [(r.type, r.name, r.hash, r.model_version_id) for r in resources] == [
        ("checkpoint", "", "0123456789", 11),
        ("lora", "", None, 12),
        ("lora", "detail", "abcdef0123", None),
        ("vae", "vae-ft-mse", None, None),
    ]


def test_present_by_full_sha256_or_its_autov2_prefix() -> None:
    data = b"model bytes"
    sha = hashlib.sha256(data).hexdigest()
    local = {sha: cp.LocalFile("checkpoints", "m.safetensors")}
    assert cp.find_local(cp.Resource("checkpoint", "m", hash=sha), local) is not None
    assert cp.find_local(cp.Resource("checkpoint", "m", hash=sha[:10]), local) is not None
    assert cp.find_local(cp.Resource("checkpoint", "m", hash=sha[:8]), local) is None  # AutoV1 is not a prefix
    assert cp.find_local(cp.Resource("checkpoint", "m", hash=None), local) is None


def test_a_lora_tag_that_is_not_installed_becomes_the_lora_code_with_a_warning() -> None:
    result = convert(IMAGES[1]["meta"], codes=CODES)
    assert "--lora glowing_runes_v2:0.7" in result.text and "<lora:" not in result.text
    assert result.warnings == ["LoRA glowing_runes_v2:0.7 is not installed here: download it, or remove its --lora"]
