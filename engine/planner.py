"""The one prompt planner: what a prompt, an action's inputs and the chosen models do to a graph.

Pure: given a graph, the text, the user's shortcode registry and, for an action run, its bindings,
parameters, computed values and model choice, it returns the RFC 6902 operations, the patched graph and
what to tell the user. `/jobs`, `/generate`, the preview and every action run plan here; the services
only gather these inputs and submit the result.

A prompt first expands (``plan_prompt``: its permutations, each run ``--repeat`` times, at most 40 jobs), and
each expansion is planned by ``plan``. Layers, each over the one before (one op per path, the later wins): the
text (its ``::`` weights translated; into the bound prompt input, or every positive prompt), bindings (image,
mask, seed), parameters, computed values (zoom and pan padding), then the winning shortcodes (names of models,
samplers and schedulers resolved first), then the grammar's own (LoRA loaders, ``--iw``, negative weights,
embedding names), then the models a default workflow runs on. The operations stored
with a job are exactly the difference between the graph given and the graph ComfyUI receives.

Spans (``start``/``end`` of errors and warnings) count UTF-16 code units, as JavaScript strings (the UI)
do; the parser counts code points, ``Utf16`` converts.
"""

from __future__ import annotations

import bisect
import dataclasses
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from . import grammar
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
from .patches import SEED_DRAW_MAX, PatchOp, PatchReport, apply_patches, build_patches
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
    # the prompt this job runs: the typed text with its permutations chosen and ``--repeat`` left out
    text: str = ""
    codes: dict[str, JSON] = field(default_factory=dict)  # code → value as typed (a list for ``--lora``)
    positive: str | None = None  # the text as the encoder reads it, when a multi-prompt was translated
    negative: str | None = None  # what negative weights added to the negative prompt
    index: int = 0  # this job among the submit's
    tokens: list[dict[str, JSON]] = field(default_factory=list)  # the known codes, spans in the typed text
    repeat: int = 0  # which run of ``--repeat``

    @property
    def messages(self) -> list[str]:
        return [str(w["message"]) for w in self.warnings]

    def refusal(self, field: str) -> StudioError:
        """400 naming every parse error with its offsets under ``field``; nothing is submitted."""
        return _refusal(self.errors, field)

    def record(self, count: int) -> dict[str, JSON]:
        """What the job keeps of its expansion (``extra.expansion``)."""
        return {"text": self.text, "index": self.index, "count": count, "codes": dict(self.codes)}


def _refusal(errors: list[Span], field: str) -> StudioError:
    first = errors[0]
    details: list[JSON] = [
        {"loc": [field], "message": e["message"], "type": e["kind"], "start": e["start"], "end": e["end"]}
        for e in errors
    ]
    noun = "an error" if len(errors) == 1 else f"{len(errors)} errors"
    return StudioError("validation_error", f"The prompt has {noun}: {first['message']}", details)


@dataclass(slots=True)
class PromptPlan:
    """Every job one prompt makes (permutations × ``--repeat``), each planned on its own."""

    text: str | None
    plans: list[Plan]
    errors: list[Span]  # every expansion's, once each, in the typed text's offsets
    warnings: list[Span]
    count: int

    @property
    def first(self) -> Plan:
        return self.plans[0]

    def refusal(self, field: str) -> StudioError:
        return _refusal(self.errors, field)


def needs_resources(text: str, registry: sc.Registry) -> bool:
    """Whether ``text`` may name a model, LoRA, embedding, sampler or scheduler (worth asking ComfyUI's lists)."""
    folded = text.casefold()
    if "embedding:" in folded:
        return True
    names = (n for d in registry.definitions if d.code in sc.RESOURCE_CODES for n in d.names())
    return any(name in folded for name in names)


def size_pixels(graph: Graph) -> int | None:
    """The pixel count of the graph's size node (what ``--ar`` keeps), None without one."""
    for nid in GraphIndex(graph).role("size"):
        inputs = _inputs(graph[nid])
        w, h = inputs.get("width"), inputs.get("height")
        if isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0:
            return w * h
    return None


def needs_models(graph: Graph) -> bool:
    """Whether the default-workflow model step can change this graph (so its inputs are worth gathering)."""
    kinds = (CHECKPOINT_LOADER, "ImageScaleBy")
    return any(isinstance(n, dict) and n.get("class_type") in kinds for n in graph.values())


def plan_prompt(
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
    resources: grammar.Resources | None = None,
    rng: random.Random | None = None,
) -> PromptPlan:
    """Plan every job ``text`` makes: its permutations, each run ``--repeat`` times, planned by ``plan``.

    The expansions come first (on the typed text, so codes can be permuted too), then each is parsed and
    planned; the dynamic prompts of each job's text are drawn at submit, after this. More than
    ``grammar.MAX_JOBS`` jobs is an error and plans none.
    """
    source = text or ""
    offsets = Utf16(source)
    perms = grammar.permutations(source)
    if perms.error is not None:
        err = span(offsets, 0, len(source), perms.error, "too_many_jobs")
        return PromptPlan(text, [], [err], [], perms.count)
    parsed_all = [(e, sc.parse(e.text, registry)) for e in perms.expansions]
    runs = [_repeat(p) for _, p in parsed_all]
    count = sum(runs)
    if count > grammar.MAX_JOBS:
        message = f"This prompt makes {count} jobs; at most {grammar.MAX_JOBS} per submit"
        err = span(offsets, 0, len(source), message, "too_many_jobs")
        return PromptPlan(text, [], [err], [], count)
    plans: list[Plan] = []
    for (expansion, parsed), times in zip(parsed_all, runs, strict=True):
        for repeat in range(times):
            planned = plan(
                text,
                registry,
                graph,
                workflow_id=workflow_id,
                workflow_name=workflow_name,
                bindings=bindings,
                bound=bound,
                parameters=parameters,
                values=values,
                computed=computed,
                models=models,
                node_definitions=node_definitions,
                resources=resources,
                rng=rng,
                expansion=expansion,
                parsed=parsed if repeat == 0 else _copy_parsed(parsed),
                repeat=repeat if times > 1 else None,
                permutations=perms,
            )
            planned.index = len(plans)
            plans.append(planned)
    errors = _once([e for p in plans for e in p.errors])
    warnings = _once([w for p in plans for w in p.warnings])
    return PromptPlan(text, plans, errors, warnings, count)


def _repeat(parsed: sc.ParseResult) -> int:
    value = parsed.values.get("repeat")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 1


def _copy_parsed(parsed: sc.ParseResult) -> sc.ParseResult:
    return dataclasses.replace(parsed, tokens=[dataclasses.replace(t) for t in parsed.tokens])


def _once(spans: list[Span]) -> list[Span]:
    seen: set[tuple[JSON, JSON, JSON]] = set()
    out = []
    for item in spans:
        key = (item["start"], item["end"], item["message"])
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


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
    resources: grammar.Resources | None = None,
    rng: random.Random | None = None,
    expansion: grammar.Expansion | None = None,
    parsed: sc.ParseResult | None = None,
    repeat: int | None = None,
    permutations: grammar.Permutations | None = None,
) -> Plan:
    """Plan one prompt (``expansion`` of ``text``; None: ``text`` as it is) on ``graph`` (None: parse only).

    Without ``bindings`` the clean text goes into every text input of the positive prompt nodes (the
    prompt path); with them, into the ``prompt`` binding, beside ``bound`` (image, mask, seed). Parse
    errors are returned, never raised; a graph the operations do not fit, a default workflow with no
    checkpoint to run on and, given ``node_definitions``, a value ComfyUI would refuse raise StudioError.
    ``repeat`` (a run of ``--repeat``) gives the run its own seed.
    """
    source = text or ""
    if expansion is None:
        expansion = grammar.Expansion.of(source, [(0, len(source))])
    if parsed is None:
        parsed = sc.parse(expansion.text, registry)
    offsets = Utf16(source)

    def at(start: int | None, end: int | None, message: str, kind: str) -> Span:
        """A span of the expansion's text, in the typed text's UTF-16 offsets."""
        if start is None or end is None:
            return span(offsets, None, None, message, kind)
        return span(offsets, expansion.origin(start), expansion.origin_end(end), message, kind)

    errors = [at(d.start, d.end, d.message, d.kind) for d in parsed.errors]
    warnings = [at(d.start, d.end, d.message, d.kind) for d in parsed.warnings]
    winning = parsed.winning_tokens()
    loras, embeddings = _resolve_names(expansion.text, winning, resources, errors, warnings, at)
    token_spans: list[dict[str, JSON]] = []
    for t in parsed.tokens:
        if t.code is not None:
            start, end = expansion.origin(t.start), expansion.origin_end(t.end)
            if permutations is not None:
                start, end = permutations.widen(start, end)
            token_spans.append({"code": t.code, "raw": t.raw, "value": t.value, "start": offsets.out(start),
                                "end": offsets.out(end)})  # fmt: skip
    planned_text = _job_text(expansion.text, winning)
    codes: dict[str, JSON] = {}
    for token in winning:
        assert token.code is not None
        raw: JSON = token.raw if token.raw is not None else True
        if token.code in sc.REPEATABLE_CODES:
            previous = codes.get(token.code)
            codes[token.code] = [*(previous if isinstance(previous, list) else []), raw]
        elif token.code != "repeat":
            codes[token.code] = raw
    multi = grammar.multiprompt(parsed.text)
    if multi is not None and multi.error is not None:
        errors.append(at(None, None, multi.error, "invalid_weights"))

    def result(graph_out: Graph | None, ops: list[PatchOp], reports: list[PatchReport], done: dict[str, JSON]) -> Plan:
        return Plan(
            parsed, graph_out, ops, reports, warnings, errors, done, planned_text, codes,
            positive=prompt_text if multi is not None else None, negative=negative or None,
            repeat=repeat or 0, tokens=token_spans,
        )  # fmt: skip

    prompt_text = parsed.text
    negative = ""
    if multi is not None and multi.error is None:
        if graph is None or grammar.encoders_read_emphasis(graph):
            prompt_text, negative = multi.positive, multi.negative
        else:
            prompt_text = ", ".join(part for part, weight in multi.parts if weight > 0)
            negative = ", ".join(part for part, weight in multi.parts if weight < 0)
            warnings.append(
                at(None, None, "This workflow's text encoder does not read weights: the parts were joined", "no_effect")
            )
    if graph is None:
        return result(None, [], [], {})

    def note(messages: list[str], kind: str) -> None:
        warnings.extend(at(None, None, m, kind) for m in messages)

    if bindings is None:
        text_ops = _prompt_ops(graph, prompt_text) if prompt_text else []
        if prompt_text and not text_ops:
            note(["This workflow has no positive prompt to put the text in; only the shortcodes were applied"],
                 "no_positive_prompt")  # fmt: skip
    else:
        feed = {**(bound or {}), "prompt": prompt_text if text is not None else None}
        bound_inputs = {key: value for key, value in bindings.items() if isinstance(value, dict)}
        text_ops, got = binding_patches(graph, bound_inputs, feed)
        note(got, "binding")
    chosen = dict(values or {})
    param_ops, got = parameter_patches(graph, list(parameters), chosen)
    note(got, "parameter")
    computed_values: dict[str, JSON] = {}
    computed_ops = _computed_ops(graph, computed, chosen, computed_values, note) if computed else []
    base = merge_ops(text_ops, param_ops, computed_ops)
    tokens = {t.code: t for t in winning}
    try:
        staged = apply_patches(graph, base) if base else graph
        applied = [t for t in winning if t.code not in sc.PLANNED_CODES]
        if repeat is not None:
            applied = _own_seed(applied, repeat, rng)
        codes_plan = build_patches(staged, applied, registry, workflow=workflow_id, rng=rng)
        code_paths = {op["path"] for op in codes_plan.ops}
        # A code that writes a path an earlier layer wrote (``--style`` appends to the prompt) is kept once.
        ops = [op for op in base if op["path"] not in code_paths] + codes_plan.ops
        # the codes over the staged copy (ours when there was a base layer): the same graph ``ops`` make
        patched = apply_patches(staged if base else graph, codes_plan.ops, in_place=bool(base))
        later: list[PatchOp] = []
        added, problem = grammar.lora_ops(patched, loras)
        if problem:
            lora = tokens.get("lora")
            warnings.append(at(lora.start if lora else None, lora.end if lora else None, problem, "no_effect"))
        later += added
        later += _iw_ops(patched, tokens.get("iw"), bound, "denoise" in tokens, warnings, at)
        if negative:
            later += _negative_ops(patched, negative, warnings, at)
        if later:
            ops = _layer(ops, later)
        renamed: list[PatchOp] = []
        if embeddings:
            written = [_with_embeddings(op, embeddings) for op in ops]
            renamed = [new for old, new in zip(ops, written, strict=True) if new is not old]
            ops = written
        if later or renamed:
            # over the graph patched so far: each of these replaces its whole path (or adds a node)
            patched = apply_patches(patched, [*later, *renamed], in_place=True)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        name = repr(workflow_name) if workflow_name else "the workflow"
        raise StudioError("validation_error", f"Could not patch {name}: {exc}") from None
    for report in codes_plan.reports:
        by = tokens.get(report.code)
        for message in report.warnings:
            warnings.append(at(by.start if by else None, by.end if by else None, message, "no_effect"))
    if errors:  # refused for what the user typed, before anything about the models or the host
        return result(patched, ops, codes_plan.reports, computed_values)
    if models is not None:
        patched, model_ops = with_models(patched, models)
        ops += model_ops
    if node_definitions is not None:
        problems = check_graph_values(patched, dict(node_definitions))
        if problems:
            raise StudioError("validation_error", str(problems[0]["message"]), list(problems))
    return result(patched, ops, codes_plan.reports, computed_values)


AtSpan = Callable[[int | None, int | None, str, str], Span]


def _resolve_names(
    text: str,
    winning: list[sc.Token],
    resources: grammar.Resources | None,
    errors: list[Span],
    warnings: list[Span],
    at: AtSpan,
) -> tuple[list[tuple[str, float]], dict[str, str]]:
    """The installed names the codes and ``embedding:`` words mean (values set on the tokens), the LoRAs to
    load with their weights, and each typed embedding name's installed one. Unknown names are errors."""
    loras: list[tuple[str, float]] = []
    embeddings: dict[str, str] = {}
    lists: dict[str, tuple[tuple[str, ...], str]] = {}
    if resources is not None:
        lists = {
            "model": (resources.checkpoints, "checkpoint"),
            "lora": (resources.loras, "LoRA"),
            "sampler": (resources.samplers, "sampler"),
            "scheduler": (resources.schedulers, "scheduler"),
        }
    for token in winning:
        if token.code not in sc.RESOURCE_CODES or not isinstance(token.value, str):
            continue
        typed = token.value
        weight: float | None = None
        if token.code == "lora":
            typed, weight, problem = grammar.lora_value(token.value)
            if problem:
                errors.append(at(token.start, token.end, problem, "invalid_value"))
                continue
        where = lists.get(token.code)
        name: str | None = typed
        # an empty sampler or scheduler list: a ComfyUI without KSampler, nothing to check against
        if where is not None and (where[0] or token.code in ("model", "lora")):
            name, problem = grammar.resolve(typed, where[0], where[1], token.code)
            if problem:
                start = token.value_start if token.value_start >= 0 else token.start
                errors.append(at(start, token.end, problem, "unknown_name"))
                continue
        assert name is not None
        if token.code == "lora":
            loras.append((name, 1.0 if weight is None else weight))
        else:
            token.value = name
    if resources is None:
        if any(t.code in sc.RESOURCE_CODES for t in winning):
            warnings.append(
                at(None, None, "ComfyUI's model lists are unavailable: names were not checked", "unchecked")
            )
        return loras, embeddings
    for typed, start, end in grammar.embedding_names(text):
        name, problem = grammar.resolve(typed, resources.embeddings, "embedding", "embedding")
        if problem:
            errors.append(at(start, end, problem.replace("--embedding ", "embedding:", 1), "unknown_name"))
        elif name is not None:
            embeddings[typed.casefold()] = name
    return loras, embeddings


def _job_text(text: str, winning: list[sc.Token]) -> str:
    """The expansion as the job keeps it: without ``--repeat`` (a re-run is one job)."""
    for token in reversed(winning):
        if token.code == "repeat":
            text = (text[: token.start].rstrip() + " " + text[token.end :].lstrip()).strip()
    return text


def _own_seed(tokens: list[sc.Token], repeat: int, rng: random.Random | None) -> list[sc.Token]:
    """A run of ``--repeat``: ``--seed N`` gives run k the seed N + k; without a seed, each run draws one."""
    out = [t for t in tokens if t.code != "seed"]
    given = next((t for t in tokens if t.code == "seed"), None)
    if given is not None and isinstance(given.value, int) and not isinstance(given.value, bool):
        value: JSON = (given.value + repeat) % (sc.SEED_MAX + 1)
    else:
        value = (rng or random.SystemRandom()).randint(0, SEED_DRAW_MAX)
    start, end = (given.start, given.end) if given is not None else (0, 0)
    out.append(sc.Token("seed", "seed", str(value), value, start, end))
    return out


def _layer(ops: list[PatchOp], later: list[PatchOp]) -> list[PatchOp]:
    """``later`` over ``ops``: one operation per path, the later one wins."""
    paths = {op["path"] for op in later}
    return [op for op in ops if op["path"] not in paths] + later


def _iw_ops(
    graph: Graph, token: sc.Token | None, bound: Mapping[str, JSON] | None, denoise_given: bool,
    warnings: list[Span], at: AtSpan,
) -> list[PatchOp]:  # fmt: skip
    """``--iw`` on an image prompt: the samplers' denoise along ``grammar.IW_DENOISE``."""
    if token is None or not isinstance(token.value, int | float):
        return []
    if not bound or not bound.get("image"):
        warnings.append(
            at(token.start, token.end, "--iw needs an image prompt: drop an image on the prompt bar", "no_effect")
        )
        return []
    if denoise_given:
        warnings.append(at(token.start, token.end, "--iw is ignored: --denoise sets the strength", "no_effect"))
        return []
    ops, nodes = target_ops(graph, "role:sampler", "denoise", grammar.iw_denoise(float(token.value)))
    if not nodes:
        warnings.append(
            at(token.start, token.end, "--iw has no effect on this workflow: no sampler has a denoise", "no_effect")
        )
    return ops


def _negative_ops(graph: Graph, negative: str, warnings: list[Span], at: AtSpan) -> list[PatchOp]:
    """Negative weights: their parts appended to every text input of the negative prompt."""
    ops: list[PatchOp] = []
    names = PROMPT_INPUTS.split("|")
    for nid in GraphIndex(graph).role("negative"):
        inputs = graph[nid].get("inputs") or {}
        for name in names:
            current = inputs.get(name)
            if isinstance(current, str):
                path = "/" + nid.replace("~", "~0").replace("/", "~1") + "/inputs/" + name
                ops.append(
                    {"op": "replace", "path": path, "value": f"{current}, {negative}" if current.strip() else negative}
                )
    if not ops:
        warnings.append(
            at(None, None, "Negative weights have no effect on this workflow: it has no negative prompt", "no_effect")
        )
    return ops


def _with_embeddings(op: PatchOp, names: dict[str, str]) -> PatchOp:
    value = op["value"]
    if isinstance(value, str) and "embedding:" in value.casefold():
        return {"op": op["op"], "path": op["path"], "value": grammar.with_embeddings(value, names)}
    return op


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
