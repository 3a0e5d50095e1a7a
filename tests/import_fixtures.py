"""A ComfyUI output folder as months of use leave it: metadata of every kind, nested folders, damage, links."""

from __future__ import annotations

import io
import json
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from PIL.PngImagePlugin import PngInfo


def comfy_graph(n: int) -> dict:
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sdxl/juggernaut_v9.safetensors"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 832, "height": 1216, "batch_size": 1}},
        "6": {
            "class_type": "CLIPTextEncode",
            "inputs": {"text": f"lighthouse{n} on a cliff at dusk", "clip": ["4", 1]},
        },
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry, low quality", "clip": ["4", 1]}},
        "3": {
            "class_type": "KSampler",
            "inputs": {
                "seed": 1000 + n,
                "steps": 28,
                "cfg": 6.5,
                "sampler_name": "dpmpp_2m",
                "scheduler": "karras",
                "denoise": 1.0,
                "model": ["4", 0],
                "positive": ["6", 0],
                "negative": ["7", 0],
                "latent_image": ["5", 0],
            },
        },
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
    }


UI_WORKFLOW = {"last_node_id": 9, "last_link_id": 9, "nodes": [], "links": [], "version": 0.4}

A1111 = (
    "portrait of a fox{n} wearing a scarf, <lora:add_detail:0.7>\n"
    "Negative prompt: ugly, deformed\n"
    "Steps: 30, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 42{n}, Size: 512x768, Model hash: abc123, "
    'Model: realisticVision, Lora hashes: "add_detail: 7c6bad76eb", Version: v1.9.4'
)


def _png(color: tuple[int, int, int], info: PngInfo | None = None, size: tuple[int, int] = (48, 32)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG", pnginfo=info)
    return out.getvalue()


def _chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def _with_chunk(png: bytes, chunk: bytes) -> bytes:
    # right after IHDR (8 signature + 25 IHDR bytes)
    return png[:33] + chunk + png[33:]


def comfy_webp(n: int) -> bytes:
    img = Image.new("RGB", (40, 40), (10 * n % 255, 90, 160))
    exif = img.getexif()
    exif[0x0110] = "prompt:" + json.dumps(comfy_graph(n))  # as SaveAnimatedWEBP writes it
    exif[0x010F] = "workflow:" + json.dumps(UI_WORKFLOW)
    out = io.BytesIO()
    img.save(out, "WEBP", exif=exif, lossless=True)
    return out.getvalue()


@dataclass
class Folder:
    root: Path
    comfy: list[str] = field(default_factory=list)  # relative paths with a ComfyUI prompt graph
    a1111: list[str] = field(default_factory=list)
    plain: list[str] = field(default_factory=list)  # imported without metadata
    skipped: dict[str, int] = field(default_factory=dict)  # reason → files
    metadata_ignored: int = 0

    @property
    def importable(self) -> int:
        return len(self.comfy) + len(self.a1111) + len(self.plain)


def build_output_folder(root: Path, outside: Path, scale: int = 1) -> Folder:
    """Dozens of files (``scale`` multiplies the healthy ones): ComfyUI PNG/WebP, A1111, plain, damaged, links."""
    folder = Folder(root)
    root.mkdir(parents=True, exist_ok=True)
    outside.mkdir(parents=True, exist_ok=True)

    def write(rel: str, data: bytes) -> Path:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    def skip(reason: str) -> None:
        folder.skipped[reason] = folder.skipped.get(reason, 0) + 1

    for n in range(12 * scale):
        info = PngInfo()
        info.add_text("prompt", json.dumps(comfy_graph(n)))
        info.add_text("workflow", json.dumps(UI_WORKFLOW))
        rel = ["", "2025-06-01/", "portraits/night/"][n % 3] + f"ComfyUI_{n:05d}_.png"
        path = write(rel, _png((n * 20 % 255, 40, 90), info))
        os.utime(path, (1_700_000_000 + n * 3600, 1_700_000_000 + n * 3600))
        folder.comfy.append(rel)
    for n in range(4 * scale):
        rel = f"webp/ComfyUI_{n:05d}_.webp"
        write(rel, comfy_webp(n))
        folder.comfy.append(rel)
    for n in range(6 * scale):
        info = PngInfo()
        info.add_itxt("parameters", A1111.replace("{n}", str(n)))
        rel = f"a1111/{n:05d}-42.png"
        write(rel, _png((200, n * 30 % 255, 10), info))
        folder.a1111.append(rel)
    for n in range(5 * scale):
        rel = f"plain/img_{n}.png"
        write(rel, _png((n * 40 % 255, 200, 200)))
        folder.plain.append(rel)
    plain_webp = io.BytesIO()
    Image.new("RGB", (16, 16), "teal").save(plain_webp, "WEBP")
    write("plain/tile.webp", plain_webp.getvalue())
    folder.plain.append("plain/tile.webp")
    write("odd names/café ☕ (1).png", _png((1, 2, 3)))
    folder.plain.append("odd names/café ☕ (1).png")

    # metadata that is hostile or oversized: the image is kept, its metadata ignored
    deep = "[" * 100_000 + "]" * 100_000
    hostile = PngInfo()
    hostile.add_text("prompt", deep)
    write("hostile/deep.png", _png((9, 9, 9), hostile))
    not_a_graph = PngInfo()
    not_a_graph.add_text("prompt", json.dumps({"1": {"inputs": "nope"}, "2": [1e308, -1e308]}))
    write("hostile/not_a_graph.png", _png((9, 9, 8), not_a_graph))
    huge_number = PngInfo()
    huge_number.add_text("prompt", '{"1": {"class_type": "X", "inputs": {"seed": ' + "9" * 50_000 + "}}}")
    write("hostile/huge_number.png", _png((9, 9, 7), huge_number))
    bomb = zlib.compress(b"a" * (40 * 1024 * 1024), 9)  # a zTXt that inflates to 40 MiB
    write("hostile/ztxt_bomb.png", _with_chunk(_png((9, 8, 9)), _chunk(b"zTXt", b"prompt\0\0" + bomb)))
    folder.plain += ["hostile/deep.png", "hostile/not_a_graph.png", "hostile/huge_number.png", "hostile/ztxt_bomb.png"]
    folder.metadata_ignored = 4

    # damaged files: skipped, counted
    good = _png((5, 5, 5))
    write("broken/truncated.png", good[: len(good) // 2])
    skip("corrupt_truncated")
    bad_crc = bytearray(good)
    bad_crc[good.index(b"IDAT") + 6] ^= 0xFF  # a flipped bit inside the pixel data
    write("broken/bad_crc.png", bytes(bad_crc))
    skip("corrupt_bad_crc")
    write("broken/not_really.png", b"GIF89a" + os.urandom(200))
    skip("not_an_image")
    write("broken/empty.png", b"")
    skip("empty")
    write("broken/riff.webp", b"RIFF\x20\x00\x00\x00WEBPVP8 \xff\x00\x00\x00" + b"\0" * 12)
    skip("corrupt_truncated")
    # decodable header, damaged pixel data (valid CRCs): the thumbnail fails
    idat_bad = _with_chunk(good[:33], _chunk(b"IDAT", b"\x78\x9c garbage")) + _chunk(b"IEND", b"")
    write("broken/bad_pixels.png", idat_bad)
    skip("corrupt_pixels")
    write("notes.txt", b"not an image, ignored")
    write("nested/deeper/workflow.json", b"{}")

    # links: inside counts once more (ComfyUI would serve it), outside and broken are refused
    (outside / "secret.png").write_bytes(_png((255, 0, 0)))
    (root / "link_outside.png").symlink_to(outside / "secret.png")
    skip("outside_folder")
    (root / "linked_dir").symlink_to(outside, target_is_directory=True)  # not entered
    (root / "dangling.png").symlink_to(root / "nowhere.png")
    skip("broken_link")
    (root / "plain" / "alias.png").symlink_to(root / "plain" / "img_0.png")
    folder.plain.append("plain/alias.png")
    # names ComfyUI's /view cannot serve
    (root / "bad\nname.png").write_bytes(_png((7, 7, 7)))
    skip("bad_name")
    os.close(os.open(os.fsencode(root) + b"/latin1_\xff.png", os.O_CREAT | os.O_WRONLY, 0o644))
    skip("bad_name")
    return folder
