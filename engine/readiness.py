"""Whether a workflow can run on this ComfyUI: node types it lacks, model files it names that are not installed.

Pure data: the graph (or, when it could not be converted, the UI workflow it came from), ComfyUI's
`/object_info`, and optionally ComfyUI-Manager's node map (`extension-node-map.json`: pack URL →
`[[node names], {"title_aux", "nodename_pattern"?}]`) to name the pack that provides a missing type.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from .jsoncodec import JSON
from .params import input_spec

# Node types the editor resolves away before a graph runs: they never need to be installed.
VIRTUAL_TYPES = frozenset({"Reroute", "PrimitiveNode", "Note", "MarkdownNote"})
GROUP_PREFIXES = ("workflow>", "workflow/")
MODEL_EXTENSIONS = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".sft", ".onnx", ".pt2")

MANAGER_HOW_TO = (
    "Open ComfyUI-Manager's Custom Nodes Manager, search for {title}, install it and restart ComfyUI"
    " (or clone {url} into ComfyUI's custom_nodes folder)."
)
NO_PACK_HOW_TO = (
    "No known node pack provides {ctype}. Search for it in ComfyUI-Manager's Custom Nodes Manager or on"
    " registry.comfy.org, install the pack that has it into ComfyUI's custom_nodes folder, and restart ComfyUI."
)
MODEL_HOW_TO = "Put {value} in ComfyUI's models folder for this loader (models/{folder}/), then reload."

# Which models/ folder a loader input reads, for the hint (ComfyUI's folder_paths names).
MODEL_FOLDERS = {
    "ckpt_name": "checkpoints",
    "lora_name": "loras",
    "vae_name": "vae",
    "unet_name": "diffusion_models",
    "clip_name": "text_encoders",
    "clip_name1": "text_encoders",
    "clip_name2": "text_encoders",
    "clip_name3": "text_encoders",
    "control_net_name": "controlnet",
    "model_name": "upscale_models",
    "style_model_name": "style_models",
    "gligen_name": "gligen",
    "hypernetwork_name": "hypernetworks",
    "embedding": "embeddings",
}


class NodeMap:
    """ComfyUI-Manager's node list, indexed by node type."""

    def __init__(self, raw: Mapping[str, JSON] | None = None) -> None:
        self.by_type: dict[str, tuple[str, str]] = {}
        self.patterns: list[tuple[re.Pattern[str], str, str]] = []
        for url, entry in (raw or {}).items():
            if not isinstance(entry, list) or not entry:
                continue
            names = entry[0] if isinstance(entry[0], list) else []
            meta = entry[1] if len(entry) > 1 and isinstance(entry[1], dict) else {}
            title = str(meta.get("title_aux") or meta.get("title") or url.rstrip("/").rsplit("/", 1)[-1])
            for name in names:
                if isinstance(name, str):
                    self.by_type.setdefault(name, (title, str(url)))
            pattern = meta.get("nodename_pattern")
            if isinstance(pattern, str):
                try:
                    self.patterns.append((re.compile(pattern), title, str(url)))
                except re.error:
                    continue

    @property
    def available(self) -> bool:
        return bool(self.by_type or self.patterns)

    def pack_for(self, class_type: str) -> tuple[str, str] | None:
        if class_type in self.by_type:
            return self.by_type[class_type]
        for pattern, title, url in self.patterns:
            if pattern.search(class_type):
                return title, url
        return None


def ui_node_types(document: Mapping[str, JSON]) -> dict[str, list[str]]:
    """Every node type a UI workflow uses (subgraphs and legacy group nodes included) → the node ids using it."""
    found: dict[str, list[str]] = {}
    definitions = document.get("definitions")
    subgraphs = definitions.get("subgraphs") if isinstance(definitions, dict) else None
    if not isinstance(subgraphs, list):
        subgraphs = []
    subgraph_ids = {str(s.get("id")) for s in subgraphs if isinstance(s, dict)}

    def scan(nodes: JSON, prefix: str) -> None:
        for node in nodes if isinstance(nodes, list) else []:
            if not isinstance(node, dict) or not isinstance(node.get("type"), str):
                continue
            ntype = str(node["type"])
            if ntype in VIRTUAL_TYPES or ntype in subgraph_ids or ntype.startswith(GROUP_PREFIXES):
                continue
            found.setdefault(ntype, []).append(f"{prefix}{node.get('id', '?')}")

    scan(document.get("nodes"), "")
    for sub in subgraphs:
        if isinstance(sub, dict):
            scan(sub.get("nodes"), f"{sub.get('name') or 'subgraph'}:")
    extra = document.get("extra")
    groups = extra.get("groupNodes") if isinstance(extra, dict) else None
    for name, group in (groups or {}).items() if isinstance(groups, dict) else []:
        if isinstance(group, dict):
            scan(group.get("nodes"), f"{name}:")
    return found


def _choices(object_info: Mapping[str, JSON], class_type: str, name: str) -> list[str] | None:
    spec = input_spec(dict(object_info), class_type, name)
    if spec is None:
        return None
    itype, opts = spec
    if isinstance(itype, list):
        return [str(c) for c in itype]
    if itype == "COMBO" and isinstance(options := opts.get("options"), list):
        return [str(c) for c in options]
    return None


def _looks_like_model(name: str, value: str) -> bool:
    return value.lower().endswith(MODEL_EXTENSIONS) or name in MODEL_FOLDERS


def readiness(
    graph: Mapping[str, JSON],
    object_info: Mapping[str, JSON],
    node_map: NodeMap | None = None,
    *,
    ui_source: Mapping[str, JSON] | None = None,
    skip_inputs: frozenset[tuple[str, str]] = frozenset(),
) -> dict[str, JSON]:
    """The readiness report of one workflow version.

    `ui_source` is the UI workflow a graph could not be converted from (its types are checked instead);
    `skip_inputs` are (class_type, input) pairs the studio fills in itself (the default checkpoint).
    """
    node_map = node_map or NodeMap()
    used: dict[str, list[str]] = {}
    if graph:
        for nid, node in graph.items():
            ctype = node.get("class_type") if isinstance(node, dict) else None
            if isinstance(ctype, str):
                used.setdefault(ctype, []).append(str(nid))
    elif ui_source is not None:
        used = ui_node_types(ui_source)
    missing_nodes: list[JSON] = []
    for ctype, ids in sorted(used.items()):
        if ctype in object_info:
            continue
        pack = node_map.pack_for(ctype)
        node_ids: list[JSON] = list(ids)
        missing_nodes.append(
            {
                "class_type": ctype,
                "node_ids": node_ids,
                "pack": {"title": pack[0], "url": pack[1]} if pack else None,
                "how_to": MANAGER_HOW_TO.format(title=pack[0], url=pack[1])
                if pack
                else NO_PACK_HOW_TO.format(ctype=ctype),
            }
        )
    missing_models: list[JSON] = []
    for nid, node in graph.items():
        if not isinstance(node, dict) or not isinstance(inputs := node.get("inputs"), dict):
            continue
        ctype = str(node.get("class_type"))
        if ctype not in object_info:
            continue
        for name, value in inputs.items():
            if not isinstance(value, str) or not value or (ctype, name) in skip_inputs:
                continue
            if not _looks_like_model(name, value):
                continue
            choices = _choices(object_info, ctype, name)
            if choices is None or value in choices:
                continue
            folder = MODEL_FOLDERS.get(name, "…")
            missing_models.append(
                {
                    "node_id": str(nid),
                    "class_type": ctype,
                    "input": name,
                    "value": value,
                    "folder": folder,
                    "how_to": MODEL_HOW_TO.format(value=value, folder=folder),
                }
            )
    return {
        "ready": not missing_nodes and not missing_models and bool(graph),
        "checked": True,
        "missing_nodes": missing_nodes,
        "missing_models": missing_models,
        "node_map": node_map.available,
    }
