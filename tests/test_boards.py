"""Boards through the studio's routes on the ComfyUI test host (real aiohttp, real SQLite): a user's named
collections of gallery images, an image in several boards, the board filter of the gallery's search."""

from __future__ import annotations

import aiohttp
import pytest
from harness import StudioRun
from sqlalchemy import func, select
from studio_api import Api
from test_gallery import make_job
from test_shortcode_routes import second_user

from comfyui_studio.db.boards import Board, BoardItem
from comfyui_studio.db.models import AuditLog, Image

pytestmark = pytest.mark.both_databases

MISSING_BOARD = "b_01JBENCHB0ARD0000000000000"


async def create_board(api: Api, name: str) -> dict:
    status, body = await api.post("/boards", json={"name": name})
    assert status == 201, body
    return body["data"]


async def change(api: Api, board_id: str, **body: list[str]) -> dict:
    status, answer = await api.post(f"/boards/{board_id}/images", json=body)
    assert status == 200, answer
    return answer["data"]


async def search(api: Api, **params: str) -> list[str]:
    status, body = await api.get("/jobs/search", params=params)
    assert status == 200, body
    return [j["id"] for j in body["data"]["items"]]


async def boards(api: Api) -> list[dict]:
    status, body = await api.get("/boards")
    assert status == 200, body
    return body["data"]["items"]


async def test_create_rename_list_and_delete_a_board_with_audit_rows(run: StudioRun, api: Api) -> None:
    assert await boards(api) == []
    board = await create_board(api, "  Keepers  ")
    assert board["name"] == "Keepers" and board["count"] == 0 and board["cover"] is None
    assert board["id"].startswith("b_")
    await create_board(api, "Album")
    assert [b["name"] for b in await boards(api)] == ["Album", "Keepers"]

    status, body = await api.call("PATCH", f"/boards/{board['id']}", json={"name": "Portfolio"})
    assert status == 200, body
    assert body["data"]["name"] == "Portfolio" and body["data"]["id"] == board["id"]
    status, body = await api.call("PATCH", f"/boards/{board['id']}", json={"name": "portfolio"})
    assert status == 200 and body["data"]["name"] == "portfolio"  # a change of case is a rename, not a clash

    status, body = await api.delete(f"/boards/{board['id']}")
    assert status == 200 and body["data"] == {"id": board["id"], "deleted": True, "removed": 0}
    assert [b["name"] for b in await boards(api)] == ["Album"]
    async with run.studio.store.session() as session:
        actions = (
            await session.execute(
                select(AuditLog.action).where(AuditLog.entity == "boards", AuditLog.entity_id == board["id"])
            )
        ).scalars()
        assert list(actions) == ["create", "update", "update", "delete"]


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("", "string_too_short"),
        ("   ", "string_too_short"),
        ("x" * 65, "string_too_long"),
        ("tab\there", "control_characters"),
        ("line\nbreak", "control_characters"),
        ("bidi\u202eoverride", "control_characters"),
        ("zero\u200bwidth", "control_characters"),
    ],
)
async def test_board_names_are_checked(api: Api, name: str, kind: str) -> None:
    status, body = await api.post("/boards", json={"name": name})
    assert status == 400, body
    assert body["error"]["code"] == "validation_error"
    assert body["error"]["details"][0]["loc"][-1] == "name"
    assert body["error"]["details"][0]["type"] == kind
    assert await boards(api) == []


async def test_a_board_name_is_unique_per_user_whatever_its_case(run: StudioRun, api: Api) -> None:
    first = await create_board(api, "Cats")
    status, body = await api.post("/boards", json={"name": "cats "})
    assert status == 409 and body["error"]["code"] == "conflict", body
    other = await create_board(api, "Dogs")
    status, body = await api.call("PATCH", f"/boards/{other['id']}", json={"name": "CATS"})
    assert status == 409, body
    assert [b["name"] for b in await boards(api)] == ["Cats", "Dogs"]
    async with aiohttp.ClientSession() as session:
        robin = await second_user(run, api, session)
        mine = await create_board(robin, "Cats")  # another user's names are theirs
        assert mine["id"] != first["id"]


async def test_malformed_input_is_refused_before_anything_is_written(api: Api) -> None:
    board = await create_board(api, "Keepers")
    cases = [
        ("POST", "/boards", {"name": 3}),
        ("POST", "/boards", {"name": "x", "extra": 1}),
        ("PATCH", "/boards/not-an-id", {"name": "x"}),
        ("POST", f"/boards/{board['id']}/images", {"add": ["../etc/passwd"]}),
        ("POST", f"/boards/{board['id']}/images", {"remove": ["i_x"]}),
        ("POST", f"/boards/{board['id']}/images", {}),
        ("POST", f"/boards/{board['id']}/images", {"add": ["i_01JBENCHIMAGE000000000000A"] * 201}),
    ]
    for method, path, body in cases:
        status, answer = await api.call(method, path, json=body)
        assert status == 400 and answer["error"]["code"] == "validation_error", (path, body, answer)
    status, answer = await api.get("/jobs/search", params={"board_id": "b_nope"})
    assert status == 400, answer


async def test_images_join_and_leave_boards_and_the_filter_follows(run: StudioRun, api: Api) -> None:
    fox = await make_job(api, "a red fox", 1)
    whale = await make_job(api, "a blue whale", 2)
    owl = await make_job(api, "a red owl", 3)
    keepers = await create_board(api, "Keepers")
    print_board = await create_board(api, "Print")
    fox_image, whale_image, owl_image = (j["images"][0]["id"] for j in (fox, whale, owl))

    answer = await change(api, keepers["id"], add=[fox_image, owl_image])
    assert answer["added"] == [fox_image, owl_image] and answer["failed"] == []
    assert answer["board"]["count"] == 2 and answer["board"]["cover"]["id"] == owl_image  # the newest
    assert answer["board"]["cover"]["thumb_url"] == f"/studio/api/v1/images/{owl_image}/thumb"
    again = await change(api, keepers["id"], add=[fox_image])  # already there: nothing changes
    assert again["board"]["count"] == 2
    await change(api, print_board["id"], add=[fox_image, whale_image])  # an image in two boards

    assert await search(api, board_id=keepers["id"]) == [owl["id"], fox["id"]]
    assert await search(api, board_id=print_board["id"]) == [whale["id"], fox["id"]]
    assert await search(api, board_id=keepers["id"], q="red") == [owl["id"], fox["id"]]
    assert await search(api, board_id=print_board["id"], q="whale") == [whale["id"]]
    status, _ = await api.call("PUT", f"/images/{fox_image}/like")
    assert status == 200
    assert await search(api, board_id=keepers["id"], liked="true") == [fox["id"]]
    assert await search(api, board_id=keepers["id"], liked="false") == [owl["id"]]
    page = await api.get("/jobs/search", params={"board_id": keepers["id"], "limit": "1"})
    assert [j["id"] for j in page[1]["data"]["items"]] == [owl["id"]]
    rest = await search(api, board_id=keepers["id"], cursor=page[1]["data"]["next_cursor"])
    assert rest == [fox["id"]]

    answer = await change(api, keepers["id"], remove=[owl_image])
    assert answer["removed"] == [owl_image] and answer["board"]["count"] == 1
    assert await search(api, board_id=keepers["id"]) == [fox["id"]]

    # a job deleted from the gallery leaves the filter and the count, and comes back with its memberships
    status, _ = await api.delete(f"/jobs/{fox['id']}")
    assert status == 200
    assert await search(api, board_id=keepers["id"]) == []
    assert {b["name"]: b["count"] for b in await boards(api)} == {"Keepers": 0, "Print": 1}

    async with run.studio.store.session() as session:
        audit = (
            await session.execute(
                select(AuditLog.changes).where(AuditLog.entity == "boards", AuditLog.action == "board_images")
            )
        ).scalars()
        assert {"added": [fox_image, owl_image], "removed": []} in list(audit)


async def test_deleting_a_board_removes_its_memberships_and_never_an_image(run: StudioRun, api: Api) -> None:
    fox = await make_job(api, "a red fox", 1)
    image = fox["images"][0]["id"]
    keepers = await create_board(api, "Keepers")
    other = await create_board(api, "Other")
    await change(api, keepers["id"], add=[image])
    await change(api, other["id"], add=[image])
    status, body = await api.delete(f"/boards/{keepers['id']}")
    assert status == 200 and body["data"]["removed"] == 1
    async with run.studio.store.session() as session:
        assert await session.scalar(select(func.count()).select_from(Board).where(Board.id == keepers["id"])) == 0
        items = (await session.execute(select(BoardItem.board_id))).scalars()
        assert list(items) == [other["id"]]
        assert (await session.get(Image, image)) is not None
    assert await search(api, board_id=other["id"]) == [fox["id"]]
    status, body = await api.get("/jobs/search", params={"board_id": keepers["id"]})
    assert status == 404 and body["error"]["code"] == "not_found"
    status, body = await api.post(f"/boards/{keepers['id']}/images", json={"add": [image]})
    assert status == 404, body


async def test_unknown_and_other_users_images_fail_per_id(run: StudioRun, api: Api) -> None:
    fox = await make_job(api, "a red fox", 1)
    board = await create_board(api, "Keepers")
    async with aiohttp.ClientSession() as session:
        robin = await second_user(run, api, session)
        robins = await create_board(robin, "Mine")
        answer = await change(robin, robins["id"], add=[fox["images"][0]["id"]])
        assert answer["added"] == [] and answer["failed"][0]["code"] == "not_found"
    missing = "i_01JBENCHIMAGE000000000000A"
    answer = await change(api, board["id"], add=[missing, fox["images"][0]["id"]])
    assert answer["added"] == [fox["images"][0]["id"]]
    assert answer["failed"] == [{"id": missing, "code": "not_found", "message": "Image not found"}]


async def test_other_users_boards_do_not_exist_for_you(run: StudioRun, api: Api) -> None:
    fox = await make_job(api, "a red fox", 1)
    mine = await create_board(api, "Keepers")
    await change(api, mine["id"], add=[fox["images"][0]["id"]])
    async with aiohttp.ClientSession() as session:
        robin = await second_user(run, api, session)
        assert await boards(robin) == []
        for method, path, body in [
            ("GET", f"/jobs/search?board_id={mine['id']}", None),
            ("PATCH", f"/boards/{mine['id']}", {"name": "Taken over"}),
            ("DELETE", f"/boards/{mine['id']}", None),
            ("POST", f"/boards/{mine['id']}/images", {"remove": [fox["images"][0]["id"]]}),
            ("GET", f"/jobs/search?board_id={MISSING_BOARD}", None),
        ]:
            status, answer = await robin.call(method, path, json=body) if body else await robin.call(method, path)
            assert status == 404 and answer["error"]["code"] == "not_found", (method, path, answer)
    assert [(b["name"], b["count"]) for b in await boards(api)] == [("Keepers", 1)]
