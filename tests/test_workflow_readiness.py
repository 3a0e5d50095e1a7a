"""A workflow that needs what this ComfyUI lacks is kept, marked not ready, with what to install."""

from __future__ import annotations

import json
from pathlib import Path

from harness import StudioRun
from studio_api import Api, load_workflow
from test_workflows_api import create, ui

from comfyui_studio.engine.readiness import NodeMap, readiness, ui_node_types
from comfyui_studio.services.nodepacks import NodePacks, manager_node_map_candidates

MANAGER_MAP = {
    "https://github.com/example/wombat-nodes": [["WombatSaver", "WombatLoader"], {"title_aux": "Wombat Nodes"}],
    "https://github.com/example/pattern-pack": [[], {"title_aux": "Pattern Pack", "nodename_pattern": "^Pat[A-Z]"}],
}


def with_manager_map(run: StudioRun, tmp_path: Path) -> None:
    path = tmp_path / "ComfyUI-Manager" / "extension-node-map.json"
    path.parent.mkdir()
    path.write_text(json.dumps(MANAGER_MAP))
    run.studio.workflows.node_packs = NodePacks(custom_nodes_dirs=[str(tmp_path)])


async def test_an_api_graph_with_unknown_nodes_is_kept_not_ready_naming_the_pack(
    run: StudioRun, api: Api, tmp_path: Path
) -> None:
    with_manager_map(run, tmp_path)
    graph = load_workflow("t2i_standin")
    graph["90"] = {"class_type": "WombatSaver", "inputs": {"images": ["2", 0]}}
    graph["91"] = {"class_type": "Mystery", "inputs": {}}
    wf = await create(api, graph)
    report = wf["readiness"]
    assert report["ready"] is False and report["node_map"] is True
    by_type = {m["class_type"]: m for m in report["missing_nodes"]}
    assert by_type["WombatSaver"]["node_ids"] == ["90"]
    assert by_type["WombatSaver"]["pack"] == {"title": "Wombat Nodes", "url": "https://github.com/example/wombat-nodes"}
    assert "Custom Nodes Manager" in by_type["WombatSaver"]["how_to"]
    assert by_type["Mystery"]["pack"] is None and "No known node pack" in by_type["Mystery"]["how_to"]
    assert any("node 90 has the unknown node type 'WombatSaver'" in w for w in wf["warnings"])
    status, body = await api.get("/workflows")
    listed = next(w for w in body["data"] if w["id"] == wf["id"])
    assert listed["ready"] is False and listed["problems"] == 2 and listed["node_count"] == len(graph)


async def test_a_ui_workflow_with_unknown_nodes_is_kept_with_its_source(run: StudioRun, api: Api) -> None:
    document = ui("passthrough")
    document["nodes"][7]["type"] = "WombatSaver"
    wf = await create(api, document)
    assert wf["head"]["graph"] == {} and wf["head"]["has_source"]
    assert wf["readiness"]["ready"] is False
    missing = wf["readiness"]["missing_nodes"]
    assert [(m["class_type"], m["node_ids"]) for m in missing] == [("WombatSaver", ["8"])]
    assert wf["readiness"]["node_map"] is False and "No known node pack" in missing[0]["how_to"]
    assert wf["warnings"] == ["node 8 has the unknown node type 'WombatSaver'"]


async def test_model_files_missing_from_comfyuis_lists_make_a_workflow_not_ready(api: Api) -> None:
    graph = load_workflow("t2i_standin")
    graph["80"] = {"class_type": "UpscaleModelLoader", "inputs": {"model_name": "4x-Wombat.pth"}}
    wf = await create(api, graph)
    assert wf["readiness"]["ready"] is False and wf["readiness"]["missing_nodes"] == []
    [model] = wf["readiness"]["missing_models"]
    assert (model["node_id"], model["input"], model["value"], model["folder"]) == (
        "80",
        "model_name",
        "4x-Wombat.pth",
        "upscale_models",
    )
    ready = await create(api, load_workflow("t2i_standin"))
    assert ready["readiness"] == {
        "ready": True,
        "checked": True,
        "missing_nodes": [],
        "missing_models": [],
        "node_map": False,
    }


def test_ui_node_types_skip_editor_only_nodes_and_look_inside_subgraphs_and_groups() -> None:
    document = {
        "nodes": [
            {"id": 1, "type": "Reroute"},
            {"id": 2, "type": "Note"},
            {"id": 3, "type": "sub-1"},
            {"id": 4, "type": "workflow>g"},
            {"id": 5, "type": "KSampler"},
        ],
        "definitions": {"subgraphs": [{"id": "sub-1", "name": "inner", "nodes": [{"id": 7, "type": "Inner"}]}]},
        "extra": {"groupNodes": {"g": {"nodes": [{"index": 0, "type": "Grouped"}]}}},
    }
    assert ui_node_types(document) == {"KSampler": ["5"], "Inner": ["inner:7"], "Grouped": ["g:?"]}


def test_the_manager_map_matches_names_then_patterns_and_is_found_beside_custom_nodes(tmp_path: Path) -> None:
    node_map = NodeMap(MANAGER_MAP)  # type: ignore[arg-type]
    assert node_map.pack_for("WombatLoader") == ("Wombat Nodes", "https://github.com/example/wombat-nodes")
    assert node_map.pack_for("PatThing") == ("Pattern Pack", "https://github.com/example/pattern-pack")
    assert node_map.pack_for("patthing") is None
    (tmp_path / "comfyui-manager").mkdir()
    (tmp_path / "comfyui-manager" / "extension-node-map.json").write_text("{}")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "extension-node-map.json").write_text("{}")
    assert manager_node_map_candidates([str(tmp_path)]) == [tmp_path / "comfyui-manager" / "extension-node-map.json"]


def test_the_default_checkpoint_input_is_not_reported_when_the_studio_fills_it_in() -> None:
    info = {"CheckpointLoaderSimple": {"input": {"required": {"ckpt_name": [["a.safetensors"], {}]}}}}
    graph = {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "b.safetensors"}}}
    assert len(readiness(graph, info)["missing_models"]) == 1  # type: ignore[arg-type]
    skip = frozenset({("CheckpointLoaderSimple", "ckpt_name")})
    assert readiness(graph, info, skip_inputs=skip)["ready"] is True  # type: ignore[arg-type]


async def test_the_editors_send_keeps_its_own_export_as_the_graph_and_can_make_a_new_version(api: Api) -> None:
    prompt = load_workflow("t2i_standin")
    body = {"prompt": prompt, "extra_data": {"extra_pnginfo": {"workflow": ui("passthrough")}}}
    wf = await create(api, body)
    assert wf["source_format"] == "editor" and wf["head"]["graph"] == prompt and wf["head"]["has_source"]
    assert wf["readiness"]["ready"] is True
    again = {"prompt": load_workflow("upscale_standin"), "workflow": ui("passthrough")}
    status, resp = await api.call("PATCH", f"/workflows/{wf['id']}", json={"document": again, "note": "from ComfyUI"})
    assert status == 200, resp
    assert resp["data"]["version"] == 2 and resp["data"]["head"]["graph"] == load_workflow("upscale_standin")
