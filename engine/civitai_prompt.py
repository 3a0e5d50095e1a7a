"""Civitai image metadata: its free-form `meta` made regular, and turned into prompt-bar text.

`meta` is free-form (API.md §5): flat or nested `{id, meta}`, `clipSkip` or `"Clip skip"` (a string),
`Model` as a string or an object, `Size` as "WxH" or `width`/`height`, numbers as strings, `comfy` as a
JSON string of the graph. `normalize_meta` reads all of these into one shape; `image_resources` lists the
checkpoint, LoRAs, embeddings and VAE it names; `build_prompt` writes the studio's prompt text, emitting a
shortcode only when the user's registry has it and never leaving an A1111 tag (`<lora:…>`) in the text.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from .jsoncodec import JSON

ResourceType = Literal["checkpoint", "lora", "embedding", "vae", "other"]
FOLDERS: dict[str, str] = {
    "checkpoint": "checkpoints",
    "lora": "loras",
    "embedding": "embeddings",
    "vae": "vae",
    "upscaler": "upscale_models",
}
STANDARD_RATIOS: tuple[tuple[int, int], ...] = (
    (1, 1),
    (4, 3),
    (3, 4),
    (3, 2),
    (2, 3),
    (16, 9),
    (9, 16),
    (21, 9),
    (9, 21),
    (5, 4),
    (4, 5),
)
RATIO_TOLERANCE = 0.03  # a size within 3 % of a standard ratio is that ratio (832x1216 is 2:3)
MAX_COMFY_CHARS = 2_000_000  # a `comfy` graph bigger than this is not read

_TAG = re.compile(r"<\s*(lora|lyco|locon|hypernet)\s*:\s*([^:>]+?)\s*(?::\s*([^:>]*?)\s*)?(?::[^>]*)?>", re.I)
_EMBEDDING = re.compile(r"\(?\bembedding:([\w.\-]+)(?::([\d.]+))?\)?", re.I)
_DASHES = re.compile(r"-{2,}")


@dataclass(frozen=True)
class Resource:
    type: str  # checkpoint | lora | embedding | vae | other
    name: str
    hash: str | None = None
    model_version_id: int | None = None
    weight: float | None = None
    page_url: str | None = None
    kind: str = ""  # Civitai's own type word, kept for the folder of "other" (an upscaler)

    def to_json(self) -> dict[str, JSON]:
        return {
            "type": self.type,
            "name": self.name,
            "hash": self.hash,
            "model_version_id": self.model_version_id,
            "weight": self.weight,
        }


@dataclass(frozen=True)
class LocalFile:
    folder: str
    name: str  # as ComfyUI lists it


@dataclass
class PromptResult:
    text: str
    warnings: list[str] = field(default_factory=list)
    resources: list[dict[str, JSON]] = field(default_factory=list)


# --- reading free-form values ---------------------------------------------------------------------


def _str(value: object) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return str(value)
    return None


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"-?\d{1,30}", text):
            return int(text)
        if re.fullmatch(r"-?\d+\.0*", text):
            return int(float(text))
    return None


def _float(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _get(meta: Mapping[str, object], *names: str) -> object:
    """The first of ``names`` present, matched without case, spaces or underscores ("Clip skip" = clipSkip)."""
    folded = {re.sub(r"[\s_]", "", k).casefold(): v for k, v in meta.items()}
    for name in names:
        key = re.sub(r"[\s_]", "", name).casefold()
        if key in folded and folded[key] is not None:
            return folded[key]
    return None


def unwrap_meta(raw: object) -> Mapping[str, object] | None:
    """The flat meta of either shape: `{prompt, …}` or the legacy nested `{id, meta: {…} | null}`."""
    if not isinstance(raw, Mapping):
        return None
    inner = raw.get("meta")
    if "id" in raw and (isinstance(inner, Mapping) or inner is None) and "prompt" not in raw:
        return inner if isinstance(inner, Mapping) else None
    return raw


def _size(meta: Mapping[str, object]) -> tuple[int | None, int | None]:
    size = _str(_get(meta, "Size"))
    if size:
        match = re.fullmatch(r"(\d{1,5})\s*[x×*]\s*(\d{1,5})", size)
        if match:
            return int(match.group(1)), int(match.group(2))
    return _int(_get(meta, "width")), _int(_get(meta, "height"))


def _model_name(meta: Mapping[str, object]) -> str | None:
    model = _get(meta, "Model")
    if isinstance(model, Mapping):
        for key in ("name", "modelName", "model_name", "title"):
            name = _str(model.get(key))
            if name:
                return name
        return None
    return _str(model)


def _comfy_graph(meta: Mapping[str, object]) -> dict[str, object] | None:
    """The API graph in `comfy` (a JSON string, or already an object): `{prompt: {...}}` or the graph itself."""
    comfy = meta.get("comfy")
    if isinstance(comfy, str):
        if len(comfy) > MAX_COMFY_CHARS:
            return None
        try:
            comfy = json.loads(comfy)
        except ValueError:
            return None
    if not isinstance(comfy, dict):
        return None
    graph = comfy.get("prompt", comfy)
    if isinstance(graph, str):
        try:
            graph = json.loads(graph)
        except ValueError:
            return None
    return graph if isinstance(graph, dict) else None


def _comfy_values(graph: Mapping[str, object]) -> dict[str, object]:
    """Prompt, negative and sampler values from a ComfyUI graph's first sampler with text encoders."""

    def node(ref: object) -> Mapping[str, object] | None:
        if isinstance(ref, list) and ref and isinstance(ref[0], str | int):
            found = graph.get(str(ref[0]))
            return found if isinstance(found, Mapping) else None
        return None

    def text_of(ref: object, depth: int = 0) -> str | None:
        found = node(ref)
        if found is None or depth > 4:
            return None
        inputs = found.get("inputs")
        if not isinstance(inputs, Mapping):
            return None
        for key in ("text", "text_g", "prompt"):
            if isinstance(inputs.get(key), str):
                return str(inputs[key])
        for key in ("conditioning", "conditioning_1", "positive"):
            if key in inputs:
                return text_of(inputs[key], depth + 1)
        return None

    out: dict[str, object] = {}
    for entry in graph.values():
        if not isinstance(entry, Mapping):
            continue
        inputs = entry.get("inputs")
        if not isinstance(inputs, Mapping) or "positive" not in inputs:
            continue
        out["prompt"] = text_of(inputs.get("positive"))
        out["negativePrompt"] = text_of(inputs.get("negative"))
        for key, name in (("seed", "seed"), ("noise_seed", "seed"), ("steps", "steps"), ("cfg", "cfgScale")):
            if key in inputs and not isinstance(inputs[key], list):
                out[name] = inputs[key]
        if isinstance(inputs.get("sampler_name"), str):
            out["sampler"] = inputs["sampler_name"]
        break
    return out


def normalize_meta(raw: object) -> dict[str, JSON] | None:
    """The contract's meta: prompt, negative_prompt, sampler, steps, cfg_scale, seed, width, height, clip_skip,
    model; None when the image has none (hidden by its author, or not asked with withMeta)."""
    meta = unwrap_meta(raw)
    if meta is None:
        return None
    graph = _comfy_graph(meta)
    if graph is not None:
        extra = {k: v for k, v in _comfy_values(graph).items() if v is not None}
        meta = {**extra, **{k: v for k, v in meta.items() if v is not None}}
    width, height = _size(meta)
    return {
        "prompt": _str(_get(meta, "prompt")),
        "negative_prompt": _str(_get(meta, "negativePrompt", "negative_prompt", "Negative prompt")),
        "sampler": _str(_get(meta, "sampler", "sampler_name")),
        "steps": _int(_get(meta, "steps")),
        "cfg_scale": _float(_get(meta, "cfgScale", "cfg", "CFG scale")),
        "seed": _int(_get(meta, "seed")),
        "width": width,
        "height": height,
        "clip_skip": _int(_get(meta, "clipSkip", "Clip skip")),
        "model": _model_name(meta),
    }


def resource_type(kind: str) -> str:
    word = kind.strip().casefold().replace(" ", "")
    if word in ("model", "checkpoint", "ckpt"):
        return "checkpoint"
    if word in ("lora", "locon", "lycoris", "lyco", "dora"):
        return "lora"
    if word in ("embed", "embedding", "textualinversion", "ti"):
        return "embedding"
    if word == "vae":
        return "vae"
    return "other"


def image_resources(raw: object) -> list[Resource]:
    """Checkpoint, LoRAs, embeddings and VAE that a meta names: `civitaiResources`, `resources`, `hashes`,
    `additionalResources`, `Model`/`Model hash`; one entry per resource (merged by version id, then type and name)."""
    meta = unwrap_meta(raw)
    if meta is None:
        return []
    found: list[Resource] = []

    def add(item: Resource) -> None:
        for i, old in enumerate(found):
            same_version = item.model_version_id is not None and item.model_version_id == old.model_version_id
            same_name = bool(item.name) and item.type == old.type and item.name.casefold() == old.name.casefold()
            # an image has one checkpoint: a nameless one (a version id, a bare hash) is the named one
            one_checkpoint = item.type == old.type == "checkpoint" and not (item.name and old.name)
            if same_version or same_name or one_checkpoint:
                found[i] = replace(
                    old,
                    name=old.name or item.name,
                    hash=old.hash or item.hash,
                    model_version_id=old.model_version_id or item.model_version_id,
                    weight=old.weight if old.weight is not None else item.weight,
                )
                return
        found.append(item)

    for entry in _list(meta.get("civitaiResources")):
        kind = _str(entry.get("type")) or ""
        add(
            Resource(
                resource_type(kind),
                _str(entry.get("modelVersionName")) or _str(entry.get("name")) or "",
                model_version_id=_int(entry.get("modelVersionId")),
                weight=_float(entry.get("weight", entry.get("strength"))),
                kind=kind,
            )
        )
    for entry in _list(meta.get("resources")):
        kind = _str(entry.get("type")) or ""
        add(
            Resource(
                resource_type(kind),
                _str(entry.get("name")) or "",
                hash=_hash(entry.get("hash")),
                weight=_float(entry.get("weight")),
                kind=kind,
            )
        )
    for entry in _list(meta.get("additionalResources")):
        kind = _str(entry.get("type")) or ""
        add(
            Resource(
                resource_type(kind), _str(entry.get("name")) or "", weight=_float(entry.get("strength")), kind=kind
            )
        )
    model = _model_name(meta)
    model_hash = _hash(_get(meta, "Model hash"))
    hashes = meta.get("hashes")
    if isinstance(hashes, Mapping):
        for key, value in hashes.items():
            if not isinstance(key, str):
                continue
            kind, _, name = key.partition(":")
            if kind == "model":
                model_hash = model_hash or _hash(value)
            elif name:
                add(Resource(resource_type(kind), name.strip(), hash=_hash(value), kind=kind))
    if model or model_hash:
        add(Resource("checkpoint", model or "", hash=model_hash, kind="model"))
    return [r for r in found if r.name or r.hash or r.model_version_id is not None]


def _list(value: object) -> list[Mapping[str, object]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _hash(value: object) -> str | None:
    text = _str(value)
    return text.lower() if text and re.fullmatch(r"[0-9a-fA-F]{8,64}", text) else None


# --- prompt text ------------------------------------------------------------------------------------


def aspect_ratio(width: int, height: int) -> str:
    """A standard ratio within RATIO_TOLERANCE of width:height, else the exact reduced ratio."""
    actual = width / height
    best = min(STANDARD_RATIOS, key=lambda r: abs(math.log(actual * r[1] / r[0])))
    if abs(actual / (best[0] / best[1]) - 1) <= RATIO_TOLERANCE:
        return f"{best[0]}:{best[1]}"
    divisor = math.gcd(width, height)
    return f"{width // divisor}:{height // divisor}"


def find_local(resource: Resource, local: Mapping[str, LocalFile]) -> LocalFile | None:
    """The local file whose SHA-256 is the resource's hash, or starts with it (AutoV2 is its first 10 digits)."""
    if not resource.hash:
        return None
    digest = resource.hash.lower()
    if digest in local:
        return local[digest]
    if len(digest) >= 10:
        for sha, file in local.items():
            if sha.startswith(digest):
                return file
    return None


def _stem(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[0] if "." in base else base


def _fmt(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else f"{number:g}"


def _tidy(text: str) -> str:
    text = _DASHES.sub("-", text)  # a "--" in Civitai's text would read as a shortcode
    text = re.sub(r"\(\s*\)", "", text)
    text = re.sub(r"\s*,(\s*,)+", ",", text)
    text = re.sub(r"[ \t]+", " ", text)
    text = re.sub(r"\s+,", ",", text)
    return text.strip().strip(",").strip()


def _rewrite(
    text: str,
    resources: list[Resource],
    codes: Collection[str],
    local: Mapping[str, LocalFile],
    local_embeddings: Collection[str],
    warnings: list[str],
    loras: list[str],
) -> str:
    def lora(match: re.Match[str]) -> str:
        kind, name, weight_text = match.group(1).lower(), match.group(2), match.group(3)
        weight = _float(weight_text) if weight_text else None
        shown = f"{name}:{_fmt(weight)}" if weight is not None else name
        if kind == "hypernet":
            warnings.append(f"Hypernetwork {name} removed: the studio does not load hypernetworks")
            return ""
        if "lora" in codes:
            match_res = next((r for r in resources if r.type == "lora" and r.name.casefold() == name.casefold()), None)
            file = find_local(match_res, local) if match_res is not None else None
            local_name = _stem(file.name) if file is not None else name
            loras.append(f"{local_name}:{_fmt(weight)}" if weight is not None else local_name)
            if file is None:  # the submit would refuse the name: say so before
                warnings.append(f"LoRA {shown} is not installed here: download it, or remove its --lora")
            return ""
        warnings.append(f"LoRA {shown} removed from the prompt: the studio has no --lora code yet")
        return ""

    def embedding(match: re.Match[str]) -> str:
        name = match.group(1)
        stems = {_stem(n).casefold(): _stem(n) for n in local_embeddings}
        if name.casefold() in stems:
            weight = match.group(2)
            local_name = stems[name.casefold()]
            return f"(embedding:{local_name}:{weight})" if weight else f"embedding:{local_name}"
        warnings.append(f"Embedding {name} removed: it is not installed here")
        return ""

    text = _TAG.sub(lora, text)
    return _EMBEDDING.sub(embedding, text)


def build_prompt(
    meta: Mapping[str, JSON] | None,
    *,
    width: int | None,
    height: int | None,
    resources: list[Resource],
    codes: Collection[str],
    local: Mapping[str, LocalFile],
    local_embeddings: Collection[str] = (),
) -> PromptResult:
    """The prompt-bar text for one Civitai image: its prompt, then --no, --ar, --seed, --steps, --cfg.

    ``meta`` is `normalize_meta`'s; ``codes`` the names the user's registry knows; ``local`` maps the SHA-256
    of each local model file to it; ``local_embeddings`` are ComfyUI's embedding names.
    """
    warnings: list[str] = []
    loras: list[str] = []
    if meta is None:
        return PromptResult("", ["This image has no generation data (its author hid it)"], _resources(resources, local))
    prompt = str(meta.get("prompt") or "")
    negative = str(meta.get("negative_prompt") or "")
    text = _tidy(_rewrite(prompt, resources, codes, local, local_embeddings, warnings, loras))
    negative = _tidy(_rewrite(negative, resources, codes, local, local_embeddings, warnings, []))
    if not text:
        warnings.append("This image has no prompt")
    parts = [text] if text else []

    def emit(code: str, value: str, what: str) -> None:
        if code in codes:
            parts.append(f"--{code} {value}")
        else:
            warnings.append(f"{what} left out: there is no --{code} code")

    for item in loras:
        parts.append(f"--lora {item}")
    if negative:
        emit("no", negative, "The negative prompt")
    w = _int(meta.get("width")) or width
    h = _int(meta.get("height")) or height
    if w and h and w > 0 and h > 0:
        emit("ar", aspect_ratio(w, h), "The aspect ratio")
    seed = _int(meta.get("seed"))
    if seed is not None and seed >= 0:
        emit("seed", str(seed), "The seed")
    steps = _int(meta.get("steps"))
    if steps is not None and steps > 0:
        emit("steps", str(steps), "The step count")
    cfg = _float(meta.get("cfg_scale"))
    if cfg is not None and cfg > 0:
        emit("cfg", _fmt(cfg), "The CFG scale")
    return PromptResult(" ".join(parts), warnings, _resources(resources, local))


def _resources(resources: list[Resource], local: Mapping[str, LocalFile]) -> list[dict[str, JSON]]:
    out: list[dict[str, JSON]] = []
    for res in resources:
        folder = FOLDERS.get(res.type)
        if folder is None and "upscal" in res.kind.casefold():
            folder = FOLDERS["upscaler"]
        if folder is None:
            continue  # a resource of no model folder (a workflow, a wildcard set): nothing to match or fetch
        file = find_local(res, local)
        out.append(
            {
                "type": res.type,
                "name": res.name,
                "hash": res.hash,
                "model_version_id": res.model_version_id,
                "present": file is not None,
                "local_name": file.name if file is not None else None,
                "folder": file.folder if file is not None else folder,
                "page_url": res.page_url,
            }
        )
    return out
