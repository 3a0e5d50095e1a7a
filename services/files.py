"""Images: uploads, a job's outputs (read from ComfyUI, thumbnailed, stored), and the files behind them."""

from __future__ import annotations

import asyncio
import logging

from ..config import StudioConfig
from ..db import jobs as repo
from ..db.models import ComfyCall, Image
from ..db.store import Store
from ..engine.errors import StudioError, not_found
from ..engine.ids import IMAGE, new_id
from .comfy_calls import LoggedComfy
from .comfy_host import JSON, HostError, HostNotFound, HostUnavailable
from .images import ImageInfo, inspect_image, make_thumbnail
from .jobs import image_to_dict

log = logging.getLogger("comfyui_studio.files")


class Files:
    def __init__(self, config: StudioConfig, store: Store, comfy: LoggedComfy) -> None:
        self.config = config
        self.store = store
        self.comfy = comfy

    async def upload(self, owner_id: int, data: bytes) -> dict[str, JSON]:
        info: ImageInfo = inspect_image(data, max_pixels=self.config.max_image_pixels)
        # The name comes from the content, never from the client.
        filename = f"studio_{info.sha256[:20]}{info.extension}"
        stored = await self.comfy.upload_image(data, filename, subfolder="studio", owner_id=owner_id)
        image = Image(
            id=new_id(IMAGE),
            owner_id=owner_id,
            kind="upload",
            filename=stored["name"],
            subfolder=stored.get("subfolder", ""),
            folder_type="input",
            mime=info.mime,
            width=info.width,
            height=info.height,
            size_bytes=info.size_bytes,
            sha256=info.sha256,
        )
        image.has_thumb = bool(await make_thumbnail(data, self.config.thumbs_dir / f"{image.id}.webp"))
        async with self.store.transaction(owner_id) as session:
            await repo.add_all(session, [image])
        return image_to_dict(image)

    async def image_row(self, owner_id: int, image_id: str) -> Image:
        async with self.store.transaction(owner_id) as session:
            image = await repo.image(session, image_id)
        if image is None or image.owner_id != owner_id:
            raise not_found("Image")
        return image

    async def image_file(self, owner_id: int, image_id: str) -> tuple[bytes, str]:
        image = await self.image_row(owner_id, image_id)
        try:
            file = await self.comfy.view(
                image.filename, image.subfolder, image.folder_type, job_id=image.job_id, owner_id=owner_id
            )
        except HostNotFound as exc:
            raise StudioError("not_found", "ComfyUI no longer has this image file") from exc
        except HostUnavailable as exc:
            raise StudioError("comfy_unavailable", str(exc)) from exc
        return file.data, image.mime

    # -- a job's outputs ------------------------------------------------------------------------------

    async def prepare_outputs(
        self, owner_id: int, job_id: str, outputs: dict[str, JSON], existing: set[tuple[str, str, str]]
    ) -> tuple[list[Image], list[ComfyCall]]:
        """The new output images of a job (``existing``: the keys already stored), read from ComfyUI and
        thumbnailed, not yet stored."""
        refs: list[tuple[str, dict[str, str]]] = []
        for node_id, output in outputs.items():
            for ref in (output or {}).get("images") or []:
                if isinstance(ref, dict) and ref.get("filename"):
                    refs.append((str(node_id), ref))
        if not refs:
            return [], []
        existing = set(existing)
        images: list[Image] = []
        for node_id, ref in refs:
            key = (ref["filename"], ref.get("subfolder", ""), ref.get("type", "output"))
            if key in existing:
                continue
            existing.add(key)
            images.append(
                Image(
                    id=new_id(IMAGE),
                    owner_id=owner_id,
                    job_id=job_id,
                    kind="output" if key[2] == "output" else "temp",
                    filename=key[0],
                    subfolder=key[1],
                    folder_type=key[2],
                    node_id=node_id,
                )
            )
        calls: list[ComfyCall] = []
        # Files read and thumbnails made side by side.
        await asyncio.gather(*(self._inspect_output(image, calls) for image in images))
        return images, calls

    async def _inspect_output(self, image: Image, calls: list[ComfyCall]) -> None:
        key = (image.filename, image.subfolder, image.folder_type)
        try:
            file = await self.comfy.view(*key, job_id=image.job_id, owner_id=image.owner_id, pending_calls=calls)
        except HostNotFound:
            return
        except HostError:
            log.warning("Could not read output %s of job %s", key[0], image.job_id)
            return
        image.mime = file.content_type if file.content_type.startswith("image/") else image.mime
        image.size_bytes = len(file.data)
        size = await make_thumbnail(file.data, self.config.thumbs_dir / f"{image.id}.webp")
        if size:
            image.width, image.height = size
            image.has_thumb = True
