"""Shortcode definitions through the studio's routes on the ComfyUI test host: a real SQLite store."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest
from harness import StudioRun
from sqlalchemy import func, select
from studio_api import FIXTURES, Api

from comfyui_studio.db.models import AuditLog
from comfyui_studio.db.shortcodes import Shortcode
from comfyui_studio.engine.shortcodes import BUILTIN_CODES

SD15 = json.loads((FIXTURES / "graphs" / "sd15.api.json").read_text())
PASSWORD = "a long enough test password"  # noqa: S105 (a test account)

MOOD = {
    "code": "mood",
    "type": "enum",
    "description": "lighting mood",
    "aliases": ["m"],
    "choices": [
        {"value": "golden", "description": "warm evening light", "extras": {"words": "golden hour, warm light"}},
        {"value": "noir", "description": "hard shadows", "extras": {"words": "film noir, hard shadows"}},
    ],
    "targets": [{"selector": "role:positive", "input": "text", "template": "{words}", "mode": "append"}],
}


async def count_rows(run: StudioRun) -> tuple[int, int]:
    async with run.studio.store.session() as session:
        codes = await session.scalar(select(func.count()).select_from(Shortcode))
        audits = await session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.entity == "shortcodes"))
    return codes or 0, audits or 0


async def workflow(api: Api, name: str) -> str:
    """A stored SD 1.5 text-to-image workflow to limit codes to."""
    document = json.loads((FIXTURES / "graphs" / "sd15.api.json").read_text())
    status, body = await api.post("/workflows", json={"name": name, "document": document})
    assert status == 201, body
    return body["data"]["id"]


async def create(api: Api, definition: dict) -> dict:
    status, body = await api.post("/shortcodes", json=definition)
    assert status == 201, body
    return body["data"]


async def second_user(run: StudioRun, owner: Api, session: aiohttp.ClientSession, name: str = "robin") -> Api:
    """A user the owner created, logged in from its own client."""
    status, body = await owner.post("/users", json={"username": name, "password": PASSWORD})
    assert status == 201, body
    user = Api(session, run.api)
    status, body = await user.post("/auth/login", json={"username": name, "password": PASSWORD})
    assert status == 200, body
    user.csrf_token = body["data"]["csrf_token"]
    return user


def builtin_row(items: list[dict], code: str) -> dict:
    return next(i for i in items if i["builtin"] and i["code"] == code)


async def test_built_in_codes_are_seeded_as_ordinary_rows(run: StudioRun, api: Api) -> None:
    status, body = await api.get("/shortcodes")
    assert status == 200, body
    items = body["data"]["items"]
    assert [i["code"] for i in items] == [d.code for d in BUILTIN_CODES]
    style = builtin_row(items, "style")
    assert style["type"] == "enum" and style["shared"] is True and style["editable"] is True  # the owner's view
    assert [c["value"] for c in style["choices"]] == ["vivid", "natural", "cinematic", "photo", "anime"]
    assert style["id"].startswith("sc_")
    codes, _ = await count_rows(run)
    assert codes == len(BUILTIN_CODES)


async def test_create_read_update_delete_a_user_code_with_audit_rows(run: StudioRun, api: Api) -> None:
    await api.get("/shortcodes")  # seeds the built-ins first, so the counts below are about this code
    codes_before, audits_before = await count_rows(run)
    created = await create(api, MOOD)
    assert created["code"] == "mood" and created["mine"] is True and created["builtin"] is False
    assert created["shared"] is False and created["workflow_id"] is None
    assert created["targets"][0]["selector"] == "role:positive"

    status, body = await api.get(f"/shortcodes/{created['id']}")
    assert status == 200 and body["data"]["description"] == "lighting mood"

    status, body = await api.call("PUT", f"/shortcodes/{created['id']}", json={**MOOD, "description": "the light"})
    assert status == 200, body
    assert body["data"]["description"] == "the light"

    status, body = await api.delete(f"/shortcodes/{created['id']}")
    assert status == 200 and body["data"] == {"id": created["id"], "deleted": True}
    status, body = await api.get(f"/shortcodes/{created['id']}")
    assert status == 404 and body["error"]["code"] == "not_found"

    codes_after, audits_after = await count_rows(run)
    assert codes_after == codes_before
    assert audits_after - audits_before == 3  # create, update, delete
    async with run.studio.store.session() as session:
        actions = (
            await session.scalars(
                select(AuditLog.action).where(AuditLog.entity_id == created["id"]).order_by(AuditLog.id)
            )
        ).all()
    assert actions == ["create", "update", "delete"]


@pytest.mark.parametrize(
    ("change", "loc", "words"),
    [
        ({"code": "ar"}, ["code"], "--ar is a built-in code"),
        ({"aliases": ["seed"]}, ["aliases", 0], "--seed is a built-in code"),
        ({"aliases": ["aspect"]}, ["aliases", 0], "--aspect is a built-in code"),
        (
            {"targets": [{"selector": "role:positive", "input": "text", "template": "{colour}", "mode": "append"}]},
            ["targets", 0, "template"],
            "unknown placeholder {colour}",
        ),
        ({"code": "Bad Name"}, ["code"], "lower-case letters"),
        ({"targets": [{"selector": "role:wat", "input": "text"}]}, ["targets", 0, "selector"], "unknown role 'wat'"),
        ({"type": "int", "choices": []}, ["targets", 0, "template"], "unknown placeholder {words}"),
    ],
)
async def test_an_invalid_definition_is_refused_with_its_field_and_nothing_is_written(
    run: StudioRun, api: Api, change: dict, loc: list, words: str
) -> None:
    await api.get("/shortcodes")
    before = await count_rows(run)
    status, body = await api.post("/shortcodes", json={**MOOD, **change})
    assert status == 400, body
    assert body["ok"] is False and body["error"]["code"] == "validation_error"
    assert words in body["error"]["message"]
    detail = body["error"]["details"][0]
    assert detail["loc"] == loc
    assert words in detail["message"]
    assert await count_rows(run) == before


async def test_a_code_that_already_exists_is_refused(api: Api) -> None:
    await create(api, MOOD)
    status, body = await api.post("/shortcodes", json={**MOOD, "aliases": []})
    assert status == 400 and "--mood already exists" in body["error"]["message"]
    status, body = await api.post("/shortcodes", json={**MOOD, "code": "ambience"})
    assert status == 400 and "--m is already used by --mood" in body["error"]["message"]
    # One code per user, whatever workflow each copy would be limited to.
    one, two = await workflow(api, "one"), await workflow(api, "two")
    await create(api, {**MOOD, "code": "tint", "aliases": [], "workflow_id": one})
    status, body = await api.post("/shortcodes", json={**MOOD, "code": "tint", "aliases": [], "workflow_id": two})
    assert status == 400 and "--tint already exists" in body["error"]["message"]


async def test_a_selector_that_matches_nothing_in_the_graph_is_refused(run: StudioRun, api: Api) -> None:
    await api.get("/shortcodes")
    before = await count_rows(run)
    lora = {
        "code": "lora_strength",
        "type": "float",
        "targets": [{"selector": "class:LoraLoader", "input": "strength_model"}],
        "graph": SD15,
    }
    status, body = await api.post("/shortcodes", json=lora)
    assert status == 400, body
    assert body["error"]["details"][0]["loc"] == ["targets", 0, "selector"]
    assert "'class:LoraLoader' matches no node in this workflow" in body["error"]["message"]
    assert await count_rows(run) == before

    # The same selector against a graph that has the node is fine; the graph is not stored.
    graph = {**SD15, "40": {"class_type": "LoraLoader", "inputs": {"strength_model": 1.0}}}
    created = await create(api, {**lora, "graph": graph})
    assert "graph" not in created


async def test_a_malformed_body_or_id_is_a_validation_error(api: Api) -> None:
    status, body = await api.post("/shortcodes", json={**MOOD, "colour": "red"})
    assert status == 400 and body["error"]["details"][0]["loc"] == ["colour"]
    status, body = await api.post("/shortcodes", json={**MOOD, "targets": []})
    assert status == 400 and body["error"]["details"][0]["loc"] == ["targets"]
    status, body = await api.get("/shortcodes/not-an-id")
    assert status == 400 and body["error"]["details"][0]["loc"] == ["path", "shortcode_id"]
    status, body = await api.get("/shortcodes/sc_01J00000000000000000000000")
    assert status == 404 and body["error"]["code"] == "not_found"


async def test_the_owner_edits_a_built_in_style_and_prompts_use_it(api: Api) -> None:
    status, body = await api.get("/shortcodes")
    style = builtin_row(body["data"]["items"], "style")
    choices = [
        {**c, "extras": {**c["extras"], "suffix": "neon glow, vaporwave"}} if c["value"] == "vivid" else c
        for c in style["choices"]
    ]
    edit = {k: style[k] for k in ("code", "type", "description", "aliases", "default", "min", "max", "scale")}
    edit.update(choices=choices, targets=style["targets"])
    status, body = await api.call("PUT", f"/shortcodes/{style['id']}", json=edit)
    assert status == 200, body
    assert body["data"]["builtin"] is True and body["data"]["shared"] is True

    status, body = await api.post("/prompt/preview", json={"text": "a city --style vivid", "graph": SD15})
    assert status == 200, body
    assert {"op": "replace", "path": "/6/inputs/text", "value": "a city, neon glow, vaporwave"} in body["data"][
        "patches"
    ]


async def test_a_built_in_keeps_its_code_and_type_and_is_never_deleted(api: Api) -> None:
    status, body = await api.get("/shortcodes")
    seed = builtin_row(body["data"]["items"], "seed")
    edit = {k: seed[k] for k in ("code", "type", "description", "targets")}
    status, body = await api.call("PUT", f"/shortcodes/{seed['id']}", json={**edit, "code": "sead"})
    assert status == 400 and body["error"]["details"][0]["loc"] == ["code"]
    status, body = await api.call("PUT", f"/shortcodes/{seed['id']}", json={**edit, "type": "int"})
    assert status == 400 and body["error"]["details"][0]["loc"] == ["type"]
    status, body = await api.delete(f"/shortcodes/{seed['id']}")
    assert status == 409 and body["error"]["code"] == "conflict"
    status, body = await api.post("/shortcodes", json={**MOOD, "builtin": True})
    assert status == 400 and body["error"]["details"][0]["loc"] == ["builtin"]


async def test_export_and_import_round_trip(run: StudioRun, api: Api) -> None:
    await create(api, MOOD)
    await create(
        api,
        {
            "code": "detail",
            "type": "int",
            "description": "extra steps",
            "min": 1,
            "max": 100,
            "default": "10",
            "shared": True,
            "targets": [{"selector": "role:sampler", "input": "steps", "template": "{value}", "mode": "set"}],
        },
    )
    status, body = await api.get("/shortcodes/export")
    assert status == 200, body
    exported = body["data"]
    assert exported["version"] == 1
    mine = [d for d in exported["shortcodes"] if not d["builtin"]]
    assert [d["code"] for d in mine] == ["mood", "detail"]
    assert mine[1]["default"] == 10  # stored as the value the parser gives it
    assert {d["code"] for d in exported["shortcodes"] if d["builtin"]} == {d.code for d in BUILTIN_CODES}

    status, listing = await api.get("/shortcodes")
    for item in listing["data"]["items"]:
        if item["mine"]:
            assert (await api.delete(f"/shortcodes/{item['id']}"))[0] == 200

    status, body = await api.post("/shortcodes/import", json=exported)
    assert status == 200, body
    assert body["data"] == {"created": 2, "updated": len(BUILTIN_CODES)}
    status, again = await api.get("/shortcodes/export")
    assert again["data"] == exported

    # Importing the same document again updates in place.
    status, body = await api.post("/shortcodes/import", json=exported)
    assert body["data"] == {"created": 0, "updated": len(BUILTIN_CODES) + 2}


async def test_an_import_with_one_bad_definition_writes_nothing(run: StudioRun, api: Api) -> None:
    await api.get("/shortcodes")
    before = await count_rows(run)
    bad = {
        **MOOD,
        "code": "grain",
        "aliases": [],
        "targets": [{"selector": "role:positive", "input": "text", "template": "{nope}", "mode": "append"}],
    }
    status, body = await api.post("/shortcodes/import", json={"version": 1, "shortcodes": [MOOD, bad]})
    assert status == 400, body
    assert body["error"]["details"][0]["loc"] == ["shortcodes", 1, "targets", 0, "template"]
    assert await count_rows(run) == before

    # Two entries that collide with each other are refused too.
    clash = {**MOOD, "code": "ambience", "aliases": ["m"]}
    status, body = await api.post("/shortcodes/import", json={"version": 1, "shortcodes": [MOOD, clash]})
    assert status == 400 and "--m is already used" in body["error"]["message"]
    assert await count_rows(run) == before


async def test_other_users_private_codes_are_invisible_and_shared_ones_read_only(
    run: StudioRun, api: Api, tmp_path: Path
) -> None:
    async with aiohttp.ClientSession() as session:
        robin = await second_user(run, api, session)
        private = await create(robin, {**MOOD, "code": "secret", "aliases": []})
        shared = await create(robin, {**MOOD, "code": "glow", "aliases": [], "shared": True})

        status, body = await api.get("/shortcodes")
        codes = {i["code"]: i for i in body["data"]["items"]}
        assert "secret" not in codes
        assert codes["glow"]["mine"] is False and codes["glow"]["editable"] is False
        status, body = await api.get(f"/shortcodes/{private['id']}")
        assert status == 404
        status, body = await api.delete(f"/shortcodes/{private['id']}")
        assert status == 404
        status, body = await api.delete(f"/shortcodes/{shared['id']}")
        assert status == 403 and body["error"]["code"] == "forbidden"

        # Robin's private code parses for Robin only; the owner sees an unknown code.
        status, body = await robin.post("/prompt/preview", json={"text": "a cat --secret noir"})
        assert body["data"]["clean_text"] == "a cat" and body["data"]["warnings"] == []
        status, body = await api.post("/prompt/preview", json={"text": "a cat --secret noir"})
        assert body["data"]["warnings"][0]["kind"] == "unknown_code"
        status, body = await api.post("/prompt/preview", json={"text": "a cat --glow noir"})
        assert body["data"]["warnings"] == []

        # The owner's own --glow shadows Robin's for the owner alone: sharing never blocks a name.
        await create(api, {**MOOD, "code": "glow", "aliases": [], "description": "the owner's glow"})
        status, body = await robin.get("/shortcodes/suggest", params={"text": "--glo", "cursor": "5"})
        assert body["data"]["items"][0]["description"] == "lighting mood"
        status, body = await api.get("/shortcodes/suggest", params={"text": "--glo", "cursor": "5"})
        assert body["data"]["items"][0]["description"] == "the owner's glow"

        # Built-ins are the owner's to edit.
        status, body = await robin.get("/shortcodes")
        style = builtin_row(body["data"]["items"], "style")
        assert style["editable"] is False
        edit = {k: style[k] for k in ("code", "type", "description", "choices", "targets")}
        status, body = await robin.call("PUT", f"/shortcodes/{style['id']}", json=edit)
        assert status == 403 and body["error"]["code"] == "forbidden"
        status, body = await robin.get("/shortcodes/export")
        assert [d["code"] for d in body["data"]["shortcodes"]] == ["secret", "glow"]


async def test_suggest_offers_codes_then_values_with_the_span_to_replace(api: Api) -> None:
    await create(api, MOOD)
    status, body = await api.get("/shortcodes/suggest", params={"text": "a cat --st", "cursor": "10"})
    assert status == 200, body
    data = body["data"]
    labels = [i["label"] for i in data["items"]]
    assert labels[:3] == ["--steps", "--style", "--stylize"]  # prefix matches, shortest first
    assert data["replace"] == {"start": 6, "end": 10}
    steps = data["items"][0]
    assert steps == {
        "label": "--steps",
        "insert": "--steps ",
        "kind": "code",
        "description": "sampling steps",
        "type": "int",
    }

    status, body = await api.get("/shortcodes/suggest", params={"text": "a cat --mood go", "cursor": "15"})
    assert body["data"]["items"][0] == {
        "label": "golden",
        "insert": "golden ",
        "kind": "value",
        "description": "warm evening light",
        "type": "enum",
    }
    assert body["data"]["replace"] == {"start": 13, "end": 15}

    status, body = await api.get("/shortcodes/suggest", params={"text": "a cat --mo", "cursor": "10"})
    assert body["data"]["items"][0]["label"] == "--mood"

    # No prefix match: a subsequence ("sed" in "seed") still finds the code.
    status, body = await api.get("/shortcodes/suggest", params={"text": "--sed", "cursor": "5"})
    assert body["data"]["items"][0]["label"] == "--seed"

    status, body = await api.get("/shortcodes/suggest", params={"text": "a cat", "cursor": "3"})
    assert body["data"] == {"items": [], "replace": {"start": 3, "end": 3}}


async def test_suggest_counts_offsets_in_utf16_like_the_browser(api: Api) -> None:
    text = "🐱 cat --sty"  # the cat is two UTF-16 code units, one code point
    cursor = len(text.encode("utf-16-le")) // 2
    status, body = await api.get("/shortcodes/suggest", params={"text": text, "cursor": str(cursor)})
    assert status == 200, body
    assert body["data"]["replace"] == {"start": 7, "end": 12}
    assert body["data"]["items"][0]["label"] == "--style"


async def test_a_code_limited_to_a_workflow_is_known_only_there(api: Api) -> None:
    one = await workflow(api, "one")
    await create(api, {**MOOD, "code": "tint", "aliases": [], "workflow_id": one})
    status, body = await api.post("/prompt/preview", json={"text": "a cat --tint noir", "workflow_id": one})
    assert status == 200 and body["data"]["warnings"] == [] and body["data"]["clean_text"] == "a cat"
    status, body = await api.post("/prompt/preview", json={"text": "a cat --tint noir"})
    assert [w["kind"] for w in body["data"]["warnings"]] == ["unknown_code"]
