"""GET/PATCH /settings: declared settings, per-user prompt defaults that /generate applies, owner-only globals."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from harness import StudioRun
from studio_api import Api
from test_actions_api import use_standins
from test_api_jobs import wait_for_state
from test_shortcode_routes import second_user

from comfyui_studio.services.settings import SETTINGS, STORED

DOCS = Path(__file__).resolve().parent.parent / "docs"


async def test_every_declared_setting_is_listed_with_its_default_and_scope(api: Api) -> None:
    status, body = await api.get("/settings")
    assert status == 200, body
    items = {s["name"]: s for s in body["data"]["items"]}
    assert list(items) == [s.name for s in STORED]
    assert items["default_aspect_ratio"]["value"] == "" and items["default_aspect_ratio"]["scope"] == "user"
    assert "16:9" in items["default_aspect_ratio"]["choices"]
    assert "vivid" in items["default_style"]["choices"], "--style's own values"
    assert items["default_checkpoint"]["scope"] == "global" and items["default_checkpoint"]["editable"]
    assert body["data"]["dev_mode"] is False


async def test_a_users_prompt_defaults_change_what_generate_submits(api: Api) -> None:
    await use_standins(api)
    status, body = await api.call(
        "PATCH", "/settings", json={"values": {"default_aspect_ratio": "16:9", "default_steps": 12}}
    )
    assert status == 200, body
    values = {s["name"]: s["value"] for s in body["data"]["items"]}
    assert values["default_aspect_ratio"] == "16:9" and values["default_steps"] == 12
    status, body = await api.post("/generate", json={"text": "a lighthouse"})
    assert status == 201, body
    job = await wait_for_state(api, body["data"]["id"], {"done", "error"})
    assert job["prompt_text"] == "a lighthouse --ar 16:9 --steps 12"
    width, height = job["images"][0]["width"], job["images"][0]["height"]
    assert width > height, "the 16:9 default reached the graph"
    status, body = await api.post("/generate", json={"text": "a tower --ar 1:1"})
    assert body["data"]["prompt_text"] == "a tower --ar 1:1 --steps 12", "a code the prompt sets wins"
    status, body = await api.call("PATCH", "/settings", json={"values": {"default_aspect_ratio": None}})
    assert {s["name"]: s["value"] for s in body["data"]["items"]}["default_aspect_ratio"] == ""


async def test_bad_values_and_unknown_settings_are_refused_and_nothing_is_written(api: Api) -> None:
    cases = [
        ({"default_aspect_ratio": "5:0"}, "default_aspect_ratio"),
        ({"default_steps": 500}, "default_steps"),
        ({"default_steps": 1.5}, "default_steps"),
        ({"default_style": "wombat"}, "default_style"),
        ({"default_steps": 5, "colour": "red"}, "colour"),
    ]
    for values, name in cases:
        status, body = await api.call("PATCH", "/settings", json={"values": values})
        assert status == 400 and body["error"]["code"] == "validation_error", body
        assert body["error"]["details"][0]["loc"] == ["values", name]
    status, body = await api.call("PATCH", "/settings", json={"values": {}})
    assert status == 400
    status, body = await api.get("/settings")
    assert {s["name"]: s["value"] for s in body["data"]["items"]}["default_steps"] == 0


async def test_user_settings_are_each_users_own_and_globals_are_the_owners(run: StudioRun, api: Api) -> None:
    async with aiohttp.ClientSession() as session:
        other = await second_user(run, api, session)
        await _check_other_users_view(api, other)


async def _check_other_users_view(api: Api, other: Api) -> None:
    status, body = await api.call("PATCH", "/settings", json={"values": {"default_aspect_ratio": "9:16"}})
    assert status == 200
    status, body = await other.get("/settings")
    assert {s["name"]: s["value"] for s in body["data"]["items"]}["default_aspect_ratio"] == ""
    assert not {s["name"]: s for s in body["data"]["items"]}["default_checkpoint"]["editable"]
    status, body = await other.call("PATCH", "/settings", json={"values": {"default_checkpoint": "x.safetensors"}})
    assert status == 403 and body["error"]["code"] == "forbidden"


def test_every_stored_setting_is_documented() -> None:
    api_doc = (DOCS / "api.md").read_text()
    for setting in STORED:
        assert f"`{setting.name}`" in api_doc, setting.name


async def test_environment_settings_are_never_listed_nor_changed_and_the_secret_key_never_shown(
    api: Api, monkeypatch
) -> None:
    key = "k" * 43
    monkeypatch.setenv("STUDIO_SECRET_KEY", key)
    status, body = await api.get("/settings")
    assert status == 200, body
    environment = {s.name for s in SETTINGS if s.scope == "environment"}
    assert environment and not environment & {item["name"] for item in body["data"]["items"]}
    assert key not in str(body) and "STUDIO_SECRET_KEY" not in str(body)
    status, body = await api.call("PATCH", "/settings", json={"values": {"security.local_owner_login": False}})
    assert status == 400 and body["error"]["code"] == "validation_error"
