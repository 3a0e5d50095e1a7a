"""ComfyUI Studio: a custom-node pack that mounts a full image studio at /studio.

Inside ComfyUI (which imports this folder under a path-derived module name) the studio attaches
itself to PromptServer; imported anywhere else it loads no ComfyUI module.
"""

import logging
import sys

WEB_DIRECTORY = "./web/comfy"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]


def _inside_comfyui() -> bool:
    server = sys.modules.get("server")
    prompt_server = getattr(server, "PromptServer", None)
    return getattr(prompt_server, "instance", None) is not None


if __package__:
    from . import nodes

    NODE_CLASS_MAPPINGS = nodes.NODE_CLASS_MAPPINGS
    NODE_DISPLAY_NAME_MAPPINGS = nodes.NODE_DISPLAY_NAME_MAPPINGS
    if _inside_comfyui():
        try:
            from .plugin import attach_to_comfyui

            attach_to_comfyui()
        except Exception:
            # A broken studio must never take ComfyUI down with it.
            logging.getLogger("comfyui_studio").exception("ComfyUI Studio could not be mounted")
else:
    # pytest imports the repository root's __init__.py on its own (no package) when the checkout's
    # folder name is not an identifier; there is nothing to attach to then.
    NODE_CLASS_MAPPINGS = {}
    NODE_DISPLAY_NAME_MAPPINGS = {}
