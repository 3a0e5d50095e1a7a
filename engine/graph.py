"""API-format graphs: the shape check every submitted graph passes before it reaches ComfyUI."""

from __future__ import annotations

from .errors import StudioError
from .jsoncodec import JSON, json_depth
from .selectors import Graph

MAX_NODES = 2000
MAX_DEPTH = 24


def _problem(node_id: str, message: str, *loc: str) -> dict[str, JSON]:
    return {"loc": ["graph", node_id, *loc], "message": message, "type": "graph_error"}


def check_api_graph(graph: object) -> Graph:
    """The graph, once it is a well-formed API-format graph; otherwise a validation error naming the node."""
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
    problems: list[tuple[str, str, tuple[str, ...]]] = []  # (node id, message, loc under the node)
    for node_id, node in graph.items():
        if not node_id or len(node_id) > 64 or any(ord(c) < 32 for c in node_id):
            problems.append((node_id[:64], "node ids must be 1-64 printable characters", ()))
            continue
        if not isinstance(node, dict):
            problems.append((node_id, "a node must be an object", ()))
            continue
        class_type = node.get("class_type")
        if not isinstance(class_type, str) or not class_type or len(class_type) > 200:
            problems.append((node_id, "class_type must be a non-empty string", ("class_type",)))
        inputs = node.get("inputs", {})
        if not isinstance(inputs, dict):
            problems.append((node_id, "inputs must be an object", ("inputs",)))
            continue
        unknown = set(node) - {"class_type", "inputs", "_meta", "is_changed"}
        if unknown:
            problems.append((node_id, f"unknown node fields: {', '.join(sorted(unknown))}", ()))
    if problems:
        first_id, first_message, _ = problems[0]
        details: list[JSON] = [_problem(nid, message, *loc) for nid, message, loc in problems]
        raise StudioError("validation_error", f"Invalid graph: node {first_id}: {first_message}", details)
    return graph
