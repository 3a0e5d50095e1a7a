"""Generation metadata inside image files: read (PNG text chunks, WebP EXIF/XMP), summarised, and written.

Everything here reads untrusted bytes. Each reader is bounded (chunk sizes, decompressed sizes, JSON depth and
node counts) and reports a bad file as ``MetadataError`` with a short reason, never anything else.
Formats: PNG chunks per the PNG spec (ISO 15948, §11.3.4 tEXt/zTXt/iTXt); ComfyUI's SaveImage writes
``prompt`` (API graph) and ``workflow`` (UI graph) as tEXt; its WebP savers put ``prompt:{json}`` in EXIF
tag 0x0110 and ``workflow:{json}`` in 0x010F (then 0x010E, … for further keys); A1111 writes ``parameters``
(PNG tEXt/iTXt, or the EXIF UserComment of a JPEG/WebP).
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_CHUNK_BYTES = 8 * 1024 * 1024  # one text chunk (a large workflow is ~1 MB)
MAX_TEXT_BYTES = 16 * 1024 * 1024  # all text of one file, decompressed
MAX_GRAPH_NODES = 10_000
MAX_JSON_DEPTH = 64
MAX_PROMPT_CHARS = 20_000  # as the prompt bar accepts


class MetadataError(ValueError):
    """A file whose structure is not what it claims; ``reason`` is a short snake_case word for counting."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# -- PNG -------------------------------------------------------------------------------------------------------


def _chunks(data: bytes) -> list[tuple[str, int, int]]:
    """(type, data start, data end) of each chunk up to IEND; the structure and CRCs are checked."""
    if not data.startswith(PNG_SIGNATURE):
        raise MetadataError("not_png")
    out: list[tuple[str, int, int]] = []
    pos = len(PNG_SIGNATURE)
    while True:
        if pos + 12 > len(data):
            raise MetadataError("truncated")
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        start, end = pos + 8, pos + 8 + length
        if length > 0x7FFFFFFF or end + 4 > len(data):
            raise MetadataError("truncated")
        if not ctype.isalpha():
            raise MetadataError("bad_chunk")
        (crc,) = struct.unpack(">I", data[end : end + 4])
        if zlib.crc32(data[pos + 4 : end]) != crc:
            raise MetadataError("bad_crc")
        name = ctype.decode("ascii")
        if not out and name != "IHDR":
            raise MetadataError("bad_chunk")
        out.append((name, start, end))
        pos = end + 4
        if name == "IEND":
            return out


def _inflate(raw: bytes, budget: int) -> bytes:
    inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(raw, budget + 1)
    except zlib.error as exc:
        raise MetadataError("bad_compressed_text") from exc
    if len(text) > budget or inflater.unconsumed_tail:
        raise MetadataError("text_too_large")
    return text


def _walk(data: bytes) -> Iterator[tuple[str, int, int]]:
    """(type, data start, data end) of each chunk up to IEND, unchecked: a truncated chunk ends with the file."""
    pos = len(PNG_SIGNATURE)
    while pos + 8 <= len(data):
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        start = pos + 8
        pos += 12 + length
        if ctype == b"IEND":
            return
        yield ctype.decode("latin-1"), start, min(start + length, len(data))


def _strict_entry(ctype: str, body: bytes, budget: int) -> tuple[str, bytes, str]:
    """Keyword, raw text and text of a text chunk per the spec; anything else is MetadataError."""
    key_end = body.find(b"\0")
    if key_end < 1 or key_end > 79:
        raise MetadataError("bad_text_chunk")
    keyword = body[:key_end].decode("latin-1")
    rest = body[key_end + 1 :]
    if ctype == "tEXt":
        return keyword, rest, rest.decode("latin-1")
    if ctype == "zTXt":
        if not rest or rest[0] != 0:
            raise MetadataError("bad_text_chunk")
        raw = _inflate(rest[1:], budget)
        return keyword, raw, raw.decode("latin-1")
    if len(rest) < 2:
        raise MetadataError("bad_text_chunk")
    compressed, method = rest[0], rest[1]
    lang_end = rest.find(b"\0", 2)
    trans_end = rest.find(b"\0", lang_end + 1) if lang_end >= 0 else -1
    if trans_end < 0 or compressed not in (0, 1) or method != 0:
        raise MetadataError("bad_text_chunk")
    raw = rest[trans_end + 1 :]
    if compressed:
        raw = _inflate(raw, budget)
    return keyword, raw, raw.decode("utf-8", "replace")


def _lenient_entry(ctype: str, body: bytes, budget: int) -> tuple[bytes, str] | None:
    """Raw text and text of a text chunk read as far as it goes; None: it cannot be read (skipped)."""
    try:
        if ctype == "tEXt":
            raw = body
        elif ctype == "zTXt":
            raw = _inflate(body[1:], budget)
        else:
            compressed, rest = body[0], body[2:]
            _lang, _, rest = rest.partition(b"\0")
            _translated, _, text = rest.partition(b"\0")
            raw = _inflate(text, budget) if compressed else text
        return raw, raw.decode("utf-8" if ctype == "iTXt" else "latin-1")
    except MetadataError as exc:
        if exc.reason == "text_too_large":
            raise
        return None  # bad compressed data
    except (IndexError, UnicodeDecodeError):
        return None


def png_text(
    data: bytes, *, strict: bool = True, keys: Collection[str] | None = None, limit: int = MAX_TEXT_BYTES
) -> dict[str, str]:
    """The text chunks of a PNG (tEXt, zTXt, iTXt) by keyword (``keys``: only those).

    strict (the import, which must not take a damaged file for an image): the structure and CRCs are checked,
    a malformed text chunk or one past MAX_CHUNK_BYTES is MetadataError, the first of a repeated keyword wins.
    Lenient (``strict=False``: a file dropped on the editor, read as ComfyUI reads it): chunks are walked
    unchecked, one that cannot be read is skipped, the last of a repeated keyword wins, and only the chunks
    named in ``keys`` are inflated. Either way text past ``limit`` in all (inflated) is
    MetadataError("text_too_large"), and nothing is ever inflated past it.
    """
    if not data.startswith(PNG_SIGNATURE):
        raise MetadataError("not_png")
    texts: dict[str, str] = {}
    used = 0
    for ctype, start, end in _chunks(data) if strict else _walk(data):
        if ctype not in ("tEXt", "zTXt", "iTXt"):
            continue
        if strict:
            if end - start > MAX_CHUNK_BYTES:
                raise MetadataError("text_too_large")
            keyword, raw, text = _strict_entry(ctype, data[start:end], limit - used)
        else:
            key_raw, _, rest = data[start:end].partition(b"\0")
            keyword = key_raw.decode("latin-1")
            if keys is not None and keyword not in keys:
                continue
            entry = _lenient_entry(ctype, rest, limit - used)
            if entry is None:
                continue
            raw, text = entry
        used += len(raw)
        if used > limit:
            raise MetadataError("text_too_large")
        if keys is not None and keyword not in keys:
            continue
        if strict:
            texts.setdefault(keyword, text)
        else:
            texts[keyword] = text
    return texts


def png_size(data: bytes) -> tuple[int, int]:
    chunks = _chunks(data)
    name, start, end = chunks[0]
    if end - start != 13:
        raise MetadataError("bad_chunk")
    width, height = struct.unpack(">II", data[start : start + 8])
    if not (0 < width < 1 << 31 and 0 < height < 1 << 31):
        raise MetadataError("bad_size")
    return width, height


def _chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def with_png_text(data: bytes, keyword: str, text: str) -> bytes:
    """The same PNG with an iTXt ``keyword`` chunk right after IHDR (an older one of that keyword dropped).

    Every other chunk is copied byte for byte: the pixels are not decoded or re-encoded.
    """
    if not 1 <= len(keyword) <= 79:
        raise ValueError("a PNG keyword has 1 to 79 characters")
    chunks = _chunks(data)
    out = [data[: chunks[0][2] + 4]]  # signature and IHDR
    # tEXt when Latin-1 is enough (every reader has it), iTXt for anything else.
    try:
        out.append(_chunk(b"tEXt", keyword.encode("latin-1") + b"\0" + text.encode("latin-1")))
    except UnicodeEncodeError:
        out.append(_chunk(b"iTXt", keyword.encode("latin-1") + b"\0\0\0\0\0" + text.encode("utf-8")))
    for ctype, start, end in chunks[1:]:
        if ctype in ("tEXt", "zTXt", "iTXt") and data[start : start + len(keyword) + 1] == keyword.encode() + b"\0":
            continue
        out.append(data[start - 8 : end + 4])
    return b"".join(out)


def without_text(data: bytes) -> bytes:
    """The PNG without its text chunks: what a decoder needs for the pixels (Pillow refuses some huge texts)."""
    chunks = _chunks(data)
    if not any(ctype in ("tEXt", "zTXt", "iTXt") for ctype, _s, _e in chunks):
        return data
    kept = [data[start - 8 : end + 4] for ctype, start, end in chunks if ctype not in ("tEXt", "zTXt", "iTXt")]
    return PNG_SIGNATURE + b"".join(kept)


# -- WebP (RIFF) and EXIF ----------------------------------------------------------------------------------------


def webp_chunks(data: bytes) -> dict[str, bytes]:
    """The first chunk of each kind in a WebP (``VP8X``, ``EXIF``, ``XMP ``, …)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise MetadataError("not_webp")
    (riff_size,) = struct.unpack("<I", data[4:8])
    end = min(len(data), 8 + riff_size)
    out: dict[str, bytes] = {}
    pos = 12
    while pos + 8 <= end:
        ctype = data[pos : pos + 4]
        (size,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        if pos + 8 + size > end:
            raise MetadataError("truncated")
        if not all(32 <= b < 127 for b in ctype):
            raise MetadataError("bad_chunk")
        out.setdefault(ctype.decode("ascii"), data[pos + 8 : pos + 8 + size])
        pos += 8 + size + (size & 1)
    if not out:
        raise MetadataError("truncated")
    return out


def webp_size(chunks: dict[str, bytes]) -> tuple[int, int] | None:
    if (vp8x := chunks.get("VP8X")) is not None and len(vp8x) >= 10:
        return 1 + int.from_bytes(vp8x[4:7], "little"), 1 + int.from_bytes(vp8x[7:10], "little")
    if (vp8 := chunks.get("VP8 ")) is not None and len(vp8) >= 10:
        w, h = struct.unpack("<HH", vp8[6:10])
        return w & 0x3FFF, h & 0x3FFF
    if (vp8l := chunks.get("VP8L")) is not None and len(vp8l) >= 5:
        bits = int.from_bytes(vp8l[1:5], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


_EXIF_IFD = 0x8769
_USER_COMMENT = 0x9286
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 7: 1, 9: 4, 10: 8}


def exif_strings(exif: bytes) -> dict[int, str]:
    """ASCII and UNDEFINED values of IFD0 and the EXIF sub-IFD, by tag (UserComment decoded by its prefix)."""
    if exif.startswith(b"Exif\0\0"):
        exif = exif[6:]
    if len(exif) < 8 or exif[:2] not in (b"II", b"MM"):
        raise MetadataError("bad_exif")
    order = "<" if exif[:2] == b"II" else ">"
    if struct.unpack(order + "H", exif[2:4])[0] != 42:
        raise MetadataError("bad_exif")
    out: dict[int, str] = {}
    seen: set[int] = set()
    todo = [struct.unpack(order + "I", exif[4:8])[0]]
    while todo:
        offset = todo.pop()
        if offset in seen or offset + 2 > len(exif) or len(seen) > 4:
            continue
        seen.add(offset)
        (count,) = struct.unpack(order + "H", exif[offset : offset + 2])
        for i in range(min(count, 512)):
            entry = offset + 2 + 12 * i
            if entry + 12 > len(exif):
                break
            tag, typ, n = struct.unpack(order + "HHI", exif[entry : entry + 8])
            if tag == _EXIF_IFD and typ == 4:
                todo.append(struct.unpack(order + "I", exif[entry + 8 : entry + 12])[0])
                continue
            if typ not in (2, 7):
                continue
            size = n * _TYPE_SIZES[typ]
            if size > MAX_CHUNK_BYTES:
                raise MetadataError("text_too_large")
            if size <= 4:
                raw = exif[entry + 8 : entry + 8 + size]
            else:
                (where,) = struct.unpack(order + "I", exif[entry + 8 : entry + 12])
                raw = exif[where : where + size]
            if tag == _USER_COMMENT:
                out[tag] = _user_comment(raw)
            else:
                out[tag] = raw.rstrip(b"\0").decode("utf-8", "replace")
    return out


def _user_comment(raw: bytes) -> str:
    head, body = raw[:8], raw[8:]
    if head == b"UNICODE\0":
        # piexif (A1111) writes UTF-16 big-endian; some tools little-endian
        be = body.decode("utf-16-be", "replace")
        le = body.decode("utf-16-le", "replace")
        return be if be.isprintable() or "\n" in be else le
    return body.rstrip(b"\0").decode("utf-8", "replace")


_XMP_FIELDS = re.compile(
    r"<(?:[\w-]+:)?(parameters|UserComment|prompt|workflow)\b[^>]*>(.*?)</(?:[\w-]+:)?\1>", re.S | re.I
)
_XMP_LI = re.compile(r"<rdf:li[^>]*>(.*?)</rdf:li>", re.S)


def _xml_unescape(text: str) -> str:
    for a, b in (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&apos;", "'"), ("&#10;", "\n"), ("&amp;", "&")):
        text = text.replace(a, b)
    return text


def xmp_texts(xmp: bytes) -> dict[str, str]:
    """``parameters``/``prompt``/``workflow`` (and UserComment as parameters) written as XMP elements."""
    text = xmp[:MAX_CHUNK_BYTES].decode("utf-8", "replace")
    out: dict[str, str] = {}
    for name, value in _XMP_FIELDS.findall(text):
        li = _XMP_LI.search(value)
        key = "parameters" if name.lower() == "usercomment" else name.lower()
        out.setdefault(key, _xml_unescape(li.group(1) if li else value).strip())
    return out


def webp_text(chunks: dict[str, bytes]) -> dict[str, str]:
    """ComfyUI's ``prompt``/``workflow`` (EXIF ``key:json`` values) and A1111's ``parameters`` of a WebP."""
    texts: dict[str, str] = {}
    if (exif := chunks.get("EXIF")) is not None:
        for tag, value in exif_strings(exif).items():
            key, sep, rest = value.partition(":")
            if sep and key in ("prompt", "workflow") or (sep and key.isidentifier() and rest.lstrip()[:1] == "{"):
                texts.setdefault(key, rest)
            elif tag == _USER_COMMENT and value.strip():
                texts.setdefault("parameters", value)
    if (xmp := chunks.get("XMP ")) is not None:
        for key, value in xmp_texts(xmp).items():
            texts.setdefault(key, value)
    return texts


# -- JSON from a chunk ------------------------------------------------------------------------------------------


def _depth_ok(value: object, limit: int) -> bool:
    stack: list[tuple[object, int]] = [(value, 0)]
    count = 0
    while stack:
        item, depth = stack.pop()
        count += 1
        if depth > limit or count > 2_000_000:
            return False
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return True


def load_json(text: str) -> object:
    """JSON from a chunk, refused when it is not JSON, too deep, or holds non-finite numbers."""
    if len(text) > MAX_CHUNK_BYTES:
        raise MetadataError("text_too_large")

    def no_constants(name: str) -> object:
        raise ValueError(name)

    try:
        value = json.loads(text, parse_constant=no_constants)
    except (ValueError, RecursionError) as exc:  # ValueError covers JSONDecodeError and huge integers
        raise MetadataError("bad_json") from exc
    if not _depth_ok(value, MAX_JSON_DEPTH):
        raise MetadataError("bad_json")
    return value


def api_graph(value: object) -> dict[str, dict[str, object]]:
    """An API-format graph: ``{node id: {"class_type": str, "inputs": {...}}}`` and nothing else."""
    if not isinstance(value, dict) or not value or len(value) > MAX_GRAPH_NODES:
        raise MetadataError("bad_graph")
    graph: dict[str, dict[str, object]] = {}
    for node_id, node in value.items():
        if not isinstance(node, dict) or not isinstance(node.get("class_type"), str):
            raise MetadataError("bad_graph")
        inputs = node.get("inputs", {})
        if not isinstance(inputs, dict):
            raise MetadataError("bad_graph")
        graph[str(node_id)[:64]] = node
    return graph


# -- what a graph or an A1111 text says ---------------------------------------------------------------------------


@dataclass
class Generation:
    """What a file says about how it was made; empty fields are unknown."""

    prompt: str = ""
    negative: str = ""
    parameters: dict[str, object] = field(default_factory=dict)


_SAMPLER_KEYS = ("seed", "noise_seed", "steps", "cfg", "sampler_name", "scheduler")
_TEXT_INPUTS = ("text", "text_g", "prompt", "string", "value", "text_l", "positive")
_MODEL_INPUTS = ("ckpt_name", "unet_name", "model_name")


def _link(value: object) -> str | None:
    if isinstance(value, list) and len(value) == 2 and isinstance(value[0], (str, int)) and isinstance(value[1], int):
        return str(value[0])
    return None


def _text_of(graph: dict[str, dict[str, object]], node_id: str | None, depth: int = 0) -> str:
    """The prompt text that reaches a conditioning input: the encoder's text, followed through links."""
    if node_id is None or depth > 12 or node_id not in graph:
        return ""
    inputs = graph[node_id].get("inputs") or {}
    assert isinstance(inputs, dict)
    for key in _TEXT_INPUTS:
        value = inputs.get(key)
        if isinstance(value, str):
            return value[:MAX_PROMPT_CHARS]
        if (src := _link(value)) is not None and (text := _text_of(graph, src, depth + 1)):
            return text
    # Conditioning combined, zeroed, area-set, …: the first linked input that leads to text.
    for key in ("conditioning", "conditioning_1", "conditioning_to", "positive", "negative"):
        if (src := _link(inputs.get(key))) is not None and (text := _text_of(graph, src, depth + 1)):
            return text
    return ""


def _number(value: object) -> int | float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and value != value:
        return None
    return value


def _find_upstream(graph: dict[str, dict[str, object]], start: str | None, keys: tuple[str, ...]) -> str | None:
    """The first string among ``keys`` in the nodes upstream of ``start`` (breadth first, bounded)."""
    queue: list[str | None] = [start]
    seen: set[str] = set()
    while queue and len(seen) < 200:
        node_id = queue.pop(0)
        if node_id is None or node_id in seen or node_id not in graph:
            continue
        seen.add(node_id)
        inputs = graph[node_id].get("inputs") or {}
        assert isinstance(inputs, dict)
        for key in keys:
            if isinstance(inputs.get(key), str):
                return str(inputs[key])[:255]
        queue.extend(_link(v) for v in inputs.values())
    return None


def from_graph(graph: dict[str, dict[str, object]]) -> Generation:
    """Prompt, negative and sampling parameters of an API graph, read from its first sampler."""
    gen = Generation()
    sampler_id = None
    for nid, node in graph.items():
        node_inputs = node.get("inputs")
        if isinstance(node_inputs, dict) and "steps" in node_inputs:
            sampler_id = nid
            break
    params = gen.parameters
    if sampler_id is not None:
        inputs = graph[sampler_id]["inputs"]
        assert isinstance(inputs, dict)
        for key in _SAMPLER_KEYS:
            value = inputs.get(key)
            name = "seed" if key == "noise_seed" else "sampler" if key == "sampler_name" else key
            if isinstance(value, str) and key in ("sampler_name", "scheduler"):
                params[name] = value[:64]
            elif (number := _number(value)) is not None:
                params.setdefault(name, number)
        gen.prompt = _text_of(graph, _link(inputs.get("positive")))
        gen.negative = _text_of(graph, _link(inputs.get("negative")))
        model = _find_upstream(graph, _link(inputs.get("model")), _MODEL_INPUTS)
        if model:
            params["model"] = model
        latent = _link(inputs.get("latent_image"))
        if latent in graph:
            linputs = graph[latent].get("inputs") or {}
            assert isinstance(linputs, dict)
            w, h = _number(linputs.get("width")), _number(linputs.get("height"))
            if w and h:
                params["width"], params["height"] = int(w), int(h)
    if not gen.prompt:
        # No sampler (an image-only graph) or no encoder on it: the first text encoder's text.
        for node in graph.values():
            inputs = node.get("inputs") or {}
            if "CLIPTextEncode" in str(node.get("class_type")) and isinstance(inputs, dict):
                if isinstance(inputs.get("text"), str):
                    gen.prompt = str(inputs["text"])[:MAX_PROMPT_CHARS]
                    break
    if "model" not in params:
        for node in graph.values():
            inputs = node.get("inputs")
            found = (
                [str(v)[:255] for k, v in inputs.items() if k in _MODEL_INPUTS and isinstance(v, str)]
                if isinstance(inputs, dict)
                else []
            )
            if found:
                params["model"] = found[0]
                break
    return gen


_A1111_FIELD = re.compile(r'\s*([\w ][\w \-/]*):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)')
_SETTINGS_LINE = re.compile(r"^\s*(Steps|Sampler|Schedule type|CFG scale|Seed|Size|Model): [^\n]*, ")
_A1111_KEYS = {
    "steps": "steps",
    "sampler": "sampler",
    "schedule type": "scheduler",
    "cfg scale": "cfg",
    "seed": "seed",
    "model": "model",
    "size": "size",
}


def from_a1111(text: str) -> Generation:
    """A1111's ``parameters``: prompt lines, ``Negative prompt: …``, then one ``Key: value, …`` line."""
    text = text[: MAX_PROMPT_CHARS * 4]
    lines = text.strip().split("\n")
    settings = ""
    if len(lines) > 1 and _SETTINGS_LINE.match(lines[-1]) or lines and lines[-1].startswith("Steps: "):
        settings = lines.pop()
    prompt_lines: list[str] = []
    negative_lines: list[str] = []
    target = prompt_lines
    for line in lines:
        if line.startswith("Negative prompt:"):
            target = negative_lines
            line = line[len("Negative prompt:") :].strip()
        target.append(line)
    gen = Generation("\n".join(prompt_lines).strip()[:MAX_PROMPT_CHARS], "\n".join(negative_lines).strip())
    for key, value in _A1111_FIELD.findall(settings):
        name = _A1111_KEYS.get(key.strip().lower())
        value = value.strip().strip('"')
        if name is None or not value:
            continue
        if name == "size":
            m = re.fullmatch(r"(\d{1,6})x(\d{1,6})", value)
            if m:
                gen.parameters["width"], gen.parameters["height"] = int(m.group(1)), int(m.group(2))
        elif name in ("steps", "seed"):
            if value.isdigit() and len(value) < 20:
                gen.parameters[name] = int(value)
        elif name == "cfg":
            try:
                number = float(value)
            except ValueError:
                continue
            if number == number and abs(number) < 1e6:
                gen.parameters[name] = number
        else:
            gen.parameters[name] = value[:255]
    return gen


def a1111_parameters(prompt: str, negative: str, parameters: dict[str, object]) -> str:
    """The A1111 ``parameters`` text (what Civitai and other tools read) of a prompt and its settings."""

    def clean(value: object) -> str:
        # a comma or newline inside a value would end the field early in every reader
        return str(value).replace("\n", " ").replace(",", " ").strip()

    lines = [prompt.strip()]
    if negative.strip():
        lines.append(f"Negative prompt: {negative.strip()}")
    fields: list[str] = []
    for label, key in (("Steps", "steps"), ("Sampler", "sampler"), ("Schedule type", "scheduler")):
        if parameters.get(key) not in (None, ""):
            fields.append(f"{label}: {clean(parameters[key])}")
    if parameters.get("cfg") is not None:
        fields.append(f"CFG scale: {clean(parameters['cfg'])}")
    if parameters.get("seed") is not None:
        fields.append(f"Seed: {clean(parameters['seed'])}")
    if parameters.get("width") and parameters.get("height"):
        fields.append(f"Size: {parameters['width']}x{parameters['height']}")
    if parameters.get("model"):
        model = str(parameters["model"]).rsplit("/", 1)[-1]
        fields.append(f"Model: {clean(model.rsplit('.', 1)[0] if '.' in model else model)}")
    if fields:
        lines.append(", ".join(fields))
    return "\n".join(lines)
