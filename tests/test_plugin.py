"""The plugin entry: importable anywhere, attaches to a PromptServer, layers import only downwards."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from harness import StudioRun

REPO = Path(__file__).resolve().parent.parent
COMFY_MODULES = ("server", "execution", "folder_paths", "nodes", "comfy", "comfy_execution", "main")


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def test_importing_the_package_outside_comfyui_loads_no_comfyui_module(tmp_path: Path) -> None:
    result = _python(
        "import sys, comfyui_studio, comfyui_studio.plugin, comfyui_studio.__main__\n"
        f"bad = [m for m in {COMFY_MODULES!r} if m in sys.modules]\n"
        "print(bad, sorted(comfyui_studio.NODE_CLASS_MAPPINGS), comfyui_studio.WEB_DIRECTORY)",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("[] "), result.stdout
    assert "./web/comfy" in result.stdout


def test_comfyui_loading_the_folder_under_any_name_mounts_the_studio(tmp_path: Path) -> None:
    # ComfyUI-Manager clones into custom_nodes/<any name>: copy the package under an awkward one.
    folder = tmp_path / "custom_nodes" / "My.Studio-fork"
    shutil.copytree(
        REPO,
        folder,
        ignore=shutil.ignore_patterns(".venv", "node_modules", ".git", "tests", "__pycache__", "*.db"),
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "tests")}
    result = subprocess.run(
        [sys.executable, str(REPO / "tests" / "comfy_loader.py"), str(folder), str(tmp_path / "comfy")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout)
    assert loaded["status"]["ok"] is True
    assert loaded["status"]["data"]["comfy"]["connected"] is True
    assert loaded["web_directory"] == "./web/comfy"
    assert loaded["data_dir_exists"], "the store lives in <user dir>/__studio"
    assert "Studio mounted at /studio" in result.stderr


async def test_attach_mounts_the_studio_under_studio_only(run: StudioRun) -> None:
    server = run.host.server
    studio_resources = [r for r in server.app.router.resources() if r.canonical.startswith("/studio")]
    assert len(studio_resources) == 1, "one sub-application, nothing else under /studio"
    comfy_paths = {r.canonical for r in server.app.router.resources()}
    assert "/prompt" in comfy_paths and "/api/prompt" in comfy_paths


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            prefix = "." * node.level
            found.add(prefix + (node.module or ""))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module":
            if node.args and isinstance(node.args[0], ast.Constant):
                found.add(str(node.args[0].value))
    return found


def _layer_files(layer: str) -> list[Path]:
    return sorted((REPO / layer).rglob("*.py"))


@pytest.mark.parametrize("path", _layer_files("engine"), ids=lambda p: p.name)
def test_engine_imports_no_framework_and_no_comfyui(path: Path) -> None:
    forbidden = ("aiohttp", "sqlalchemy", "alembic", *COMFY_MODULES)
    bad = {m for m in _imports(path) if m.split(".")[0] in forbidden or m.startswith("..")}
    assert not bad, f"{path.name} imports {bad}"


@pytest.mark.parametrize(
    "path", _layer_files("server_routes") + _layer_files("db") + _layer_files("services"), ids=lambda p: p.name
)
def test_only_the_inprocess_adapter_and_nodes_may_import_comfyui(path: Path) -> None:
    bad = {m for m in _imports(path) if m.split(".")[0] in COMFY_MODULES}
    assert not bad, f"{path.parent.name}/{path.name} imports {bad}"


@pytest.mark.parametrize("path", _layer_files("engine") + _layer_files("db"), ids=lambda p: p.name)
def test_lower_layers_never_import_upper_ones(path: Path) -> None:
    upper = ("..server_routes", "..services", "..nodes", "..plugin")
    bad = {m for m in _imports(path) if m.startswith(upper)}
    assert not bad, f"{path.name} imports {bad}"


def test_package_imports_are_relative_so_the_folder_name_never_matters() -> None:
    offenders = []
    for path in REPO.rglob("*.py"):
        rel = path.relative_to(REPO)
        if rel.parts[0] in ("tests", "bench", ".venv", "web", "scripts") or "node_modules" in rel.parts:
            continue
        if rel.as_posix() == "db/migrations/env.py":
            continue
        if any(m.startswith("comfyui_studio") for m in _imports(path)):
            offenders.append(rel.as_posix())
    assert offenders == []
