"""One prompt pipeline: every path checks its text once and first, and an action run answers one job shape."""

from __future__ import annotations

from alembic.script import ScriptDirectory
from harness import StudioRun
from studio_api import Api, load_workflow
from test_actions_api import png, upload, use_standins
from test_first_run import audit_rows, row_counts
from test_live_api import SseClient, resynced, stream_headers

from comfyui_studio.db.store import MIGRATIONS_DIR, alembic_config

LIMIT = 20_000


async def test_generate_checks_the_text_before_it_looks_for_a_checkpoint(run: StudioRun, api: Api) -> None:
    await api.open_session()
    before, audit_before = row_counts(run.data_dir), audit_rows(run.data_dir)
    status, body = await api.post("/generate", json={"text": "x" * (LIMIT + 1)})
    # The test host has no checkpoint (a short prompt is a 409 there): the text is refused first.
    assert status == 400, body
    assert body["error"]["code"] == "validation_error" and str(LIMIT) in body["error"]["message"]
    assert row_counts(run.data_dir) == before and audit_rows(run.data_dir) == audit_before


async def test_an_image_prompt_over_the_limit_is_refused_and_writes_nothing(run: StudioRun, api: Api) -> None:
    await use_standins(api)
    source = await upload(api, png((64, 48)))
    before, audit_before = row_counts(run.data_dir), audit_rows(run.data_dir)
    status, body = await api.post("/generate", json={"text": "y" * (LIMIT + 1), "image_ids": [source["id"]]})
    assert status == 400, body
    assert body["error"]["details"][0]["type"] == "too_long"
    assert row_counts(run.data_dir) == before and audit_rows(run.data_dir) == audit_before


async def test_an_image_prompt_loses_its_control_characters_like_every_prompt(run: StudioRun, api: Api) -> None:
    await use_standins(api)
    source = await upload(api, png((64, 48)))
    status, body = await api.post(
        "/generate", json={"text": "a fox\x00 in\x1b the snow\tat dawn", "image_ids": [source["id"]]}
    )
    assert status == 201, body
    job = body["data"]
    assert job["action_slot"] == "img2img"
    assert job["prompt_text"] == "a fox in the snow\tat dawn"
    status, read = await api.get(f"/jobs/{job['id']}")
    assert read["data"]["prompt_text"] == "a fox in the snow\tat dawn"


async def test_an_action_run_answers_and_first_announces_the_shape_get_jobs_reads(run: StudioRun, api: Api) -> None:
    await use_standins(api)
    source = await upload(api, png((96, 64)))
    async with SseClient(api.session, run.api + "/events", headers=await stream_headers(api)) as sse:
        await sse.wait_for(resynced)
        status, body = await api.post(
            "/actions/pan_left/run", json={"image_id": source["id"], "text": "a red fox --seed 7"}
        )
        assert status == 201, body
        answered = body["data"]
        job_id = answered["id"]
        await sse.wait_for(lambda events: any(e.kind == "job" and e.data["job"]["id"] == job_id for e in events))
        first = next(e.data["job"] for e in sse.events if e.kind == "job" and e.data["job"]["id"] == job_id)
    status, read = await api.get(f"/jobs/{job_id}")
    stored = read["data"]
    assert set(answered) == set(stored) == set(first)
    for key in ("action", "action_slot", "workflow_id", "workflow_version", "parameters", "parent_image_id"):
        assert answered[key] == stored[key] == first[key], key
    assert answered["action"] == "pan_left" and answered["workflow_version"] == 1
    assert answered["parameters"]["pad_left"] > 0
    assert isinstance(answered["warnings"], list) and answered["warnings"] == stored["warnings"]


async def test_a_job_without_an_action_has_the_same_keys(api: Api) -> None:
    status, body = await api.post("/jobs", json={"graph": load_workflow("progress_probe")})
    assert status == 201, body
    job = body["data"]
    assert job["action"] is None and job["workflow_id"] is None and job["warnings"] == []


def test_the_migrations_have_one_head() -> None:
    """Each later revision chains on the current head: one head, one base, always."""
    scripts = ScriptDirectory.from_config(alembic_config())
    assert len(scripts.get_heads()) == 1, scripts.get_heads()
    assert len(scripts.get_bases()) == 1, scripts.get_bases()
    assert len(list(scripts.walk_revisions())) == len(list((MIGRATIONS_DIR / "versions").glob("0*.py")))
