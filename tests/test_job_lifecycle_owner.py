"""One owner of a job's state: only services/live.py changes it, after the engine's state machine ruled.

A job is born `queued` (a `Job(...)` row); every later state is written by the lifecycle's writer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import aiohttp
from harness import StudioRun
from studio_api import Api, load_workflow

ROOT = Path(__file__).resolve().parent.parent
OWNER = Path("services/live.py")
SKIP = ("tests", "bench", ".venv", "web", "node_modules", "migrations")


def _sources() -> list[Path]:
    files = list(ROOT.glob("*.py"))
    for folder in ROOT.iterdir():
        if folder.is_dir() and folder.name not in SKIP and not folder.name.startswith("."):
            files += [p for p in folder.rglob("*.py") if not any(part in SKIP for part in p.parts)]
    return files


def _state_writes(tree: ast.AST) -> list[int]:
    """Lines that assign `<x>.state = …`, pass `state=` to an UPDATE's values(), or set it via setattr."""
    lines: list[int] = []
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        lines += [t.lineno for t in targets if isinstance(t, ast.Attribute) and t.attr == "state"]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "values":
            lines += [node.lineno for kw in node.keywords if kw.arg == "state"]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setattr":
            if len(node.args) > 1 and isinstance(node.args[1], ast.Constant) and node.args[1].value == "state":
                lines.append(node.lineno)
    return sorted(lines)


def test_no_module_but_the_lifecycle_writes_a_jobs_state() -> None:
    offenders = []
    for path in _sources():
        relative = path.relative_to(ROOT)
        if relative == OWNER or relative.parts[0] == "engine":  # the engine's own state machine objects
            continue
        for line in _state_writes(ast.parse(path.read_text(encoding="utf-8"))):
            offenders.append(f"{relative}:{line}")
    assert offenders == [], "job state written outside services/live.py"


def test_the_checker_finds_a_state_write() -> None:
    tree = ast.parse("job.state = 'done'\nsession.execute(update(Job).values(state='x'))\nsetattr(job, 'state', 1)")
    assert _state_writes(tree) == [1, 2, 3]


async def test_a_rejected_submit_reads_back_as_the_stream_said(run: StudioRun, api: Api) -> None:
    graph = load_workflow("t2i_standin")
    first = next(iter(graph))
    graph[first]["inputs"]["width"] = 0  # the test host refuses it like ComfyUI does
    async with aiohttp.ClientSession() as http:
        stream = await http.get(run.api + "/events", headers={"Cookie": api._cookie_header()})
        status, body = await api.post("/jobs", json={"graph": graph})
        assert status == 400, body
        status, listing = await api.get("/jobs", params={"limit": "1"})
        job = listing["data"]["items"][0]
        assert job["state"] == "rejected"
        assert job["error"]["type"] == "rejected" and job["node_errors"]
        seen = []
        while len(seen) < 2:
            line = (await stream.content.readline()).decode()
            if line.startswith("data:") and '"job"' in line and job["id"] in line:
                seen.append(line)
        stream.close()
    assert '"state":"queued"' in seen[0] and '"state":"rejected"' in seen[1]


def _job_event_producers(tree: ast.AST) -> list[int]:
    """Lines that publish a `job` event (`<hub>.publish("job", …)`)."""
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "publish"
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and node.args[0].value == "job"
    ]


def test_one_producer_of_job_events() -> None:
    producers = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in _sources()
        for line in _job_event_producers(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert len(producers) == 1 and producers[0].startswith(str(OWNER)), producers
