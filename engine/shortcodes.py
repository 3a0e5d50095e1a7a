"""Shortcodes: the prompt bar's language (``a cat --ar 16:9 --style vivid``).

Pure: text and definitions in, a ``ParseResult`` out. ``parse`` is total — every string gets a result,
never an exception — and every token and diagnostic carries ``start``/``end`` offsets that slice the
original text. Grammar, in short:

* A code starts with ``--`` (or an em/en dash, as phones and macOS type it) at the start of the text or
  after whitespace, followed by a name (letters, digits, ``_``, ``-``) and then whitespace, ``=`` or the
  end. ``a--b`` and ``--ar,`` are text. A dash-typed code counts only if its name is known, so prose
  like ``a cat —sitting`` stays prose.
* The value follows after whitespace or ``=``: one word, or a quoted string (``"…"``, ``“…”``,
  ``'…'``; backslash escapes the quote). A ``list`` code's value runs until the next code. Flags take
  no value (``--tile``) unless written ``--tile=false``.
* Codes and enum choices are case-insensitive; a repeated code warns and the last one wins.
* An unknown code is a warning and only ``--name`` (or ``--name=value``) is removed. A missing or
  invalid value is an error, and the value's words stay in the clean text: the user's words are never
  dropped. Callers should refuse to submit while ``errors`` is non-empty.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeAlias, TypeGuard

from .jsoncodec import JSON
from .selectors import PROMPT_INPUTS, Graph, GraphIndex, Selector, parse_selector

CodeType: TypeAlias = Literal["int", "float", "ratio", "size", "enum", "string", "flag", "seed", "list"]
CODE_TYPES: tuple[str, ...] = ("int", "float", "ratio", "size", "enum", "string", "flag", "seed", "list")
TargetMode: TypeAlias = Literal["set", "append", "multiply", "ancestral"]
TARGET_MODES: tuple[str, ...] = ("set", "append", "multiply", "ancestral")
Severity: TypeAlias = Literal["error", "warning"]


def _is_code_type(value: object) -> TypeGuard[CodeType]:
    return value in CODE_TYPES


def _is_target_mode(value: object) -> TypeGuard[TargetMode]:
    return value in TARGET_MODES


ONE_MEGAPIXEL = 1024 * 1024
SEED_MAX = 2**64 - 1  # ComfyUI's seed inputs accept 0 … 0xffffffffffffffff
_MAX_NUMBER_CHARS = 40  # int() of a huge digit string is slow (and raises past 4300 digits)

_CODE_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_CODE_RE = re.compile(r"(?<!\S)(--|[\u2014\u2013])([^\W\d_](?:[\w-]*))(?=[\s=]|\Z)")
_WORD_RE = re.compile(r"\S+")
_INT_RE = re.compile(r"[+-]?[0-9]+")
_FLOAT_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_RATIO_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?|\.[0-9]+)[:/]([0-9]+(?:\.[0-9]+)?|\.[0-9]+)")
_SIZE_RE = re.compile(r"([0-9]{1,6})\s*[x×X*]\s*([0-9]{1,6})")
_CTRL_RE = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")
_PLACEHOLDER_RE = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
_QUOTES = {'"': '"', "\u201c": "\u201d", "\u201e": "\u201d", "'": "'", "\u2018": "\u2019"}
_TRUE = frozenset({"", "true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


# --------------------------------------------------------------------------------------------------
# Definitions


@dataclass(frozen=True, slots=True)
class Choice:
    """One value of an enum code; ``extras`` become template placeholders (``{suffix}``, ``{negative}``)."""

    value: str
    description: str = ""
    extras: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, JSON]:
        return {"value": self.value, "description": self.description, "extras": dict(self.extras)}

    @classmethod
    def from_dict(cls, data: Mapping[str, JSON] | str) -> Choice:
        if isinstance(data, str):
            return cls(data)
        extras = data.get("extras") or {}
        if not isinstance(extras, dict):
            raise ValueError("choice extras must be an object of strings")
        return cls(
            value=_req_str(data, "value"),
            description=_opt_str(data, "description"),
            extras={str(k): str(v) for k, v in extras.items()},
        )


@dataclass(frozen=True, slots=True)
class Target:
    """Where a code's value goes: the nodes picked by ``selector``, their input ``input``.

    ``input`` may list alternatives, ``seed|noise_seed``: each matched node gets every one it has.
    ``template`` is rendered with the code's placeholders; exactly ``"{value}"`` keeps the value's JSON
    type. A dict template maps enum choices to templates — or, when ``input`` is empty, to
    ``{input: template}`` dicts so one choice can set several inputs. ``mode``: ``set``; ``append``
    (text joined with ", "); ``multiply`` (current × value); ``ancestral`` (value > 0 switches the
    sampler_name to its ancestral/SDE variant). ``workflow`` limits the target to one workflow;
    ``min_current`` skips nodes whose current number is below it (distilled models run at cfg≈1).
    """

    selector: Selector
    input: str = ""
    template: JSON = "{value}"
    mode: TargetMode = "set"
    workflow: str | None = None
    min_current: float | None = None

    def to_dict(self) -> dict[str, JSON]:
        return {
            "selector": dict(self.selector) if isinstance(self.selector, dict) else self.selector,
            "input": self.input,
            "template": self.template,
            "mode": self.mode,
            "workflow": self.workflow,
            "min_current": self.min_current,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, JSON]) -> Target:
        raw_selector = data.get("selector")
        selector: Selector
        if isinstance(raw_selector, dict):
            selector = {str(k): str(v) for k, v in raw_selector.items()}
        elif isinstance(raw_selector, str):
            selector = raw_selector
        else:
            raise ValueError("target.selector must be a string or an object")
        mode = data.get("mode", "set")
        if not _is_target_mode(mode):
            raise ValueError(f"target.mode must be one of {', '.join(TARGET_MODES)}")
        workflow = data.get("workflow")
        min_current = data.get("min_current")
        if min_current is not None and (not isinstance(min_current, int | float) or isinstance(min_current, bool)):
            raise ValueError("target.min_current must be a number")
        return cls(
            selector=selector,
            input=_opt_str(data, "input"),
            template=data.get("template", "{value}"),
            mode=mode,
            workflow=None if workflow is None else str(workflow),
            min_current=None if min_current is None else float(min_current),
        )


def _scale_points(pts: JSON) -> tuple[tuple[float, float], ...]:
    """A scale's ``[[x, y], …]`` as float pairs; ValueError for anything else."""
    if not isinstance(pts, list):
        raise ValueError("scale points must be a list")
    points: list[tuple[float, float]] = []
    for p in pts:
        if not isinstance(p, list) or len(p) < 2:
            raise ValueError("a scale point is an [x, y] pair")
        x, y = p[0], p[1]
        if not isinstance(x, int | float | str) or not isinstance(y, int | float | str):
            raise ValueError("a scale point holds numbers")
        points.append((float(x), float(y)))
    return tuple(points)


@dataclass(frozen=True, slots=True)
class CodeDefinition:
    """One shortcode, built-in or user-defined: the row the shortcodes table stores as JSON.

    ``scale`` maps a placeholder name to piecewise-linear points ``[[x, y], …]`` evaluated at the
    numeric value (``stylize`` → ``{cfg}``); ``default`` is used when the code is given without a value.
    """

    code: str
    type: CodeType
    description: str = ""
    aliases: tuple[str, ...] = ()
    choices: tuple[Choice, ...] = ()
    default: JSON = None
    min: float | None = None
    max: float | None = None
    scale: dict[str, tuple[tuple[float, float], ...]] = field(default_factory=dict)
    targets: tuple[Target, ...] = ()
    builtin: bool = False

    def names(self) -> tuple[str, ...]:
        return (self.code, *self.aliases)

    def choice(self, value: str) -> Choice | None:
        folded = value.casefold()
        for c in self.choices:
            if c.value.casefold() == folded:
                return c
        return None

    def to_dict(self) -> dict[str, JSON]:
        return {
            "code": self.code,
            "type": self.type,
            "description": self.description,
            "aliases": list(self.aliases),
            "choices": [c.to_dict() for c in self.choices],
            "default": self.default,
            "min": self.min,
            "max": self.max,
            "scale": {k: [[x, y] for x, y in pts] for k, pts in self.scale.items()},
            "targets": [t.to_dict() for t in self.targets],
            "builtin": self.builtin,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, JSON]) -> CodeDefinition:
        """Build from a stored row; raises ``ValueError`` with a readable message on a malformed one."""
        ctype = data.get("type")
        if not _is_code_type(ctype):
            raise ValueError(f"type must be one of {', '.join(CODE_TYPES)}")
        aliases = data.get("aliases") or []
        choices = data.get("choices") or []
        targets = data.get("targets") or []
        scale = data.get("scale") or {}
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise ValueError("aliases must be a list of strings")
        if not isinstance(choices, list):
            raise ValueError("choices must be a list")
        if not isinstance(targets, list) or not all(isinstance(t, dict) for t in targets):
            raise ValueError("targets must be a list of objects")
        if not isinstance(scale, dict):
            raise ValueError("scale must be an object")
        parsed_scale: dict[str, tuple[tuple[float, float], ...]] = {}
        for name, pts in scale.items():
            try:
                parsed_scale[str(name)] = _scale_points(pts)
            except ValueError as exc:
                raise ValueError(f"scale.{name} must be a list of [x, y] number pairs") from exc
        parsed_choices = []
        for c in choices:
            if not isinstance(c, dict | str):
                raise ValueError("each choice must be a string or an object")
            parsed_choices.append(Choice.from_dict(c))
        return cls(
            code=_req_str(data, "code"),
            type=ctype,
            description=_opt_str(data, "description"),
            aliases=tuple(a for a in aliases if isinstance(a, str)),  # all of them: checked above
            choices=tuple(parsed_choices),
            default=data.get("default"),
            min=_opt_num(data, "min"),
            max=_opt_num(data, "max"),
            scale=parsed_scale,
            targets=tuple(Target.from_dict(t) for t in targets if isinstance(t, dict)),  # all: checked above
            builtin=bool(data.get("builtin", False)),
        )


def _req_str(data: Mapping[str, JSON], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string")
    return value


def _opt_str(data: Mapping[str, JSON], key: str) -> str:
    value = data.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string")
    return value


def _opt_num(data: Mapping[str, JSON], key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key} must be a number")
    return float(value)


# --------------------------------------------------------------------------------------------------
# Built-ins: ordinary rows, the same shape a user edits.

_SAMPLER_T = "role:sampler"
_STYLES = (
    Choice(
        "vivid",
        "saturated colour, strong contrast",
        {
            "suffix": "vivid colors, high contrast, dramatic lighting, highly detailed",
            "negative": "dull, washed out, muted colors",
        },
    ),
    Choice(
        "natural",
        "true-to-life colour and light",
        {
            "suffix": "natural colors, soft natural lighting, realistic",
            "negative": "oversaturated, overprocessed, artificial",
        },
    ),
    Choice(
        "cinematic",
        "film still look",
        {
            "suffix": "cinematic still, film grain, shallow depth of field, moody lighting",
            "negative": "cartoon, illustration, flat lighting",
        },
    ),
    Choice(
        "photo",
        "photographic realism",
        {
            "suffix": "professional photograph, 35mm, sharp focus, detailed texture",
            "negative": "illustration, painting, drawing, cartoon, cgi, render",
        },
    ),
    Choice(
        "anime",
        "anime illustration",
        {
            "suffix": "anime style, cel shading, vibrant, clean line art",
            "negative": "photo, realistic, 3d render",
        },
    ),
)

_SIZE_TARGETS = (
    Target("role:size", "width", "{width}"),
    Target("role:size", "height", "{height}"),
    # Flux graphs tell the model the resolution here too; keep it in step with the latent.
    Target("class:ModelSamplingFlux", "width", "{width}"),
    Target("class:ModelSamplingFlux", "height", "{height}"),
)

BUILTIN_CODES: tuple[CodeDefinition, ...] = (
    CodeDefinition(
        "ar",
        "ratio",
        "aspect ratio W:H at the workflow's pixel count",
        aliases=("aspect",),
        targets=_SIZE_TARGETS,
        builtin=True,
    ),
    CodeDefinition(
        "size",
        "size",
        "exact size WxH, e.g. 1024x768",
        targets=_SIZE_TARGETS,
        builtin=True,
    ),
    CodeDefinition(
        "seed",
        "seed",
        "seed for every sampler, or 'random'",
        targets=(Target(_SAMPLER_T, "seed|noise_seed"), Target("role:noise", "noise_seed")),
        builtin=True,
    ),
    CodeDefinition(
        "no",
        "list",
        "things to keep out (added to the negative prompt)",
        targets=(Target("role:negative", PROMPT_INPUTS, mode="append"),),
        builtin=True,
    ),
    CodeDefinition(
        "steps",
        "int",
        "sampling steps",
        min=1,
        max=200,
        targets=(Target(_SAMPLER_T, "steps"), Target("role:scheduler", "steps")),
        builtin=True,
    ),
    CodeDefinition(
        "cfg",
        "float",
        "classifier-free guidance scale",
        min=0,
        max=30,
        targets=(Target(_SAMPLER_T, "cfg"), Target("role:guider", "cfg")),
        builtin=True,
    ),
    CodeDefinition(
        "batch",
        "int",
        "images per run",
        min=1,
        max=64,
        targets=(Target("role:size", "batch_size"),),
        builtin=True,
    ),
    CodeDefinition(
        "style",
        "enum",
        "prompt style",
        choices=_STYLES,
        targets=(
            Target("role:positive", PROMPT_INPUTS, "{suffix}", mode="append"),
            Target("role:negative", PROMPT_INPUTS, "{negative}", mode="append"),
        ),
        builtin=True,
    ),
    CodeDefinition(
        "quality",
        "float",
        "quality: multiplies the steps (0.25–4)",
        aliases=("q",),
        min=0.25,
        max=4,
        targets=(
            Target(_SAMPLER_T, "steps", mode="multiply"),
            Target("role:scheduler", "steps", mode="multiply"),
        ),
        builtin=True,
    ),
    CodeDefinition(
        "chaos",
        "int",
        "variety (0–100): ancestral sampler and lower guidance",
        min=0,
        max=100,
        scale={"cfg_factor": ((0, 1.0), (100, 0.6))},
        targets=(
            Target("has:sampler_name", "sampler_name", mode="ancestral"),
            Target(_SAMPLER_T, "cfg", "{cfg_factor}", mode="multiply", min_current=1.5),
            Target("role:guider", "cfg", "{cfg_factor}", mode="multiply", min_current=1.5),
            Target("role:flux_guidance", "guidance", "{cfg_factor}", mode="multiply"),
        ),
        builtin=True,
    ),
    CodeDefinition(
        "stylize",
        "int",
        "stylize (0–1000): higher trades prompt adherence for style",
        aliases=("s",),
        min=0,
        max=1000,
        scale={
            "cfg": ((0, 9.0), (100, 7.0), (1000, 3.0)),
            "guidance": ((0, 5.0), (100, 3.5), (1000, 1.5)),
        },
        targets=(
            Target(_SAMPLER_T, "cfg", "{cfg}", min_current=1.5),
            Target("role:guider", "cfg", "{cfg}", min_current=1.5),
            Target("role:flux_guidance", "guidance", "{guidance}"),
        ),
        builtin=True,
    ),
    CodeDefinition(
        "tile",
        "flag",
        "seamless tiling (needs a Studio input named 'tile')",
        targets=(Target("input:tile", "value"),),
        builtin=True,
    ),
    # The planner applies the codes below itself (PLANNED_CODES), or resolves their names first.
    CodeDefinition(
        "repeat", "int", "run the prompt N times, each with its own seed (1–40)", min=1, max=40, builtin=True
    ),
    CodeDefinition(
        "iw",
        "float",
        "image weight of an image prompt (0–3): higher keeps more of the image",
        min=0,
        max=3,
        builtin=True,
    ),
    CodeDefinition(
        "model",
        "string",
        "the checkpoint to load (an installed name, or the start of one)",
        aliases=("ckpt",),
        targets=(Target("has:ckpt_name", "ckpt_name"),),
        builtin=True,
    ),
    CodeDefinition("lora", "string", "add a LoRA: NAME or NAME:WEIGHT (repeatable)", builtin=True),
    CodeDefinition(
        "sampler",
        "string",
        "the sampler's algorithm (sampler_name)",
        targets=(Target("has:sampler_name", "sampler_name"),),
        builtin=True,
    ),
    CodeDefinition(
        "scheduler",
        "string",
        "the noise schedule",
        targets=(Target("has:scheduler", "scheduler"),),
        builtin=True,
    ),
    CodeDefinition(
        "denoise",
        "float",
        "denoise (0–1): how much of the latent is replaced",
        min=0,
        max=1,
        targets=(Target(_SAMPLER_T, "denoise"), Target("role:scheduler", "denoise")),
        builtin=True,
    ),
)

# Codes the planner applies itself instead of through targets.
PLANNED_CODES = frozenset({"repeat", "iw", "lora"})
# Codes that may be given several times, each applied (the others: the last one wins).
REPEATABLE_CODES = frozenset({"lora"})
# Codes whose value names something ComfyUI lists; the planner resolves it before the targets apply.
RESOURCE_CODES = frozenset({"model", "lora", "sampler", "scheduler"})


# --------------------------------------------------------------------------------------------------
# Registry


class Registry:
    """Built-in and user codes by lower-cased name and alias; the first definition of a name wins."""

    __slots__ = ("_by_name", "definitions", "target_pixels")

    def __init__(
        self,
        definitions: Iterable[CodeDefinition] = BUILTIN_CODES,
        *,
        target_pixels: int = ONE_MEGAPIXEL,
    ) -> None:
        self.definitions: tuple[CodeDefinition, ...] = tuple(definitions)
        self.target_pixels = target_pixels
        self._by_name: dict[str, CodeDefinition] = {}
        for defn in self.definitions:
            for name in defn.names():
                self._by_name.setdefault(name.casefold(), defn)

    @classmethod
    def with_user_codes(cls, user: Iterable[CodeDefinition]) -> Registry:
        """Built-ins plus ``user`` codes (built-ins win a name clash; validation forbids one)."""
        builtin_codes = {d.code for d in BUILTIN_CODES}
        user = tuple(user)
        edited = {d.code: d for d in user if d.builtin and d.code in builtin_codes}
        base = [edited.get(d.code, d) for d in BUILTIN_CODES]
        return cls([*base, *(d for d in user if d.code not in edited)])

    def lookup(self, name: str) -> CodeDefinition | None:
        return self._by_name.get(name.casefold())

    def names(self) -> list[str]:
        return list(self._by_name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.casefold() in self._by_name


DEFAULT_REGISTRY = Registry()


# --------------------------------------------------------------------------------------------------
# Parse results


@dataclass(slots=True)
class Token:
    """One ``--code [value]`` in the source. ``text[start:end]`` is the whole token."""

    name: str  # as typed, without dashes
    code: str | None  # canonical code, None when unknown
    raw: str | None  # value as typed (quotes included), None without a value
    value: JSON  # typed value; None when unknown or invalid
    start: int
    end: int
    value_start: int = -1
    value_end: int = -1
    valid: bool = True
    overridden: bool = False  # a later token of the same code wins

    def to_dict(self) -> dict[str, JSON]:
        return {
            "name": self.name,
            "code": self.code,
            "raw": self.raw,
            "value": self.value,
            "start": self.start,
            "end": self.end,
            "value_start": self.value_start,
            "value_end": self.value_end,
            "valid": self.valid,
            "overridden": self.overridden,
        }


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """A warning or error a user can read, with the span it is about."""

    severity: Severity
    kind: str  # snake_case: unknown_code, missing_value, invalid_value, repeated_code, unterminated_quote
    message: str
    start: int
    end: int
    code: str | None = None

    def to_dict(self) -> dict[str, JSON]:
        return {
            "severity": self.severity,
            "kind": self.kind,
            "message": self.message,
            "start": self.start,
            "end": self.end,
            "code": self.code,
        }


@dataclass(slots=True)
class ParseResult:
    text: str  # the clean prompt
    tokens: list[Token]
    warnings: list[Diagnostic]
    errors: list[Diagnostic]
    values: dict[str, JSON]  # canonical code → typed value of the winning token

    @property
    def ok(self) -> bool:
        return not self.errors

    def winning_tokens(self) -> list[Token]:
        return [t for t in self.tokens if t.code is not None and t.valid and not t.overridden]

    def to_dict(self) -> dict[str, JSON]:
        return {
            "text": self.text,
            "tokens": [t.to_dict() for t in self.tokens],
            "warnings": [d.to_dict() for d in self.warnings],
            "errors": [d.to_dict() for d in self.errors],
            "values": dict(self.values),
        }


# --------------------------------------------------------------------------------------------------
# Coercion


def dims_for_ratio(w: float, h: float, pixels: int = ONE_MEGAPIXEL, multiple: int = 64) -> tuple[int, int]:
    """Width and height with ratio w:h near ``pixels`` in total, each a multiple of ``multiple``."""
    r = w / h
    width = max(multiple, round(math.sqrt(pixels * r) / multiple) * multiple)
    height = max(multiple, round(math.sqrt(pixels / r) / multiple) * multiple)
    return width, height


def interpolate(points: tuple[tuple[float, float], ...], x: float) -> float:
    """Piecewise-linear y at x, clamped to the first/last point."""
    if not points:
        return x
    if x <= points[0][0]:
        return points[0][1]
    for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
        if x <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return points[-1][1]


def _range_error(defn: CodeDefinition, number: float) -> str | None:
    lo, hi = defn.min, defn.max
    if (lo is not None and number < lo) or (hi is not None and number > hi):
        if lo is not None and hi is not None:
            return f"must be between {_fmt(lo)} and {_fmt(hi)}"
        if lo is not None:
            return f"must be at least {_fmt(lo)}"
        if hi is not None:
            return f"must be at most {_fmt(hi)}"
    return None


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def coerce(defn: CodeDefinition, text: str, target_pixels: int = ONE_MEGAPIXEL) -> tuple[JSON, str | None]:
    """Typed value of ``text`` for ``defn``, or (None, message) when it does not fit."""
    t = defn.type
    if t == "int" or t == "seed":
        if t == "seed" and text.casefold() in ("random", "rand", "?"):
            return "random", None
        if len(text) > _MAX_NUMBER_CHARS or not _INT_RE.fullmatch(text):
            return None, "must be a whole number" + (" or 'random'" if t == "seed" else "")
        number = int(text)
        if t == "seed":
            if not 0 <= number <= SEED_MAX:
                return None, f"seed must be between 0 and {SEED_MAX}"
            return number, None
        err = _range_error(defn, number)
        return (None, err) if err else (number, None)
    if t == "float":
        if len(text) > _MAX_NUMBER_CHARS or not _FLOAT_RE.fullmatch(text):
            return None, "must be a number"
        fnum = float(text)
        err = _range_error(defn, fnum)
        return (None, err) if err else (fnum, None)
    if t == "ratio":
        m = _RATIO_RE.fullmatch(text) if len(text) <= _MAX_NUMBER_CHARS else None
        if not m:
            return None, "ratio must be two positive numbers, like 16:9"
        w, h = float(m.group(1)), float(m.group(2))
        if not (w > 0 and h > 0 and math.isfinite(w) and math.isfinite(h)):
            return None, "ratio must be two positive numbers"
        if max(w / h, h / w) > 16:
            return None, "ratio must be between 1:16 and 16:1"
        width, height = dims_for_ratio(w, h, target_pixels)
        return {"ratio": f"{_fmt(w)}:{_fmt(h)}", "w": w, "h": h, "width": width, "height": height}, None
    if t == "size":
        m = _SIZE_RE.fullmatch(text)
        if not m:
            return None, "size must be WIDTHxHEIGHT, like 1024x768"
        width, height = int(m.group(1)), int(m.group(2))
        if not (64 <= width <= 16384 and 64 <= height <= 16384):
            return None, "width and height must be between 64 and 16384"
        # Latents are 1/8 of the image: sizes snap to multiples of 8.
        return {"width": round(width / 8) * 8, "height": round(height / 8) * 8}, None
    if t == "enum":
        c = defn.choice(text)
        if c is None:
            names = [x.value for x in defn.choices]
            close = difflib.get_close_matches(text.casefold(), [n.casefold() for n in names], n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            return None, f"unknown {defn.code} {text!r}: choose one of {', '.join(names)}{hint}"
        return c.value, None
    if t == "flag":
        folded = text.casefold()
        if folded in _TRUE:
            return True, None
        if folded in _FALSE:
            return False, None
        return None, "a flag takes no value (or =true / =false)"
    if t == "list":
        items: list[JSON] = [s for s in (part.strip() for part in text.split(",")) if s]
        if not items:
            return None, "needs at least one item"
        return items, None
    return text, None  # string


# --------------------------------------------------------------------------------------------------
# Parser


def _next_code(text: str, pos: int, registry: Registry) -> re.Match[str] | None:
    search = _CODE_RE.search
    while True:
        m = search(text, pos)
        if m is None or m.group(1) == "--" or m.group(2).casefold() in registry._by_name:
            return m
        pos = m.end()  # a dash-typed unknown name is prose


_MAX_QUOTED = 2000  # a quote not closed within this many characters is not a quoted value


def _read_value(
    text: str, v: int, defn: CodeDefinition, registry: Registry, warnings: list[Diagnostic]
) -> tuple[str, str, int, re.Match[str] | None, int]:
    """(raw, inner, end, next code match, where that search began or -1) of the value at ``v``."""
    ch = text[v]
    close = _QUOTES.get(ch)
    if close is not None:
        # Bounded scan: a stray opening quote must not make parsing quadratic on long prompts.
        limit = min(len(text), v + 1 + _MAX_QUOTED)
        i = text.find(close, v + 1, limit)
        while i != -1:
            backslashes = 0
            while text[i - 1 - backslashes] == "\\":
                backslashes += 1
            if backslashes % 2 == 0:
                inner = text[v + 1 : i]
                if "\\" in inner:
                    inner = inner.replace("\\" + close, close).replace("\\\\", "\\")
                return text[v : i + 1], inner, i + 1, None, -1
            i = text.find(close, i + 1, limit)
        if ch != "'" and ch != "\u2018":  # an apostrophe is often just an apostrophe
            warnings.append(
                Diagnostic(
                    "warning",
                    "unterminated_quote",
                    f"--{defn.code}: the quote {ch} is never closed; reading the value unquoted",
                    v,
                    v + 1,
                    defn.code,
                )
            )
    if defn.type == "list":
        m = _next_code(text, v, registry)
        end = len(text) if m is None else m.start()
        raw = text[v:end].rstrip()
        return raw, raw, v + len(raw), m, v
    m2 = _WORD_RE.match(text, v)
    end = m2.end() if m2 else v + 1
    raw = text[v:end]
    return raw, raw, end, None, -1


def parse(text: str, registry: Registry = DEFAULT_REGISTRY) -> ParseResult:
    """Split ``text`` into a clean prompt and shortcode tokens; never raises."""
    tokens: list[Token] = []
    warnings: list[Diagnostic] = []
    errors: list[Diagnostic] = []
    values: dict[str, JSON] = {}
    last: dict[str, Token] = {}
    kept: list[str] = []
    keep_from = 0
    pos = 0
    n = len(text)
    by_name = registry._by_name
    # A list value already found the next code; reuse that search while it is still ahead of us.
    pending_from, pending = -1, None
    unknown_hints = 0
    while True:
        if 0 <= pending_from <= pos and (pending is None or pos <= pending.start()):
            m = pending
        else:
            m = _next_code(text, pos, registry)
        pending_from = -1
        if m is None:
            break
        start, code_end = m.start(), m.end()
        name = m.group(2)
        defn = by_name.get(name.casefold())
        has_eq = code_end < n and text[code_end] == "="
        if defn is None:
            end = code_end
            if has_eq:  # `--foo=bar` is clearly one parameter, not prose
                w = _WORD_RE.match(text, code_end)
                end = w.end() if w else code_end + 1
            tokens.append(Token(name, None, None, None, start, end, valid=False))
            hint = ""
            if unknown_hints < 20:  # fuzzy hints cost; 10,000 unknown codes must stay fast
                unknown_hints += 1
                close = difflib.get_close_matches(name.casefold(), by_name.keys(), n=1, cutoff=0.75)
                hint = f"; did you mean --{close[0]}?" if close else ""
            warnings.append(Diagnostic("warning", "unknown_code", f"--{name} is not a known code{hint}", start, end))
            kept.append(text[keep_from:start])
            keep_from = pos = end
            continue

        code = defn.code
        raw: str | None
        inner: str
        value_start = value_end = -1
        if has_eq:
            v = code_end + 1
            if v >= n or text[v].isspace():
                raw = None
            else:
                raw, inner, value_end, pending, pending_from = _read_value(text, v, defn, registry, warnings)
                value_start = v
        elif defn.type == "flag":
            raw = None
        else:
            v = code_end
            while v < n and text[v].isspace():
                v += 1
            nxt = _CODE_RE.match(text, v) if v < n and text[v] in "-\u2014\u2013" else None
            if v >= n or (nxt is not None and (nxt.group(1) == "--" or nxt.group(2).casefold() in by_name)):
                raw = None  # the next thing is another code
            else:
                raw, inner, value_end, pending, pending_from = _read_value(text, v, defn, registry, warnings)
                value_start = v

        value: JSON
        if raw is None:
            if defn.type == "flag":
                value, err = True, None
            elif defn.default is not None:
                value, err = defn.default, None
            else:
                value, err = None, "needs a value"
            end = code_end + (1 if has_eq else 0)
        else:
            value, err = coerce(defn, inner, registry.target_pixels)
            end = value_end

        if err is not None:
            shown = f"--{name} {raw}" if raw is not None else f"--{name}"
            kind = "missing_value" if raw is None else "invalid_value"
            errors.append(Diagnostic("error", kind, f"{shown}: {err}", start, end, code))
            tokens.append(Token(name, code, raw, None, start, end, value_start, value_end, valid=False))
            # Only the code goes; the value's words stay in the prompt.
            drop_end = code_end + (1 if has_eq else 0)
            kept.append(text[keep_from:start])
            keep_from = drop_end
            pos = drop_end if raw is None else max(drop_end, value_start)
            continue

        token = Token(name, code, raw, value, start, end, value_start, value_end)
        prev = last.get(code)
        if prev is not None and code not in REPEATABLE_CODES:
            prev.overridden = True
            warnings.append(
                Diagnostic(
                    "warning",
                    "repeated_code",
                    f"--{code} is given more than once; the last one wins",
                    prev.start,
                    prev.end,
                    code,
                )
            )
        last[code] = token
        values[code] = value
        tokens.append(token)
        kept.append(text[keep_from:start])
        keep_from = pos = end

    kept.append(text[keep_from:])
    clean = " ".join(kept)
    if _CTRL_RE.search(clean):
        clean = _CTRL_RE.sub(" ", clean)
    return ParseResult(" ".join(clean.split()), tokens, warnings, errors, values)


# --------------------------------------------------------------------------------------------------
# Templates


def placeholders_for(defn: CodeDefinition) -> set[str]:
    """Placeholder names a template of ``defn`` may use."""
    names = {"value", "code"}
    if defn.type in ("ratio", "size"):
        names |= {"width", "height"}
    if defn.type == "ratio":
        names.add("ratio")
    if defn.type == "enum":
        for c in defn.choices:
            names |= set(c.extras)
    names |= set(defn.scale)
    return names


def template_placeholders(template: str) -> list[str]:
    return [m.group(1) for m in _PLACEHOLDER_RE.finditer(template) if m.group(1) is not None]


def render_template(template: str, context: Mapping[str, JSON]) -> JSON:
    """Fill ``{name}`` placeholders; exactly ``"{name}"`` keeps the value's JSON type. ``{{ }}`` escape."""
    if template.startswith("{") and template.endswith("}") and template.count("{") == 1:
        key = template[1:-1]
        if key in context:
            return context[key]

    def sub(m: re.Match[str]) -> str:
        if m.group(1) is None:
            return m.group(0)[0]
        v = context.get(m.group(1), "")
        if isinstance(v, list):
            return ", ".join(str(x) for x in v)
        if isinstance(v, bool):
            return "true" if v else "false"
        return "" if v is None else str(v)

    return _PLACEHOLDER_RE.sub(sub, template)


# --------------------------------------------------------------------------------------------------
# Validation of user definitions (the CRUD routes call this)


@dataclass(frozen=True, slots=True)
class DefinitionError:
    field: str  # e.g. "code", "targets[0].template"
    message: str

    def to_dict(self) -> dict[str, JSON]:
        return {"field": self.field, "message": self.message}


def validate_definition(
    defn: CodeDefinition,
    registry: Registry = DEFAULT_REGISTRY,
    graph: Graph | None = None,
    *,
    workflow: str | None = None,
) -> list[DefinitionError]:
    """Everything wrong with ``defn``; [] when it can be saved. ``graph``: also check selectors match."""
    errs: list[DefinitionError] = []
    builtin_names = {n for d in BUILTIN_CODES for n in d.names()}
    builtin_codes = {d.code for d in BUILTIN_CODES}
    if not _CODE_NAME_RE.match(defn.code):
        errs.append(DefinitionError("code", "a code is 1–32 lower-case letters, digits or _, starting with a letter"))
    for i, alias in enumerate(defn.aliases):
        if not _CODE_NAME_RE.match(alias):
            errs.append(DefinitionError(f"aliases[{i}]", f"alias {alias!r} must look like a code"))
    if defn.builtin:
        if defn.code not in builtin_codes:
            errs.append(DefinitionError("code", f"--{defn.code} is not a built-in code"))
    else:
        for fname, name in [("code", defn.code), *((f"aliases[{i}]", a) for i, a in enumerate(defn.aliases))]:
            if name.casefold() in builtin_names:
                errs.append(DefinitionError(fname, f"--{name} is a built-in code; pick another name"))
                continue
            other = registry.lookup(name)
            if other is not None and other.code != defn.code:
                errs.append(DefinitionError(fname, f"--{name} is already used by --{other.code}"))
    if len(set(a.casefold() for a in defn.names())) != len(defn.names()):
        errs.append(DefinitionError("aliases", "aliases repeat the code or each other"))
    if defn.type not in CODE_TYPES:
        errs.append(DefinitionError("type", f"type must be one of {', '.join(CODE_TYPES)}"))
    if defn.type == "enum":
        if not defn.choices:
            errs.append(DefinitionError("choices", "an enum needs at least one choice"))
        folded = [c.value.casefold() for c in defn.choices]
        if len(set(folded)) != len(folded):
            errs.append(DefinitionError("choices", "choices repeat"))
        if any(not c.value.strip() or any(ch.isspace() for ch in c.value) for c in defn.choices):
            errs.append(DefinitionError("choices", "a choice is one word without spaces"))
    elif defn.choices:
        errs.append(DefinitionError("choices", "only enum codes have choices"))
    if defn.min is not None and defn.max is not None and defn.min > defn.max:
        errs.append(DefinitionError("min", "min is larger than max"))
    if defn.default is not None and defn.type in CODE_TYPES:
        _, err = coerce(defn, _default_text(defn.default))
        if err:
            errs.append(DefinitionError("default", f"default {defn.default!r}: {err}"))
    if defn.scale and defn.type not in ("int", "float"):
        errs.append(DefinitionError("scale", "scale needs a number code (int or float)"))
    for name, pts in defn.scale.items():
        xs = [p[0] for p in pts]
        if not pts or xs != sorted(xs):
            errs.append(DefinitionError(f"scale.{name}", "points must be non-empty and sorted by x"))
    if not defn.targets and not (defn.builtin and defn.code in PLANNED_CODES):
        errs.append(DefinitionError("targets", "a code needs at least one target"))
    allowed = placeholders_for(defn)
    choice_names = {c.value.casefold() for c in defn.choices}
    index = GraphIndex(graph) if graph is not None else None
    for i, target in enumerate(defn.targets):
        where = f"targets[{i}]"
        _, serr = parse_selector(target.selector)
        if serr:
            errs.append(DefinitionError(f"{where}.selector", serr))
        elif index is not None and (target.workflow is None or target.workflow == workflow):
            if not index.select(target.selector):
                errs.append(
                    DefinitionError(
                        f"{where}.selector", f"selector {target.selector!r} matches no node in this workflow"
                    )
                )
        if target.mode not in TARGET_MODES:
            errs.append(DefinitionError(f"{where}.mode", f"mode must be one of {', '.join(TARGET_MODES)}"))
        errs.extend(_check_template(target, where, allowed, choice_names, defn))
    return errs


def _default_text(default: JSON) -> str:
    if isinstance(default, bool):
        return "true" if default else "false"
    if isinstance(default, list):
        return ", ".join(str(x) for x in default)
    if isinstance(default, dict):
        r = default.get("ratio")
        if isinstance(r, str):
            return r
        return f"{default.get('width')}x{default.get('height')}"
    return str(default)


def _check_template(
    target: Target, where: str, allowed: set[str], choices: set[str], defn: CodeDefinition
) -> list[DefinitionError]:
    errs: list[DefinitionError] = []
    tmpl = target.template

    def check_str(s: JSON, fname: str) -> None:
        if isinstance(s, str):
            for name in template_placeholders(s):
                if name not in allowed:
                    errs.append(
                        DefinitionError(
                            fname,
                            f"unknown placeholder {{{name}}}; --{defn.code} offers "
                            + ", ".join(f"{{{p}}}" for p in sorted(allowed)),
                        )
                    )
        elif isinstance(s, dict | list):
            errs.append(DefinitionError(fname, "a template is a string, number or boolean"))

    if isinstance(tmpl, dict):
        if defn.type != "enum":
            errs.append(DefinitionError(f"{where}.template", "only enum codes can map choices to templates"))
            return errs
        for key, sub in tmpl.items():
            if key.casefold() not in choices:
                errs.append(DefinitionError(f"{where}.template", f"{key!r} is not one of the choices"))
            if target.input:
                check_str(sub, f"{where}.template.{key}")
            elif isinstance(sub, dict):
                for inp, s in sub.items():
                    if not inp:
                        errs.append(DefinitionError(f"{where}.template.{key}", "empty input name"))
                    check_str(s, f"{where}.template.{key}.{inp}")
            else:
                errs.append(
                    DefinitionError(
                        f"{where}.template.{key}", "without an input, each choice maps to {input: template}"
                    )
                )
    else:
        if not target.input:
            errs.append(DefinitionError(f"{where}.input", "a target needs an input name"))
        check_str(tmpl, f"{where}.template")
    return errs


# --------------------------------------------------------------------------------------------------
# Autocomplete


@dataclass(frozen=True, slots=True)
class Suggestion:
    kind: Literal["code", "value"]
    label: str  # what the menu shows: "--ar" or "vivid"
    insert: str  # what replaces text[start:end]
    start: int
    end: int
    description: str = ""
    type: str = ""

    def to_dict(self) -> dict[str, JSON]:
        return {
            "kind": self.kind,
            "label": self.label,
            "insert": self.insert,
            "start": self.start,
            "end": self.end,
            "description": self.description,
            "type": self.type,
        }


COMMON_RATIOS = ("1:1", "16:9", "9:16", "3:2", "2:3", "4:3", "3:4", "21:9", "4:5")
_DASHES = ("--", "\u2014", "\u2013")


def _rank(query: str, candidates: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """(name, key) pairs that fit ``query``: prefix matches (shortest first), then subsequence matches,
    then merely similar names (best first). An empty query keeps the candidates' order."""
    q = query.casefold()
    prefix: list[tuple[int, int, str, str]] = []
    fuzzy: list[tuple[int, float, int, str, str]] = []
    for i, (name, key) in enumerate(candidates):
        folded = name.casefold()
        if folded.startswith(q):
            prefix.append((len(folded) if q else 0, i, name, key))
        elif _subsequence(q, folded):
            fuzzy.append((0, -difflib.SequenceMatcher(None, q, folded).ratio(), i, name, key))
        elif len(q) >= 2:
            score = difflib.SequenceMatcher(None, q, folded).ratio()
            if score >= 0.6:
                fuzzy.append((1, -score, i, name, key))
    prefix.sort()
    fuzzy.sort()
    return [(n, k) for _, _, n, k in prefix] + [(n, k) for *_, n, k in fuzzy]


def _subsequence(q: str, s: str) -> bool:
    it = iter(s)
    return all(c in it for c in q)


@dataclass(frozen=True, slots=True)
class Offered:
    """A value the studio offers for a code beyond its definition (an installed file, a sampler): what is
    inserted, what the typed text is matched against (a file's name without its folder), and a hint."""

    value: str
    match: str
    description: str = ""


_EMBEDDING_AT = re.compile(r"(?:^|[\s,(])embedding:([^\s,()]*)$", re.IGNORECASE)


def suggest(
    text: str,
    cursor: int,
    registry: Registry = DEFAULT_REGISTRY,
    limit: int = 10,
    offered: Mapping[str, Iterable[Offered]] | None = None,
) -> list[Suggestion]:
    """What fits at ``cursor``: codes (with description and type) while typing ``--na``, values of an
    enum/seed/ratio/flag code while typing its value, and the values ``offered`` by code (``embedding``:
    after ``embedding:`` in the text). [] elsewhere; never raises."""
    cursor = max(0, min(cursor, len(text)))
    ws = cursor
    while ws > 0 and not text[ws - 1].isspace():
        ws -= 1
    word = text[ws:cursor]
    we = cursor
    while we < len(text) and not text[we].isspace():
        we += 1
    offered = offered or {}
    embedding = _EMBEDDING_AT.search(text, max(0, ws - 1), cursor) if "embedding" in offered else None
    if embedding is not None:
        start = embedding.start(1)
        end = start + len(embedding.group(1))
        while end < len(text) and not (text[end].isspace() or text[end] in ",()"):
            end += 1
        return _offered("embedding", offered["embedding"], embedding.group(1), start, end, limit, "embedding")
    for dash in _DASHES:
        if word.startswith(dash):
            partial = word[len(dash) :]
            if "=" in partial:  # --code=val: complete the value
                name, _, val = partial.partition("=")
                defn = registry.lookup(name)
                if defn is None:
                    return []
                vstart = ws + len(dash) + len(name) + 1
                return _values(defn, val, vstart, we, limit, offered)
            if dash != "--" and not partial:
                return []
            return _codes(registry, partial, ws, we, limit)
    if word == "-":
        return _codes(registry, "", ws, we, limit)
    # Value position: the previous word is a known code.
    ps = ws
    while ps > 0 and text[ps - 1].isspace():
        ps -= 1
    pe = ps
    while ps > 0 and not text[ps - 1].isspace():
        ps -= 1
    prev = text[ps:pe]
    for dash in _DASHES:
        if prev.startswith(dash) and pe < ws:
            defn = registry.lookup(prev[len(dash) :])
            if defn is not None and defn.type != "flag":
                return _values(defn, word, ws, we, limit, offered)
    return []


def _codes(registry: Registry, partial: str, start: int, end: int, limit: int) -> list[Suggestion]:
    cands = [(name, name) for name in registry.names()]
    out: list[Suggestion] = []
    seen: set[str] = set()
    for name, _ in _rank(partial, cands):
        defn = registry.lookup(name)
        if defn is None or defn.code in seen:
            continue
        seen.add(defn.code)
        label = f"--{name}"
        out.append(
            Suggestion(
                "code",
                label,
                label + ("" if defn.type == "flag" else " "),
                start,
                end,
                defn.description,
                defn.type,
            )
        )
        if len(out) >= limit:
            break
    return out


def _offered(
    code: str, items: Iterable[Offered], partial: str, start: int, end: int, limit: int, type_: str
) -> list[Suggestion]:
    typed = partial.strip("\"'")
    by_key: dict[str, Offered] = {}
    cands: list[tuple[str, str]] = []
    for i, item in enumerate(items):
        key = str(i)
        by_key[key] = item
        # the whole name too, so typing its folder finds it
        cands.append((item.match, key))
        if item.value != item.match:
            cands.append((item.value, key))
    out: list[Suggestion] = []
    seen: set[str] = set()
    for _, key in _rank(typed, cands):
        if key in seen:
            continue
        seen.add(key)
        item = by_key[key]
        insert = f'"{item.value}"' if any(ch.isspace() for ch in item.value) else item.value
        out.append(Suggestion("value", item.value, insert + ("" if code == "embedding" else " "), start, end,
                              item.description, type_))  # fmt: skip
        if len(out) >= limit:
            break
    return out


def _values(
    defn: CodeDefinition,
    partial: str,
    start: int,
    end: int,
    limit: int,
    offered: Mapping[str, Iterable[Offered]] | None = None,
) -> list[Suggestion]:
    if offered and defn.code in offered:
        if ":" in partial and defn.code in REPEATABLE_CODES:
            return []  # ``--lora NAME:0.7``: the name is chosen, a weight is being typed
        return _offered(defn.code, offered[defn.code], partial, start, end, limit, defn.type)
    if defn.type == "enum":
        cands = [(c.value, c.description) for c in defn.choices]
    elif defn.type == "seed":
        cands = [("random", "a new seed each run")]
    elif defn.type == "ratio":
        cands = [(r, "") for r in COMMON_RATIOS]
    elif defn.type == "flag":
        cands = [("true", ""), ("false", "")]
    else:
        return []
    out = [Suggestion("value", name, name + " ", start, end, desc, defn.type) for name, desc in _rank(partial, cands)]
    return out[:limit]
