"""The one prompt planner: what a prompt, an action's inputs and the chosen models do to a graph.

Pure: given a graph, the text, the user's shortcode registry and, for an action run, its bindings,
parameters, computed values and model choice, it returns the RFC 6902 operations, the patched graph and
what to tell the user. `/jobs`, `/generate`, the preview and every action run plan here; the services
only gather these inputs and submit the result.

Layers, each over the one before (one op per path, the later wins): the text (into the bound prompt
input, or every positive prompt), bindings (image, mask, seed), parameters, computed values (zoom and pan
padding), then the winning shortcodes, then the models a default workflow runs on. The operations stored
with a job are exactly the difference between the graph given and the graph ComfyUI receives.

Spans (``start``/``end`` of errors and warnings) count UTF-16 code units, as JavaScript strings (the UI)
do; the parser counts code points, ``Utf16`` converts.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from . import shortcodes as sc
from .actions import (
    binding_patches,
    feathering_for,
    merge_ops,
    pan_padding,
    parameter_patches,
    target_ops,
    zoom_padding,
)
from .errors import StudioError
from .params import check_graph_values
from .patches import PatchOp, PatchReport, apply_patches, build_patches
from .selectors import JSON, PROMPT_INPUTS, Graph, GraphIndex, Node

Span = dict[str, JSON]

CHECKPOINT_LOADER = "CheckpointLoaderSimple"
UPSCALE_TITLE = "upscale"  # the default workflows' ImageScaleBy that an upscale model replaces, by its title


class Utf16:
    """Code-point index ↔ UTF-16 offset for one text (identity unless it has astral characters)."""

    __slots__ = ("_u16",)

    def __init__(self, text: str) -> None:
        self._u16: list[int] | None = None
        if text and max(text) > "\uffff":
            u16 = [0]
            for ch in text:
                u16.append(u16[-1] + (2 if ord(ch) > 0xFFFF else 1))
            self._u16 = u16

    def out(self, index: int) -> int:
        if self._u16 is None or index < 0:
            return index
        return self._u16[min(index, len(self._u16) - 1)]

    def inward(self, offset: int) -> int:
        if self._u16 is None:
            return offset
        # An offset inside a surrogate pair snaps to the character after it.
        return min(bisect.bisect_left(self._u16, offset), len(self._u16) - 1)


def span(offsets: Utf16, start: int | None, end: int | None, message: str, kind: str) -> Span:
    return {
        "start": None if start is None else offsets.out(start),
        "end": None if end is None else offsets.out(end),
        "message": message,
        "kind": kind,
    }


@dataclass(frozen=True, slots=True)
class Models:
    """The models a default workflow runs on: the chosen checkpoint (None: none can be chosen, ``message``
    says why), the installed ones, and the upscale model that replaces a plain resize (None: keep it)."""

    checkpoint: str | None
    available: tuple[str, ...] = ()
    upscale_model: str | None = None
    message: str = "No checkpoint is installed"


@dataclass(frozen=True, slots=True)
class Computed:
    """Values computed from the source image: ``zoom`` (factor) or ``pan`` (direction, pixels) padding."""

    kind: str
    width: int | None
    height: int | None
    label: str = "this action"  # the action's slot, in messages


@dataclass(slots=True)
class Plan:
    """A parsed prompt applied to one graph: the patched graph and the exact operations that made it."""

    parsed: sc.ParseResult
    graph: Graph | None
    ops: list[PatchOp]
    reports: list[PatchReport]
    warnings: list[Span]
    errors: list[Span]
    # values the plan computed (``pad_*``), for the job's parameters
    computed: dict[str, JSON] = field(default_factory=dict)

    @property
    def messages(self) -> list[str]:
        return [str(w["message"]) for w in self.warnings]

    def refusal(self, field: str) -> StudioError:
        """400 naming every parse error with its offsets under ``field``; nothing is submitted."""
        first = self.errors[0]
        details: list[JSON] = [
            {"loc": [field], "message": e["message"], "type": e["kind"], "start": e["start"], "end": e["end"]}
            for e in self.errors
        ]
        noun = "an error" if len(self.errors) == 1 else f"{len(self.errors)} errors"
        return StudioError("validation_error", f"The prompt has {noun}: {first['message']}", details)


def needs_models(graph: Graph) -> bool:
    """Whether the default-workflow model step can change this graph (so its inputs are worth gathering)."""
    kinds = (CHECKPOINT_LOADER, "ImageScaleBy")
    return any(isinstance(n, dict) and n.get("class_type") in kinds for n in graph.values())


def plan(
    text: str | None,
    registry: sc.Registry,
    graph: Graph | None,
    *,
    workflow_id: str | None = None,
    workflow_name: str | None = None,
    bindings: Mapping[str, JSON] | None = None,
    bound: Mapping[str, JSON] | None = None,
    parameters: Sequence[dict[str, JSON]] = (),
    values: Mapping[str, JSON] | None = None,
    computed: Computed | None = None,
    models: Models | None = None,
    node_definitions: Mapping[str, JSON] | None = None,
    rng: random.Random | None = None,
) -> Plan:
    """Plan ``text`` (None: an action run without a prompt) on ``graph`` (None: parse only).

    Without ``bindings`` the clean text goes into every text input of the positive prompt nodes (the
    prompt path); with them, into the ``prompt`` binding, beside ``bound`` (image, mask, seed). Parse
    errors are returned, never raised; a graph the operations do not fit, a default workflow with no
    checkpoint to run on and, given ``node_definitions``, a value ComfyUI would refuse raise StudioError.
    """
    source = text or ""
    parsed = sc.parse(source, registry)
    offsets = Utf16(source)
    errors = [span(offsets, d.start, d.end, d.message, d.kind) for d in parsed.errors]
    warnings = [span(offsets, d.start, d.end, d.message, d.kind) for d in parsed.warnings]
    if graph is None:
        return Plan(parsed, None, [], [], warnings, errors)

    def note(messages: list[str], kind: str) -> None:
        warnings.extend(span(offsets, None, None, m, kind) for m in messages)

    if bindings is None:
        text_ops = _prompt_ops(graph, parsed.text) if parsed.text else []
        if parsed.text and not text_ops:
            note(["This workflow has no positive prompt to put the text in; only the shortcodes were applied"],
                 "no_positive_prompt")  # fmt: skip
    else:
        feed = {**(bound or {}), "prompt": parsed.text if text is not None else None}
        bound_inputs = {key: value for key, value in bindings.items() if isinstance(value, dict)}
        text_ops, got = binding_patches(graph, bound_inputs, feed)
        note(got, "binding")
    chosen = dict(values or {})
    param_ops, got = parameter_patches(graph, list(parameters), chosen)
    note(got, "parameter")
    computed_values: dict[str, JSON] = {}
    computed_ops = _computed_ops(graph, computed, chosen, computed_values, note) if computed else []
    base = merge_ops(text_ops, param_ops, computed_ops)
    try:
        staged = apply_patches(graph, base) if base else graph
        codes = build_patches(staged, parsed, registry, workflow=workflow_id, rng=rng)
        code_paths = {op["path"] for op in codes.ops}
        # A code that writes a path an earlier layer wrote (``--style`` appends to the prompt) is kept once.
        ops = [op for op in base if op["path"] not in code_paths] + codes.ops
        patched = apply_patches(graph, ops)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        name = repr(workflow_name) if workflow_name else "the workflow"
        raise StudioError("validation_error", f"Could not patch {name}: {exc}") from None
    tokens = {t.code: t for t in parsed.winning_tokens()}
    for report in codes.reports:
        token = tokens.get(report.code)
        for message in report.warnings:
            warnings.append(
                span(offsets, token.start if token else None, token.end if token else None, message, "no_effect")
            )
    if errors:  # refused for what the user typed, before anything about the models or the host
        return Plan(parsed, patched, ops, codes.reports, warnings, errors, computed_values)
    if models is not None:
        patched, model_ops = with_models(patched, models)
        ops += model_ops
    if node_definitions is not None:
        problems = check_graph_values(patched, dict(node_definitions))
        if problems:
            raise StudioError("validation_error", str(problems[0]["message"]), list(problems))
    return Plan(parsed, patched, ops, codes.reports, warnings, errors, computed_values)


def _prompt_ops(graph: Graph, clean_text: str) -> list[PatchOp]:
    """Put the clean text into every text input of the positive prompt nodes."""
    ops: list[PatchOp] = []
    names = PROMPT_INPUTS.split("|")
    for nid in GraphIndex(graph).role("positive"):
        inputs = graph[nid].get("inputs") or {}
        for name in names:
            if isinstance(inputs.get(name), str):
                path = "/" + nid.replace("~", "~0").replace("/", "~1") + "/inputs/" + name
                ops.append({"op": "replace", "path": path, "value": clean_text})
    return ops


def _computed_ops(
    graph: Graph,
    computed: Computed,
    values: dict[str, JSON],
    out: dict[str, JSON],
    note: Callable[[list[str], str], None],
) -> list[PatchOp]:
    """Zoom-out and pan: ImagePadForOutpaint's sides and feathering from the source size."""
    if computed.kind not in ("zoom", "pan"):
        return []
    if not computed.width or not computed.height:
        raise StudioError("validation_error", f"Action {computed.label!r} needs a source image of known size")
    try:
        if computed.kind == "zoom":
            factor = values.get("factor", 2.0)
            if not isinstance(factor, int | float) or isinstance(factor, bool):
                raise ValueError(f"the zoom factor must be a number, not {factor!r}")
            pad = zoom_padding(computed.width, computed.height, float(factor))
        else:
            pixels = values.get("pixels") or None
            if pixels is not None and (not isinstance(pixels, int | float) or isinstance(pixels, bool)):
                raise ValueError(f"pixels must be a number, not {pixels!r}")
            pad = pan_padding(computed.width, computed.height, str(values.get("direction")), pixels)
    except (ValueError, TypeError) as exc:
        raise StudioError("validation_error", f"{computed.label}: {exc}") from None
    ops: list[PatchOp] = []
    for side, amount in {**pad, "feathering": feathering_for(pad)}.items():
        got, _ = target_ops(graph, "class:ImagePadForOutpaint", side, amount)
        ops.extend(got)
    if not ops:
        note([f"{computed.label}: the workflow has no ImagePadForOutpaint node to pad the image"], "computed")
    out.update({f"pad_{k}": v for k, v in pad.items()})
    return ops


def with_models(graph: Graph, models: Models) -> tuple[Graph, list[PatchOp]]:
    """``graph`` on the models a default workflow runs on, and the operations that put them there."""
    ops = _model_ops(graph, models)
    return (apply_patches(graph, ops) if ops else graph), ops


def _model_ops(graph: Graph, models: Models) -> list[PatchOp]:
    """The default workflows run on the chosen checkpoint, and upscale with the chosen upscale model when
    there is one (else the plain resize they have)."""
    ops: list[PatchOp] = []
    if models.upscale_model:
        ops += upscale_model_ops(graph, models.upscale_model)
    loaders = [nid for nid, n in graph.items() if isinstance(n, dict) and n.get("class_type") == CHECKPOINT_LOADER]
    todo = [nid for nid in loaders if str(_inputs(graph[nid]).get("ckpt_name")) not in models.available]
    if todo:
        if models.checkpoint is None:
            raise StudioError("conflict", models.message)
        ops += [{"op": "replace", "path": f"/{nid}/inputs/ckpt_name", "value": models.checkpoint} for nid in todo]
    return ops


def _inputs(node: Node) -> dict[str, JSON]:
    inputs = node.get("inputs")
    return inputs if isinstance(inputs, dict) else {}


def upscale_model_ops(graph: Graph, model: str) -> list[PatchOp]:
    """Patches that put an upscale model in front of a default workflow's plain resize.

    The ``ImageScaleBy`` titled "Upscale" stays, scaled by the requested factor, only to give the target
    size (``GetImageSize``); the source goes through ``UpscaleModelLoader`` + ``ImageUpscaleWithModel`` (at
    the model's own factor) and ``ImageScale`` brings that to the target size with the same method. Every
    consumer of the resize then reads the model's result. No patches for a graph without such a node, or one
    that already has an upscale model.
    """
    if any(isinstance(n, dict) and n.get("class_type") == "ImageUpscaleWithModel" for n in graph.values()):
        return []
    ops: list[PatchOp] = []
    used = {int(k) for k in graph if k.isdigit()}
    fresh = iter(range(max(used, default=0) + 1, 1 << 30))
    for nid, node in list(graph.items()):
        meta = node.get("_meta") if isinstance(node, dict) else None
        title = meta.get("title") if isinstance(meta, dict) else None
        if not isinstance(node, dict) or node.get("class_type") != "ImageScaleBy":
            continue
        if str(title).strip().lower() != UPSCALE_TITLE:
            continue
        inputs = _inputs(node)
        loader, upscaled, size, resized = (str(next(fresh)) for _ in range(4))
        method = inputs.get("upscale_method", "lanczos")
        for other, other_node in graph.items():
            for name, value in _inputs(other_node).items():
                if isinstance(value, list) and len(value) == 2 and value[0] == nid and value[1] == 0:
                    ops.append({"op": "replace", "path": f"/{other}/inputs/{name}", "value": [resized, 0]})
        added: list[tuple[str, str, dict[str, JSON], str]] = [
            (loader, "UpscaleModelLoader", {"model_name": model}, "Upscale model"),
            (upscaled, "ImageUpscaleWithModel", {"upscale_model": [loader, 0], "image": inputs.get("image")},
             "Upscale with model"),
            (size, "GetImageSize", {"image": [nid, 0]}, "Target size"),
            (resized, "ImageScale", {"image": [upscaled, 0], "upscale_method": method, "width": [size, 0],
                                     "height": [size, 1], "crop": "disabled"}, "Scale to the factor"),
        ]  # fmt: skip
        ops[:0] = [
            {"op": "add", "path": f"/{new}", "value": {"class_type": kind, "inputs": ins, "_meta": {"title": label}}}
            for new, kind, ins, label in added
        ]
    return ops
