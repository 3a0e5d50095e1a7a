"""The UI-format import against ComfyUI's own frontend: every official template, converted both ways.

ComfyUI's frontend (``comfyui-frontend-package`` 1.27.10, the one paired with ComfyUI 0.3.64) runs in
Chromium on the recorded ``/object_info``; each template of ``comfyui-workflow-templates`` is loaded with
``app.loadGraphData`` and ``app.graphToPrompt()`` gives the API graph the frontend would queue. The
studio's conversion plus its dynamic-prompt processing must give the same graph. Random choices are
pinned to the first option on both sides (``Math.random = () => 0`` there, a zero draw here).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from frontend_host import serve_frontend
from studio_browser import ARTIFACTS, chromium, needs_chromium

from comfyui_studio.engine import dynprompts
from comfyui_studio.engine.uiformat import ConversionError, convert

pytestmark = [pytest.mark.browser, needs_chromium]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
OBJECT_INFO_FILE = FIXTURES / "comfyui" / "object_info.json"
OBJECT_INFO = json.loads(OBJECT_INFO_FILE.read_text())

LOAD_AND_CONVERT = """async (workflow) => {
  const app = window.comfyAPI.app.app;
  await app.loadGraphData(workflow, true, true, null, {});
  const { output } = await app.graphToPrompt();
  return JSON.parse(JSON.stringify(output));
}"""


class FirstChoice:
    def random(self) -> float:
        return 0.0


def studio_graph(workflow: dict) -> dict:
    """What the studio sends for a UI workflow: the conversion, then the dynamic prompts drawn."""
    graph = convert(workflow, OBJECT_INFO).graph
    dynamic = dynprompts.dynamic_inputs(OBJECT_INFO)
    for node in graph.values():
        for name in dynamic.get(node["class_type"], ()):
            if isinstance(node["inputs"].get(name), str):
                node["inputs"][name] = dynprompts.process(node["inputs"][name], FirstChoice())  # type: ignore[arg-type]
    return graph


def hand_made() -> dict[str, dict]:
    """Workflows the templates lack: dynamic prompts, and widgets wired to muted, bypassed and primitive nodes."""
    prompts = json.loads((FIXTURES / "ui_workflows" / "sd15_txt2img.json").read_text())
    for node in prompts["nodes"]:
        if node["id"] == 6:
            node["widgets_values"] = ["a {red|green} {lighthouse|{tower|mill}} // at dusk\n/* draft */ \\{sic\\}, {"]
        if node["id"] == 7:
            node["widgets_values"] = ["{blurry|grainy}, see http://x.y/z"]
    out = {"dynamic_prompts": prompts}
    for label, (node_type, mode) in {
        "primitive_node": ("PrimitiveNode", 0),
        "muted_primitive_node": ("PrimitiveNode", 2),
        "bypassed_primitive_node": ("PrimitiveNode", 4),
        "muted_node": ("PrimitiveInt", 2),
        "bypassed_node": ("PrimitiveInt", 4),
    }.items():
        output = {"name": "INT", "type": "INT", "links": [1]}
        if node_type == "PrimitiveNode":
            output["widget"] = {"name": "width"}
        source = {"id": 2, "type": node_type, "mode": mode, "inputs": [], "outputs": [output]}
        source["widgets_values"] = [640, "fixed"] if node_type == "PrimitiveNode" else [640]
        empty = {
            "id": 1,
            "type": "EmptyImage",
            "mode": 0,
            "inputs": [{"name": "width", "type": "INT", "widget": {"name": "width"}, "link": 1}],
            "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [9]}],
            "widgets_values": [256, 128, 1, 0],
        }
        preview = {
            "id": 3,
            "type": "PreviewImage",
            "mode": 0,
            "inputs": [{"name": "images", "type": "IMAGE", "link": 9}],
        }
        links = [[1, 2, 0, 1, 0, "INT"], [9, 1, 0, 3, 0, "IMAGE"]]
        out[label] = {
            "last_node_id": 3,
            "last_link_id": 9,
            "nodes": [empty, preview, source],
            "links": links,
            "groups": [],
            "config": {},
            "extra": {},
            "version": 0.4,
        }
    return out


def untitled(graph: dict) -> dict:
    return {nid: {k: v for k, v in node.items() if k != "_meta"} for nid, node in graph.items()}


async def test_every_template_converts_to_the_graph_comfyuis_frontend_queues() -> None:
    templates_pkg = pytest.importorskip("comfyui_workflow_templates")
    frontend_pkg = pytest.importorskip("comfyui_frontend_package")
    templates = sorted((Path(templates_pkg.__file__).parent / "templates").glob("*.json"))
    workflows = {p.stem: json.loads(p.read_text()) for p in templates}
    workflows = {k: w for k, w in workflows.items() if isinstance(w, dict) and isinstance(w.get("nodes"), list)}
    exact, same_inputs, refused, different = [], [], {}, {}
    retitled: set[str] = set()
    async with serve_frontend(Path(frontend_pkg.__file__).parent / "static", OBJECT_INFO_FILE) as url:
        async with chromium() as browser:
            page = await browser.new_page()  # type: ignore[attr-defined]
            await page.goto(url)
            await page.wait_for_function("window.comfyAPI?.app?.app?.graph", timeout=60_000)
            # The app exists before the node definitions are registered: wait until a core node converts.
            probe = {"nodes": [{"id": 1, "type": "VAEDecode", "mode": 0}], "links": [], "version": 0.4}
            for _ in range(600):
                queued = await page.evaluate(LOAD_AND_CONVERT, probe)
                if queued.get("1", {}).get("class_type") == "VAEDecode":
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the frontend never registered ComfyUI's nodes")
            await page.evaluate("Math.random = () => 0")
            made = hand_made()
            for name, workflow in made.items():
                queued = await page.evaluate(LOAD_AND_CONVERT, workflow)
                assert studio_graph(workflow) == queued, name
            sent = (await page.evaluate(LOAD_AND_CONVERT, made["dynamic_prompts"]))["6"]["inputs"]["text"]
            assert sent == "a red lighthouse \n {sic}, "
            for name, workflow in workflows.items():
                queued = await page.evaluate(LOAD_AND_CONVERT, workflow)
                try:
                    ours = studio_graph(workflow)
                except ConversionError as exc:
                    refused[name] = str(exc)
                    continue
                if ours == queued:
                    exact.append(name)
                elif untitled(ours) == untitled(queued):
                    same_inputs.append(name)
                    retitled.update(
                        node["class_type"] for nid, node in ours.items() if node["_meta"] != queued[nid]["_meta"]
                    )
                else:
                    different[name] = {"frontend": queued, "studio": ours}
    report = {
        "templates": len(workflows),
        "exact": len(exact),
        "same_but_titles": same_inputs,
        "retitled_node_types": sorted(retitled),
        "refused": refused,
        "different": different,
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "frontend_parity.json").write_text(json.dumps(report, indent=1))

    assert different == {}, f"{len(different)} templates convert differently: {sorted(different)}"
    # The only templates refused use node types this ComfyUI's /object_info lacks (its audio nodes).
    for name, message in refused.items():
        assert "unknown node type" in message, (name, message)
        missing = message.split("'")[1]
        assert missing not in OBJECT_INFO and any(n["type"] == missing for n in workflows[name]["nodes"])
    # Titles differ only where /object_info has no display name: the frontend shows its own English name.
    assert all(not OBJECT_INFO[class_type].get("display_name") for class_type in retitled), sorted(retitled)
    assert len(exact) + len(same_inputs) + len(refused) == len(workflows)
    assert len(exact) >= 148, report["exact"]  # measured with 0.1.95's templates: 148 of 172
