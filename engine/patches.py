"""Resolved shortcodes → RFC 6902 operations on an API-format graph, and applying them.

``build_patches`` walks each winning token's targets (see ``shortcodes.Target``) over a ``GraphIndex``
and emits ``replace`` operations (``/12/inputs/width``). Targets run in three passes — ``set``, then
``multiply``/``ancestral``, then ``append`` — so ``--steps 30 --q 2`` gives 60 in either order. An
input that is wired to another node (a link) is never overwritten: that would cut the graph. A code
that touches no node gets a warning naming it; it is never a silent no-op.

``apply_patches`` copies the graph once with a JSON-aware copy (dicts, lists, scalars: several times
faster than ``copy.deepcopy``) and applies the operations in place with ``jsonpatch``.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypedDict, cast

import jsonpatch

from .jsoncodec import JSON
from .selectors import Graph, GraphIndex, Node, describe_selector
from .shortcodes import (
    DEFAULT_REGISTRY,
    CodeDefinition,
    ParseResult,
    Registry,
    Target,
    Token,
    dims_for_ratio,
    interpolate,
    render_template,
)

SEED_DRAW_MAX = 2**53 - 1  # drawn seeds stay exact in JavaScript numbers

# Deterministic sampler → a stochastic one of the same family; chaos uses it for per-step fresh noise.
ANCESTRAL = {
    "euler": "euler_ancestral",
    "euler_cfg_pp": "euler_ancestral_cfg_pp",
    "dpm_2": "dpm_2_ancestral",
    "dpmpp_2m": "dpmpp_2m_sde",
    "dpmpp_2m_cfg_pp": "dpmpp_2m_sde",
    "dpmpp_3m": "dpmpp_3m_sde",
    "dpmpp_2m_sde_gpu": "dpmpp_2m_sde_gpu",
    "lms": "euler_ancestral",
    "heun": "euler_ancestral",
    "heunpp2": "euler_ancestral",
    "dpm_fast": "euler_ancestral",
    "dpm_adaptive": "euler_ancestral",
    "ddim": "euler_ancestral",
    "uni_pc": "euler_ancestral",
    "uni_pc_bh2": "euler_ancestral",
    "ipndm": "euler_ancestral",
    "ipndm_v": "euler_ancestral",
    "deis": "euler_ancestral",
    "res_multistep": "res_multistep_ancestral",
    "gradient_estimation": "euler_ancestral",
}

_PASS = {"set": 0, "multiply": 1, "ancestral": 1, "append": 2}
_CONTAINERS = (dict, list)


class PatchOp(TypedDict):
    """One RFC 6902 operation (the builder only emits ``replace``)."""

    op: str
    path: str
    value: JSON


@dataclass(slots=True)
class PatchReport:
    """What one code did: its resolved value (a drawn seed included), the nodes it changed, warnings."""

    code: str
    value: JSON
    nodes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, JSON]:
        return {
            "code": self.code,
            "value": self.value,
            "nodes": list(self.nodes),
            "warnings": list(self.warnings),
        }


@dataclass(slots=True)
class PatchPlan:
    ops: list[PatchOp]
    reports: list[PatchReport]

    @property
    def warnings(self) -> list[str]:
        return [w for r in self.reports for w in r.warnings]

    def to_dict(self) -> dict[str, JSON]:
        return {
            "ops": [{"op": op["op"], "path": op["path"], "value": op["value"]} for op in self.ops],
            "reports": [r.to_dict() for r in self.reports],
        }


def copy_json(value: JSON) -> JSON:
    """A copy of a JSON value: new dicts and lists, shared immutable scalars."""
    if type(value) is dict:
        return {k: (v if type(v) not in _CONTAINERS else copy_json(v)) for k, v in value.items()}
    if type(value) is list:
        return [v if type(v) not in _CONTAINERS else copy_json(v) for v in value]
    return value


def copy_graph(graph: Graph) -> Graph:
    """A full copy of an API-format graph, specialised for its shape: node dicts whose inputs are
    mostly scalars and two-element links. About 5× faster than ``copy.deepcopy``."""
    out: dict[str, object] = {}
    nodes: Mapping[str, object] = graph  # a malformed graph's non-dict nodes are copied too
    for nid, node in nodes.items():
        if type(node) is not dict:
            out[nid] = copy_json(node) if type(node) is list else node
            continue
        new = node.copy()
        for key, value in node.items():
            if type(value) is dict:
                if key == "inputs":
                    inputs = value.copy()
                    for name, v in value.items():
                        tv = type(v)
                        if tv is list:
                            if len(v) == 2 and type(v[0]) is str and type(v[1]) is int:
                                inputs[name] = [v[0], v[1]]  # a link
                            else:
                                inputs[name] = copy_json(v)
                        elif tv is dict:
                            inputs[name] = copy_json(v)
                    new[key] = inputs
                else:
                    new[key] = copy_json(value)
            elif type(value) is list:
                new[key] = copy_json(value)
        out[nid] = new
    # The copy has the graph's own shape, which a TypedDict cannot be built from key by key.
    return cast("Graph", out)


def apply_patches(graph: Graph, ops: Iterable[PatchOp], *, in_place: bool = False) -> Graph:
    """A patched copy of ``graph``; ``graph`` itself is untouched. Bad ops raise jsonpatch or jsonpointer errors.

    ``in_place``: patch ``graph`` itself (a copy the caller owns), values copied in, saving the graph's copy."""
    if in_place:
        ops = [{"op": op["op"], "path": op["path"], "value": copy_json(op["value"])} for op in ops]
    doc = graph if in_place else copy_graph(graph)
    # jsonpatch's own operation classes, applied one by one in place: ``JsonPatch(ops).apply`` would
    # build and validate every operation twice, which costs more than the copy.
    operations = jsonpatch.JsonPatch.operations
    for op in ops:
        cls = operations.get(op.get("op")) if isinstance(op, dict) else None
        if cls is None:
            raise jsonpatch.InvalidJsonPatch(f"unknown operation {op!r}")
        doc = cls(op).apply(doc)
    return doc


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def _number(value: JSON) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


class _Builder:
    __slots__ = ("graph", "index", "op_at", "overlay", "ops", "registry", "rng", "skipped")

    def __init__(self, graph: Graph, registry: Registry, rng: random.Random) -> None:
        self.graph = graph
        self.index = GraphIndex(graph)
        self.overlay: dict[tuple[str, str], JSON] = {}
        self.ops: list[PatchOp] = []
        self.op_at: dict[tuple[str, str], int] = {}
        self.registry = registry
        self.rng = rng
        self.skipped: dict[str, list[str]] = {}

    def current(self, nid: str, inputs: dict[str, JSON], name: str) -> JSON:
        key = (nid, name)
        return self.overlay[key] if key in self.overlay else inputs.get(name)

    def write(self, nid: str, name: str, value: JSON) -> None:
        key = (nid, name)
        self.overlay[key] = value
        at = self.op_at.get(key)
        if at is not None:  # one op per input: a later code's value replaces an earlier one's
            self.ops[at]["value"] = value
            return
        self.op_at[key] = len(self.ops)
        self.ops.append({"op": "replace", "path": f"/{_escape(nid)}/inputs/{_escape(name)}", "value": value})

    def context(self, defn: CodeDefinition, value: JSON) -> dict[str, JSON]:
        ctx: dict[str, JSON] = {"value": value, "code": defn.code}
        if isinstance(value, dict):
            ctx.update(value)
            if defn.type == "ratio":
                ctx["value"] = value.get("ratio")
            elif defn.type == "size":
                ctx["value"] = f"{value.get('width')}x{value.get('height')}"
        if defn.type == "enum" and isinstance(value, str):
            choice = defn.choice(value)
            if choice is not None:
                ctx.update(choice.extras)
        if defn.scale:
            x = _number(value)
            if x is not None:
                for name, pts in defn.scale.items():
                    ctx[name] = round(interpolate(pts, x), 4)
        return ctx

    def run_target(self, defn: CodeDefinition, target: Target, ctx: dict[str, JSON], report: PatchReport) -> bool:
        """Apply one target; True when it matched a node that has the input (the code is honoured)."""
        jobs: list[tuple[str, JSON]]
        tmpl = target.template
        if isinstance(tmpl, dict):
            value = ctx.get("value")
            sub = None
            if isinstance(value, str):
                folded = value.casefold()
                sub = next((v for k, v in tmpl.items() if k.casefold() == folded), None)
            if sub is None:
                return True  # this choice does nothing here, by definition
            if target.input:
                jobs = [(target.input, sub)]
            elif isinstance(sub, dict):
                jobs = list(sub.items())
            else:
                return False
        else:
            jobs = [(target.input, tmpl)]
        honoured = False
        for nid in self.index.select(target.selector):
            node: Node = self.graph[nid]
            inputs = node.get("inputs")
            if not isinstance(inputs, dict):
                continue
            for input_spec, template in jobs:
                for name in input_spec.split("|"):
                    if name not in inputs:
                        continue
                    cur = self.current(nid, inputs, name)
                    if isinstance(cur, list):
                        continue  # wired to another node's output
                    if self.apply_one(defn, target, nid, name, cur, template, ctx, report):
                        honoured = True
        return honoured

    def apply_one(
        self,
        defn: CodeDefinition,
        target: Target,
        nid: str,
        name: str,
        cur: JSON,
        template: JSON,
        ctx: dict[str, JSON],
        report: PatchReport,
    ) -> bool:
        """Apply the target to one input; False when the node's state makes it inapplicable."""
        if target.min_current is not None:
            cur_num = _number(cur)
            if cur_num is not None and cur_num < target.min_current:
                note = (
                    f"--{defn.code} left {name} of node {nid} at {_fmt_num(cur_num)}: "
                    f"below {_fmt_num(target.min_current)} it is a distilled model's setting"
                )
                self.skipped.setdefault(defn.code, []).append(note)
                return False
        ratio_w, ratio_h = ctx.get("w"), ctx.get("h")
        if (
            defn.type == "ratio"
            and name in ("width", "height")
            and isinstance(ratio_w, float)
            and isinstance(ratio_h, int | float)
        ):
            # Keep the node's own pixel count (an SD1.5 graph stays near 512², SDXL near 1024²).
            inputs = self.graph[nid].get("inputs") or {}
            w0, h0 = _number(inputs.get("width")), _number(inputs.get("height"))
            pixels = int(w0 * h0) if w0 and h0 and w0 > 0 and h0 > 0 else self.registry.target_pixels
            width, height = dims_for_ratio(ratio_w, ratio_h, pixels)
            ctx = {**ctx, "width": width, "height": height}
        rendered = render_template(template, ctx) if isinstance(template, str) else template
        mode = target.mode
        new: JSON
        if mode == "set":
            new = rendered
            if isinstance(cur, int) and not isinstance(cur, bool) and isinstance(new, float) and new.is_integer():
                new = int(new)
        elif mode == "append":
            if rendered is None or rendered == "" or rendered == []:
                return True  # nothing to add for this value, by definition
            if isinstance(rendered, list):
                add = ", ".join(str(x) for x in rendered)
            else:
                add = rendered if isinstance(rendered, str) else str(rendered)
            base = cur if isinstance(cur, str) else ""
            base = base.rstrip().rstrip(",").rstrip()
            new = f"{base}, {add}" if base else add
        elif mode == "multiply":
            factor, cur_num = _number(rendered), _number(cur)
            if factor is None or cur_num is None or isinstance(cur, str):
                return False
            if isinstance(cur, int):
                new = max(1, round(cur_num * factor))
            else:
                new = round(cur_num * factor, 4)
        else:  # ancestral
            amount = _number(rendered)
            if not amount or amount <= 0 or not isinstance(cur, str):
                return True
            new = ANCESTRAL.get(cur, cur)
        _touch(report, nid)
        if new != cur or type(new) is not type(cur):
            self.write(nid, name, new)
        return True


def _fmt_num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _touch(report: PatchReport, nid: str) -> None:
    if nid not in report.nodes:
        report.nodes.append(nid)


def build_patches(
    graph: Graph,
    parsed: ParseResult | Iterable[Token],
    registry: Registry = DEFAULT_REGISTRY,
    *,
    workflow: str | None = None,
    rng: random.Random | None = None,
) -> PatchPlan:
    """RFC 6902 ops that apply the valid, winning tokens to ``graph``, with a report per code.

    ``--seed random`` draws from ``rng`` (pass a seeded ``random.Random`` for reproducible tests);
    the drawn seed is the report's ``value``, so the job can store it.
    """
    tokens = parsed.winning_tokens() if isinstance(parsed, ParseResult) else list(parsed)
    builder = _Builder(graph, registry, rng or random.SystemRandom())
    work: list[tuple[int, int, CodeDefinition, Target, dict[str, JSON], PatchReport]] = []
    reports: list[PatchReport] = []
    for order, token in enumerate(tokens):
        if token.code is None or not token.valid or token.overridden:
            continue
        defn = registry.lookup(token.code)
        if defn is None:
            continue
        value = token.value
        if defn.type == "seed" and value == "random":
            value = builder.rng.randint(0, SEED_DRAW_MAX)
        report = PatchReport(defn.code, value)
        reports.append(report)
        ctx = builder.context(defn, value)
        for target in defn.targets:
            if target.workflow is not None and target.workflow != workflow:
                continue
            work.append((_PASS.get(target.mode, 0), order, defn, target, ctx, report))
    work.sort(key=lambda w: (w[0], w[1]))
    honoured: set[str] = set()
    for _, _, defn, target, ctx, report in work:
        if builder.run_target(defn, target, ctx, report):
            honoured.add(report.code)
    for report in reports:
        if report.code not in honoured:
            defn = registry.lookup(report.code)
            wanted = (
                []
                if defn is None
                else list(
                    dict.fromkeys(
                        describe_selector(t.selector)
                        for t in defn.targets
                        if t.workflow is None or t.workflow == workflow
                    )
                )
            )
            if report.code in builder.skipped:
                report.warnings.extend(builder.skipped[report.code])
                continue
            what = " or ".join(wanted) if wanted else "target for it"
            report.warnings.append(f"--{report.code} has no effect on this workflow: it has no {what}")
    return PatchPlan(builder.ops, reports)


def patch_graph(
    graph: Graph,
    parsed: ParseResult | Iterable[Token],
    registry: Registry = DEFAULT_REGISTRY,
    *,
    workflow: str | None = None,
    rng: random.Random | None = None,
) -> tuple[Graph, PatchPlan]:
    """Build and apply in one call: (patched copy, plan)."""
    plan = build_patches(graph, parsed, registry, workflow=workflow, rng=rng)
    return apply_patches(graph, plan.ops), plan
