"""Model folders as folder_paths.py (ComfyUI 0.3.64) keeps them: the listing cache keyed by folder mtimes.

`get_filename_list(folder)` answers from the cache while every directory it saw keeps its modification
time and no configured folder appeared since; otherwise it walks the folders again. `cache_helper` is the
per-request strong cache that `/object_info` holds (`with folder_paths.cache_helper:`), so one request
lists each folder once. The node inputs that list a folder are in `MODEL_INPUTS`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

SUPPORTED_PT_EXTENSIONS = {".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"}

# folder name → (sub-folders of models/, extensions), as folder_paths.folder_names_and_paths
FOLDERS: dict[str, tuple[tuple[str, ...], set[str]]] = {
    "checkpoints": (("checkpoints",), SUPPORTED_PT_EXTENSIONS),
    "configs": (("configs",), {".yaml"}),
    "loras": (("loras",), SUPPORTED_PT_EXTENSIONS),
    "vae": (("vae",), SUPPORTED_PT_EXTENSIONS),
    "text_encoders": (("text_encoders", "clip"), SUPPORTED_PT_EXTENSIONS),
    "diffusion_models": (("unet", "diffusion_models"), SUPPORTED_PT_EXTENSIONS),
    "clip_vision": (("clip_vision",), SUPPORTED_PT_EXTENSIONS),
    "style_models": (("style_models",), SUPPORTED_PT_EXTENSIONS),
    "embeddings": (("embeddings",), SUPPORTED_PT_EXTENSIONS),
    "vae_approx": (("vae_approx",), SUPPORTED_PT_EXTENSIONS),
    "controlnet": (("controlnet", "t2i_adapter"), SUPPORTED_PT_EXTENSIONS),
    "gligen": (("gligen",), SUPPORTED_PT_EXTENSIONS),
    "upscale_models": (("upscale_models",), SUPPORTED_PT_EXTENSIONS),
    "hypernetworks": (("hypernetworks",), SUPPORTED_PT_EXTENSIONS),
    "photomaker": (("photomaker",), SUPPORTED_PT_EXTENSIONS),
    "model_patches": (("model_patches",), SUPPORTED_PT_EXTENSIONS),
    "audio_encoders": (("audio_encoders",), SUPPORTED_PT_EXTENSIONS),
}
LEGACY_NAMES = {"unet": "diffusion_models", "clip": "text_encoders"}

# (node class, input) → the folder its combo lists, for the core loaders of nodes.py and comfy_extras
MODEL_INPUTS: dict[tuple[str, str], str] = {
    ("CheckpointLoaderSimple", "ckpt_name"): "checkpoints",
    ("CheckpointLoader", "ckpt_name"): "checkpoints",
    ("ImageOnlyCheckpointLoader", "ckpt_name"): "checkpoints",
    ("unCLIPCheckpointLoader", "ckpt_name"): "checkpoints",
    ("CreateHookModelAsLora", "ckpt_name"): "checkpoints",
    ("CreateHookModelAsLoraModelOnly", "ckpt_name"): "checkpoints",
    ("LoraLoader", "lora_name"): "loras",
    ("LoraLoaderModelOnly", "lora_name"): "loras",
    ("CreateHookLora", "lora_name"): "loras",
    ("CreateHookLoraModelOnly", "lora_name"): "loras",
    ("UpscaleModelLoader", "model_name"): "upscale_models",
    ("CLIPLoader", "clip_name"): "text_encoders",
    ("DualCLIPLoader", "clip_name1"): "text_encoders",
    ("DualCLIPLoader", "clip_name2"): "text_encoders",
    ("UNETLoader", "unet_name"): "diffusion_models",
    ("CLIPVisionLoader", "clip_name"): "clip_vision",
    ("ControlNetLoader", "control_net_name"): "controlnet",
    ("DiffControlNetLoader", "control_net_name"): "controlnet",
    ("StyleModelLoader", "style_model_name"): "style_models",
    ("GLIGENLoader", "gligen_name"): "gligen",
    ("HypernetworkLoader", "hypernetwork_name"): "hypernetworks",
}

Listing = tuple[list[str], dict[str, float], float]


def _recursive_search(directory: str) -> tuple[list[str], dict[str, float]]:
    if not os.path.isdir(directory):
        return [], {}
    result: list[str] = []
    dirs: dict[str, float] = {}
    try:
        dirs[directory] = os.path.getmtime(directory)
    except FileNotFoundError:
        pass
    for dirpath, subdirs, filenames in os.walk(directory, followlinks=True, topdown=True):
        subdirs[:] = [d for d in subdirs if d != ".git"]
        result.extend(os.path.relpath(os.path.join(dirpath, f), directory) for f in filenames)
        for d in subdirs:
            path = os.path.join(dirpath, d)
            try:
                dirs[path] = os.path.getmtime(path)
            except FileNotFoundError:
                continue
    return result, dirs


class _CacheHelper:
    """folder_paths.CacheHelper: a strong cache active only inside `with` (one /object_info request)."""

    def __init__(self) -> None:
        self.cache: dict[str, Listing] = {}
        self.active = False

    def __enter__(self) -> _CacheHelper:
        self.active = True
        return self

    def __exit__(self, *exc: object) -> None:
        self.active = False
        self.cache.clear()


class ModelFolders:
    """`base/models/<folder>` with folder_paths' listing cache."""

    def __init__(self, base_dir: Path) -> None:
        self.models_dir = Path(base_dir) / "models"
        self.paths: dict[str, tuple[list[str], set[str]]] = {
            name: ([str(self.models_dir / sub) for sub in subs], exts) for name, (subs, exts) in FOLDERS.items()
        }
        self.filename_list_cache: dict[str, Listing] = {}
        self.cache_helper = _CacheHelper()
        self.reads = 0  # how many times a folder was actually walked (tests check the cache holds)

    def folder(self, name: str) -> Path:
        """The first directory of a folder name (where a test drops its files)."""
        return Path(self.paths[LEGACY_NAMES.get(name, name)][0][0])

    def _list(self, name: str) -> Listing:
        self.reads += 1
        folders, exts = self.paths[name]
        found: set[str] = set()
        seen: dict[str, float] = {}
        for folder in folders:
            files, dirs = _recursive_search(folder)
            found.update(f for f in files if os.path.splitext(f)[-1].lower() in exts or not exts)
            seen.update(dirs)
        return sorted(found), seen, time.perf_counter()

    def _cached(self, name: str) -> Listing | None:
        if self.cache_helper.active and name in self.cache_helper.cache:
            return self.cache_helper.cache[name]
        out = self.filename_list_cache.get(name)
        if out is None:
            return None
        for folder, mtime in out[1].items():
            if os.path.getmtime(folder) != mtime:
                return None
        for folder in self.paths[name][0]:
            if os.path.isdir(folder) and folder not in out[1]:
                return None
        return out

    def get_filename_list(self, name: str) -> list[str]:
        name = LEGACY_NAMES.get(name, name)
        out = self._cached(name)
        if out is None:
            out = self._list(name)
            self.filename_list_cache[name] = out
        if self.cache_helper.active:
            self.cache_helper.cache[name] = out
        return list(out[0])
