"""The grammar through the API: N-job submits, LoRAs on the built-in generate workflow, near misses, suggestions."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import jsonpatch
from harness import StudioRun
from studio_api import Api
from test_actions_api import png, upload, use_standins
from test_first_run import row_counts
from test_models_live import drop, until

GENERATE = json.loads((Path(__file__).parent.parent / "workflows" / "generate.api.json").read_text())


async def install(run: StudioRun, api: Api) -> None:
    """Model files in the test host's folders, and the studio seeing them (its lists follow within seconds)."""
    drop(run, "checkpoints", "sd15.safetensors")
    drop(run, "checkpoints", "sdxl/juggernautXL_v9.safetensors")
    drop(run, "loras", "add_detail.safetensors")
    drop(run, "loras", "styles/film_grain.safetensors")
    drop(run, "embeddings", "EasyNegative.safetensors")
    await api.open_session()

    async def listed() -> bool:
        _, body = await api.get("/models")
        return len(body["data"]["loras"]) == 2 and len(body["data"]["checkpoints"]) == 2

    await until(listed)


def graph() -> dict:
    g = json.loads(json.dumps(GENERATE))
    g["4"]["inputs"]["ckpt_name"] = "sd15.safetensors"
    return g


async def test_a_permuted_prompt_makes_one_job_per_expansion_each_keeping_what_was_typed(
    run: StudioRun, api: Api
) -> None:
    await install(run, api)
    typed = "a {red, green, blue} bird --ar {1:1, 16:9}"
    status, body = await api.post("/jobs", json={"graph": graph(), "prompt": typed})
    assert status == 201, body
    data = body["data"]
    assert data["count"] == 6 and len(data["jobs"]) == 6
    ran = [(j["expansion"]["text"], j["expansion"]["index"], j["expansion"]["count"]) for j in data["jobs"]]
    assert ran[:2] == [("a red bird --ar 1:1", 0, 6), ("a red bird --ar 16:9", 1, 6)]
    assert {j["prompt_text"] for j in data["jobs"]} == {typed}  # "reuse prompt" gives back the braces
    for job in data["jobs"]:
        status, read = await api.get(f"/jobs/{job['id']}")
        assert read["data"]["prompt_text"] == typed and read["data"]["expansion"] == job["expansion"]
    patches = await stored_patches(run, [j["id"] for j in data["jobs"]])
    assert [(p.get("/5/inputs/width", 1024), p["/6/inputs/text"]) for p in patches[:3]] == [
        (1024, "a red bird"),
        (1344, "a red bird"),
        (1024, "a green bird"),
    ]
    status, history = await api.get("/prompts/history")
    assert [item["text"] for item in history["data"]["items"]].count(typed) == 1


async def test_a_single_job_answers_with_the_job_itself(run: StudioRun, api: Api) -> None:
    await install(run, api)
    status, body = await api.post("/jobs", json={"graph": graph(), "prompt": "a lone fox --seed 4"})
    assert status == 201, body
    assert body["data"]["id"].startswith("j_") and body["data"]["expansion"]["count"] == 1
    assert body["data"]["expansion"]["codes"] == {"seed": "4"}


async def test_repeat_submits_n_jobs_with_their_own_seeds(run: StudioRun, api: Api) -> None:
    await install(run, api)
    status, body = await api.post("/jobs", json={"graph": graph(), "prompt": "a fox --repeat 3 --seed 10"})
    assert status == 201, body
    stored = []
    for job in body["data"]["jobs"]:
        status, read = await api.get(f"/jobs/{job['id']}")
        stored.append(read["data"]["expansion"]["text"])
    assert stored == ["a fox --seed 10"] * 3
    patches = await stored_patches(run, [j["id"] for j in body["data"]["jobs"]])
    assert [p["/3/inputs/seed"] for p in patches] == [10, 11, 12]


async def stored_patches(run: StudioRun, job_ids: list[str]) -> list[dict]:
    """Each job's stored operations by path (what the job keeps of its plan)."""
    with sqlite3.connect(run.data_dir / "studio.db") as db:
        rows = {
            jid: json.loads(patches)
            for jid, patches in db.execute(
                f"SELECT id, patches FROM jobs WHERE id IN ({','.join('?' * len(job_ids))})", job_ids
            )
        }
    return [{op["path"]: op.get("value") for op in rows[j]} for j in job_ids]


async def test_too_many_jobs_is_refused_and_writes_nothing(run: StudioRun, api: Api) -> None:
    await api.open_session()
    before = row_counts(run.data_dir)
    status, body = await api.post("/jobs", json={"graph": graph(), "prompt": "{a,b,c,d,e,f,g} {1,2,3,4,5,6,7}"})
    assert status == 400, body
    assert body["error"]["details"][0]["type"] == "too_many_jobs" and "at most 40" in body["error"]["message"]
    assert row_counts(run.data_dir) == before


async def test_loras_on_the_builtin_generate_workflow_are_previewed_as_exact_ops(run: StudioRun, api: Api) -> None:
    await install(run, api)
    status, body = await api.post(
        "/prompt/preview", json={"text": "a fox --lora add_det:0.5 --lora film", "graph": graph()}
    )
    assert status == 200, body
    data = body["data"]
    assert data["errors"] == [], data
    adds = [op for op in data["patches"] if op["op"] == "add"]
    assert [(op["path"], op["value"]["inputs"]["lora_name"]) for op in adds] == [
        ("/10", "add_detail.safetensors"),
        ("/11", "styles/film_grain.safetensors"),
    ]
    patched = jsonpatch.apply_patch(graph(), data["patches"])
    assert patched["3"]["inputs"]["model"] == ["11", 0] and patched["6"]["inputs"]["clip"] == ["11", 1]
    assert data["expansions"][0]["codes"] == {"lora": ["add_det:0.5", "film"]}
    # and ComfyUI (the test host's validation) takes the graph
    status, body = await api.post("/jobs", json={"graph": graph(), "prompt": "a fox --lora add_det:0.5 --lora film"})
    assert status == 201, body


async def test_the_default_generate_slot_runs_with_a_lora_and_a_chosen_model(run: StudioRun, api: Api) -> None:
    await install(run, api)
    status, body = await api.post("/generate", json={"text": "a fox --model jugg --lora add_detail --sampler euler_a"})
    assert status == 201, body
    (patches,) = await stored_patches(run, [body["data"]["id"]])
    assert patches["/4/inputs/ckpt_name"] == "sdxl/juggernautXL_v9.safetensors"
    assert patches["/3/inputs/sampler_name"] == "euler_ancestral"
    assert patches["/10"]["class_type"] == "LoraLoader"


async def test_an_unknown_name_is_refused_with_the_near_misses(run: StudioRun, api: Api) -> None:
    await install(run, api)
    before = row_counts(run.data_dir)
    text = "a fox --lora add_detial --scheduler karas embedding:easynegativ"
    status, body = await api.post("/jobs", json={"graph": graph(), "prompt": text})
    assert status == 400, body
    details = body["error"]["details"]
    assert [d["type"] for d in details] == ["unknown_name"] * 2
    assert details[0]["message"] == "--lora add_detial: unknown LoRA; did you mean add_detail.safetensors?"
    assert "did you mean karras?" in details[1]["message"]
    assert text[details[0]["start"] : details[0]["end"]] == "add_detial"
    assert row_counts(run.data_dir) == before


async def test_an_image_prompt_with_permutations_runs_img2img_per_expansion_with_its_iw(
    run: StudioRun, api: Api
) -> None:
    await use_standins(api)
    source = await upload(api, png((64, 48)))
    status, body = await api.post("/generate", json={"text": "a {red, blue} fox --iw 2", "image_ids": [source["id"]]})
    assert status == 201, body
    jobs = body["data"]["jobs"]
    assert [j["action_slot"] for j in jobs] == ["img2img", "img2img"]
    assert [j["expansion"]["text"] for j in jobs] == ["a red fox --iw 2", "a blue fox --iw 2"]
    # a re-run of one of them runs that one prompt again
    status, again = await api.post(f"/lineage/jobs/{jobs[1]['id']}/rerun", json={})
    assert status == 201, again
    assert again["data"]["expansion"]["text"] == "a blue fox --iw 2" and again["data"]["expansion"]["count"] == 1


async def test_suggestions_offer_installed_names_with_their_folders_and_follow_new_files(
    run: StudioRun, api: Api
) -> None:
    await install(run, api)
    status, body = await api.get("/shortcodes/suggest", params={"text": "a fox --lora fil", "cursor": 16})
    assert status == 200, body
    items = body["data"]["items"]
    assert items[0]["label"] == "styles/film_grain.safetensors" and items[0]["description"] == "loras/styles"
    assert items[0]["insert"] == "styles/film_grain.safetensors " and body["data"]["replace"] == {
        "start": 13,
        "end": 16,
    }
    status, body = await api.get("/shortcodes/suggest", params={"text": "x embedding:eas", "cursor": 15})
    assert [i["label"] for i in body["data"]["items"]] == ["EasyNegative.safetensors"]
    status, body = await api.get("/shortcodes/suggest", params={"text": "--sampler dpmpp_2m", "cursor": 18})
    assert body["data"]["items"][0]["label"] == "dpmpp_2m"
    status, body = await api.get("/shortcodes/suggest", params={"text": "--ar ", "cursor": 5})
    assert {"label": "16:9", "description": "1344×768"}.items() <= body["data"]["items"][1].items()

    status, body = await api.get("/shortcodes/suggest", params={"text": "--lora add_detail:0.", "cursor": 20})
    assert body["data"]["items"] == []  # a weight is being typed: nothing to pick

    drop(run, "loras", "film_noir.safetensors")

    async def listed() -> bool:
        _, got = await api.get("/shortcodes/suggest", params={"text": "--lora film_n", "cursor": 13})
        return [i["label"] for i in got["data"]["items"]][:1] == ["film_noir.safetensors"]

    await until(listed)
