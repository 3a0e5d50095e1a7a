"""Workflows over the API with the real SQLite file: import, versions, parameters, sharing, deletion."""

from __future__ import annotations

import io
import json
from pathlib import Path

import aiohttp
from harness import StudioRun
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from sqlalchemy import select
from studio_api import Api, load_workflow
from test_api_jobs import wait_for_state

from comfyui_studio.db.models import AuditLog

UI = Path(__file__).parent / "fixtures" / "ui_workflows"


def ui(name: str) -> dict:
    return json.loads((UI / f"{name}.json").read_text())


async def create(api: Api, document: object, **fields: object) -> dict:
    status, body = await api.post("/workflows", json={"name": "w", "document": document, **fields})
    assert status == 201, body
    return body["data"]


async def test_an_api_graph_imports_as_version_one_with_discovered_bindings(run: StudioRun, api: Api) -> None:
    wf = await create(api, load_workflow("upscale_standin"), description="d", tags=["b", "a"])
    assert wf["version"] == 1 and wf["source_format"] == "api" and wf["tags"] == ["a", "b"] and wf["mine"]
    assert wf["head"]["bindings"]["image"] == {"selector": "id:1", "input": "image"}
    status, body = await api.get("/workflows")
    assert [w["id"] for w in body["data"] if not w["builtin"]] == [wf["id"]]
    async with run.studio.store.session() as session:
        audit = (
            await session.scalars(select(AuditLog).where(AuditLog.entity.in_(["workflows", "workflow_versions"])))
        ).all()
    assert {(a.action, a.entity) for a in audit} >= {("create", "workflows"), ("create", "workflow_versions")}


async def test_every_edit_is_a_new_version_and_old_ones_stay_readable(api: Api) -> None:
    wf = await create(api, load_workflow("t2i_standin"))
    params = [{"name": "blur", "selector": "class:ImageBlur", "input": "blur_radius"}]
    status, body = await api.call("PATCH", f"/workflows/{wf['id']}", json={"parameters": params, "note": "map blur"})
    assert status == 200, body
    v2 = body["data"]
    assert v2["version"] == 2
    blur = v2["head"]["parameters"][0]
    assert (blur["type"], blur["min"], blur["max"], blur["default"]) == ("INT", 1, 31, 4)  # from object_info
    status, body = await api.call("PATCH", f"/workflows/{wf['id']}", json={"name": "renamed"})
    assert body["data"]["version"] == 2 and body["data"]["name"] == "renamed", "a rename is not a new version"
    status, body = await api.call(
        "PATCH", f"/workflows/{wf['id']}", json={"document": load_workflow("upscale_standin")}
    )
    assert body["data"]["version"] == 3
    status, body = await api.get(f"/workflows/{wf['id']}/versions")
    assert [v["number"] for v in body["data"]] == [3, 2, 1]
    status, body = await api.get(f"/workflows/{wf['id']}/versions/1")
    assert body["data"]["head"]["graph"] == load_workflow("t2i_standin")
    status, body = await api.post(f"/workflows/{wf['id']}/versions/2/restore", json={})
    assert body["data"]["version"] == 4 and body["data"]["head"]["parameters"][0]["name"] == "blur"


async def test_a_ui_workflow_imports_converted_with_app_mode_parameters_and_runs(api: Api) -> None:
    wf = await create(api, ui("passthrough"))
    assert wf["source_format"] == "ui" and wf["head"]["has_source"]
    params = {p["name"]: p for p in wf["head"]["parameters"]}
    assert params["canvas_width"]["selector"] == "id:1" and params["canvas_width"]["default"] == 256
    assert params["upscale_method"]["type"] == "COMBO" and "lanczos" in params["upscale_method"]["choices"]
    assert wf["head"]["outputs"] == ["8"]
    status, body = await api.post("/jobs", json={"graph": wf["head"]["graph"]})
    assert status == 201, body
    job = await wait_for_state(api, body["data"]["id"], {"done", "error"})
    assert job["state"] == "done" and (job["images"][0]["width"], job["images"][0]["height"]) == (384, 192)


async def test_a_png_from_comfyui_imports_through_the_file_route(api: Api) -> None:
    info = PngInfo()
    info.add_text("prompt", json.dumps(load_workflow("t2i_standin")))
    info.add_text("workflow", json.dumps(ui("passthrough")))
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "PNG", pnginfo=info)
    form = aiohttp.FormData()
    form.add_field("file", out.getvalue(), filename="ComfyUI_00001_.png", content_type="image/png")
    status, body = await api.post("/workflows/import", data=form)
    assert status == 201, body
    wf = body["data"]
    assert wf["name"] == "ComfyUI_00001_" and wf["source_format"] == "png"
    assert wf["head"]["graph"] == load_workflow("t2i_standin"), "the prompt that ran is kept exactly"
    assert any(p["name"] == "canvas_width" for p in wf["head"]["parameters"])
    form = aiohttp.FormData()
    form.add_field("file", b"\x89PNG\r\n\x1a\n" + b"\0" * 20, filename="x.png", content_type="image/png")
    status, body = await api.post("/workflows/import", data=form)
    assert status == 400 and "no ComfyUI workflow" in body["error"]["message"]


async def test_import_errors_name_the_node(api: Api) -> None:
    # (unknown node types are kept, not ready: tests/test_workflow_readiness.py)
    cases = [
        ({"1": {"class_type": "ImageInvert", "inputs": {"image": ["9", 0]}}}, "node 1 input image is linked to node 9"),
        ({"hello": "world"}, "neither an API-format graph"),
        ("bm90IGEgcG5n", "neither a PNG nor JSON"),
    ]
    for document, words in cases:
        status, body = await api.post("/workflows", json={"name": "bad", "document": document})
        assert status == 400 and body["error"]["code"] == "validation_error", body
        assert words in body["error"]["message"], body["error"]["message"]


async def test_parameters_mapped_by_hand_must_hit_an_existing_input(api: Api) -> None:
    wf = await create(api, load_workflow("t2i_standin"))
    for params, words in [
        ([{"name": "x", "selector": "class:KSampler", "input": "steps"}], "no node matching"),
        ([{"name": "bad name!", "selector": "id:1", "input": "width"}], "letters, digits"),
        ([{"name": "w", "selector": "id:1", "input": "width", "default": 0}], "below its minimum"),
        ([{"name": "w", "selector": "id:1", "input": "width", "colour": 1}], "unknown parameter fields"),
    ]:
        status, body = await api.call("PATCH", f"/workflows/{wf['id']}", json={"parameters": params})
        assert status == 400, body
        assert words in body["error"]["message"]


async def test_private_workflows_are_invisible_to_others_and_shared_ones_read_only(run: StudioRun, api: Api) -> None:
    from comfyui_studio.db.models import User

    async with run.studio.store.session() as session, session.begin():
        other = User(username="bob", role="user")
        session.add(other)
    workflows = run.studio.workflows
    private = await create(api, load_workflow("t2i_standin"))
    shared = await create(api, load_workflow("t2i_standin"), shared=True)
    visible = {w["id"] for w in await workflows.list(other.id)}
    assert shared["id"] in visible and private["id"] not in visible
    try:
        await workflows.update(other.id, shared["id"], name="mine now")
        raise AssertionError("a shared workflow was changed by someone else")
    except Exception as exc:  # StudioError forbidden
        assert getattr(exc, "code", None) == "forbidden"
