"""Folders and the file routes: /upload/image, /upload/mask, /view and app/user_manager.py's /userdata.

Security checks follow ComfyUI's own (commonpath containment, `..` refused in /view file names), so
the studio's tests see exactly what a real ComfyUI would serve from these folders, and no more.
"""

from __future__ import annotations

import glob
import hashlib
import json
import mimetypes
import os
import shutil
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib import parse

from aiohttp import web
from PIL import Image
from PIL.PngImagePlugin import PngInfo

DEFAULT_USER = "default"
SYSTEM_USER_PREFIX = "__"  # recent ComfyUI reserves these names for system folders like __studio
FORCE_DOWNLOAD_TYPES = {
    "text/html",
    "text/html-sandboxed",
    "application/xhtml+xml",
    "text/javascript",
    "text/css",
}


@dataclass(frozen=True)
class HostPaths:
    base_dir: Path
    input_dir: Path
    output_dir: Path
    temp_dir: Path
    user_dir: Path

    @classmethod
    def create(cls, base_dir: Path) -> HostPaths:
        base = Path(base_dir).resolve()
        paths = cls(base, base / "input", base / "output", base / "temp", base / "user")
        for folder in (paths.input_dir, paths.output_dir, paths.user_dir / DEFAULT_USER):
            folder.mkdir(parents=True, exist_ok=True)
        # main.py's cleanup_temp(): temp/ does not survive a restart
        shutil.rmtree(paths.temp_dir, ignore_errors=True)
        paths.temp_dir.mkdir(parents=True, exist_ok=True)
        return paths

    def directory_by_type(self, kind: str | None) -> Path | None:
        return {"input": self.input_dir, "output": self.output_dir, "temp": self.temp_dir}.get(kind or "")


PATHS_KEY = web.AppKey("testhost_paths", HostPaths)


def annotated_filepath(paths: HostPaths, name: str) -> tuple[str, Path | None]:
    for kind in ("output", "input", "temp"):
        suffix = f"[{kind}]"
        if name.endswith(suffix):
            return name[: -len(suffix)].strip(), paths.directory_by_type(kind)
    return name, None


def _within(root: str, path: str) -> bool:
    return os.path.commonpath((root, path)) == root


def _same_bytes(path: str, data: bytes) -> bool:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).digest() == hashlib.sha256(data).digest()


def _save_upload(paths: HostPaths, post: Any, save_mask_onto: dict[str, Any] | None = None) -> web.Response:
    image = post.get("image")
    kind = post.get("type")
    upload_dir = paths.directory_by_type(kind or "input")
    if upload_dir is None:
        # ComfyUI's get_dir_by_type leaves its variable unbound here: a 500
        raise RuntimeError(f"unknown upload type {kind!r}")
    if not isinstance(image, web.FileField):
        return web.Response(status=400)
    filename = image.filename
    if not filename:
        return web.Response(status=400)
    root = str(upload_dir)
    subfolder = post.get("subfolder", "")
    folder = os.path.join(root, os.path.normpath(subfolder))
    filepath = os.path.abspath(os.path.join(folder, filename))
    if not _within(root, filepath):
        return web.Response(status=400)
    os.makedirs(folder, exist_ok=True)
    data = image.file.read()

    duplicate = False
    if post.get("overwrite") not in ("true", "1"):
        stem, ext = os.path.splitext(filename)
        i = 1
        while os.path.exists(filepath):
            if _same_bytes(filepath, data):  # the same bytes again reuse the name (ComfyUI #3465)
                duplicate = True
                break
            filename = f"{stem} ({i}){ext}"
            filepath = os.path.join(folder, filename)
            i += 1

    if not duplicate:
        if save_mask_onto is not None:
            _apply_mask(paths, save_mask_onto, data, filepath)
        else:
            with open(filepath, "wb") as f:
                f.write(data)
    return web.json_response({"name": filename, "subfolder": subfolder, "type": kind or "input"})


def _apply_mask(paths: HostPaths, original_ref: dict[str, Any], mask_bytes: bytes, filepath: str) -> None:
    """/upload/mask: copy the uploaded mask's alpha onto the referenced original image."""
    filename, folder = annotated_filepath(paths, original_ref["filename"])
    if not filename or filename[0] == "/" or ".." in filename:
        return
    if folder is None:
        folder = paths.directory_by_type(original_ref.get("type", "output"))
    if folder is None:
        return
    root = str(folder)
    if original_ref.get("subfolder", ""):
        sub = os.path.abspath(os.path.join(root, original_ref["subfolder"]))
        if not _within(root, sub):
            return
        root = sub
    original = os.path.join(root, filename)
    if not os.path.isfile(original):
        return
    with Image.open(original) as src:
        info = PngInfo()
        for key, value in getattr(src, "text", {}).items():
            info.add_text(key, value)
        rgba = src.convert("RGBA")
    with Image.open(BytesIO(mask_bytes)) as mask:
        rgba.putalpha(mask.convert("RGBA").getchannel("A"))
    rgba.save(filepath, compress_level=4, pnginfo=info)


async def upload_image(request: web.Request) -> web.Response:
    paths: HostPaths = request.app[PATHS_KEY]
    return _save_upload(paths, await request.post())


async def upload_mask(request: web.Request) -> web.Response:
    paths: HostPaths = request.app[PATHS_KEY]
    post = await request.post()
    return _save_upload(paths, post, save_mask_onto=json.loads(post.get("original_ref")))


def _image_response(img: Image.Image, fmt: str, filename: str, **save: Any) -> web.Response:
    buffer = BytesIO()
    img.save(buffer, format=fmt.upper(), **save)
    return web.Response(
        body=buffer.getvalue(),
        content_type=f"image/{fmt}",
        headers={"Content-Disposition": f'filename="{filename}"'},
    )


async def view_image(request: web.Request) -> web.StreamResponse:
    paths: HostPaths = request.app[PATHS_KEY]
    query = request.rel_url.query
    if "filename" not in query:
        return web.Response(status=404)
    filename, folder = annotated_filepath(paths, query["filename"])
    if not filename:
        return web.Response(status=400)
    if filename[0] == "/" or ".." in filename:  # ComfyUI's traversal guard
        return web.Response(status=400)
    if folder is None:
        folder = paths.directory_by_type(query.get("type", "output"))
    if folder is None:
        return web.Response(status=400)
    root = str(folder)
    if "subfolder" in query:
        sub = os.path.join(root, query["subfolder"])
        if not _within(root, os.path.abspath(sub)):
            return web.Response(status=403)
        root = sub
    filename = os.path.basename(filename)
    file = os.path.join(root, filename)
    if not os.path.isfile(file):
        return web.Response(status=404)

    channel = query.get("channel", "rgba")
    if "preview" in query:
        info = query["preview"].split(";")
        fmt = info[0] if info[0] in ("webp", "jpeg") and "a" not in query.get("channel", "") else "webp"
        quality = int(info[-1]) if info[-1].isdigit() else 90
        with Image.open(file) as img:
            if fmt == "jpeg" or query.get("channel", "") == "rgb":
                img = img.convert("RGB")
            return _image_response(img, fmt, filename, quality=quality)
    if channel == "rgb":
        with Image.open(file) as img:
            return _image_response(img.convert("RGB"), "png", filename)
    if channel == "a":
        with Image.open(file) as img:
            alpha = img.getchannel("A") if img.mode == "RGBA" else Image.new("L", img.size, 255)
            out = Image.new("RGBA", img.size)
            out.putalpha(alpha)
            return _image_response(out, "png", filename)
    content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    if content_type in FORCE_DOWNLOAD_TYPES:
        content_type = "application/octet-stream"
    return web.FileResponse(
        file, headers={"Content-Disposition": f'filename="{filename}"', "Content-Type": content_type}
    )


# --- app/user_manager.py ---------------------------------------------------------------------------


def user_filepath(paths: HostPaths, request: web.Request, file: str | None, create_dir: bool = True) -> str | None:
    """Path inside user/<user>/ for `file`, or None when it would leave that folder."""
    user = DEFAULT_USER  # single-user mode: the comfy-user header is ignored, as without --multi-user
    if user.startswith(SYSTEM_USER_PREFIX):
        return None
    root_dir = str(paths.user_dir)
    user_root = os.path.abspath(os.path.join(root_dir, user))
    if not _within(root_dir, user_root):
        return None
    path = user_root
    if file is not None:
        if "%" in file:
            file = parse.unquote(file)
        path = os.path.abspath(os.path.join(user_root, file))
        if not _within(user_root, path):
            return None
    parent = os.path.split(path)[0]
    if create_dir and not os.path.exists(parent):
        os.makedirs(parent, exist_ok=True)
    return path


def _file_info(path: str, relative_to: str) -> dict[str, Any]:
    return {
        "path": os.path.relpath(path, relative_to).replace(os.sep, "/"),
        "size": os.path.getsize(path),
        "modified": os.path.getmtime(path),
        "created": os.path.getctime(path),
    }


async def list_userdata(request: web.Request) -> web.Response:
    paths: HostPaths = request.app[PATHS_KEY]
    directory = request.rel_url.query.get("dir", "")
    if not directory:
        return web.Response(status=400, text="Directory not provided")
    path = user_filepath(paths, request, directory)
    if not path:
        return web.Response(status=403, text="Invalid directory")
    if not os.path.exists(path):
        return web.Response(status=404, text="Directory not found")
    recurse = request.rel_url.query.get("recurse", "").lower() == "true"
    full_info = request.rel_url.query.get("full_info", "").lower() == "true"
    split = request.rel_url.query.get("split", "").lower() == "true"
    pattern = os.path.join(glob.escape(path), "**", "*") if recurse else os.path.join(glob.escape(path), "*")
    results: list[Any] = []
    for full in glob.glob(pattern, recursive=recurse):
        if not os.path.isfile(full):
            continue
        if full_info:
            results.append(_file_info(full, path))
            continue
        rel = os.path.relpath(full, path).replace(os.sep, "/")
        results.append([rel, *rel.split("/")] if split else rel)
    return web.json_response(results)


async def list_userdata_v2(request: web.Request) -> web.Response:
    paths: HostPaths = request.app[PATHS_KEY]
    rel = parse.unquote(request.rel_url.query.get("path", ""))
    base = user_filepath(paths, request, None, create_dir=False)
    target = user_filepath(paths, request, rel, create_dir=False) if rel else base
    if not target or not base:
        return web.Response(status=400, text="Invalid path requested")
    if not os.path.exists(target):
        if target == base:
            return web.json_response([])
        return web.Response(status=404, text="Requested path not found")
    if not os.path.isdir(target):
        return web.Response(status=400, text="Requested path is not a directory")
    results: list[dict[str, Any]] = []
    for root, dirs, files in os.walk(target):
        for name in dirs:
            p = os.path.join(root, name)
            results.append({"name": name, "path": os.path.relpath(p, base).replace(os.sep, "/"), "type": "directory"})
        for name in files:
            p = os.path.join(root, name)
            entry: dict[str, Any] = {
                "name": name,
                "path": os.path.relpath(p, base).replace(os.sep, "/"),
                "type": "file",
            }
            st = os.stat(p)
            entry.update(size=st.st_size, modified=st.st_mtime)
            results.append(entry)
    results.sort(key=lambda e: (e["type"] != "directory", e["name"].lower()))
    return web.json_response(results)


def _userdata_path(request: web.Request, check_exists: bool = False, param: str = "file") -> str | web.Response:
    paths: HostPaths = request.app[PATHS_KEY]
    file = request.match_info.get(param, None)
    if not file:
        return web.Response(status=400)
    path = user_filepath(paths, request, file)
    if not path:
        return web.Response(status=403)
    if check_exists and not os.path.exists(path):
        return web.Response(status=404)
    return path


async def get_userdata(request: web.Request) -> web.StreamResponse:
    path = _userdata_path(request, check_exists=True)
    if not isinstance(path, str):
        return path
    return web.FileResponse(path)


async def post_userdata(request: web.Request) -> web.Response:
    path = _userdata_path(request)
    if not isinstance(path, str):
        return path
    overwrite = request.query.get("overwrite", "true") != "false"
    full_info = request.query.get("full_info", "false").lower() == "true"
    if not overwrite and os.path.exists(path):
        return web.Response(status=409, text="File already exists")
    body = await request.read()
    try:
        with open(path, "wb") as f:
            f.write(body)
    except OSError:
        return web.Response(status=400, reason='Invalid filename. Please avoid special characters like :\\/*?"<>|')
    user_path = user_filepath(request.app[PATHS_KEY], request, None)
    assert user_path is not None
    resp = _file_info(path, user_path) if full_info else os.path.relpath(path, user_path)
    return web.json_response(resp)


async def delete_userdata(request: web.Request) -> web.Response:
    path = _userdata_path(request, check_exists=True)
    if not isinstance(path, str):
        return path
    os.remove(path)
    return web.Response(status=204)


async def move_userdata(request: web.Request) -> web.Response:
    source = _userdata_path(request, check_exists=True)
    if not isinstance(source, str):
        return source
    dest = _userdata_path(request, check_exists=False, param="dest")
    if not isinstance(dest, str):
        return dest
    overwrite = request.query.get("overwrite", "true") != "false"
    full_info = request.query.get("full_info", "false").lower() == "true"
    if not overwrite and os.path.exists(dest):
        return web.Response(status=409, text="File already exists")
    shutil.move(source, dest)
    user_path = user_filepath(request.app[PATHS_KEY], request, None)
    assert user_path is not None
    resp = _file_info(dest, user_path) if full_info else os.path.relpath(dest, user_path)
    return web.json_response(resp)


async def get_users(request: web.Request) -> web.Response:
    paths: HostPaths = request.app[PATHS_KEY]
    user_dir = user_filepath(paths, request, None, create_dir=False)
    return web.json_response({"storage": "server", "migrated": bool(user_dir and os.path.exists(user_dir))})


def add_user_routes(routes: web.RouteTableDef) -> None:
    routes.get("/users")(get_users)
    routes.get("/userdata")(list_userdata)
    routes.get("/v2/userdata")(list_userdata_v2)
    routes.get("/userdata/{file}")(get_userdata)
    routes.post("/userdata/{file}")(post_userdata)
    routes.delete("/userdata/{file}")(delete_userdata)
    routes.post("/userdata/{file}/move/{dest}")(move_userdata)
