"""Midjourney's prompt grammar over the shortcodes: permutations, multi-prompt weights, image weight, and
the names of this ComfyUI's own models, LoRAs, embeddings, samplers and schedulers.

Pure, like the parser: text and lists in, values, spans and RFC 6902 operations out; nothing raises on a
user's text. The planner (``engine/planner.py``) is the one caller that turns these into jobs.

* Permutations: ``a {red, green} bird`` is two prompts. A brace group whose top level has commas and no
  bars permutes; one with a bar (``{a|b}``) is ComfyUI's dynamic-prompt choice and stays in the text for
  its own processing after the expansion; ``{cat}`` stays as written. Groups nest, ``\\{`` is never a
  group, ``\\,`` is a literal comma inside an option. An unclosed ``{`` is text. An expansion is a list of
  spans of the typed text, so every offset in it maps back to what the user typed.
* Multi-prompts: ``cat:: dog::2`` → ``(cat:0.67), (dog:1.33)`` (ComfyUI's emphasis), weights divided by
  the mean of the positive ones; a negative weight sends its part to the negative prompt.
* Names: case-insensitive, by the whole name, without the extension, or the file name without its folder,
  exactly first and then as a prefix; an unknown name is an error listing the near misses.
"""

from __future__ import annotations

import bisect
import difflib
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from .jsoncodec import JSON
from .patches import PatchOp
from .selectors import Graph, GraphIndex

MAX_JOBS = 40  # Midjourney's cap on the jobs of one prompt (permutations × --repeat)

# ``--iw`` (image weight, 0–3) → img2img denoise: a higher weight keeps more of the image. 1 (the default
# weight) gives the img2img action's default strength, 0 ignores the image, 3 barely changes it.
IW_DENOISE: tuple[tuple[float, float], ...] = ((0.0, 1.0), (1.0, 0.6), (2.0, 0.35), (3.0, 0.15))
IW_DEFAULT = 1.0

# Text encoders that read ComfyUI's ``(text:weight)`` emphasis (CLIP tokenizers, T5 through the same parser).
EMPHASIS_ENCODERS = frozenset(
    {
        "CLIPTextEncode",
        "CLIPTextEncodeSDXL",
        "CLIPTextEncodeSDXLRefiner",
        "CLIPTextEncodeSD3",
        "CLIPTextEncodeFlux",
        "CLIPTextEncodeHunyuanDiT",
    }
)

CHECKPOINT_LOADERS = ("CheckpointLoaderSimple", "CheckpointLoader", "ImageOnlyCheckpointLoader")
MODEL_ONLY_LOADERS = ("UNETLoader", "UnetLoaderGGUF")
LORA_WEIGHT_MIN, LORA_WEIGHT_MAX = -10.0, 10.0

Span = tuple[int, int]


# --------------------------------------------------------------------------------------------------
# Permutations


@dataclass(slots=True)
class _Perm:
    options: list[list[_Piece]]
    span: Span  # the group's braces in the typed text, both included


_Piece = Span | _Perm


@dataclass(frozen=True, slots=True)
class Expansion:
    """One prompt a permutation makes: its text and, per character, the offset it came from."""

    text: str
    spans: tuple[Span, ...]  # the typed text's pieces this text is made of, in order
    _starts: tuple[int, ...] = field(default=(), repr=False)

    @classmethod
    def of(cls, source: str, spans: Sequence[Span]) -> Expansion:
        merged: list[Span] = []
        for s, e in spans:
            if s >= e:
                continue
            if merged and merged[-1][1] == s:
                merged[-1] = (merged[-1][0], e)
            else:
                merged.append((s, e))
        starts, at = [], 0
        for s, e in merged:
            starts.append(at)
            at += e - s
        return cls("".join(source[s:e] for s, e in merged), tuple(merged), tuple(starts))

    def origin(self, index: int) -> int:
        """The typed text's offset of this text's ``index`` (an end offset maps to the end of its piece)."""
        if not self.spans:
            return 0
        if index >= len(self.text):
            return self.spans[-1][1]
        i = bisect.bisect_right(self._starts, index) - 1
        return self.spans[i][0] + index - self._starts[i]

    def origin_end(self, index: int) -> int:
        return self.origin(index - 1) + 1 if index > 0 else self.origin(0)


@dataclass(frozen=True, slots=True)
class Permutations:
    expansions: list[Expansion]
    count: int  # how many the text makes (more than ``len(expansions)`` when over the cap: none are made)
    error: str | None = None
    groups: tuple[Span, ...] = ()  # the outermost permutation groups of the typed text

    def widen(self, start: int, end: int) -> tuple[int, int]:
        """A span of the typed text grown to whole groups where it starts or ends inside one (``--ar {1:1, 16:9}``
        rather than ``--ar {1:1``), so a code's highlight covers everything that varies."""
        for g_start, g_end in self.groups:
            if g_start < end <= g_end or g_start <= start < g_end:
                start, end = min(start, g_start), max(end, g_end)
        return start, end


def _parse_groups(text: str) -> list[_Piece]:
    """The text as literal spans and permutation groups; bars, single-option and unclosed groups stay text."""
    top: list[_Piece] = []
    # each open brace: (its offset, the parts so far, the part being read, separators seen)
    stack: list[tuple[int, list[list[_Piece]], list[_Piece], set[str]]] = []
    current = top
    lit = 0  # start of the literal run being read
    i, n = 0, len(text)

    def flush(upto: int) -> None:
        if upto > lit:
            current.append((lit, upto))

    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n:
            if text[i + 1] == "," and stack:
                flush(i)  # ``\,`` inside a group: the comma alone
                lit = i + 1
            i += 2
            continue
        if ch == "{":
            flush(i)
            stack.append((i, [], current, set()))
            current = []
            lit = i + 1
        elif stack and ch in ",|":
            flush(i)
            opened, parts, parent, seps = stack[-1]
            seps.add(ch)
            parts.append(current)
            # a bar group keeps its separators as text: remember where this one was
            parts.append([(i, i + 1)])
            current = []
            lit = i + 1
        elif stack and ch == "}":
            flush(i)
            opened, parts, parent, seps = stack.pop()
            parts.append(current)
            if seps == {","}:
                options = [_strip(text, part) for part in parts[0::2]]
                parent.append(_Perm(options, (opened, i + 1)))
            else:  # a dynamic-prompt group, or plain braces: as written, with what nests inside expanded
                parent.append((opened, opened + 1))
                for part in parts:
                    parent.extend(part)
                parent.append((i, i + 1))
            current = parent
            lit = i + 1
        i += 1
    flush(n)
    while stack:  # unclosed: the brace is text, what was read stays in order
        opened, parts, parent, _seps = stack.pop()
        parts.append(current)
        parent.append((opened, opened + 1))
        for part in parts:
            parent.extend(part)
        current = parent
    return current


def _strip(text: str, part: list[_Piece]) -> list[_Piece]:
    """An option without the spaces around it (``{red, green}`` → ``red``, ``green``)."""
    out = list(part)
    while out and isinstance(out[0], tuple):
        s, e = out[0]
        while s < e and text[s].isspace():
            s += 1
        if s < e:
            out[0] = (s, e)
            break
        out.pop(0)
    while out and isinstance(out[-1], tuple):
        s, e = out[-1]
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            out[-1] = (s, e)
            break
        out.pop()
    return out


def _count(pieces: list[_Piece], cap: int) -> int:
    total = 1
    for piece in pieces:
        if isinstance(piece, _Perm):
            total *= min(sum(_count(o, cap) for o in piece.options), cap + 1)
            total = min(total, cap + 1)
    return total


def _expand(pieces: list[_Piece]) -> list[list[Span]]:
    out: list[list[Span]] = [[]]
    for piece in pieces:
        if isinstance(piece, _Perm):
            choices = [c for option in piece.options for c in _expand(option)]
            out = [done + choice for done in out for choice in choices]
        else:
            for done in out:
                done.append(piece)
    return out


def permutations(text: str, cap: int = MAX_JOBS) -> Permutations:
    """Every prompt ``text`` permutes into, in order (the first group varies slowest); none past ``cap``."""
    if "{" not in text:
        return Permutations([Expansion.of(text, [(0, len(text))])], 1)
    pieces = _parse_groups(text)
    count = _count(pieces, cap)
    if count > cap:
        return Permutations([], count, f"The permutations make more than {cap} prompts; at most {cap} per submit")
    groups = tuple(p.span for p in pieces if isinstance(p, _Perm))
    return Permutations([Expansion.of(text, spans) for spans in _expand(pieces)], count, groups=groups)


# --------------------------------------------------------------------------------------------------
# Multi-prompts


_WEIGHT_RE = re.compile(r"::\s*(-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))?")
_EMPHASIS_SPECIAL = re.compile(r"([()\\])")


@dataclass(frozen=True, slots=True)
class MultiPrompt:
    """``cat:: dog::2`` as the encoder reads it: the positive text, the negative parts, the weights."""

    positive: str
    negative: str  # "" without negative weights
    parts: tuple[tuple[str, float], ...]  # each part and its weight as typed
    error: str | None = None


def _fmt_weight(w: float) -> str:
    return f"{round(w, 2):g}"


def multiprompt(text: str) -> MultiPrompt | None:
    """The weighted parts of ``text``, or None when it has no ``::``."""
    if "::" not in text:
        return None
    parts: list[tuple[str, float]] = []
    at = 0
    for m in _WEIGHT_RE.finditer(text):
        chunk = text[at : m.start()].strip(" ,")
        weight = float(m.group(1)) if m.group(1) is not None else 1.0
        if chunk:
            parts.append((chunk, weight))
        at = m.end()
    tail = text[at:].strip(" ,")
    if tail:
        parts.append((tail, 1.0))
    if not parts:
        return MultiPrompt("", "", ())
    if sum(w for _, w in parts) <= 0 or not any(w > 0 for _, w in parts):
        return MultiPrompt(text, "", tuple(parts), "The multi-prompt weights must add up to more than 0")
    positives = [w for _, w in parts if w > 0]
    mean = sum(positives) / len(positives)

    def emphasis(chunk: str, weight: float) -> str:
        scaled = weight / mean
        escaped = _EMPHASIS_SPECIAL.sub(r"\\\1", chunk)
        return escaped if abs(scaled - 1) < 0.005 else f"({escaped}:{_fmt_weight(scaled)})"

    positive = ", ".join(emphasis(c, w) for c, w in parts if w > 0)
    negative = ", ".join(emphasis(c, -w) for c, w in parts if w < 0)
    return MultiPrompt(positive, negative, tuple(parts))


def encoders_read_emphasis(graph: Graph) -> bool:
    """Whether every positive prompt node of ``graph`` is a text encoder that reads ``(text:weight)``."""
    nodes = GraphIndex(graph).role("positive")
    return bool(nodes) and all(graph[n].get("class_type") in EMPHASIS_ENCODERS for n in nodes)


# --------------------------------------------------------------------------------------------------
# This ComfyUI's names


@dataclass(frozen=True, slots=True)
class Resources:
    """The names ComfyUI lists: model files (relative to their folder) and the sampler's own choices."""

    checkpoints: tuple[str, ...] = ()
    loras: tuple[str, ...] = ()
    embeddings: tuple[str, ...] = ()
    samplers: tuple[str, ...] = ()
    schedulers: tuple[str, ...] = ()


_EXT_RE = re.compile(r"\.(safetensors|ckpt|pt|pt2|bin|pth|pkl|sft|gguf)$", re.IGNORECASE)


@functools.lru_cache(maxsize=8192)
def _forms(name: str) -> tuple[str, ...]:
    """How a listed name may be typed: whole, without the extension, without the folder, or both."""
    folded = name.casefold().replace("\\", "/")
    stem = _EXT_RE.sub("", folded)
    base = folded.rsplit("/", 1)[-1]
    return tuple(dict.fromkeys((folded, stem, base, _EXT_RE.sub("", base))))


def resolve(typed: str, choices: Sequence[str], what: str, code: str) -> tuple[str | None, str | None]:
    """(the listed name ``typed`` means, None) or (None, a message with the near misses)."""
    return _resolve(typed, tuple(choices), what, code)


@functools.lru_cache(maxsize=1024)  # every expansion of a prompt names the same files; lists are tuples
def _resolve(typed: str, choices: tuple[str, ...], what: str, code: str) -> tuple[str | None, str | None]:
    wanted = typed.casefold().replace("\\", "/")
    exact = [c for c in choices if wanted in _forms(c)]
    if len(exact) == 1:
        return exact[0], None
    if not exact:
        exact = [c for c in choices if any(f.startswith(wanted) for f in _forms(c))] if wanted else []
        if len(exact) == 1:
            return exact[0], None
        # one match that all the others extend (euler_ancestral, euler_ancestral_cfg_pp) is the one meant
        extended = sorted((_forms(c)[-1], c) for c in exact)
        if extended and all(stem.startswith(extended[0][0]) for stem, _ in extended):
            return extended[0][1], None
    if exact:
        shown = ", ".join(sorted(exact)[:6]) + (", …" if len(exact) > 6 else "")
        return None, f"--{code} {typed}: several {what}s match ({shown}); type more of the name"
    if not choices:
        return None, f"--{code} {typed}: no {what} is installed in this ComfyUI"
    stems = {_forms(c)[-1]: c for c in choices}
    close = difflib.get_close_matches(_forms(typed)[-1], list(stems), n=5, cutoff=0.5)
    near = [stems[c] for c in close] or [c for c in choices if wanted[:3] and wanted[:3] in c.casefold()][:5]
    hint = f"; did you mean {', '.join(near)}?" if near else f"; installed: {', '.join(list(choices)[:8])}"
    return None, f"--{code} {typed}: unknown {what}{hint}"


def lora_value(raw: str) -> tuple[str, float | None, str | None]:
    """``NAME[:WEIGHT]`` → (name, weight or None for the default, error)."""
    name, sep, weight = raw.rpartition(":")
    if not sep or not name:
        return raw, None, None
    try:
        value = float(weight)
    except ValueError:
        return raw, None, None  # a colon in the name itself
    if not LORA_WEIGHT_MIN <= value <= LORA_WEIGHT_MAX:
        return name, None, f"--lora {raw}: the weight must be between -10 and 10"
    return name, value, None


_EMBEDDING_RE = re.compile(r"(?<![\w:])embedding:([^\s,()\[\]{}|]+)", re.IGNORECASE)


def embedding_names(text: str) -> list[tuple[str, int, int]]:
    """Each ``embedding:NAME`` in ``text``: the name and the span of the name."""
    out = []
    for m in _EMBEDDING_RE.finditer(text):
        name = m.group(1).rstrip(".:;!?")
        if name:
            out.append((name, m.start(1), m.start(1) + len(name)))
    return out


def with_embeddings(text: str, names: dict[str, str]) -> str:
    """``text`` with each ``embedding:typed`` written as the installed name it means."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1).rstrip(".:;!?")
        chosen = names.get(name.casefold())
        return m.group(0) if chosen is None else "embedding:" + chosen + m.group(1)[len(name) :]

    return _EMBEDDING_RE.sub(sub, text)


def lora_ops(graph: Graph, loras: Sequence[tuple[str, float]]) -> tuple[list[PatchOp], str | None]:
    """LoRA loaders between the model loader and every consumer of its model (and CLIP): new nodes with fresh
    ids, chained in order, and the consumers' links moved to the last one. (ops, a warning or None)."""
    if not loras:
        return [], None
    loader = next((nid for nid, n in graph.items() if n.get("class_type") in CHECKPOINT_LOADERS), None)
    model_only = loader is None
    if model_only:
        loader = next((nid for nid, n in graph.items() if n.get("class_type") in MODEL_ONLY_LOADERS), None)
    if loader is None:
        return [], "--lora has no effect on this workflow: it has no checkpoint or diffusion-model loader"
    used = [int(k) for k in graph if k.isdigit()]
    fresh = max(used, default=0) + 1
    ops: list[PatchOp] = []
    model_from: list[JSON] = [loader, 0]
    clip_from: list[JSON] = [loader, 1]
    for name, weight in loras:
        nid = str(fresh)
        fresh += 1
        node: dict[str, JSON]
        if model_only:
            node = {
                "class_type": "LoraLoaderModelOnly",
                "inputs": {"model": model_from, "lora_name": name, "strength_model": weight},
                "_meta": {"title": f"LoRA {name}"},
            }
        else:
            node = {
                "class_type": "LoraLoader",
                "inputs": {
                    "model": model_from,
                    "clip": clip_from,
                    "lora_name": name,
                    "strength_model": weight,
                    "strength_clip": weight,
                },
                "_meta": {"title": f"LoRA {name}"},
            }
        ops.append({"op": "add", "path": f"/{nid}", "value": node})
        model_from, clip_from = [nid, 0], [nid, 1]
    for nid, consumer in graph.items():
        inputs = consumer.get("inputs")
        if not isinstance(inputs, dict):
            continue
        for name, value in inputs.items():
            if not (isinstance(value, list) and len(value) == 2 and value[0] == loader):
                continue
            moved = model_from if value[1] == 0 else clip_from if value[1] == 1 and not model_only else None
            if moved is not None:
                path = "/" + nid.replace("~", "~0").replace("/", "~1") + "/inputs/" + name
                ops.append({"op": "replace", "path": path, "value": list(moved)})
    return ops, None


def iw_denoise(iw: float) -> float:
    """The img2img denoise for image weight ``iw`` (piecewise linear through ``IW_DENOISE``)."""
    pts = IW_DENOISE
    if iw <= pts[0][0]:
        return pts[0][1]
    for (x0, y0), (x1, y1) in zip(pts, pts[1:], strict=False):
        if iw <= x1:
            return round(y0 + (y1 - y0) * (iw - x0) / (x1 - x0), 4)
    return pts[-1][1]
