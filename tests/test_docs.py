"""The docs are tested: every built-in shortcode is in docs/shortcodes.md, every route in a route table.

docs/api.md holds the route tables; docs/security.md documents the auth, users and secrets routes in its own
tables, so a route counts as documented when a `| METHOD | path |` row of any docs page names it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from aiohttp import web
from harness import StudioRun

from comfyui_studio.engine.shortcodes import BUILTIN_CODES
from comfyui_studio.server_routes import comfy_compat
from comfyui_studio.settings_table import SETTINGS

DOCS = Path(__file__).resolve().parent.parent / "docs"
SHORTCODES_MD = (DOCS / "shortcodes.md").read_text(encoding="utf-8")
API_MD = (DOCS / "api.md").read_text(encoding="utf-8")
ALL_MD = "\n".join(p.read_text(encoding="utf-8") for p in sorted(DOCS.glob("*.md")))


def table_rows(markdown: str) -> list[list[str]]:
    """Cells of every markdown table row, backticks stripped."""
    rows = []
    for line in markdown.splitlines():
        if line.startswith("|") and not re.fullmatch(r"\|[\s|:-]+\|", line):
            rows.append([cell.strip().strip("`") for cell in line.strip().strip("|").split("|")])
    return rows


def documented_routes(markdown: str = ALL_MD) -> set[str]:
    methods = {"GET", "POST", "PUT", "PATCH", "DELETE"}
    rows = table_rows(markdown)
    return {f"{row[0]} {row[1]}" for row in rows if len(row) >= 2 and row[0] in methods and row[1].startswith("/")}


def studio_app(run: StudioRun) -> web.Application:
    """The application create_app built, as ComfyUI mounted it."""
    for resource in run.host.server.app.router.resources():
        if isinstance(resource, web.PrefixedSubAppResource) and resource.canonical == "/studio":
            return resource._app
    raise AssertionError("the studio is not mounted at /studio")


def registered_routes(app: web.Application) -> set[str]:
    out = set()
    for route in app.router.routes():
        if route.method == "HEAD":
            continue  # aiohttp adds one to every GET
        path = route.resource.canonical if route.resource is not None else ""
        # The page, its assets and the client-side routes are one thing: `GET /studio` in the table.
        if path.startswith("/studio/api/") or path == "/studio":
            out.add(f"{route.method} {path}")
    return out


async def test_every_registered_api_route_is_documented(run: StudioRun) -> None:
    routes = registered_routes(studio_app(run))
    assert "POST /studio/api/v1/prompt/preview" in routes  # the walk sees the real router
    missing = sorted(routes - documented_routes())
    assert missing == [], f"routes missing from the route tables in docs/: {missing}"


async def test_the_shortcode_and_prompt_routes_are_in_api_md(run: StudioRun) -> None:
    ours = {r for r in registered_routes(studio_app(run)) if re.search(r"/v1/(shortcodes|prompt|generate|jobs)", r)}
    assert ours and ours <= documented_routes(API_MD)


async def test_the_docs_name_no_route_that_does_not_exist(run: StudioRun) -> None:
    studio_rows = {r for r in documented_routes() if r.split(" ", 1)[1].startswith("/studio")}
    stale = sorted(studio_rows - registered_routes(studio_app(run)))
    assert stale == [], f"documented but not registered: {stale}"


def test_the_comfyui_compatible_routes_are_the_documented_ones() -> None:
    """ComfyUI's own routes (standalone only) are the api.md section's table, no more, no less."""
    section = API_MD.split("## ComfyUI-compatible routes", 1)[1]
    served = {f"{method} {path}" for method, path, _handler in comfy_compat.ROUTES}
    assert documented_routes(section) == served
    assert {r for r in documented_routes() if not r.split(" ", 1)[1].startswith("/studio")} == served


def builtin_table() -> dict[str, list[str]]:
    rows = table_rows(SHORTCODES_MD.split("## Built-in codes", 1)[1].split("### Styles", 1)[0])
    return {row[0]: row for row in rows if row[0].startswith("--")}


@pytest.mark.parametrize("code", BUILTIN_CODES, ids=[d.code for d in BUILTIN_CODES])
def test_every_built_in_shortcode_is_in_shortcodes_md(code) -> None:
    table = builtin_table()
    assert f"--{code.code}" in table, f"--{code.code} is missing from the built-in table of docs/shortcodes.md"
    aliases = {a.strip().strip("`") for a in table[f"--{code.code}"][1].split(",") if a.strip()}
    assert aliases == {f"--{a}" for a in code.aliases}


def test_shortcodes_md_lists_no_built_in_that_does_not_exist() -> None:
    assert set(builtin_table()) == {f"--{d.code}" for d in BUILTIN_CODES}


def test_the_styles_table_matches_the_built_in_style_choices() -> None:
    style = next(d for d in BUILTIN_CODES if d.code == "style")
    rows = table_rows(SHORTCODES_MD.split("### Styles", 1)[1].split("###", 1)[0])
    documented = {row[0]: (row[1], row[2]) for row in rows if row[0] != "Style"}
    assert documented == {c.value: (c.extras["suffix"], c.extras["negative"]) for c in style.choices}


def _package_modules() -> list[tuple[Path, str]]:
    repo = Path(__file__).resolve().parent.parent
    return [
        (path.relative_to(repo), path.read_text())
        for path in repo.rglob("*.py")
        if path.relative_to(repo).parts[0] not in ("tests", "bench", ".venv", "web", ".comfyui")
    ]


def test_every_environment_setting_is_declared_once_and_in_the_readme() -> None:
    repo = Path(__file__).resolve().parent.parent
    named: set[str] = set()
    for _rel, text in _package_modules():
        named.update(re.findall(r'"(STUDIO_[A-Z_]+)"', text))
    declared = {s.env for s in SETTINGS if s.scope == "environment"}
    assert named, "the settings scan found nothing"
    assert named <= declared, f"environment variables read but not declared in settings_table.py: {named - declared}"
    readme = (repo / "README.md").read_text()
    config_rows = {row[0] for row in table_rows(readme.split("## Configuration", 1)[1].split("\n## ", 1)[0])}
    documented = {name for name in config_rows if name.startswith("STUDIO_")}
    assert documented == declared, f"README's configuration table and settings_table.py differ: {documented ^ declared}"


def test_only_the_settings_table_reads_the_environment() -> None:
    """Every STUDIO_* variable is read through settings_table.from_environment (config.py reads XDG_DATA_HOME)."""
    readers = set()
    for rel, text in _package_modules():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv"):
                readers.add(str(rel))
    assert readers == {"settings_table.py", "config.py"}
    config = next(text for rel, text in _package_modules() if str(rel) == "config.py")
    assert re.findall(r"environ\.get\(\"(\w+)\"", config) == ["XDG_DATA_HOME"]
