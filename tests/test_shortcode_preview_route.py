"""POST /shortcodes/preview: a definition tried on a sample prompt before it is saved."""

from __future__ import annotations

import json
from pathlib import Path

from studio_api import Api, load_workflow
from test_workflows_api import create

GRAIN = {
    "code": "grain",
    "type": "float",
    "description": "film grain",
    "min": 0,
    "max": 1,
    "targets": [{"selector": "title:Blur", "input": "sigma", "template": "{value}"}],
}


async def test_a_draft_code_previews_its_tokens_and_exact_patch_on_a_workflow(api: Api) -> None:
    wf = await create(api, load_workflow("t2i_standin"))
    graph = wf["head"]["graph"]
    blur = next(nid for nid, n in graph.items() if n["class_type"] == "ImageBlur")
    graph[blur]["_meta"] = {"title": "Blur"}
    status, body = await api.post(
        "/shortcodes/preview", json={"definition": GRAIN, "text": "a fox --grain 0.3", "graph": graph}
    )
    assert status == 200, body
    data = body["data"]
    assert data["definition_errors"] == []
    assert [(t["code"], t["value"]) for t in data["tokens"]] == [("grain", 0.3)]
    assert {"op": "replace", "path": f"/{blur}/inputs/sigma", "value": 0.3} in data["patches"]
    status, body = await api.get("/shortcodes")
    assert "grain" not in {c["code"] for c in body["data"]["items"]}, "a preview saves nothing"


async def test_a_draft_that_could_not_be_saved_says_why_and_previews_without_it(api: Api) -> None:
    wf = await create(api, load_workflow("t2i_standin"))
    bad = {**GRAIN, "workflow_id": wf["id"], "targets": [{"selector": "title:Nowhere", "input": "sigma"}]}
    status, body = await api.post(
        "/shortcodes/preview", json={"definition": bad, "text": "a fox --grain 0.3", "workflow_id": wf["id"]}
    )
    assert status == 200, body
    errors = body["data"]["definition_errors"]
    assert errors and errors[0]["loc"][0] == "targets"
    assert body["data"]["tokens"] == [] and any(w["kind"] == "unknown_code" for w in body["data"]["warnings"])
    # Not limited to a workflow, it would save: the preview only warns that it does nothing on this one.
    loose = {**GRAIN, "targets": [{"selector": "title:Nowhere", "input": "sigma"}]}
    status, body = await api.post(
        "/shortcodes/preview", json={"definition": loose, "text": "a fox --grain 0.3", "workflow_id": wf["id"]}
    )
    assert (
        body["data"]["definition_errors"] == []
        and body["data"]["patches"] == []
        or all("/sigma" not in p["path"] for p in body["data"]["patches"])
    )
    clash = {**GRAIN, "code": "ar"}
    status, body = await api.post("/shortcodes/preview", json={"definition": clash, "text": "x"})
    assert status == 200 and body["data"]["definition_errors"][0]["loc"] == ["code"]


async def test_editing_a_saved_code_previews_the_edit_not_the_stored_row(api: Api) -> None:
    status, body = await api.post("/shortcodes", json={**GRAIN, "graph": _blur_graph()})
    assert status == 201, body
    code_id = body["data"]["id"]
    edited = {**GRAIN, "targets": [{"selector": "title:Blur", "input": "blur_radius", "template": "{value}"}]}
    edited["type"], edited["max"] = "int", 30
    status, body = await api.post(
        "/shortcodes/preview",
        json={"definition": edited, "text": "--grain 7", "graph": _blur_graph(), "shortcode_id": code_id},
    )
    assert status == 200 and body["data"]["definition_errors"] == [], body
    assert body["data"]["patches"] == [{"op": "replace", "path": "/2/inputs/blur_radius", "value": 7}]


async def test_bad_preview_requests_are_refused_with_the_envelope(api: Api) -> None:
    for payload in ({"text": "x"}, {"definition": GRAIN}, {"definition": {**GRAIN, "type": "wombat"}, "text": "x"}):
        status, body = await api.post("/shortcodes/preview", json=payload)
        assert status == 400 and body["error"]["code"] == "validation_error", body


def _blur_graph() -> dict:
    """The generate stand-in: node 2 is an ImageBlur titled Blur."""
    return json.loads((Path(__file__).parent / "fixtures" / "actions" / "generate.api.json").read_text())


async def test_the_owner_previews_an_edit_of_a_built_in_code(api: Api) -> None:
    status, body = await api.get("/shortcodes")
    style = next(c for c in body["data"]["items"] if c["builtin"] and c["code"] == "style")
    edited = {k: style[k] for k in ("code", "type", "description", "aliases", "choices", "targets", "builtin")}
    edited["choices"] = [*style["choices"], {"value": "noir", "description": "", "extras": {"suffix": "film noir"}}]
    edited["choices"][-1]["extras"]["negative"] = "colour"
    status, body = await api.post(
        "/shortcodes/preview",
        json={
            "definition": edited,
            "text": "a street --style noir",
            "shortcode_id": style["id"],
        },
    )
    assert status == 200 and body["data"]["definition_errors"] == [], body
    assert [(t["code"], t["value"]) for t in body["data"]["tokens"]] == [("style", "noir")]
