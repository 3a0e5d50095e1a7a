"""ComfyUI-Manager's node list (`extension-node-map.json`), read from disk when the Manager is installed.

It names the pack that provides a node type a workflow lacks. The file is read again only when it
changes; without one, the readiness report says how to find a pack by hand.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..engine.jsoncodec import JSON
from ..engine.readiness import NodeMap

log = logging.getLogger("comfyui_studio.nodepacks")

NODE_MAP_FILE = "extension-node-map.json"


def manager_node_map_candidates(custom_nodes_dirs: list[str]) -> list[Path]:
    """Where an installed ComfyUI-Manager keeps its node list: its clone in custom_nodes, or the pip package."""
    found: list[Path] = []
    for base in custom_nodes_dirs:
        root = Path(base)
        if not root.is_dir():
            continue
        for child in sorted(root.iterdir()):
            if "manager" in child.name.lower() and (child / NODE_MAP_FILE).is_file():
                found.append(child / NODE_MAP_FILE)
    try:
        import importlib.util

        spec = importlib.util.find_spec("comfyui_manager")  # the pip-installed Manager (4.x), not imported
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.origin:
        candidate = Path(spec.origin).parent / NODE_MAP_FILE
        if candidate.is_file():
            found.append(candidate)
    return found


class NodePacks:
    """`paths`: node-map files to read; `custom_nodes_dirs`: where to look for the Manager, on first use."""

    def __init__(self, paths: list[Path] | None = None, custom_nodes_dirs: list[str] | None = None) -> None:
        self.paths = list(paths or [])
        self._search = list(custom_nodes_dirs or [])
        self._map = NodeMap()
        self._stamp: tuple[tuple[str, float], ...] = ()

    def node_map(self) -> NodeMap:
        if self._search:
            self.paths += manager_node_map_candidates(self._search)
            self._search = []
        stamp = tuple((str(p), p.stat().st_mtime) for p in self.paths if p.is_file())
        if stamp != self._stamp:
            merged: dict[str, JSON] = {}
            for path_str, _ in stamp:
                try:
                    raw = json.loads(Path(path_str).read_text(encoding="utf-8"))
                except (OSError, ValueError) as exc:
                    log.warning("ComfyUI-Manager's node list %s is unreadable: %s", path_str, exc)
                    continue
                if isinstance(raw, dict):
                    merged.update(raw)
            self._map = NodeMap(merged)
            self._stamp = stamp
        return self._map
