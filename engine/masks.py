"""Which form of mask file a workflow's mask binding expects.

ComfyUI reads a mask out of a file in two ways. ``LoadImage`` (output 1), the Studio's ``StudioMask`` and
``LoadImageMask`` on its ``alpha`` channel take the alpha channel with transparent pixels as the area to
repaint (ComfyUI's mask editor saves masks that way). ``LoadImageMask`` on ``red``/``green``/``blue`` takes
the channel's value itself: white repaints. A grayscale (L-mode) file serves those.
"""

from __future__ import annotations

from typing import Literal

from .jsoncodec import JSON
from .selectors import Graph, GraphIndex

MaskForm = Literal["alpha", "luminance"]

_COLOUR_CHANNELS = frozenset({"red", "green", "blue"})


def mask_form(graph: Graph, binding: JSON) -> MaskForm:
    """The form the node(s) bound to the mask read; alpha unless every bound loader reads a colour channel."""
    if not isinstance(binding, dict) or not isinstance(binding.get("selector"), str | dict):
        return "alpha"
    nodes = GraphIndex(graph).select(binding["selector"])
    channels = []
    for nid in nodes:
        node = graph[nid]
        if node.get("class_type") != "LoadImageMask":
            return "alpha"
        inputs = node.get("inputs") or {}
        channels.append(str(inputs.get("channel", "alpha")) if isinstance(inputs, dict) else "alpha")
    return "luminance" if channels and all(c in _COLOUR_CHANNELS for c in channels) else "alpha"
