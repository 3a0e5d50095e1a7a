"""Studio nodes: named inputs, the prompt with shortcodes, aspect ratio, and Save Image.

They follow ComfyUI's V1 node contract and run in any graph, also from ComfyUI's own editor: the inputs
pass their value through. Nothing here imports ComfyUI, torch or numpy at import time (the package is
imported outside ComfyUI in tests); Save Image imports them inside its function.
"""

from __future__ import annotations

import json
import os
import random
from typing import TYPE_CHECKING

from ..engine.shortcodes import ONE_MEGAPIXEL, dims_for_ratio, parse

if TYPE_CHECKING:
    import torch

CATEGORY = "Studio"
INT_LIMIT = 2**63 - 1
SEED_LIMIT = 2**64 - 1


class _AnyType(str):
    """A type ComfyUI's link check accepts against any input (it compares with ``!=``)."""

    def __ne__(self, other: object) -> bool:
        return False

    __hash__ = str.__hash__


ANY = _AnyType("*")


def _name(default: str) -> tuple[str, dict[str, object]]:
    return ("STRING", {"default": default, "tooltip": "The parameter's name in the studio"})


class StudioText:
    DESCRIPTION = "A named text parameter: the studio sets it; its value passes through."
    CATEGORY = CATEGORY
    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("text",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, dict[str, object]]:  # noqa: N802
        return {"required": {"name": _name("text"), "value": ("STRING", {"default": "", "multiline": True})}}

    def run(self, name: str, value: str) -> tuple[str]:
        return (value,)


def _check_limits(name: str, value: float, low: float | None, high: float | None) -> None:
    if low is not None and high is not None and low > high:
        raise ValueError(f"Studio input {name}: min {low} is above max {high}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"Studio input {name}: {value} is outside {low}…{high}")


class _StudioNumber:
    """A named number with limits; its value passes through (Int and Float differ only in these constants)."""

    CATEGORY = CATEGORY
    RETURN_NAMES = ("value",)
    FUNCTION = "run"
    KIND = "INT"
    NAME = "number"
    LIMITS: dict[str, object] = {}
    DEFAULTS: tuple[float, float, float] = (0, 0, 100)  # value, min, max

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, dict[str, object]]:  # noqa: N802
        value, low, high = cls.DEFAULTS
        return {
            "required": {"name": _name(cls.NAME), "value": (cls.KIND, {"default": value, **cls.LIMITS})},
            "optional": {
                "min": (cls.KIND, {"default": low, **cls.LIMITS}),
                "max": (cls.KIND, {"default": high, **cls.LIMITS}),
            },
        }

    def run(self, name: str, value: float, min: float | None = None, max: float | None = None) -> tuple[float]:  # noqa: A002
        _check_limits(name, value, min, max)
        return (value,)


class StudioInt(_StudioNumber):
    DESCRIPTION = "A named whole-number parameter with limits; its value passes through."
    RETURN_TYPES = ("INT",)
    LIMITS = {"min": -INT_LIMIT, "max": INT_LIMIT}


class StudioFloat(_StudioNumber):
    DESCRIPTION = "A named decimal parameter with limits; its value passes through."
    RETURN_TYPES = ("FLOAT",)
    KIND = "FLOAT"
    NAME = "strength"
    LIMITS = {"min": -1e9, "max": 1e9, "step": 0.01}
    DEFAULTS = (0.5, 0.0, 1.0)


class StudioSeed:
    DESCRIPTION = "A named seed; the studio draws a new one per run unless one is given."
    CATEGORY = CATEGORY
    RETURN_TYPES = ("INT",)
    RETURN_NAMES = ("seed",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, dict[str, object]]:  # noqa: N802
        return {
            "required": {
                "name": _name("seed"),
                "seed": ("INT", {"default": 0, "min": 0, "max": SEED_LIMIT, "control_after_generate": True}),
            }
        }

    def run(self, name: str, seed: int) -> tuple[int]:
        return (seed,)


class StudioChoice:
    DESCRIPTION = "A named choice among lines of text; wire it into any list input (sampler, scheduler…)."
    CATEGORY = CATEGORY
    RETURN_TYPES = (ANY,)
    RETURN_NAMES = ("choice",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, dict[str, object]]:  # noqa: N802
        return {
            "required": {
                "name": _name("choice"),
                "value": ("STRING", {"default": ""}),
                "choices": ("STRING", {"default": "", "multiline": True, "tooltip": "One choice per line"}),
            }
        }

    def run(self, name: str, value: str, choices: str) -> tuple[str]:
        options = [c.strip() for c in choices.splitlines() if c.strip()]
        if options and value not in options:
            raise ValueError(f"Studio input {name}: {value!r} is not one of {', '.join(options)}")
        return (value,)


class _StudioFile:
    CATEGORY = CATEGORY
    FUNCTION = "run"
    DEFAULT_NAME: str  # each file node's own

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, dict[str, object]]:  # noqa: N802
        files: list[str] = []
        try:
            import folder_paths  # noqa: PLC0415  # ComfyUI's, only inside ComfyUI

            folder = folder_paths.get_input_directory()
            files = sorted(f for f in os.listdir(folder) if os.path.isfile(os.path.join(folder, f)))
        except Exception:  # outside ComfyUI: no list to offer
            files = []
        return {"required": {"name": _name(cls.DEFAULT_NAME), "image": (files, {"image_upload": True})}}

    @classmethod
    def VALIDATE_INPUTS(cls, image: str) -> bool | str:  # noqa: N802
        return True  # the studio names files it uploaded itself; LoadImage's own check follows at load

    @staticmethod
    def _load(image: str) -> tuple[torch.Tensor, torch.Tensor]:
        import folder_paths  # noqa: PLC0415
        import numpy as np  # noqa: PLC0415
        import torch  # noqa: PLC0415
        from PIL import Image, ImageOps  # noqa: PLC0415

        path = folder_paths.get_annotated_filepath(image)
        img = ImageOps.exif_transpose(Image.open(path))
        rgb = np.array(img.convert("RGB")).astype(np.float32) / 255.0
        if "A" in img.getbands():
            alpha = np.array(img.getchannel("A")).astype(np.float32) / 255.0
            mask = 1.0 - torch.from_numpy(alpha)
        else:
            mask = torch.zeros((rgb.shape[0], rgb.shape[1]), dtype=torch.float32)
        return torch.from_numpy(rgb)[None,], mask.unsqueeze(0)


class StudioImage(_StudioFile):
    DESCRIPTION = "A named source image (a file in ComfyUI's input folder); outputs the image and its alpha mask."
    DEFAULT_NAME = "image"
    RETURN_TYPES = ("IMAGE", "MASK")
    RETURN_NAMES = ("image", "mask")

    def run(self, name: str, image: str) -> tuple[torch.Tensor, torch.Tensor]:
        return self._load(image)


class StudioMask(_StudioFile):
    DESCRIPTION = "A named mask: transparent pixels of the file are the area to repaint (ComfyUI's convention)."
    DEFAULT_NAME = "mask"
    RETURN_TYPES = ("MASK",)
    RETURN_NAMES = ("mask",)

    def run(self, name: str, image: str) -> tuple[torch.Tensor]:
        return (self._load(image)[1],)


class StudioPrompt:
    DESCRIPTION = "Prompt text with shortcodes (--ar 16:9 --seed 42 --no text) → the clean prompt and its settings."
    CATEGORY = CATEGORY
    RETURN_TYPES = ("STRING", "STRING", "INT", "INT", "INT", "INT", "FLOAT")
    RETURN_NAMES = ("prompt", "negative", "width", "height", "seed", "steps", "cfg")
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, dict[str, object]]:  # noqa: N802
        return {
            "required": {
                "text": ("STRING", {"default": "", "multiline": True, "dynamicPrompts": False}),
                "negative": ("STRING", {"default": "", "multiline": True}),
                "width": ("INT", {"default": 1024, "min": 64, "max": 16384, "step": 8}),
                "height": ("INT", {"default": 1024, "min": 64, "max": 16384, "step": 8}),
                "seed": ("INT", {"default": 0, "min": 0, "max": SEED_LIMIT}),
                "steps": ("INT", {"default": 25, "min": 1, "max": 200}),
                "cfg": ("FLOAT", {"default": 7.0, "min": 0.0, "max": 30.0, "step": 0.1}),
            }
        }

    def run(
        self, text: str, negative: str, width: int, height: int, seed: int, steps: int, cfg: float
    ) -> tuple[str, str, int, int, int, int, float]:
        parsed = parse(text)
        if parsed.errors:
            raise ValueError("; ".join(e.message for e in parsed.errors))
        values = parsed.values
        ratio = values.get("ar")
        if isinstance(ratio, dict):
            ratio_w, ratio_h = ratio.get("w"), ratio.get("h")
            if isinstance(ratio_w, int | float) and isinstance(ratio_h, int | float):
                width, height = dims_for_ratio(float(ratio_w), float(ratio_h), max(width * height, 64 * 64))
        size = values.get("size")
        if isinstance(size, dict):
            size_w, size_h = size.get("width", width), size.get("height", height)
            if isinstance(size_w, int | float) and isinstance(size_h, int | float):
                width, height = int(size_w), int(size_h)
        code_seed, code_steps, code_cfg = values.get("seed"), values.get("steps"), values.get("cfg")
        if code_seed == "random":
            seed = random.SystemRandom().randint(0, 2**53 - 1)
        elif isinstance(code_seed, int):
            seed = int(code_seed)
        steps = int(code_steps) if isinstance(code_steps, int | float) else steps
        cfg = float(code_cfg) if isinstance(code_cfg, int | float) else cfg
        no = values.get("no")
        extra = ", ".join(str(x) for x in no) if isinstance(no, list) else (no if isinstance(no, str) else "")
        if extra:
            negative = f"{negative.rstrip().rstrip(',')}, {extra}" if negative.strip() else extra
        return parsed.text, negative, width, height, seed, steps, cfg


class StudioAspectRatio:
    DESCRIPTION = "A ratio and a pixel budget → width and height in multiples of 64."
    CATEGORY = CATEGORY
    RETURN_TYPES = ("INT", "INT")
    RETURN_NAMES = ("width", "height")
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, dict[str, object]]:  # noqa: N802
        return {
            "required": {
                "ratio": ("STRING", {"default": "1:1"}),
                "megapixels": ("FLOAT", {"default": 1.0, "min": 0.05, "max": 16.0, "step": 0.05}),
            }
        }

    def run(self, ratio: str, megapixels: float) -> tuple[int, int]:
        left, sep, right = ratio.replace("x", ":").partition(":")
        try:
            w, h = float(left), float(right)
        except ValueError:
            w = h = 0.0
        if not sep or w <= 0 or h <= 0 or max(w / h, h / w) > 16:
            raise ValueError(f"Aspect ratio {ratio!r} must be two positive numbers like 16:9")
        return dims_for_ratio(w, h, int(megapixels * ONE_MEGAPIXEL))


class StudioSaveImage:
    DESCRIPTION = "Saves images like Save Image, with the prompt and the Studio parameters in the PNG, for the gallery."
    CATEGORY = CATEGORY
    RETURN_TYPES = ()
    FUNCTION = "save"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, dict[str, object]]:  # noqa: N802
        return {
            "required": {"images": ("IMAGE",), "filename_prefix": ("STRING", {"default": "studio/ComfyUI"})},
            "optional": {"prompt_text": ("STRING", {"default": "", "forceInput": True})},
            "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"},
        }

    @staticmethod
    def studio_parameters(prompt: dict[str, object] | None) -> dict[str, object]:
        """Each Studio input node's name → value in the graph that ran (for the gallery and re-runs)."""
        out: dict[str, object] = {}
        for node in (prompt or {}).values():
            if not isinstance(node, dict):
                continue
            inputs = node.get("inputs") or {}
            ctype = str(node.get("class_type", ""))
            if ctype.startswith("Studio") and isinstance(inputs, dict) and isinstance(inputs.get("name"), str):
                value = inputs.get(
                    "seed" if ctype == "StudioSeed" else "image" if ctype in ("StudioImage", "StudioMask") else "value"
                )
                if not isinstance(value, list):
                    out[inputs["name"]] = value
        return out

    def save(
        self,
        images: torch.Tensor,
        filename_prefix: str = "studio/ComfyUI",
        prompt_text: str = "",
        prompt: dict[str, object] | None = None,
        extra_pnginfo: dict[str, object] | None = None,
    ) -> dict[str, object]:
        import folder_paths  # noqa: PLC0415
        import numpy as np  # noqa: PLC0415
        from PIL import Image  # noqa: PLC0415
        from PIL.PngImagePlugin import PngInfo  # noqa: PLC0415

        output_dir = folder_paths.get_output_directory()
        first = images[0]
        folder, name, counter, subfolder, prefix = folder_paths.get_save_image_path(
            filename_prefix, output_dir, first.shape[1], first.shape[0]
        )
        params = self.studio_parameters(prompt)
        results = []
        for batch_number, image in enumerate(images):
            array = np.clip(255.0 * image.cpu().numpy(), 0, 255).astype(np.uint8)
            img = Image.fromarray(array)
            meta = PngInfo()
            if prompt is not None:
                meta.add_text("prompt", json.dumps(prompt))
            for key, value in (extra_pnginfo or {}).items():
                meta.add_text(key, json.dumps(value))
            meta.add_text("studio", json.dumps({"prompt_text": prompt_text, "parameters": params}))
            file = f"{name.replace('%batch_num%', str(batch_number))}_{counter:05}_.png"
            img.save(os.path.join(folder, file), pnginfo=meta, compress_level=4)
            results.append({"filename": file, "subfolder": subfolder, "type": "output"})
            counter += 1
        return {"ui": {"images": results, "studio": [{"prompt_text": prompt_text, "parameters": params}]}}


NODE_CLASS_MAPPINGS: dict[str, type] = {
    "StudioText": StudioText,
    "StudioInt": StudioInt,
    "StudioFloat": StudioFloat,
    "StudioSeed": StudioSeed,
    "StudioChoice": StudioChoice,
    "StudioImage": StudioImage,
    "StudioMask": StudioMask,
    "StudioPrompt": StudioPrompt,
    "StudioAspectRatio": StudioAspectRatio,
    "StudioSaveImage": StudioSaveImage,
}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {
    "StudioText": "Studio Text",
    "StudioInt": "Studio Int",
    "StudioFloat": "Studio Float",
    "StudioSeed": "Studio Seed",
    "StudioChoice": "Studio Choice",
    "StudioImage": "Studio Image",
    "StudioMask": "Studio Mask",
    "StudioPrompt": "Studio Prompt",
    "StudioAspectRatio": "Studio Aspect Ratio",
    "StudioSaveImage": "Studio Save Image",
}
