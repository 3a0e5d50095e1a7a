"""Node definitions: ComfyUI 0.3.64's recorded /object_info plus the test host's own test nodes.

The recording was made without model files; the loaders' combos list this host's `models/` folders
at request time, through folder_paths' listing cache (models.py), as ComfyUI's INPUT_TYPES do.
"""

from __future__ import annotations

import copy
import functools
import json
import mimetypes
import os
from pathlib import Path
from typing import Any

from .models import MODEL_INPUTS, ModelFolders

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "comfyui"
OBJECT_INFO_PATH = FIXTURES / "object_info.json"

# Nodes whose image choice is "the files in input/" at request time, and that validate it themselves
# (VALIDATE_INPUTS(image) in nodes.py) instead of through the combo list.
INPUT_FILE_NODES = ("LoadImage", "LoadImageMask")

TEST_NODES: dict[str, dict[str, Any]] = {
    "StudioTestProgress": {
        "input": {
            "required": {
                "image": ["IMAGE"],
                "steps": ["INT", {"default": 4, "min": 1, "max": 100}],
                "delay": ["FLOAT", {"default": 0.05, "min": 0.0, "max": 5.0}],
            },
            "optional": {"fail": ["BOOLEAN", {"default": False}]},
        },
        "input_order": {"required": ["image", "steps", "delay"], "optional": ["fail"]},
        "output": ["IMAGE"],
        "output_is_list": [False],
        "output_name": ["IMAGE"],
        "name": "StudioTestProgress",
        "display_name": "Studio Test (progress)",
        "description": "Test host only: reports progress with a JPEG preview per step.",
        "python_module": "custom_nodes.testhost",
        "category": "studio/testing",
        "output_node": False,
    },
    "StudioTestFail": {
        "input": {
            "required": {"image": ["IMAGE"]},
            "optional": {"message": ["STRING", {"default": "StudioTestFail asked to fail"}]},
        },
        "input_order": {"required": ["image"], "optional": ["message"]},
        "output": ["IMAGE"],
        "output_is_list": [False],
        "output_name": ["IMAGE"],
        "name": "StudioTestFail",
        "display_name": "Studio Test (fail)",
        "description": "Test host only: raises RuntimeError.",
        "python_module": "custom_nodes.testhost",
        "category": "studio/testing",
        "output_node": False,
    },
}


@functools.cache
def _recorded_object_info() -> dict[str, dict[str, Any]]:
    # parsed once per process and shared read-only: registries copy before changing an entry
    return json.loads(OBJECT_INFO_PATH.read_text(encoding="utf-8"))


def _is_image_file(name: str) -> bool:
    kind = mimetypes.guess_type(name)[0] or ""
    return kind.startswith("image/")


class NodeRegistry:
    """Class types known to the host, answering what nodes.NODE_CLASS_MAPPINGS answers in ComfyUI."""

    def __init__(self, input_dir: Path, models: ModelFolders | None = None) -> None:
        self.input_dir = input_dir
        self.models = models or ModelFolders(input_dir.parent)
        self._info: dict[str, dict[str, Any]] = {**_recorded_object_info(), **copy.deepcopy(TEST_NODES)}
        self._model_inputs: dict[str, list[tuple[str, str]]] = {}
        for (node, name), folder in MODEL_INPUTS.items():
            if node in self._info:
                self._model_inputs.setdefault(node, []).append((name, folder))

    def __contains__(self, class_type: object) -> bool:
        return isinstance(class_type, str) and class_type in self._info

    def input_files(self) -> list[str]:
        try:
            names = os.listdir(self.input_dir)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if (self.input_dir / n).is_file() and _is_image_file(n))

    def _with_models(self, class_type: str, info: dict[str, Any]) -> dict[str, Any]:
        inputs = self._model_inputs.get(class_type)
        if not inputs:
            return info
        info = copy.deepcopy(info)
        for name, folder in inputs:
            spec = info["input"]["required"][name]
            files = self.models.get_filename_list(folder)
            if spec and spec[0] == "COMBO":  # a V3 node's combo: the files are its options
                spec[1]["options"] = files
            else:
                spec[0] = files
        return info

    def info(self, class_type: str) -> dict[str, Any]:
        info = self._with_models(class_type, self._info[class_type])
        if class_type in INPUT_FILE_NODES:
            info = copy.deepcopy(info)
            spec = info["input"]["required"]["image"]
            info["input"]["required"]["image"] = [self.input_files(), *spec[1:]]
        return info

    def object_info(self) -> dict[str, dict[str, Any]]:
        files = self.input_files()
        out = dict(self._info)
        with self.models.cache_helper:  # as server.py's get_object_info: each folder listed once per request
            for class_type in self._model_inputs:
                out[class_type] = self._with_models(class_type, out[class_type])
        for name in INPUT_FILE_NODES:
            if name in out:
                info = copy.deepcopy(out[name])
                spec = info["input"]["required"]["image"]
                info["input"]["required"]["image"] = [files, *spec[1:]]
                out[name] = info
        return out

    def input_types(self, class_type: str) -> dict[str, dict[str, Any]]:
        return self.info(class_type)["input"]

    def is_output(self, class_type: str) -> bool:
        return bool(self._info[class_type].get("output_node"))

    def return_types(self, class_type: str) -> list[str]:
        return list(self._info[class_type]["output"])
