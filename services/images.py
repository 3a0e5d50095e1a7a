"""Images: checking uploads before anything is decoded, registering outputs, WebP thumbnails."""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import struct
from dataclasses import dataclass
from pathlib import Path

from PIL import Image as PILImage

from ..engine.errors import StudioError

log = logging.getLogger("comfyui_studio.images")

THUMB_SIZE = 384

# Magic bytes of the formats the studio accepts; the extension a client sends is never trusted.
_FORMATS: tuple[tuple[str, str, str], ...] = (
    ("PNG", "image/png", ".png"),
    ("JPEG", "image/jpeg", ".jpg"),
    ("WEBP", "image/webp", ".webp"),
)


@dataclass(frozen=True)
class ImageInfo:
    format: str
    mime: str
    extension: str
    width: int
    height: int
    sha256: str
    size_bytes: int


def sniff_format(data: bytes) -> tuple[str, str, str] | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return _FORMATS[0]
    if data.startswith(b"\xff\xd8\xff"):
        return _FORMATS[1]
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _FORMATS[2]
    return None


def header_size(fmt: str, data: bytes) -> tuple[int, int] | None:
    """Width and height as the file's header declares them, read without decoding anything."""
    if fmt == "PNG":
        if len(data) >= 24 and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        return None
    if fmt == "WEBP":
        chunk = data[12:16]
        if chunk == b"VP8X" and len(data) >= 30:
            return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
        if chunk == b"VP8 " and len(data) >= 30:
            w, h = struct.unpack("<HH", data[26:30])
            return w & 0x3FFF, h & 0x3FFF
        if chunk == b"VP8L" and len(data) >= 25:
            bits = int.from_bytes(data[21:25], "little")
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        return None
    # JPEG: walk the markers to the first start-of-frame.
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker in _JPEG_SOF and pos + 9 <= len(data):
            h, w = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return w, h
        pos += 2 + length
    return None


_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def inspect_image(data: bytes, *, max_pixels: int) -> ImageInfo:
    """Check an upload: a real PNG/JPEG/WebP whose header-declared size is within max_pixels.

    The size is read from the header before any pixel is decoded; Pillow's own decompression-bomb
    guard stays as it is.
    """
    kind = sniff_format(data)
    if kind is None:
        raise StudioError("unsupported_media_type", "Only PNG, JPEG and WebP images are accepted")
    fmt, mime, ext = kind
    size = header_size(fmt, data)
    if size is None or size[0] <= 0 or size[1] <= 0:
        raise StudioError("unsupported_media_type", f"The file is not a readable {fmt} image")
    width, height = size
    if width * height > max_pixels:
        limit_mp = max_pixels / 1_000_000
        raise StudioError(
            "image_too_large", f"The image is {width}×{height} pixels; the limit is {limit_mp:.0f} megapixels"
        )
    try:
        with PILImage.open(io.BytesIO(data), formats=[fmt]) as img:
            if img.size != (width, height):
                raise StudioError("unsupported_media_type", f"The file is not a consistent {fmt} image")
            img.verify()
    except StudioError:
        raise
    except (OSError, SyntaxError, ValueError, PILImage.DecompressionBombError) as exc:
        raise StudioError("unsupported_media_type", f"The file is not a readable {fmt} image") from exc
    return ImageInfo(fmt, mime, ext, width, height, hashlib.sha256(data).hexdigest(), len(data))


def _make_thumb(data: bytes, target: Path) -> tuple[int, int]:
    with PILImage.open(io.BytesIO(data)) as img:
        size = img.size
        img.thumbnail((THUMB_SIZE, THUMB_SIZE))
        if img.mode not in ("RGB", "RGBA"):
            img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".part")
        img.save(tmp, "WEBP", quality=82, method=4)
        tmp.replace(target)
    return size


async def make_thumbnail(data: bytes, target: Path) -> tuple[int, int] | None:
    """Write a WebP thumbnail off the event loop; returns the source size, or None if it failed."""
    try:
        return await asyncio.to_thread(_make_thumb, data, target)
    except Exception:
        # A damaged output or a full disk costs the thumbnail, never the job record.
        log.exception("Could not make a thumbnail at %s", target.name)
        return None


# -- masks ------------------------------------------------------------------------------------------------


def _repaint_channel(img: PILImage.Image) -> PILImage.Image:
    """The amount to repaint per pixel (L, 255 = repaint) of a mask file in either of ComfyUI's forms.

    A file with an alpha channel that is not fully opaque is in ComfyUI's form (transparent repaints);
    any other is read by its brightness (white repaints). Black opaque pixels mean "keep" in both, so a
    mask the editor writes (black, transparent where painted) reads the same either way.
    """
    if "A" in img.getbands() or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        alpha = rgba.getchannel("A")
        if min(alpha.tobytes()) < 255:
            return alpha.point(lambda v: 255 - v)
        return rgba.convert("L")
    return img.convert("L")


def read_mask(data: bytes, formats: tuple[str, ...] | None = ("PNG",)) -> tuple[bytes, tuple[int, int], bool]:
    """A checked mask file → its repaint channel as raw L bytes, its size, and whether anything is painted."""
    with PILImage.open(io.BytesIO(data), formats=formats) as img:
        img.load()
        repaint = _repaint_channel(img)
        raw = repaint.tobytes()
        return raw, repaint.size, raw.count(0) < len(raw)


def mask_png(repaint: bytes, size: tuple[int, int], form: str) -> bytes:
    """The mask as the file a workflow reads: ``alpha`` (black, transparent where repainted) or ``luminance``."""
    channel = PILImage.frombytes("L", size, repaint)
    if form == "luminance":
        out_img = channel
    else:
        out_img = PILImage.new("RGBA", size, (0, 0, 0, 255))
        out_img.putalpha(channel.point(lambda v: 255 - v))
    out = io.BytesIO()
    out_img.save(out, "PNG", optimize=False, compress_level=6)
    return out.getvalue()
