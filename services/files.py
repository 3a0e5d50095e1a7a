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
from .images import ImageInfo, inspect_image, make_thumbnail, mask_png, read_mask
from .jobs import image_to_dict

log = logging.getLogger("comfyui_studio.files")


class Files:
    def __init__(self, config: StudioConfig, store: Store, comfy: LoggedComfy) -> None:
        self.config = config
        self.store = store
        self.comfy = comfy

    async def upload(self, owner_id: int, data: bytes) -> dict[str, JSON]:
        info: ImageInfo = inspect_image(data, max_pixels=self.config.max_image_pixels)
        image = await self._store_input(owner_id, data, info)
        async with self.store.transaction(owner_id) as session:
            await repo.add_all(session, [image])
        return image_to_dict(image)

    async def _store_input(
        self, owner_id: int, data: bytes, info: ImageInfo, *, kind: str = "upload", thumb: bool = True
    ) -> Image:
        """Put a checked file into ComfyUI's input folder; the row is returned, not yet stored."""
        # The name comes from the content, never from the client.
        prefix = "studio_mask_" if kind == "mask" else "studio_"
        filename = f"{prefix}{info.sha256[:20]}{info.extension}"
        stored = await self.comfy.upload_image(data, filename, subfolder="studio", owner_id=owner_id)
        image = Image(
            id=new_id(IMAGE),
            owner_id=owner_id,
            kind=kind,
            filename=stored["name"],
            subfolder=stored.get("subfolder", ""),
            folder_type="input",
            mime=info.mime,
            width=info.width,
            height=info.height,
            size_bytes=info.size_bytes,
            sha256=info.sha256,
        )
        if thumb:
            image.has_thumb = bool(await make_thumbnail(data, self.config.thumbs_dir / f"{image.id}.webp"))
        return image

    async def upload_edit(
        self,
        owner_id: int,
        *,
        mask: bytes,
        image: bytes | None = None,
        image_id: str | None = None,
        source_image_id: str | None = None,
    ) -> dict[str, JSON]:
        """An editor's submit: the image (a new composite, or one the studio has) and its mask, checked together.

        The mask must be a PNG of exactly the image's size with something painted. It is stored in
        ComfyUI's form (black, transparent where repainted) and linked to its image; a new composite is
        linked to the image it was edited from.
        """
        if (image is None) == (image_id is None):
            raise StudioError(
                "validation_error",
                "Send the edited image as a file (image) or name one the studio has (image_id), not both",
                [{"loc": ["body", "image"], "message": "exactly one of image or image_id", "type": "missing"}],
            )
        limit = self.config.max_image_pixels
        mask_info = inspect_image(mask, max_pixels=limit)
        if mask_info.format != "PNG":
            raise StudioError("unsupported_media_type", "The mask must be a PNG (a lossless file keeps its edges)")
        source = await self._owned(owner_id, source_image_id, "source_image_id") if source_image_id else None
        if image is not None:
            info = inspect_image(image, max_pixels=limit)
            size = (info.width, info.height)
            base = None
        else:
            base = await self._owned(owner_id, image_id, "image_id")
            size = (base.width or 0, base.height or 0)
        if (mask_info.width, mask_info.height) != size:
            raise StudioError(
                "validation_error",
                f"The mask is {mask_info.width}×{mask_info.height} pixels and the image {size[0]}×{size[1]}: "
                "they must be the same size",
                [{"loc": ["body", "mask"], "message": "not the image's size", "type": "size_mismatch"}],
            )
        try:
            repaint, _size, painted = await asyncio.to_thread(read_mask, mask)
        except (OSError, SyntaxError, ValueError) as exc:
            raise StudioError("unsupported_media_type", "The mask is not a readable PNG") from exc
        if not painted:
            raise StudioError(
                "validation_error",
                "The mask is empty: paint the area to repaint",
                [{"loc": ["body", "mask"], "message": "nothing painted", "type": "empty_mask"}],
            )
        rows: list[Image] = []
        if base is None:
            assert image is not None
            base = await self._store_input(owner_id, image, info)
            base.source_image_id = source.id if source is not None else None
            rows.append(base)
        stored_mask = await asyncio.to_thread(mask_png, repaint, size, "alpha")
        mask_row = await self._store_input(
            owner_id, stored_mask, inspect_image(stored_mask, max_pixels=limit), kind="mask", thumb=False
        )
        mask_row.source_image_id = base.id
        rows.append(mask_row)
        async with self.store.transaction(owner_id) as session:
            await repo.add_all(session, rows)
        return {
            "image": image_to_dict(base),
            "mask": image_to_dict(mask_row),
            "source_image_id": base.source_image_id,
        }

    async def _owned(self, owner_id: int, image_id: str | None, field: str) -> Image:
        try:
            return await self.image_row(owner_id, str(image_id))
        except StudioError:
            raise StudioError(
                "not_found",
                f"The image {image_id} was not found",
                [{"loc": ["body", field], "message": "no such image", "type": "not_found"}],
            ) from None

    async def mask_ref(self, owner_id: int, mask: Image, form: str) -> str:
        """How the workflow's mask loader names the mask file, in the form it reads (see engine.masks).

        Masks are stored in ComfyUI's alpha form; a loader that reads a colour channel gets a grayscale
        copy, uploaded under a name made from its content.
        """
        name = f"{mask.subfolder}/{mask.filename}" if mask.subfolder else mask.filename
        ref = name if mask.folder_type == "input" else f"{name} [{mask.folder_type}]"
        if form != "luminance":
            return ref
        data, _mime = await self.image_file(owner_id, mask.id)
        try:
            repaint, size, _painted = await asyncio.to_thread(read_mask, data, None)
        except (OSError, SyntaxError, ValueError) as exc:
            raise StudioError("validation_error", "The mask file cannot be read as a PNG mask") from exc
        grey = await asyncio.to_thread(mask_png, repaint, size, "luminance")
        info = inspect_image(grey, max_pixels=self.config.max_image_pixels)
        stored = await self.comfy.upload_image(
            grey, f"studio_mask_{info.sha256[:20]}_l.png", subfolder="studio", owner_id=owner_id
        )
        sub = stored.get("subfolder", "")
        return f"{sub}/{stored['name']}" if sub else stored["name"]

    async def image_row(self, owner_id: int, image_id: str) -> Image:
        async with self.store.transaction(owner_id) as session:
            image = await repo.image(session, image_id)
        if image is None or image.owner_id != owner_id:
            raise not_found("Image")
        return image

    async def image_file(self, owner_id: int, image_id: str) -> tuple[bytes, str]:
        return await self.row_file(owner_id, await self.image_row(owner_id, image_id))

    async def row_file(self, owner_id: int, image: Image) -> tuple[bytes, str]:
        """The file of an image row already read (and checked as ``owner_id``'s)."""
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
