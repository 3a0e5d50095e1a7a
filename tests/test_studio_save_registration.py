"""Images saved by Studio Save Image in a graph queued from ComfyUI's own editor land in the gallery with
their prompt and parameters (the node reports them in its UI output; the studio follows the prompt as a
foreign job)."""

from __future__ import annotations

import asyncio
import io
import uuid

from harness import StudioRun
from PIL import Image
from studio_api import Api


async def test_a_studio_save_image_output_from_the_editor_registers_prompt_and_parameters(
    run: StudioRun, api: Api
) -> None:
    image = io.BytesIO()
    Image.new("RGB", (80, 48), (120, 30, 200)).save(image, "PNG")
    (run.host.output_dir / "studio").mkdir(parents=True, exist_ok=True)
    (run.host.output_dir / "studio" / "ComfyUI_00001_.png").write_bytes(image.getvalue())
    prompt_id = str(uuid.uuid4())
    editor = "editor-" + uuid.uuid4().hex  # ComfyUI's own frontend, not the studio
    output = {
        "images": [{"filename": "ComfyUI_00001_.png", "subfolder": "studio", "type": "output"}],
        "studio": [{"prompt_text": "a violet comet --ar 5:3", "parameters": {"seed": 42, "steps": 20}}],
    }
    server = run.host.server
    # What ComfyUI's executor sends for that prompt, through the same send path the studio taps.
    for event, data in (
        ("execution_start", {"prompt_id": prompt_id, "timestamp": 1}),
        ("execution_cached", {"nodes": [], "prompt_id": prompt_id, "timestamp": 1}),
        ("executing", {"node": "9", "display_node": "9", "prompt_id": prompt_id}),
        ("executed", {"node": "9", "display_node": "9", "output": output, "prompt_id": prompt_id}),
        ("execution_success", {"prompt_id": prompt_id, "timestamp": 2}),
        ("executing", {"node": None, "prompt_id": prompt_id}),
    ):
        await server.send(event, data, editor)
    for _ in range(200):
        status, body = await api.get("/jobs")
        items = body["data"]["items"]
        if items and items[0]["state"] == "done" and items[0]["images"] and items[0]["prompt_text"]:
            break
        await asyncio.sleep(0.02)
    job = items[0]
    assert job["foreign"] is True and job["prompt_id"] == prompt_id
    assert job["prompt_text"] == "a violet comet --ar 5:3"
    assert job["parameters"] == {"seed": 42, "steps": 20}
    assert (job["images"][0]["width"], job["images"][0]["height"]) == (80, 48)
    status, history = await api.get("/prompts/history")
    assert history["data"]["items"][0]["text"] == "a violet comet --ar 5:3"
