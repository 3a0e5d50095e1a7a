"""Metadata that travels: a downloaded PNG carries A1111's ``parameters`` text beside ComfyUI's own chunks.

Civitai, A1111, Forge and most image sites read ``parameters`` (prompt, ``Negative prompt:``, then ``Steps: …,
Sampler: …, CFG scale: …, Seed: …, Size: WxH, Model: …``); ComfyUI's ``prompt``/``workflow`` chunks stay as they
are. The chunk is inserted into the byte stream: the pixels are never decoded or re-encoded. A file that already
has a ``parameters`` chunk (an A1111 image imported as it was) is served unchanged.
"""

from __future__ import annotations

import asyncio

from ..db.models import Image, Job, Prompt
from ..db.store import Store
from ..engine import imagemeta


def parameters_text(job: Job, prompt_text: str | None) -> str | None:
    """The ``parameters`` text for a job's image; None when there is nothing to say."""
    graph = job.graph if isinstance(job.graph, dict) else {}
    try:
        gen = imagemeta.from_graph(imagemeta.api_graph(graph)) if graph else imagemeta.Generation()
    except imagemeta.MetadataError:
        gen = imagemeta.Generation()
    stored = job.parameters if isinstance(job.parameters, dict) else {}
    params = {**{k: v for k, v in stored.items() if not isinstance(v, (dict, list))}, **gen.parameters}
    prompt = gen.prompt or (prompt_text or "")
    negative = gen.negative or str(stored.get("negative_prompt") or "")
    if not prompt and not any(k in params for k in ("seed", "steps", "sampler")):
        return None
    return imagemeta.a1111_parameters(prompt, negative, params)


def _tag(data: bytes, text: str) -> bytes:
    try:
        if "parameters" in imagemeta.png_text(data):
            return data
        return imagemeta.with_png_text(data, "parameters", text)
    except imagemeta.MetadataError:
        return data  # a file we cannot parse goes out as it is


async def with_parameters(store: Store, image: Image, data: bytes, mime: str) -> bytes:
    """The image file to download: a PNG with its job's ``parameters`` chunk; anything else unchanged."""
    if mime != "image/png" or image.job_id is None:
        return data
    async with store.transaction() as session:
        job = await session.get(Job, image.job_id)
        prompt = await session.get(Prompt, job.prompt_row_id) if job is not None and job.prompt_row_id else None
    if job is None:
        return data
    text = parameters_text(job, prompt.text if prompt is not None else None)
    if text is None:
        return data
    return await asyncio.to_thread(_tag, data, text)
