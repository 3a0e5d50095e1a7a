"""The layers: queries live in db/, routes and the command line reach the studio's services one way."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ROUTES = sorted((REPO / "server_routes").glob("*.py"))
# Every service: it opens transactions and calls the repository functions of db/ (no query of its own).
SERVICES = sorted((REPO / "services").glob("*.py"))


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO))


@pytest.mark.parametrize("path", [*ROUTES, REPO / "__main__.py"], ids=_rel)
def test_routes_and_the_command_line_import_no_sqlalchemy(path: Path) -> None:
    used = sorted(m for m in imported_modules(path) if m == "sqlalchemy" or m.startswith("sqlalchemy."))
    assert used == [], f"{_rel(path)} imports {used}: put the query in db/ and call it from a service"


@pytest.mark.parametrize("path", SERVICES, ids=_rel)
def test_services_hold_no_query(path: Path) -> None:
    used = sorted(m for m in imported_modules(path) if m == "sqlalchemy" or m.startswith("sqlalchemy."))
    assert used == [], f"{_rel(path)} imports {used}"


@pytest.mark.parametrize("path", ROUTES, ids=_rel)
def test_handlers_reach_services_only_through_the_studio(path: Path) -> None:
    """No service built per request, no side door (services_for, shortcodes_of, an app key of its own)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    offending = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in ("services_for", "shortcodes_of", "SECURITY", "Gallery"):
            offending.append(node.id)
        elif isinstance(node, ast.Attribute) and node.attr in ("services_for", "shortcodes_of"):
            offending.append(node.attr)
    assert offending == [], f"{_rel(path)} uses {sorted(set(offending))}; use studio(request).<service>"


def test_a_service_opens_transactions_only_through_the_store() -> None:
    """`store.transaction(actor)` is the one way a service reaches the database (one transaction per use case)."""
    offending = []
    for path in SERVICES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in ("session", "sessions", "engine"):
                value = node.value
                if isinstance(value, ast.Attribute) and value.attr == "store":
                    offending.append(f"{_rel(path)}:{node.lineno}")
    assert offending == [], offending


@pytest.mark.parametrize("path", ROUTES, ids=_rel)
def test_prompt_text_and_graphs_are_checked_by_the_services_not_the_routes(path: Path) -> None:
    """One layer checks what a prompt path receives (text length and characters, the graph): the services,
    first, on every path (/jobs, /generate, preview, action runs); a route only reads the request's shape."""
    used = sorted(m for m in imported_modules(path) | relative_modules(path) if m in ("engine.text", "engine.graph"))
    assert used == [], f"{_rel(path)} checks prompt input itself: {used}"


def relative_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level and node.module:
            names.add(node.module)
    return names
