"""Dynamic prompts at every submit: raw graphs, the prompt bar, actions, re-runs and replays, on the test host."""

from __future__ import annotations

import jsonpatch
import pytest
from harness import StudioRun
from sqlalchemy import select
from studio_api import Api
from test_api_jobs import wait_for_state
from test_prompt_preview import comfy_received, runnable_graph

from comfyui_studio.db.models import ComfyCall, Job
from comfyui_studio.engine import dynprompts


async def stored(run: StudioRun, job_id: str) -> Job:
    async with run.studio.store.session() as session:
        job = await session.get(Job, job_id)
        assert job is not None
        return job


async def expected_graph(run: StudioRun, graph: dict, seed: int) -> dict:
    """What the frontend would send for ``graph`` with the choices the seed draws."""
    return dynprompts.apply(graph, await run.studio.workflows.object_info(), seed).graph


def dynamic_graph() -> dict:
    graph = runnable_graph()
    graph["11"]["inputs"]["text"] = "a {red|blue|green} square // why: test\n{small|large}"
    graph["12"]["inputs"]["text"] = "blurry /* was: grainy */"
    return graph


async def test_a_raw_graph_is_sent_with_its_choices_drawn_and_the_seed_kept(run: StudioRun, api: Api) -> None:
    graph = dynamic_graph()
    status, body = await api.post("/jobs", json={"graph": graph})
    assert status == 201, body
    job = await wait_for_state(api, body["data"]["id"], {"done"})
    seed = job["parameters"]["choice_seed"]
    assert isinstance(seed, int) and 0 <= seed <= dynprompts.MAX_SEED

    received = await comfy_received(run, api, job["prompt_id"])
    assert received == await expected_graph(run, graph, seed)
    assert received["11"]["inputs"]["text"].split("\n")[0] in {"a red square ", "a blue square ", "a green square "}
    assert received["11"]["inputs"]["text"].split("\n")[1] in {"small", "large"}
    assert received["12"]["inputs"]["text"] == "blurry "
    row = await stored(run, job["id"])
    assert row.graph == received, "the job keeps the text ComfyUI received"
    assert [op["path"] for op in row.patches] == ["/11/inputs/text", "/12/inputs/text"]
    assert jsonpatch.apply_patch(graph, row.patches) == received

    # The stored seed repeats the run's text.
    status, body = await api.post("/jobs", json={"graph": graph, "choice_seed": seed})
    assert status == 201, body
    again = await wait_for_state(api, body["data"]["id"], {"done"})
    assert again["parameters"]["choice_seed"] == seed
    assert await comfy_received(run, api, again["prompt_id"]) == received


async def test_every_run_draws_its_own_choices(run: StudioRun, api: Api) -> None:
    graph = runnable_graph()
    graph["11"]["inputs"]["text"] = "{a|b|c|d|e|f|g|h}{a|b|c|d|e|f|g|h}{a|b|c|d|e|f|g|h}"
    texts, seeds = set(), set()
    for _ in range(3):
        status, body = await api.post("/jobs", json={"graph": graph})
        assert status == 201, body
        job = await wait_for_state(api, body["data"]["id"], {"done"})
        seeds.add(job["parameters"]["choice_seed"])
        texts.add((await comfy_received(run, api, job["prompt_id"]))["11"]["inputs"]["text"])
    assert len(seeds) == 3 and len(texts) >= 2  # 512 texts: three equal draws would be a 1 in 262,144 fluke


async def test_a_graph_without_dynamic_text_gets_no_seed_and_no_patches(run: StudioRun, api: Api) -> None:
    graph = runnable_graph()
    graph["1"]["inputs"]["filename_prefix"] = "out/{a|b}"  # not a dynamic-prompt input: sent as it is
    status, body = await api.post("/jobs", json={"graph": graph})
    assert status == 201, body
    job = await wait_for_state(api, body["data"]["id"], {"done", "error"})
    assert "choice_seed" not in job["parameters"]
    assert (await stored(run, job["id"])).patches == []
    assert await comfy_received(run, api, job["prompt_id"]) == graph


async def test_prompt_bar_text_is_processed_after_its_shortcodes(run: StudioRun, api: Api) -> None:
    graph = runnable_graph()
    text = "a {red|blue} square, {{tiny|huge}|round} --ar 16:9 --seed 42 // keep for later"
    status, body = await api.post("/generate", json={"text": text, "graph": graph})
    assert status == 201, body
    job = await wait_for_state(api, body["data"]["id"], {"done"})
    assert job["prompt_text"] == text, "the prompt as typed stays the job's prompt"
    seed = job["parameters"]["choice_seed"]
    received = await comfy_received(run, api, job["prompt_id"])
    sent = received["11"]["inputs"]["text"]
    assert sent.startswith(("a red square, ", "a blue square, ")) and sent.endswith(("tiny ", "huge ", "round "))
    assert "{" not in sent and "//" not in sent and "--" not in sent
    assert received["13"]["inputs"]["seed"] == 42 and received["14"]["inputs"]["width"] == 704
    row = await stored(run, job["id"])
    assert row.patches[-1] == {"op": "replace", "path": "/11/inputs/text", "value": sent}
    assert jsonpatch.apply_patch(graph, row.patches) == received == row.graph

    # The clean text with the same seed on /jobs draws the same.
    status, body = await api.post("/jobs", json={"graph": graph, "prompt": text, "choice_seed": seed})
    assert status == 201, body
    again = await wait_for_state(api, body["data"]["id"], {"done"})
    assert (await comfy_received(run, api, again["prompt_id"]))["11"]["inputs"]["text"] == sent


async def test_escaped_braces_are_literal_and_a_replay_sends_the_logged_text_again(run: StudioRun, api: Api) -> None:
    graph = runnable_graph()
    graph["11"]["inputs"]["text"] = r"a sign reading \{open|closed\}, {day|night}"
    status, body = await api.post("/jobs", json={"graph": graph})
    assert status == 201, body
    job = await wait_for_state(api, body["data"]["id"], {"done"})
    sent = (await comfy_received(run, api, job["prompt_id"]))["11"]["inputs"]["text"]
    assert sent in ("a sign reading {open|closed}, day", "a sign reading {open|closed}, night")

    async with run.studio.store.session() as session:
        call = await session.scalar(
            select(ComfyCall).where(ComfyCall.job_id == job["id"], ComfyCall.operation == "submit")
        )
    assert call is not None
    status, body = await api.post(f"/calls/{call.id}/replay", json={})
    assert status == 201, body
    replay = await wait_for_state(api, body["data"]["job"]["id"], {"done"})
    # Processing again would have turned the literal braces into a choice.
    assert (await comfy_received(run, api, replay["prompt_id"]))["11"]["inputs"]["text"] == sent
    assert "choice_seed" not in replay["parameters"]


async def test_actions_draw_in_the_workflow_and_the_prompt_and_a_same_seed_rerun_repeats_them(
    run: StudioRun, api: Api
) -> None:
    document = runnable_graph()
    document["12"]["inputs"]["text"] = "{blurry|grainy}, lowres"  # the workflow's own negative prompt
    status, body = await api.post("/workflows", json={"name": "dynamic", "document": document})
    assert status == 201, body
    status, body = await api.call("PATCH", "/actions/generate", json={"workflow_id": body["data"]["id"]})
    assert status == 200, body

    status, body = await api.post("/actions/generate/run", json={"text": "a {castle|tower} at {dawn|dusk} --seed 5"})
    assert status == 201, body
    assert isinstance(body["data"]["parameters"]["choice_seed"], int)
    first = await wait_for_state(api, body["data"]["id"], {"done"})
    seed = first["parameters"]["choice_seed"]
    received = await comfy_received(run, api, first["prompt_id"])
    assert received["11"]["inputs"]["text"] in {f"a {b} at {t}" for b in ("castle", "tower") for t in ("dawn", "dusk")}
    assert received["12"]["inputs"]["text"] in ("blurry, lowres", "grainy, lowres")
    assert (await stored(run, first["id"])).graph == received

    status, body = await api.post(f"/lineage/jobs/{first['id']}/rerun", json={"same_seed": True})
    assert status == 201, body
    same = await wait_for_state(api, body["data"]["id"], {"done"})
    assert same["parameters"]["choice_seed"] == seed
    assert await comfy_received(run, api, same["prompt_id"]) == received

    status, body = await api.post(f"/lineage/jobs/{first['id']}/rerun", json={"same_seed": False})
    assert status == 201, body
    fresh = await wait_for_state(api, body["data"]["id"], {"done"})
    assert fresh["parameters"]["choice_seed"] != seed

    status, body = await api.post("/actions/generate/run", json={"text": "a {castle|tower}", "choice_seed": 99})
    assert status == 201, body
    assert body["data"]["parameters"]["choice_seed"] == 99


@pytest.mark.parametrize("seed", [-1, 2**53, "7", 1.5, True, None])
@pytest.mark.parametrize(
    ("path", "body"), [("/jobs", {"graph": {}}), ("/generate", {"text": "x"}), ("/actions/generate/run", {})]
)
async def test_a_malformed_choice_seed_is_refused_before_anything_is_written(
    run: StudioRun, api: Api, path: str, body: dict, seed: object
) -> None:
    payload = {**body, "choice_seed": seed}
    if path == "/jobs":
        payload["graph"] = runnable_graph()
    status, answer = await api.post(path, json=payload)
    if seed is None:  # null is the same as leaving it out
        assert status != 400 or answer["error"]["details"][0]["loc"] != ["choice_seed"]
        return
    assert status == 400, answer
    assert answer["error"]["code"] == "validation_error"
    assert answer["error"]["details"][0]["loc"] == ["choice_seed"]
    async with run.studio.store.session() as session:
        assert (await session.scalars(select(Job))).all() == []
