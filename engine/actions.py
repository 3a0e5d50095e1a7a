"""The action engine: bindings, parameter patches and the padding of zoom-out and pan.

An action runs a workflow on a source image. Its graph is patched with RFC 6902 ``replace`` operations,
the same kind ``engine.patches`` builds for shortcodes, in three layers applied in this order:
bindings (source image, mask, prompt, negative prompt, seed), then parameters, then shortcodes.

Bindings say which node input receives each of those::

    {"image": {"selector": "class:LoadImage", "input": "image"},
     "prompt": {"selector": "role:positive", "input": "text"}, ...}

Numbers from Fooocus (``modules/flags.py``, ``modules/async_worker.py``): vary subtle = denoise 0.5,
vary strong = 0.85, upscale 2× then a 0.382 denoise pass, outpaint/pan = extend 30% of the side.
"""

from __future__ import annotations

import math
from typing import TypeAlias

from .jsoncodec import JSON
from .patches import PatchOp
from .selectors import TEXT_INPUTS, Graph, GraphIndex, is_link

Binding: TypeAlias = "dict[str, JSON]"

BINDING_KEYS = ("image", "mask", "prompt", "negative", "seed")
PAN_DIRECTIONS = ("left", "right", "up", "down")
PAD_MULTIPLE = 8  # ImagePadForOutpaint's step
MAX_PAD = 16384
PAN_FRACTION = 0.3


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def replace_op(node_id: str, input_name: str, value: JSON) -> PatchOp:
    return {"op": "replace", "path": f"/{_escape(node_id)}/inputs/{_escape(input_name)}", "value": value}


def _titled(graph: Graph, nid: str, word: str) -> bool:
    meta = graph[nid].get("_meta")
    title = meta.get("title") if isinstance(meta, dict) else None
    return isinstance(title, str) and word in title.casefold()


def discover_bindings(graph: Graph) -> dict[str, Binding]:
    """Where a graph takes its source image, mask, prompt, negative prompt and seed, as best seen.

    Studio inputs named ``image``/``mask``/``prompt``/``negative``/``seed`` win; then the first image
    loader (a LoadImage titled "mask" is the mask), the samplers' prompt roles and their seed input.
    """
    index = GraphIndex(graph)
    out: dict[str, Binding] = {}
    for key in BINDING_KEYS:
        if index.select(f"input:{key}"):
            node = graph[index.select(f"input:{key}")[0]]
            value_input = {"StudioImage": "image", "StudioMask": "image", "StudioSeed": "seed"}.get(
                str(node.get("class_type")), "value"
            )
            out[key] = {"selector": f"input:{key}", "input": value_input}
    loaders = [nid for nid, n in graph.items() if n.get("class_type") == "LoadImage"]
    masks = [nid for nid in loaders if _titled(graph, nid, "mask")]
    images = [nid for nid in loaders if nid not in masks]
    if "image" not in out and images:
        out["image"] = {"selector": f"id:{images[0]}", "input": "image"}
    if "mask" not in out:
        mask_nodes = masks or [nid for nid, n in graph.items() if n.get("class_type") == "LoadImageMask"]
        if mask_nodes:
            out["mask"] = {"selector": f"id:{mask_nodes[0]}", "input": "image"}
    for key, role in (("prompt", "positive"), ("negative", "negative")):
        if key in out:
            continue
        nodes = index.role(role)
        if nodes:
            inputs = graph[nodes[0]].get("inputs") or {}
            name = next((k for k in (*TEXT_INPUTS, "value", "string") if isinstance(inputs.get(k), str)), None)
            if name:
                out[key] = {"selector": f"role:{role}", "input": name}
    if "seed" not in out:
        for nid in index.role("sampler") + index.role("noise"):
            inputs = graph[nid].get("inputs") or {}
            name = next((k for k in ("seed", "noise_seed") if k in inputs and not is_link(inputs[k])), None)
            if name:
                out["seed"] = {"selector": "role:noise" if index.role("noise") else "role:sampler", "input": name}
                break
    return out


def target_ops(graph: Graph, selector: JSON, input_name: str, value: JSON) -> tuple[list[PatchOp], list[str]]:
    """Replace ``input_name`` with ``value`` on every node the selector picks that has it unlinked."""
    if not isinstance(selector, str | dict):
        return [], []
    index = GraphIndex(graph)
    ops: list[PatchOp] = []
    nodes: list[str] = []
    names = input_name.split("|")
    for nid in index.select(selector):
        inputs = graph[nid].get("inputs") or {}
        for name in names:
            if name in inputs and not is_link(inputs[name]):
                ops.append(replace_op(nid, name, value))
                nodes.append(nid)
    return ops, nodes


def binding_patches(
    graph: Graph, bindings: dict[str, Binding], values: dict[str, JSON]
) -> tuple[list[PatchOp], list[str]]:
    """Ops that feed ``values`` (image file, mask file, prompt, negative, seed) into the bound inputs.

    A value with no binding in this graph is a warning, never a silent no-op.
    """
    ops: list[PatchOp] = []
    warnings: list[str] = []
    for key, value in values.items():
        if value is None:
            continue
        binding = bindings.get(key)
        if not isinstance(binding, dict) or not isinstance(binding.get("input"), str):
            warnings.append(f"this workflow has no {key} input, so the {key} was not used")
            continue
        got, nodes = target_ops(graph, binding.get("selector"), str(binding["input"]), value)
        if not nodes:
            warnings.append(f"the {key} binding {binding.get('selector')!r} matches no node with {binding['input']!r}")
        ops.extend(got)
    return ops, warnings


def parameter_patches(
    graph: Graph, params: list[dict[str, JSON]], values: dict[str, JSON]
) -> tuple[list[PatchOp], list[str]]:
    ops: list[PatchOp] = []
    warnings: list[str] = []
    for param in params:
        name = param.get("name")
        selector, input_name = param.get("selector"), param.get("input")
        if not isinstance(name, str) or name not in values or selector is None or not isinstance(input_name, str):
            continue
        got, nodes = target_ops(graph, selector, input_name, values[name])
        if not nodes:
            warnings.append(f"parameter {name}: no node matching {selector!r} has an input {input_name!r}")
        ops.extend(got)
    return ops, warnings


def merge_ops(*layers: list[PatchOp]) -> list[PatchOp]:
    """One op per path: a later layer's value wins (shortcodes over parameters over bindings)."""
    at: dict[str, int] = {}
    out: list[PatchOp] = []
    for layer in layers:
        for op in layer:
            path = op["path"]
            if path in at:
                out[at[path]] = op
            else:
                at[path] = len(out)
                out.append(op)
    return out


# -- padding ---------------------------------------------------------------------------------------


def _snap(pixels: float) -> int:
    """Round up to ImagePadForOutpaint's step, within its limits."""
    return max(0, min(MAX_PAD, int(math.ceil(pixels / PAD_MULTIPLE)) * PAD_MULTIPLE))


def zoom_padding(width: int, height: int, factor: float) -> dict[str, int]:
    """Padding that makes the canvas ``factor`` times the source on each side, the source centred."""
    if width <= 0 or height <= 0:
        raise ValueError("the source image has no size")
    if not 1.0 < factor <= 4.0:
        raise ValueError("the zoom factor must be above 1 and at most 4")
    pad_x = _snap(width * (factor - 1) / 2)
    pad_y = _snap(height * (factor - 1) / 2)
    return {"left": pad_x, "right": pad_x, "top": pad_y, "bottom": pad_y}


def pan_padding(
    width: int, height: int, direction: str, pixels: float | None = None, fraction: float = PAN_FRACTION
) -> dict[str, int]:
    """Padding on one side: ``pixels`` when given, else ``fraction`` of that side's length (Fooocus: 30%)."""
    if width <= 0 or height <= 0:
        raise ValueError("the source image has no size")
    if direction not in PAN_DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(PAN_DIRECTIONS)}")
    length = width if direction in ("left", "right") else height
    amount = _snap(pixels if pixels is not None else length * fraction)
    if amount <= 0:
        raise ValueError("pan by at least one step of 8 pixels")
    pad = {"left": 0, "right": 0, "top": 0, "bottom": 0}
    pad[{"left": "left", "right": "right", "up": "top", "down": "bottom"}[direction]] = amount
    return pad


def feathering_for(pad: dict[str, int]) -> int:
    """A feather a quarter of the smallest non-zero pad, within 8-64 px: a seam the model can blend."""
    sides = [v for v in pad.values() if v > 0]
    if not sides:
        return 0
    return max(8, min(64, min(sides) // 4))
