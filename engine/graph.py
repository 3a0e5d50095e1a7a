"""API-format graphs: the shape check every submitted graph passes before it reaches ComfyUI."""

from __future__ import annotations

from .errors import JSONValue, StudioError

MAX_NODES = 2000
MAX_DEPTH = 24


def json_depth(value: JSONValue, limit: int) -> int:
    """Depth of nested containers, stopping early once past limit (iterative: no recursion bombs)."""
    deepest = 0
    stack: list[tuple[JSONValue, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: list[JSONValue] = list(item.values())
        elif isinstance(item, list):
            children = list(item)
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _problem(node_id: str, message: str, *loc: str) -> dict[str, JSONValue]:
    return {"loc": ["graph", node_id, *loc], "message": message, "type": "graph_error"}


def check_api_graph(graph: JSONValue) -> dict[str, JSONValue]:
    """Raise a validation error naming the node unless graph is a well-formed API-format graph."""
    if not isinstance(graph, dict) or not graph:
        raise StudioError(
            "validation_error",
            "The graph must be a non-empty API-format object of nodes",
            [{"loc": ["graph"], "message": "expected an object of nodes", "type": "graph_error"}],
        )
    if len(graph) > MAX_NODES:
        raise StudioError("validation_error", f"The graph has more than {MAX_NODES} nodes")
    if json_depth(graph, MAX_DEPTH) > MAX_DEPTH:
        raise StudioError("validation_error", f"The graph is nested deeper than {MAX_DEPTH} levels")
    problems: list[JSONValue] = []
    for node_id, node in graph.items():
        if not node_id or len(node_id) > 64 or any(ord(c) < 32 for c in node_id):
            problems.append(_problem(node_id[:64], "node ids must be 1-64 printable characters"))
            continue
        if not isinstance(node, dict):
            problems.append(_problem(node_id, "a node must be an object"))
            continue
        class_type = node.get("class_type")
        if not isinstance(class_type, str) or not class_type or len(class_type) > 200:
            problems.append(_problem(node_id, "class_type must be a non-empty string", "class_type"))
        inputs = node.get("inputs", {})
        if not isinstance(inputs, dict):
            problems.append(_problem(node_id, "inputs must be an object", "inputs"))
            continue
        unknown = set(node) - {"class_type", "inputs", "_meta", "is_changed"}
        if unknown:
            problems.append(_problem(node_id, f"unknown node fields: {', '.join(sorted(unknown))}"))
    if problems:
        first = problems[0]
        message = first["message"] if isinstance(first, dict) else "invalid graph"
        node = first["loc"][1] if isinstance(first, dict) else "?"  # type: ignore[index]
        raise StudioError("validation_error", f"Invalid graph: node {node}: {message}", problems)
    return graph
