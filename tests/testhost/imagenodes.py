"""Pillow-only implementations of the model-free core nodes the stand-in workflows use.

ComfyUI passes float tensors around; here an IMAGE is a list of RGB PIL images (the batch) and a MASK a
list of "L" images (0 = keep, 255 = masked). Pixel maths is approximate: the studio only needs real
files with the right names, sizes and metadata, never bit-exact pixels.
"""

from __future__ import annotations

import json
import os
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageChops, ImageFilter, ImageOps
from PIL.PngImagePlugin import PngInfo

Images = list[Image.Image]
Masks = list[Image.Image]

# Map ComfyUI's upscale_method names onto Pillow resampling filters.
_RESAMPLE = {
    "nearest-exact": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "area": Image.Resampling.BOX,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


@dataclass
class NodeContext:
    """What a running node may use: folders, hidden inputs and the progress hook."""

    node_id: str
    class_type: str
    input_dir: Path
    output_dir: Path
    temp_dir: Path
    prompt: dict[str, Any] | None
    extra_pnginfo: dict[str, Any] | None
    report_progress: Callable[[int, int, tuple[str, Image.Image, int | None] | None], None]
    sleep: Callable[[float], None]
    state: dict[str, Any] = field(default_factory=dict)  # per (node id, class) object state, like caches.objects


NodeResult = tuple[Any, ...] | dict[str, Any]


def _color(value: int) -> tuple[int, int, int]:
    return ((value >> 16) & 0xFF, (value >> 8) & 0xFF, value & 0xFF)


def empty_image(ctx: NodeContext, width: int, height: int, batch_size: int = 1, color: int = 0) -> NodeResult:
    return ([Image.new("RGB", (width, height), _color(color)) for _ in range(batch_size)],)


def image_blur(ctx: NodeContext, image: Images, blur_radius: int, sigma: float) -> NodeResult:
    # ComfyUI convolves a (2r+1) Gaussian kernel of the given sigma; Pillow's radius is the sigma.
    return ([im.filter(ImageFilter.GaussianBlur(radius=min(sigma, blur_radius))) for im in image],)


def image_scale_by(ctx: NodeContext, image: Images, upscale_method: str, scale_by: float) -> NodeResult:
    out = []
    for im in image:
        size = (max(1, round(im.width * scale_by)), max(1, round(im.height * scale_by)))
        out.append(im.resize(size, _RESAMPLE[upscale_method]))
    return (out,)


def image_sharpen(ctx: NodeContext, image: Images, sharpen_radius: int, sigma: float, alpha: float) -> NodeResult:
    flt = ImageFilter.UnsharpMask(radius=sharpen_radius, percent=int(alpha * 100), threshold=0)
    return ([im.filter(flt) for im in image],)


def image_invert(ctx: NodeContext, image: Images) -> NodeResult:
    return ([ImageOps.invert(im) for im in image],)


def _feather_profile(length: int, near_pad: bool, far_pad: bool, feathering: int) -> list[int]:
    """Mask values along one axis of the original image: ((f - d) / f)^2 near padded edges."""
    values = []
    for i in range(length):
        dists = []
        if near_pad:
            dists.append(i)
        if far_pad:
            dists.append(length - 1 - i)
        d = min(dists) if dists else feathering
        v = ((feathering - d) / feathering) ** 2 if feathering > 0 and d < feathering else 0.0
        values.append(round(v * 255))
    return values


def image_pad_for_outpaint(
    ctx: NodeContext, image: Images, left: int, top: int, right: int, bottom: int, feathering: int
) -> NodeResult:
    images, masks = [], []
    for im in image:
        w, h = im.size
        canvas = Image.new("RGB", (w + left + right, h + top + bottom), (128, 128, 128))
        canvas.paste(im, (left, top))
        mask = Image.new("L", canvas.size, 255)
        inner = Image.new("L", (w, h), 0)
        if feathering > 0:
            # min distance to a padded edge = max of the per-axis profiles, since the profile decreases
            cols = Image.new("L", (w, 1))
            cols.putdata(_feather_profile(w, left > 0, right > 0, feathering))
            rows = Image.new("L", (1, h))
            rows.putdata(_feather_profile(h, top > 0, bottom > 0, feathering))
            nearest = Image.Resampling.NEAREST
            inner = ImageChops.lighter(cols.resize((w, h), nearest), rows.resize((w, h), nearest))
        mask.paste(inner, (left, top))
        images.append(canvas)
        masks.append(mask)
    return (images, masks)


def solid_mask(ctx: NodeContext, value: float, width: int, height: int) -> NodeResult:
    return ([Image.new("L", (width, height), round(value * 255))],)


def image_composite_masked(
    ctx: NodeContext,
    destination: Images,
    source: Images,
    x: int,
    y: int,
    resize_source: bool,
    mask: Masks | None = None,
) -> NodeResult:
    out = []
    for i, dest in enumerate(destination):
        dest = dest.copy()
        src = source[min(i, len(source) - 1)]
        if resize_source:
            src = src.resize(dest.size, Image.Resampling.BILINEAR)
        if mask is None:
            m = Image.new("L", src.size, 255)
        else:
            # ComfyUI resizes the mask to the source's size before compositing
            m = mask[min(i, len(mask) - 1)].resize(src.size, Image.Resampling.BILINEAR)
        dest.paste(src, (x, y), m)
        out.append(dest)
    return (out,)


def load_image(ctx: NodeContext, image: str) -> NodeResult:
    path = annotated_path(image, ctx.input_dir, ctx)
    with Image.open(path) as src:
        frame = ImageOps.exif_transpose(src) or src
        rgb = frame.convert("RGB")
        if "A" in frame.getbands():
            # MASK is 1 - alpha: transparent pixels are the ones to repaint
            mask = ImageOps.invert(frame.getchannel("A"))
        else:
            mask = Image.new("L", (64, 64), 0)
    return ([rgb], [mask])


def annotated_path(name: str, default_dir: Path, ctx: NodeContext) -> Path:
    """Resolve ComfyUI's `name [output]` / `[input]` / `[temp]` annotations."""
    dirs = {"[output]": ctx.output_dir, "[input]": ctx.input_dir, "[temp]": ctx.temp_dir}
    for suffix, folder in dirs.items():
        if name.endswith(suffix):
            return folder / name[: -len(suffix)].strip()
    return default_dir / name


_DATE_VARS = {"year": "%Y", "month": "%m", "day": "%d", "hour": "%H", "minute": "%M", "second": "%S"}


def save_image_path(prefix: str, output_dir: Path, width: int, height: int) -> tuple[Path, str, int, str]:
    """Folder, base name, next counter and subfolder, with ComfyUI's counter rule (max existing + 1)."""
    prefix = prefix.replace("%width%", str(width)).replace("%height%", str(height))
    now = time.localtime()
    for var, fmt in _DATE_VARS.items():
        prefix = prefix.replace(f"%{var}%", time.strftime(fmt, now))
    norm = os.path.normpath(prefix)
    subfolder = os.path.dirname(norm)
    filename = os.path.basename(norm)
    root = os.path.abspath(output_dir)
    folder = os.path.abspath(os.path.join(root, subfolder))
    if os.path.commonpath((root, folder)) != root:
        raise Exception(
            "Saving image outside the output folder is not allowed."
            f"\n full_output_folder: {folder}\n         output_dir: {root}"
        )
    pattern = re.compile(re.escape(filename) + r"_(\d+)_")
    try:
        counters = [int(m.group(1)) for f in os.listdir(folder) if (m := pattern.match(f))]
    except FileNotFoundError:
        os.makedirs(folder, exist_ok=True)
        counters = []
    return Path(folder), filename, (max(counters) + 1 if counters else 1), subfolder


def _save(ctx: NodeContext, images: Images, prefix: str, folder: Path, kind: str, level: int) -> NodeResult:
    target, filename, counter, subfolder = save_image_path(prefix, folder, images[0].width, images[0].height)
    results = []
    for batch_number, im in enumerate(images):
        name = f"{filename.replace('%batch_num%', str(batch_number))}_{counter:05}_.png"
        info = PngInfo()
        if ctx.prompt is not None:
            info.add_text("prompt", json.dumps(ctx.prompt))
        for key, value in (ctx.extra_pnginfo or {}).items():
            info.add_text(key, json.dumps(value))
        im.save(target / name, pnginfo=info, compress_level=level)
        results.append({"filename": name, "subfolder": subfolder, "type": kind})
        counter += 1
    return {"ui": {"images": results}, "result": ()}


def save_image(ctx: NodeContext, images: Images, filename_prefix: str = "ComfyUI") -> NodeResult:
    return _save(ctx, images, filename_prefix, ctx.output_dir, "output", 4)


def preview_image(ctx: NodeContext, images: Images) -> NodeResult:
    # PreviewImage draws its random suffix once per node object, which survives between prompts
    suffix = ctx.state.setdefault(
        "prefix_append", "_temp_" + "".join(random.choices("abcdefghijklmnopqrstupvxyz", k=5))
    )  # noqa: S311
    return _save(ctx, images, "ComfyUI" + suffix, ctx.temp_dir, "temp", 1)


PREVIEW_MAX_SIZE = 64  # what the recorded probe node asked for (traces: 703-byte JPEG frames)


def studio_test_progress(ctx: NodeContext, image: Images, steps: int, delay: float, fail: bool = False) -> NodeResult:
    """Test-only node: one progress step per `delay` seconds, each with a small JPEG preview."""
    preview = image[0].copy()
    for step in range(1, steps + 1):
        ctx.sleep(delay)
        ctx.report_progress(step, steps, ("JPEG", preview, PREVIEW_MAX_SIZE))
    if fail:
        raise RuntimeError(f"{ctx.class_type} asked to fail")
    return (image,)


def studio_test_fail(ctx: NodeContext, image: Images, message: str = "StudioTestFail asked to fail") -> NodeResult:
    raise RuntimeError(message)


IMPLEMENTATIONS: dict[str, Callable[..., NodeResult]] = {
    "EmptyImage": empty_image,
    "ImageBlur": image_blur,
    "ImageScaleBy": image_scale_by,
    "ImageSharpen": image_sharpen,
    "ImageInvert": image_invert,
    "ImagePadForOutpaint": image_pad_for_outpaint,
    "SolidMask": solid_mask,
    "ImageCompositeMasked": image_composite_masked,
    "LoadImage": load_image,
    "SaveImage": save_image,
    "PreviewImage": preview_image,
    "StudioTestProgress": studio_test_progress,
    "StudioProbeProgress": studio_test_progress,  # the node the traces were recorded with
    "StudioTestFail": studio_test_fail,
}
