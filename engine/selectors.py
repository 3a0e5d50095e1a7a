"""Node selectors and role finders over ComfyUI API-format graphs.

An API-format graph maps node ids to ``{"class_type": ..., "inputs": {...}, "_meta": {"title": ...}}``;
an input whose value is ``[node_id, output_index]`` is a link to another node's output.

Selector syntax (a string, or a dict whose entries must all match):

==================  ===========================================================================
``id:12``           the node whose id is ``12``
``class:KSampler``  every node whose ``class_type`` is ``KSampler`` (exact, case-sensitive)
``title:Positive``  every node whose ``_meta.title`` equals ``Positive`` (case-insensitive)
``input:seed``      every Studio input node named ``seed``: ``class_type`` starts with ``Studio`` and
                    ``inputs.name == "seed"``
``has:noise_seed``  every node that has an input called ``noise_seed``
``role:NAME``       nodes found by what they do: ``sampler``, ``noise``, ``scheduler``, ``guider``,
                    ``flux_guidance``, ``positive``, ``negative``, ``size`` (see ``ROLES``)
``12`` (bare)       a node id if the graph has it, else a Studio input name, else a title, else a
                    class_type: the first of these that matches anything wins
``{"class": "CLIPTextEncode", "title": "Negative"}``  the dict form: keys ``id``, ``class``, ``title``,
                    ``input``, ``has``, ``role``; a node must satisfy every entry
==================  ===========================================================================

Results are node ids in graph order. Selecting never raises on a malformed graph: nodes that are not
dicts, or lack ``inputs``, are skipped. ``parse_selector`` reports a malformed selector as a message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeAlias, TypedDict, TypeGuard

from .jsoncodec import JSON as JSON  # re-exported: callers take the graph types and JSON from here

Selector: TypeAlias = "str | dict[str, str]"
# An input wired to another node's output: ``[node_id, output_index]``.
Link: TypeAlias = "list[str | int]"


class Node(TypedDict, total=False):
    """One API-format node."""

    class_type: str
    inputs: dict[str, JSON]
    _meta: dict[str, JSON]


Graph: TypeAlias = "dict[str, Node]"

SELECTOR_KINDS = ("id", "class", "title", "input", "has", "role")

# Nodes that run the denoising loop and carry seed/steps/cfg/sampler_name in one place.
SAMPLER_CLASSES = frozenset(
    {"KSampler", "KSamplerAdvanced", "SamplerCustom", "SamplerCustomAdvanced", "KSamplerSelect"}
)
NOISE_CLASSES = frozenset({"RandomNoise"})
SCHEDULER_CLASSES = frozenset(
    {
        "BasicScheduler",
        "KarrasScheduler",
        "ExponentialScheduler",
        "PolyexponentialScheduler",
        "SDTurboScheduler",
        "BetaSamplingScheduler",
        "AlignYourStepsScheduler",
        "LaplaceScheduler",
    }
)
GUIDER_CLASSES = frozenset({"CFGGuider", "DualCFGGuider", "PerpNegGuider"})
FLUX_GUIDANCE_CLASSES = frozenset({"FluxGuidance"})
# Latent / canvas sources whose width and height decide the output size.
SIZE_CLASSES = frozenset(
    {
        "EmptyLatentImage",
        "EmptySD3LatentImage",
        "EmptyHunyuanLatentVideo",
        "EmptyMochiLatentVideo",
        "EmptyLTXVLatentVideo",
        "EmptyCosmosLatentVideo",
        "EmptyImage",
        "StudioAspectRatio",
    }
)
# Inputs that hold prompt text on text-encoder nodes (SD1.5/SDXL/SD3/Flux encoders).
TEXT_INPUTS = ("text", "text_g", "text_l", "clip_l", "t5xxl", "prompt")
# Where a string node wired into a text input keeps its text (primitives, Studio prompt inputs).
STRING_SOURCE_INPUTS = ("value", "string", "text")
# Every input the positive/negative roles may hold text in: a target input list for prompt codes.
PROMPT_INPUTS = "|".join(dict.fromkeys(TEXT_INPUTS + STRING_SOURCE_INPUTS))
# Walking upstream from a sampler's negative stops here: the conditioning is zeroed, so no text counts.
_ZEROING_CLASSES = frozenset({"ConditioningZeroOut"})
ROLES = ("sampler", "noise", "scheduler", "guider", "flux_guidance", "positive", "negative", "size")


def parse_selector(selector: object) -> tuple[list[tuple[str, str]], str | None]:
    """Split a selector into (kind, value) clauses; kind ``""`` is a bare name. Second item: an error."""
    if isinstance(selector, str):
        kind, sep, value = selector.partition(":")
        if sep and kind in SELECTOR_KINDS:
            if not value:
                return [], f"selector {selector!r} has no value after '{kind}:'"
            if kind == "role" and value not in ROLES:
                return [], f"unknown role {value!r}; roles are {', '.join(ROLES)}"
            return [(kind, value)], None
        if not selector:
            return [], "empty selector"
        return [("", selector)], None
    if isinstance(selector, dict):
        if not selector:
            return [], "empty selector"
        clauses: list[tuple[str, str]] = []
        for key, value in selector.items():
            if key not in SELECTOR_KINDS:
                return [], f"unknown selector key {key!r}; keys are {', '.join(SELECTOR_KINDS)}"
            if not isinstance(value, str) or not value:
                return [], f"selector key {key!r} needs a non-empty string"
            if key == "role" and value not in ROLES:
                return [], f"unknown role {value!r}; roles are {', '.join(ROLES)}"
            clauses.append((key, value))
        return clauses, None
    return [], "a selector is a string like 'class:KSampler' or a dict like {'class': 'KSampler'}"


def describe_selector(selector: Selector) -> str:
    """A short human phrase for warnings (``role:negative`` → ``negative prompt``)."""
    clauses, err = parse_selector(selector)
    if err or not clauses:
        return repr(selector)
    words = []
    for kind, value in clauses:
        if kind == "role":
            words.append(_ROLE_WORDS.get(value, value))
        elif kind == "class":
            words.append(f"{value} node")
        elif kind == "id":
            words.append(f"node {value}")
        elif kind == "title":
            words.append(f"node titled {value!r}")
        elif kind == "input":
            words.append(f"Studio input {value!r}")
        elif kind == "has":
            words.append(f"node with a {value!r} input")
        else:
            words.append(repr(value))
    return " and ".join(words)


_ROLE_WORDS = {
    "sampler": "sampler",
    "noise": "noise source",
    "scheduler": "scheduler",
    "guider": "guider",
    "flux_guidance": "FluxGuidance node",
    "positive": "positive prompt",
    "negative": "negative prompt",
    "size": "latent/size node",
}


def _inputs(node: object) -> dict[str, JSON] | None:
    if isinstance(node, dict):
        inputs = node.get("inputs")
        if isinstance(inputs, dict):
            return inputs
    return None


def _class(node: Node) -> str:
    ct = node.get("class_type")
    return ct if isinstance(ct, str) else ""


def _title(node: Node) -> str:
    meta = node.get("_meta")
    if isinstance(meta, dict):
        title = meta.get("title")
        if isinstance(title, str):
            return title
    return ""


def is_link(value: object) -> TypeGuard[Link]:
    """True for an API-format link ``[node_id, output_index]``."""
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str | int)
        and not isinstance(value[0], bool)
        and isinstance(value[1], int)
        and not isinstance(value[1], bool)
    )


class GraphIndex:
    """One pass over a graph, then cached role lookups; reuse it for many selections on one graph."""

    __slots__ = ("_roles", "entries", "graph")

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        # (id, class_type, inputs) of every well-formed node, in graph order.
        self.entries: list[tuple[str, str, dict[str, JSON]]] = []
        append = self.entries.append
        for nid, node in graph.items():
            if type(node) is dict:
                inputs = node.get("inputs")
                if type(inputs) is dict:
                    ct = node.get("class_type")
                    append((nid, ct if type(ct) is str else "", inputs))
        self._roles: dict[str, list[str]] = {}

    def role(self, name: str) -> list[str]:
        cached = self._roles.get(name)
        if cached is None:
            if name in ("positive", "negative"):
                self._find_prompts()
            else:
                self._roles[name] = _ROLE_FINDERS[name](self.entries)
            cached = self._roles[name]
        return cached

    def select(self, selector: Selector | JSON) -> list[str]:
        """Node ids the selector picks; [] for a malformed one (a stored selector is checked here)."""
        clauses, err = parse_selector(selector)
        if err:
            return []
        result: list[str] | None = None
        for kind, value in clauses:
            ids = self._select_one(kind, value)
            if result is None:
                result = ids
            else:
                keep = set(ids)
                result = [i for i in result if i in keep]
            if not result:
                return []
        return result or []

    def _select_one(self, kind: str, value: str) -> list[str]:
        if kind == "role":
            return list(self.role(value))
        if kind == "id":
            return [value] if _inputs(self.graph.get(value)) is not None else []
        if kind == "":
            for sub in ("id", "input", "title", "class"):
                ids = self._select_one(sub, value)
                if ids:
                    return ids
            return []
        if kind == "class":
            return [nid for nid, ct, _ in self.entries if ct == value]
        if kind == "has":
            return [nid for nid, _, inputs in self.entries if value in inputs]
        if kind == "input":
            return [nid for nid, ct, inputs in self.entries if ct.startswith("Studio") and inputs.get("name") == value]
        folded = value.casefold()  # title
        return [nid for nid, _, _ in self.entries if _title(self.graph[nid]).casefold() == folded]

    def _find_prompts(self) -> None:
        pos_starts: list[tuple[str, int]] = []
        neg_starts: list[tuple[str, int]] = []
        for _, ct, inputs in self.entries:
            if ct in SAMPLER_CLASSES or ct in GUIDER_CLASSES or "sampler" in ct.casefold():
                _add_link(pos_starts, inputs.get("positive"))
                _add_link(neg_starts, inputs.get("negative"))
            elif ct == "BasicGuider":
                _add_link(pos_starts, inputs.get("conditioning"))
        pos = _text_nodes_upstream(self.graph, pos_starts)
        neg = _text_nodes_upstream(self.graph, neg_starts) if neg_starts else []
        if neg and pos:
            in_pos = set(pos)
            neg = [n for n in neg if n not in in_pos]
        self._roles["positive"] = pos
        self._roles["negative"] = neg


def _add_link(starts: list[tuple[str, int]], link: JSON) -> None:
    if is_link(link):
        starts.append((str(link[0]), int(link[1])))


def select(graph: Graph, selector: Selector | JSON) -> list[str]:
    """Node ids of ``graph`` matched by ``selector`` (graph order); [] for a malformed selector."""
    return GraphIndex(graph).select(selector)


_Entries: TypeAlias = "list[tuple[str, str, dict[str, JSON]]]"


def _samplers(entries: _Entries) -> list[str]:
    # The known core samplers, plus custom ones named like samplers that take a seed.
    return [
        nid
        for nid, ct, inputs in entries
        if ct in SAMPLER_CLASSES or ("ampler" in ct and ("seed" in inputs or "noise_seed" in inputs))
    ]


def _size_nodes(entries: _Entries) -> list[str]:
    # The known latent/canvas sources, plus any ``Empty*`` node with width and height.
    return [
        nid
        for nid, ct, inputs in entries
        if ct in SIZE_CLASSES or (ct.startswith("Empty") and "width" in inputs and "height" in inputs)
    ]


def _classes(classes: frozenset[str]) -> Callable[[_Entries], list[str]]:
    return lambda entries: [nid for nid, ct, _ in entries if ct in classes]


def _text_nodes_upstream(graph: Graph, starts: Iterable[tuple[str, int]]) -> list[str]:
    """Walk links upstream; collect nodes holding prompt text as a string, without passing them.

    A node with both ``positive`` and ``negative`` inputs (ControlNetApplyAdvanced, InpaintModel-
    Conditioning…) passes output 0 from its positive and output 1 from its negative, so the walk
    follows only the matching side. A text input wired to a string node (a primitive, a Studio
    prompt input) leads to that node, which then holds the text in ``value``/``string``.
    """
    found: list[str] = []
    seen: set[tuple[str, int]] = set()
    stack = list(starts)
    while stack:
        key = stack.pop()
        if key in seen:
            continue
        seen.add(key)
        nid, out = key
        node = graph.get(nid)
        inputs = _inputs(node)
        if node is None or inputs is None or _class(node) in _ZEROING_CLASSES:
            continue
        texts = [inputs[k] for k in TEXT_INPUTS if k in inputs]
        if texts:
            if any(isinstance(t, str) for t in texts):
                found.append(nid)
            for t in texts:
                if is_link(t):
                    stack.append((str(t[0]), -1))  # a text wire: string source
            continue
        if out == -1:  # a string source
            if any(isinstance(inputs.get(k), str) for k in STRING_SOURCE_INPUTS):
                found.append(nid)
            continue
        if "positive" in inputs and "negative" in inputs and out in (0, 1):
            _add_link(stack, inputs["positive" if out == 0 else "negative"])
            continue
        for value in inputs.values():
            _add_link(stack, value)
    if len(found) < 2:
        return found
    order = {nid: i for i, nid in enumerate(graph)}
    return sorted(dict.fromkeys(found), key=lambda n: order.get(n, 0))


def find_samplers(graph: Graph) -> list[str]:
    """Sampler nodes: KSampler(Advanced), SamplerCustom(Advanced), KSamplerSelect, custom seeded samplers."""
    return GraphIndex(graph).role("sampler")


def find_noise(graph: Graph) -> list[str]:
    return GraphIndex(graph).role("noise")


def find_schedulers(graph: Graph) -> list[str]:
    return GraphIndex(graph).role("scheduler")


def find_guiders(graph: Graph) -> list[str]:
    return GraphIndex(graph).role("guider")


def find_flux_guidance(graph: Graph) -> list[str]:
    return GraphIndex(graph).role("flux_guidance")


def find_size_nodes(graph: Graph) -> list[str]:
    """Latent/size nodes: EmptyLatentImage, EmptySD3LatentImage, EmptyImage, other Empty* with a size."""
    return GraphIndex(graph).role("size")


def find_positive(graph: Graph) -> list[str]:
    """Prompt-text nodes feeding the samplers' positive conditioning."""
    return GraphIndex(graph).role("positive")


def find_negative(graph: Graph) -> list[str]:
    """Prompt-text nodes feeding the negative conditioning, minus any that also feed the positive."""
    return GraphIndex(graph).role("negative")


_ROLE_FINDERS: dict[str, Callable[[_Entries], list[str]]] = {
    "sampler": _samplers,
    "noise": _classes(NOISE_CLASSES),
    "scheduler": _classes(SCHEDULER_CLASSES),
    "guider": _classes(GUIDER_CLASSES),
    "flux_guidance": _classes(FLUX_GUIDANCE_CLASSES),
    "size": _size_nodes,
}


def text_inputs(node: Node) -> list[str]:
    """Names of the string prompt-text inputs of a node, e.g. ``["text_g", "text_l"]`` for SDXL."""
    inputs = _inputs(node)
    if inputs is None:
        return []
    return [k for k in TEXT_INPUTS if isinstance(inputs.get(k), str)]
