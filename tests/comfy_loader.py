"""Run in a subprocess: load the repository the way ComfyUI loads a custom node, on the test host.

ComfyUI imports `custom_nodes/<folder>/__init__.py` under a module name derived from the folder's
path, after `server.PromptServer.instance` exists. Here the ComfyUI modules the plugin reads
(server, execution, nodes, folder_paths, comfy.cli_args) are stand-ins backed by the test host;
they exist only in this subprocess.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import sys
import types
from pathlib import Path

import aiohttp
from testhost import start_test_host
from testhost.validation import validate_prompt


async def main(repo: Path, base: Path) -> dict:
    loaded: dict[str, object] = {}

    def load_custom_nodes(server) -> None:
        sys.modules["server"] = types.SimpleNamespace(PromptServer=type(server))

        async def validate(prompt_id, prompt, targets):
            return await validate_prompt(server.registry, prompt_id, prompt, targets)

        sys.modules["execution"] = types.SimpleNamespace(validate_prompt=validate)
        sys.modules["nodes"] = types.SimpleNamespace(interrupt_processing=server.interrupt_processing)
        dirs = {"input": server.paths.input_dir, "output": server.paths.output_dir, "temp": server.paths.temp_dir}
        custom_nodes = [str(repo.parent)]  # ComfyUI's folder_paths.get_folder_paths("custom_nodes")
        sys.modules["folder_paths"] = types.SimpleNamespace(
            get_user_directory=lambda: str(server.paths.user_dir),
            get_directory_by_type=dirs.get,
            get_folder_paths=lambda name: custom_nodes if name == "custom_nodes" else [],
        )
        comfy = types.ModuleType("comfy")
        comfy.cli_args = types.SimpleNamespace(args=types.SimpleNamespace(listen="127.0.0.1"))
        sys.modules["comfy"] = comfy
        sys.modules["comfy.cli_args"] = comfy.cli_args
        # nodes.py load_custom_node: the module name is the folder's path with "." replaced.
        module_name = str(repo).replace(".", "_x_")
        spec = importlib.util.spec_from_file_location(
            module_name, repo / "__init__.py", submodule_search_locations=[str(repo)]
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
        loaded["module"] = module

    host = await start_test_host(base, before_start=load_custom_nodes)
    try:
        module = loaded["module"]
        async with aiohttp.ClientSession() as session:
            async with session.get(host.url + "/studio/api/v1/status") as resp:
                status = await resp.json()
        return {
            "status": status,
            "web_directory": module.WEB_DIRECTORY,
            "node_mappings": sorted(module.NODE_CLASS_MAPPINGS),
            "module_name": module.__name__,
            "data_dir_exists": (Path(base) / "user" / "__studio" / "studio.db").exists(),
        }
    finally:
        await host.stop()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)  # as ComfyUI's logger setup does
    result = asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2])))
    sys.stdout.write(json.dumps(result))
