"""JSON in and out at the studio's edges: strict on what arrives, never invalid on what leaves.

Python's ``json`` reads and writes ``NaN``/``Infinity``, which are not JSON (a browser's ``JSON.parse``
throws on them), and its decoder recurses, so a deeply nested document raises ``RecursionError``.
Every JSON the studio takes in (request bodies, uploaded files, PNG text chunks) goes through
``loads_input``; every JSON it writes (responses, events, stored columns) through ``dumps``.
"""

from __future__ import annotations

import json
import math
from typing import TypeAlias

# The engine's one alias for a JSON value.
JSON: TypeAlias = "dict[str, JSON] | list[JSON] | str | int | float | bool | None"


def json_depth(value: JSON, limit: int) -> int:
    """Depth of nested containers, stopping early once past limit (iterative: no recursion bombs)."""
    deepest = 0
    stack: list[tuple[JSON, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: list[JSON] = list(item.values())
        elif isinstance(item, list):
            children = list(item)
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest


class JSONInputError(ValueError):
    """Input that is not acceptable JSON; ``kind`` is ``syntax``, ``depth`` or ``non_finite``."""

    def __init__(self, kind: str, message: str, loc: list[str] | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.loc = loc or []


class _NonFinite(ValueError):
    pass


def _refuse_constant(name: str) -> float:
    raise _NonFinite(name)


class _Marker:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


def _find_marker(value: object) -> tuple[list[str], str]:
    """Where the first non-finite constant sits (iterative: the document may be deep)."""
    stack: list[tuple[object, list[str]]] = [(value, [])]
    while stack:
        item, path = stack.pop()
        if isinstance(item, _Marker):
            return path, item.name
        if isinstance(item, dict):
            stack.extend((v, [*path, str(k)]) for k, v in reversed(list(item.items())))
        elif isinstance(item, list):
            stack.extend((v, [*path, str(i)]) for i, v in reversed(list(enumerate(item))))
    return [], "NaN"


def loads_input(raw: str | bytes | bytearray, *, max_depth: int, what: str = "The JSON") -> JSON:
    """Parse JSON that came from outside: refuse bad syntax, nesting past max_depth, NaN and Infinity."""
    try:
        value: JSON = json.loads(raw, parse_constant=_refuse_constant)
    except _NonFinite:
        marked = json.loads(raw, parse_constant=_Marker)
        path, name = _find_marker(marked)
        where = ".".join(path) or "the top level"
        raise JSONInputError(
            "non_finite",
            f"{what} holds {name} at {where}: only finite numbers are JSON",
            path,
        ) from None
    except RecursionError:
        raise JSONInputError("depth", f"{what} is nested deeper than {max_depth} levels") from None
    except (ValueError, UnicodeDecodeError):
        raise JSONInputError("syntax", f"{what} is not valid JSON") from None
    if json_depth(value, max_depth) > max_depth:
        raise JSONInputError("depth", f"{what} is nested deeper than {max_depth} levels")
    return value


def loads_lenient(raw: str | bytes | bytearray) -> JSON:
    """Parse JSON from a peer we read but do not police (ComfyUI): NaN and Infinity become null."""
    value: JSON = json.loads(raw, parse_constant=lambda _name: None)
    return value


def finite(value: object) -> object:
    """value with every NaN/Infinity replaced by None (containers copied only where needed)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def dumps(value: object, *, indent: int | None = None) -> str:
    """Compact JSON that is always valid: a non-finite number is written as null."""
    separators = (",", ": ") if indent is not None else (",", ":")
    try:
        return json.dumps(value, ensure_ascii=False, separators=separators, indent=indent, allow_nan=False)
    except ValueError:
        return json.dumps(finite(value), ensure_ascii=False, separators=separators, indent=indent, allow_nan=False)
