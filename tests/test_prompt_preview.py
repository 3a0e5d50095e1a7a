"""The prompt path on the test host: preview's exact patches, jobs and generate with shortcodes, refusals."""

from __future__ import annotations

import asyncio
import json

import jsonpatch
import pytest
from harness import StudioRun
from sqlalchemy import func, select
from studio_api import FIXTURES, Api, load_workflow
from test_actions_api import use_standins

from comfyui_studio.db.models import ComfyCall, Job, Prompt


def graph_fixture(name: str) -> dict:
    if name.endswith(".api"):
        return load_workflow(name.removesuffix(".api"))
    return json.loads((FIXTURES / "graphs" / f"{name}.api.json").read_text())


def op(path: str, value: object) -> dict:
    return {"op": "replace", "path": path, "value": value}


PHOTO = "professional photograph, 35mm, sharp focus, detailed texture"
PHOTO_NEG = "illustration, painting, drawing, cartoon, cgi, render"

# (fixture, prompt, the exact patch list, the kinds of warning in order)
CASES = [
    (
        "t2i_standin.api",
        "a blue square --ar 16:9 --seed 42",
        # 16:9 at the node's own 256² pixels, in multiples of 64; no sampler for the seed, no prompt node.
        [op("/1/inputs/width", 320), op("/1/inputs/height", 192)],
        ["no_positive_prompt", "no_effect"],
    ),
    (
        "progress_probe.api",
        "probe --size 200x96",
        [op("/1/inputs/width", 200), op("/1/inputs/height", 96)],
        ["no_positive_prompt"],
    ),
    # Only codes: the graph keeps its own text (and 1:1 at 64² changes nothing).
    ("inpaint_standin.api", "--ar 1:1", [], []),
    ("upscale_standin.api", "sharper --steps 10", [], ["no_positive_prompt", "no_effect"]),
    (
        "sd15",
        "a lighthouse --ar 16:9 --seed 42 --steps 30 --style photo --no text",
        [
            op("/5/inputs/width", 704),
            op("/5/inputs/height", 384),
            op("/3/inputs/seed", 42),
            op("/3/inputs/steps", 30),
            op("/6/inputs/text", f"a lighthouse, {PHOTO}"),
            op("/7/inputs/text", f"blurry, lowres, {PHOTO_NEG}, text"),
        ],
        [],
    ),
    (
        "sdxl_refiner",
        "a tower --seed 7 --tile --cfg 5",
        [
            # The string node wired into the base prompt, and the refiner's own prompt.
            op("/20/inputs/value", "a tower"),
            op("/15/inputs/text", "a tower"),
            op("/10/inputs/noise_seed", 7),
            op("/11/inputs/noise_seed", 7),
            op("/21/inputs/value", True),
            op("/10/inputs/cfg", 5.0),
            op("/11/inputs/cfg", 5.0),
        ],
        [],
    ),
    (
        "sdxl_40_nodes",
        "portrait --seed 7 --batch 2 --q 2",
        [
            op("/11/inputs/text", "portrait"),
            op("/18/inputs/seed", 7),
            op("/20/inputs/seed", 7),
            op("/17/inputs/batch_size", 2),
            op("/18/inputs/steps", 60),  # --q multiplies after the set pass
            op("/20/inputs/steps", 30),
        ],
        [],
    ),
    (
        "flux_dev",
        "a red fox --ar 2:3 --s 100 --chaos 100 --no snow",
        [
            op("/6/inputs/text", "a red fox"),
            op("/27/inputs/width", 832),
            op("/27/inputs/height", 1280),
            op("/30/inputs/width", 832),
            op("/30/inputs/height", 1280),
            # --s 100 maps to Flux's own 3.5 (no op); chaos 100 then switches the sampler and scales guidance.
            op("/16/inputs/sampler_name", "euler_ancestral"),
            op("/26/inputs/guidance", 2.1),
        ],
        ["no_effect"],
    ),
    (
        "flux_schnell_ksampler",
        "a cozy cabin at night --seed 3 --steps 6",
        [op("/6/inputs/text", "a cozy cabin at night"), op("/31/inputs/seed", 3), op("/31/inputs/steps", 6)],
        [],
    ),
]


@pytest.mark.parametrize(("fixture", "text", "patches", "warnings"), CASES, ids=[c[0] for c in CASES])
async def test_preview_returns_the_exact_patches_for_the_graph(
    api: Api, fixture: str, text: str, patches: list, warnings: list
) -> None:
    graph = graph_fixture(fixture)
    status, body = await api.post("/prompt/preview", json={"text": text, "graph": graph})
    assert status == 200, body
    data = body["data"]
    keys = {"clean_text", "tokens", "errors", "warnings", "patches", "reports", "count", "expansions"}
    assert set(data) == keys
    assert data["count"] == 1 and [e["patches"] for e in data["expansions"]] == [patches]
    assert data["patches"] == patches
    assert [w["kind"] for w in data["warnings"]] == warnings
    assert data["errors"] == []
    # Standard RFC 6902: every op applies to the graph as sent.
    jsonpatch.apply_patch(graph, data["patches"])
    for token in data["tokens"]:
        assert set(token) == {"code", "raw", "value", "start", "end"}
        assert text[token["start"] : token["end"]].startswith("--")


async def test_preview_names_the_code_a_workflow_cannot_honour(api: Api) -> None:
    text = "a red fox --ar 2:3 --s 100 --chaos 100 --no snow"
    status, body = await api.post("/prompt/preview", json={"text": text, "graph": graph_fixture("flux_dev")})
    warning = body["data"]["warnings"][0]
    assert warning == {
        "start": text.index("--no"),
        "end": len(text),
        "message": "--no has no effect on this workflow: it has no negative prompt",
        "kind": "no_effect",
    }
    reports = {r["code"]: r for r in body["data"]["reports"]}
    assert reports["chaos"]["nodes"] == ["16", "26"]
    assert reports["no"]["warnings"] == [warning["message"]]


async def test_preview_without_a_graph_parses_only_and_writes_nothing(run: StudioRun, api: Api) -> None:
    text = "a cat --ar 16:9 --wombat --seed random"
    status, body = await api.post("/prompt/preview", json={"text": text})
    assert status == 200, body
    data = body["data"]
    assert data["clean_text"] == "a cat"
    assert [(t["code"], t["raw"], t["start"], t["end"]) for t in data["tokens"]] == [
        ("ar", "16:9", 6, 15),
        ("seed", "random", 25, 38),
    ]
    assert data["tokens"][0]["value"]["width"] == 1344
    assert data["warnings"] == [
        {"start": 16, "end": 24, "message": "--wombat is not a known code", "kind": "unknown_code"}
    ]
    assert data["patches"] == [] and data["reports"] == []
    # Nothing queued or stored; looking for the default workflow's checkpoint may ask ComfyUI's object_info.
    assert (await counts(run))[:2] == (0, 0)
    async with run.studio.store.session() as session:
        operations = set((await session.scalars(select(ComfyCall.operation))).all())
    assert operations <= {"object_info"}


async def test_preview_reports_errors_with_offsets(api: Api) -> None:
    text = "a cat --ar 16:0 --steps"
    status, body = await api.post("/prompt/preview", json={"text": text, "graph": graph_fixture("sd15")})
    assert status == 200, body
    data = body["data"]
    assert data["errors"] == [
        {
            "start": 6,
            "end": 15,
            "message": "--ar 16:0: ratio must be two positive numbers",
            "kind": "invalid_value",
        },
        {"start": 16, "end": 23, "message": "--steps: needs a value", "kind": "missing_value"},
    ]
    assert data["clean_text"] == "a cat 16:0"  # the user's words are never dropped


async def test_preview_offsets_count_utf16_code_units_like_the_browser(api: Api) -> None:
    text = "🐱 in space --seed 1 --wombat"
    status, body = await api.post("/prompt/preview", json={"text": text})
    data = body["data"]
    js = text.encode("utf-16-le")
    token = data["tokens"][0]
    assert (token["start"], token["end"]) == (12, 20)  # the code point offsets are 11 and 19
    assert js[token["start"] * 2 : token["end"] * 2].decode("utf-16-le") == "--seed 1"
    warning = data["warnings"][0]
    assert js[warning["start"] * 2 : warning["end"] * 2].decode("utf-16-le") == "--wombat"


async def test_preview_refuses_a_malformed_graph(api: Api) -> None:
    status, body = await api.post("/prompt/preview", json={"text": "x", "graph": {"1": {"inputs": {}}}})
    assert status == 400 and body["error"]["code"] == "validation_error"


# --- submitting ------------------------------------------------------------------------------------


def runnable_graph() -> dict:
    """The test host's t2i stand-in plus an SD1.5 sampler branch that no output uses: ComfyUI (and the
    test host) validate and run only what outputs need, so the job runs and the branch carries the
    seed and prompt the codes patch."""
    graph = load_workflow("t2i_standin")
    graph.update(
        {
            "10": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}},
            "11": {"class_type": "CLIPTextEncode", "inputs": {"text": "placeholder", "clip": ["10", 1]}},
            "12": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["10", 1]}},
            "13": {
                "class_type": "KSampler",
                "inputs": {
                    "seed": 1,
                    "steps": 20,
                    "cfg": 7.0,
                    "sampler_name": "euler",
                    "scheduler": "normal",
                    "denoise": 1.0,
                    "model": ["10", 0],
                    "positive": ["11", 0],
                    "negative": ["12", 0],
                    "latent_image": ["14", 0],
                },
            },
            "14": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}},
        }
    )
    return graph


RUNNABLE_PATCHES = [
    op("/11/inputs/text", "a red square"),
    op("/1/inputs/width", 320),  # both size nodes, each at its own pixel count
    op("/14/inputs/width", 704),
    op("/1/inputs/height", 192),
    op("/14/inputs/height", 384),
    op("/13/inputs/seed", 42),
]


async def counts(run: StudioRun) -> tuple[int, int, int]:
    async with run.studio.store.session() as session:
        jobs = await session.scalar(select(func.count()).select_from(Job))
        prompts = await session.scalar(select(func.count()).select_from(Prompt))
        calls = await session.scalar(select(func.count()).select_from(ComfyCall))
    return jobs or 0, prompts or 0, calls or 0


async def wait_done(api: Api, job_id: str) -> dict:
    for _ in range(400):
        status, body = await api.get(f"/jobs/{job_id}")
        if body["data"]["state"] in ("done", "error", "rejected"):
            return body["data"]
        await asyncio.sleep(0.025)
    raise AssertionError(f"job {job_id} did not finish")


async def comfy_received(run: StudioRun, api: Api, prompt_id: str) -> dict:
    async with api.session.get(f"{run.host.url}/history/{prompt_id}") as resp:
        history = await resp.json()
    return history[prompt_id]["prompt"][2]


async def stored_patches(run: StudioRun, job_id: str) -> list:
    async with run.studio.store.session() as session:
        return await session.scalar(select(Job.patches).where(Job.id == job_id))


async def test_a_job_with_a_prompt_stores_its_patches_and_comfyui_gets_the_patched_graph(
    run: StudioRun, api: Api
) -> None:
    graph = runnable_graph()
    text = "a red square --ar 16:9 --seed 42"
    status, body = await api.post("/jobs", json={"graph": graph, "prompt": text})
    assert status == 201, body
    job = await wait_done(api, body["data"]["id"])
    assert job["state"] == "done" and job["prompt_text"] == text
    assert len(job["images"]) == 1 and (job["images"][0]["width"], job["images"][0]["height"]) == (640, 384)

    assert await stored_patches(run, job["id"]) == RUNNABLE_PATCHES
    received = await comfy_received(run, api, job["prompt_id"])
    assert received == jsonpatch.apply_patch(graph, RUNNABLE_PATCHES)
    assert (received["1"]["inputs"]["width"], received["1"]["inputs"]["height"]) == (320, 192)
    assert (received["14"]["inputs"]["width"], received["14"]["inputs"]["height"]) == (704, 384)
    assert received["13"]["inputs"]["seed"] == 42
    assert received["11"]["inputs"]["text"] == "a red square"

    # The preview promised exactly this.
    status, body = await api.post("/prompt/preview", json={"text": text, "graph": graph})
    assert body["data"]["patches"] == RUNNABLE_PATCHES


async def test_a_random_seed_is_drawn_once_and_stored(run: StudioRun, api: Api) -> None:
    status, body = await api.post("/jobs", json={"graph": runnable_graph(), "prompt": "x --seed random"})
    assert status == 201, body
    job = await wait_done(api, body["data"]["id"])
    patches = await stored_patches(run, job["id"])
    seed = next(p["value"] for p in patches if p["path"] == "/13/inputs/seed")
    assert isinstance(seed, int) and 0 <= seed < 2**53
    assert (await comfy_received(run, api, job["prompt_id"]))["13"]["inputs"]["seed"] == seed


async def test_a_prompt_with_errors_is_refused_with_offsets_and_nothing_is_written(run: StudioRun, api: Api) -> None:
    before = await counts(run)
    text = "a cat --ar 16:0 --steps"
    status, body = await api.post("/jobs", json={"graph": runnable_graph(), "prompt": text})
    assert status == 400, body
    error = body["error"]
    assert error["code"] == "validation_error"
    assert error["message"] == "The prompt has 2 errors: --ar 16:0: ratio must be two positive numbers"
    assert [(d["loc"], d["type"], d["start"], d["end"]) for d in error["details"]] == [
        (["prompt"], "invalid_value", 6, 15),
        (["prompt"], "missing_value", 16, 23),
    ]
    assert await counts(run) == before
    async with api.session.get(f"{run.host.url}/history") as resp:
        assert await resp.json() == {}


async def test_a_job_without_a_prompt_is_sent_unpatched(run: StudioRun, api: Api) -> None:
    graph = runnable_graph()
    status, body = await api.post("/jobs", json={"graph": graph})
    assert status == 201, body
    job = await wait_done(api, body["data"]["id"])
    assert await stored_patches(run, job["id"]) == []
    assert await comfy_received(run, api, job["prompt_id"]) == graph


async def test_generate_without_a_graph_says_the_default_workflow_needs_a_checkpoint(run: StudioRun, api: Api) -> None:
    status, body = await api.post("/generate", json={"text": "a cat --ar 16:9"})
    assert status == 409, body
    assert body["error"]["code"] == "conflict" and "No checkpoint is installed" in body["error"]["message"]
    assert (await counts(run))[:2] == (0, 0)


async def test_generate_without_a_graph_runs_the_generate_slots_workflow(run: StudioRun, api: Api) -> None:
    await use_standins(api)
    status, body = await api.post("/generate", json={"text": "a lighthouse --ar 16:9 --seed 7"})
    assert status == 201, body
    job = await wait_done(api, body["data"]["id"])
    assert job["state"] == "done" and job["images"]
    assert job["prompt_text"] == "a lighthouse --ar 16:9 --seed 7"


async def test_generate_with_a_graph_submits_like_a_job(run: StudioRun, api: Api) -> None:
    status, body = await api.post(
        "/generate", json={"text": "a red square --ar 16:9 --seed 42", "graph": runnable_graph()}
    )
    assert status == 201, body
    job = await wait_done(api, body["data"]["id"])
    assert job["state"] == "done"
    assert await stored_patches(run, job["id"]) == RUNNABLE_PATCHES

    status, body = await api.post("/generate", json={"text": "a cat --ar", "graph": runnable_graph()})
    assert status == 400 and body["error"]["details"][0]["loc"] == ["text"]
    status, body = await api.post(
        "/generate", json={"text": "a cat", "graph": runnable_graph(), "image_ids": ["i_01J00000000000000000000000"]}
    )
    assert status == 400 and body["error"]["details"][0]["loc"] == ["image_ids"]


async def test_an_image_prompt_runs_img2img_on_that_image(api: Api) -> None:
    from test_actions_api import png, upload

    await use_standins(api)
    image = await upload(api, png((96, 64)))
    status, body = await api.post("/generate", json={"text": "the field in autumn", "image_ids": [image["id"]]})
    assert status == 201, body
    job = await wait_done(api, body["data"]["id"])
    assert job["state"] == "done" and job["action_slot"] == "img2img" and job["parent_image_id"] == image["id"]
    for bad in (["../x"], [image["id"], image["id"]]):
        status, body = await api.post("/generate", json={"text": "x", "image_ids": bad})
        assert status == 400 and body["error"]["details"][0]["loc"][0] == "image_ids"
