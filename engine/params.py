"""Parameter schemas of workflows and actions, and value checks against ComfyUI's input definitions.

A parameter is a named value the studio lets the user set without touching the graph::

    {"name": "denoise", "type": "FLOAT", "default": 0.5, "min": 0.0, "max": 1.0, "step": 0.01,
     "choices": null, "label": "Denoise", "selector": "class:KSampler", "input": "denoise"}

``selector`` (see ``engine.selectors``) and ``input`` say which node input the value patches; a
parameter without a selector is computed by the action itself (zoom factor, pan direction). Types are
ComfyUI's widget types: INT, FLOAT, STRING, BOOLEAN and COMBO (with ``choices``).

Values are checked the way ComfyUI's ``validate_inputs`` checks them (type, min, max, combo
membership), so a bad value is the studio's clear error before queueing, not a failed job.
"""

from __future__ import annotations

import math
from typing import TypeAlias, TypeGuard

from .jsoncodec import JSON
from .selectors import Graph, GraphIndex

ObjectInfo: TypeAlias = "dict[str, JSON]"
Param: TypeAlias = "dict[str, JSON]"

PARAM_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")
PARAM_KEYS = ("name", "type", "default", "min", "max", "step", "choices", "label", "selector", "input")
# Studio input node class → (parameter type, the input holding its value).
STUDIO_INPUTS: dict[str, tuple[str, str]] = {
    "StudioText": ("STRING", "value"),
    "StudioInt": ("INT", "value"),
    "StudioFloat": ("FLOAT", "value"),
    "StudioSeed": ("INT", "seed"),
    "StudioChoice": ("COMBO", "value"),
    "StudioImage": ("IMAGE", "image"),
    "StudioMask": ("MASK", "image"),
}
NAME_MAX = 64


class ParamError(ValueError):
    """A bad parameter definition or value; ``loc`` points at it."""

    def __init__(self, message: str, loc: list[str | int] | None = None) -> None:
        super().__init__(message)
        self.loc = loc or []


def input_spec(object_info: ObjectInfo, class_type: str, name: str) -> tuple[JSON, dict[str, JSON]] | None:
    """(type, options) of one input of a node class, from /object_info."""
    info = object_info.get(class_type)
    section = info.get("input") if isinstance(info, dict) else None
    if not isinstance(section, dict):
        return None
    for category in ("required", "optional"):
        specs = section.get(category)
        spec = specs.get(name) if isinstance(specs, dict) else None
        if isinstance(spec, list) and spec:
            return spec[0], spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    return None


def param_from_spec(itype: JSON, opts: dict[str, JSON]) -> Param:
    """The type and limits a parameter inherits from a ComfyUI input definition."""
    if isinstance(itype, list):
        return {"type": "COMBO", "choices": list(itype)}
    if itype == "COMBO":
        options = opts.get("options")
        return {"type": "COMBO", "choices": list(options) if isinstance(options, list) else []}
    out: Param = {"type": itype if isinstance(itype, str) else "STRING"}
    for key in ("min", "max", "step"):
        if isinstance(opts.get(key), int | float) and not isinstance(opts.get(key), bool):
            out[key] = opts[key]
    if "default" in opts:
        out["default"] = opts["default"]
    return out


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_value(param: Param, value: JSON) -> JSON:
    """``value`` coerced to the parameter's type, or ParamError saying what is wrong with it."""
    name = param.get("name", "value")
    ptype = param.get("type")
    where: list[str | int] = ["parameters", str(name)]
    if ptype == "INT":
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamError(f"{name} must be a whole number, not {value!r}", where)
        _check_range(param, value, where)
    elif ptype == "FLOAT":
        if not _is_number(value) or not math.isfinite(float(value)):
            raise ParamError(f"{name} must be a number, not {value!r}", where)
        value = float(value)
        _check_range(param, value, where)
    elif ptype == "BOOLEAN":
        if not isinstance(value, bool):
            raise ParamError(f"{name} must be true or false, not {value!r}", where)
    elif ptype == "COMBO":
        choices = param.get("choices")
        if isinstance(choices, list) and choices and value not in choices:
            shown = ", ".join(str(c) for c in choices[:12]) + (", …" if len(choices) > 12 else "")
            raise ParamError(f"{name} must be one of {shown}; got {value!r}", where)
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ParamError(f"{name} must be one of its choices, not {value!r}", where)
    elif ptype in ("STRING", "IMAGE", "MASK"):
        if not isinstance(value, str):
            raise ParamError(f"{name} must be text, not {value!r}", where)
    return value


def _check_range(param: Param, value: float, where: list[str | int]) -> None:
    name = param.get("name", "value")
    low, high = param.get("min"), param.get("max")
    if _is_number(low) and value < low:
        raise ParamError(f"{name} is {value}, below its minimum {low}", where)
    if _is_number(high) and value > high:
        raise ParamError(f"{name} is {value}, above its maximum {high}", where)


def normalize_param(raw: JSON, graph: Graph | None, object_info: ObjectInfo) -> Param:
    """A parameter definition checked and completed: type and limits from the input it patches."""
    if not isinstance(raw, dict):
        raise ParamError("a parameter is an object with at least a name")
    unknown = set(raw) - set(PARAM_KEYS)
    if unknown:
        raise ParamError(f"unknown parameter fields: {', '.join(sorted(unknown))}")
    name = raw.get("name")
    if not isinstance(name, str) or not name or len(name) > NAME_MAX or not name.replace("_", "a").isalnum():
        raise ParamError(f"parameter name {name!r} must be 1-{NAME_MAX} letters, digits or _", ["name"])
    param: Param = {}
    selector, input_name = raw.get("selector"), raw.get("input")
    if selector is not None or input_name is not None:
        if not isinstance(input_name, str) or not input_name:
            raise ParamError(f"parameter {name}: a selector needs the input it patches", ["input"])
        if not isinstance(selector, str | dict) or not selector:
            raise ParamError(f"parameter {name}: selector must be a selector string or object", ["selector"])
        if graph is not None:
            index = GraphIndex(graph)
            nodes = [n for n in index.select(selector) if input_name in (graph[n].get("inputs") or {})]
            if not nodes:
                raise ParamError(
                    f"parameter {name}: no node matching {selector!r} has an input {input_name!r}", ["selector"]
                )
            spec = input_spec(object_info, str(graph[nodes[0]].get("class_type")), input_name)
            if spec is not None:
                param.update(param_from_spec(*spec))
            if "default" not in raw:
                current = (graph[nodes[0]].get("inputs") or {}).get(input_name)
                if not isinstance(current, list | dict):
                    param["default"] = current
    for key in PARAM_KEYS:
        if key in raw:
            param[key] = raw[key]
    ptype = param.get("type", "STRING")
    if ptype not in PARAM_TYPES and ptype not in ("IMAGE", "MASK"):
        raise ParamError(f"parameter {name}: type must be one of {', '.join(PARAM_TYPES)}", ["type"])
    param["type"] = ptype
    if "choices" in param and param["choices"] is not None and not isinstance(param["choices"], list):
        raise ParamError(f"parameter {name}: choices must be a list", ["choices"])
    if param.get("default") is not None:
        param["default"] = check_value(param, param["default"])
    param.setdefault("default", None)
    param.setdefault("label", name.replace("_", " ").capitalize())
    return {k: param[k] for k in PARAM_KEYS if k in param}


def discover_parameters(
    graph: Graph, object_info: ObjectInfo, linear_inputs: list[tuple[str, str, dict[str, JSON]]] | None = None
) -> list[Param]:
    """Parameters a graph declares: its Studio input nodes, then App Mode's chosen widgets."""
    found: dict[str, Param] = {}
    for nid, node in graph.items():
        ctype = node.get("class_type")
        inputs = node.get("inputs") or {}
        if not isinstance(ctype, str) or ctype not in STUDIO_INPUTS or not isinstance(inputs, dict):
            continue
        name = inputs.get("name")
        if not isinstance(name, str) or not name or name in found:
            continue
        ptype, value_input = STUDIO_INPUTS[ctype]
        param: Param = {"name": name, "type": ptype, "default": inputs.get(value_input)}
        if isinstance(param["default"], list):
            param["default"] = None
        for key in ("min", "max"):
            if _is_number(inputs.get(key)):
                param[key] = inputs[key]
        if ctype == "StudioChoice" and isinstance(inputs.get("choices"), str):
            param["choices"] = [c.strip() for c in str(inputs["choices"]).splitlines() if c.strip()]
        param.update({"label": name.replace("_", " ").capitalize(), "selector": f"input:{name}", "input": value_input})
        found[name] = {k: param[k] for k in PARAM_KEYS if k in param}
        del nid
    for nid, widget, config in linear_inputs or []:
        if graph.get(nid) is None:
            continue
        label = config.get("label")
        if not isinstance(label, str):
            label = None
        base = "".join(c if c.isalnum() else "_" for c in (label or widget)).strip("_").lower() or "param"
        name = (base if base not in found else f"{base}_{nid.replace(':', '_')}")[:NAME_MAX]
        raw: Param = {"name": name, "selector": f"id:{nid}", "input": widget}
        if label:
            raw["label"] = label
        try:
            found[name] = normalize_param(raw, graph, object_info)
        except ParamError:
            continue
    return list(found.values())


def merge_params(base: list[Param], override: list[Param]) -> list[Param]:
    """The action's parameters over the workflow's, by name (an override may change only a default)."""
    out = {str(p.get("name")): dict(p) for p in base}
    for p in override:
        name = str(p.get("name"))
        out[name] = {**out.get(name, {}), **p}
    return list(out.values())


def check_values(params: list[Param], values: dict[str, JSON]) -> dict[str, JSON]:
    """Every parameter's value: the given one checked, else its default. Unknown names are refused."""
    by_name = {str(p.get("name")): p for p in params}
    unknown = [k for k in values if k not in by_name]
    if unknown:
        known = ", ".join(sorted(by_name)) or "none"
        raise ParamError(f"unknown parameter {unknown[0]!r}; this action takes: {known}", ["parameters", unknown[0]])
    out: dict[str, JSON] = {}
    for name, param in by_name.items():
        if name in values:
            out[name] = check_value(param, values[name])
        elif param.get("default") is not None:
            out[name] = param["default"]
    return out


def check_graph_values(graph: Graph, object_info: ObjectInfo) -> list[dict[str, JSON]]:
    """Literal values of a graph that ComfyUI would refuse (type, min, max, choices), by node and input.

    File choices (LoadImage's image, model names) are left to ComfyUI: they depend on its folders.
    """
    problems: list[dict[str, JSON]] = []
    for nid, node in graph.items():
        ctype = node.get("class_type")
        inputs = node.get("inputs") or {}
        if not isinstance(ctype, str) or not isinstance(inputs, dict):
            continue
        for name, value in inputs.items():
            if isinstance(value, list | dict) or value is None:
                continue
            spec = input_spec(object_info, ctype, name)
            if spec is None:
                continue
            itype, opts = spec
            if isinstance(itype, list) or itype == "COMBO" or opts.get("image_upload"):
                continue
            if itype not in PARAM_TYPES:
                continue
            param: Param = {"name": f"{name}", **param_from_spec(itype, opts)}
            try:
                check_value(param, value)
            except ParamError as exc:
                problems.append(
                    {"loc": ["graph", nid, "inputs", name], "message": f"node {nid} ({ctype}): {exc}", "type": "value"}
                )
    return problems
