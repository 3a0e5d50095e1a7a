"""Shortcodes in the store: each user's registry, definitions CRUD, import/export, and the prompt path.

Built-in codes are rows of the same table users edit (``builtin`` set, no owner). They are seeded when
missing the first time a studio touches the table after start-up, and only the owner edits them: that
is how the owner changes, say, the style suffixes for everyone. User codes are private to their owner
unless ``shared``; a user sees the built-ins, their own codes, then other users' shared codes, and the
first definition of a name wins, so nobody's edit changes what another user's own codes mean.

The prompt path (preview, jobs with a prompt, generate) parses the text with the user's registry, puts
the clean text into the graph's positive prompt and turns the winning codes into RFC 6902 operations:
the operations stored with the job are exactly the difference between the graph sent and the graph
ComfyUI received.

Offsets in and out of this module count UTF-16 code units, as JavaScript strings (the UI) do; the
engine counts code points. ``_Utf16`` converts at this boundary.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import or_, select

from ..db.models import utcnow
from ..db.shortcodes import Shortcode
from ..db.store import Store
from ..engine import shortcodes as sc
from ..engine.errors import StudioError, not_found, validation_error
from ..engine.graph import check_api_graph
from ..engine.ids import IMAGE
from ..engine.patches import PatchOp, PatchReport, apply_patches, build_patches
from ..engine.selectors import JSON, PROMPT_INPUTS, Graph, GraphIndex
from ..engine.text import check_prompt_text
from .jobs import iso

if TYPE_CHECKING:
    from .studio import Studio

log = logging.getLogger("comfyui_studio.shortcodes")

EXPORT_VERSION = 1
MAX_CODES_PER_USER = 200
MAX_IMPORT = 500


# --------------------------------------------------------------------------------------------------
# Input shape of one definition (routes and import share it)


class DefinitionIn(BaseModel):
    """One shortcode definition as a client sends it; the engine checks the meaning."""

    model_config = ConfigDict(extra="forbid", strict=True)

    code: str = Field(min_length=1, max_length=32)
    type: Literal["int", "float", "ratio", "size", "enum", "string", "flag", "seed", "list"]
    description: str = Field(default="", max_length=500)
    aliases: list[str] = Field(default_factory=list, max_length=16)
    choices: list[str | dict[str, object]] = Field(default_factory=list, max_length=200)
    default: object = None
    min: float | None = None
    max: float | None = None
    scale: dict[str, list[list[float]]] = Field(default_factory=dict, max_length=16)
    targets: list[dict[str, object]] = Field(min_length=1, max_length=32)
    shared: bool = False
    workflow_id: str | None = Field(default=None, min_length=1, max_length=32)
    # Present in exports; on import a built-in definition updates that built-in (owner only).
    builtin: bool = False


class DefinitionRequest(DefinitionIn):
    """A definition to save, optionally with an API-format graph to check its selectors against."""

    graph: dict[str, object] | None = None


class ExportDocument(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    version: int = EXPORT_VERSION
    shortcodes: list[DefinitionIn] = Field(max_length=MAX_IMPORT)


# --------------------------------------------------------------------------------------------------
# Offsets: the UI counts UTF-16 code units


class _Utf16:
    """Code-point index ↔ UTF-16 offset for one text (identity unless it has astral characters)."""

    __slots__ = ("_u16",)

    def __init__(self, text: str) -> None:
        self._u16: list[int] | None = None
        if text and max(text) > "\uffff":
            u16 = [0]
            for ch in text:
                u16.append(u16[-1] + (2 if ord(ch) > 0xFFFF else 1))
            self._u16 = u16

    def out(self, index: int) -> int:
        if self._u16 is None or index < 0:
            return index
        return self._u16[min(index, len(self._u16) - 1)]

    def inward(self, offset: int) -> int:
        if self._u16 is None:
            return offset
        # An offset inside a surrogate pair snaps to the character after it.
        return min(bisect.bisect_left(self._u16, offset), len(self._u16) - 1)


# --------------------------------------------------------------------------------------------------
# Rows and definitions


def _row_definition(row: Shortcode) -> dict[str, JSON]:
    """A row's definition fields as plain JSON (what CodeDefinition.from_dict and export share)."""
    return {
        "code": row.code,
        "type": row.type,
        "description": row.description,
        "aliases": list(row.aliases or []),
        "choices": list(row.choices or []),
        "default": row.default,
        "min": row.min,
        "max": row.max,
        "scale": dict(row.scale or {}),
        "targets": list(row.targets or []),
        "builtin": row.builtin,
    }


def _definition_of(row: Shortcode) -> sc.CodeDefinition:
    return sc.CodeDefinition.from_dict(_row_definition(row))


def _fill_row(row: Shortcode, defn: sc.CodeDefinition, *, shared: bool, workflow_id: str | None) -> None:
    data = defn.to_dict()
    row.code = defn.code
    row.type = defn.type
    row.description = defn.description
    row.aliases = data["aliases"]  # type: ignore[assignment]
    row.choices = data["choices"]  # type: ignore[assignment]
    row.default = defn.default
    row.min = defn.min
    row.max = defn.max
    row.scale = data["scale"]  # type: ignore[assignment]
    row.targets = data["targets"]  # type: ignore[assignment]
    row.shared = shared
    row.workflow_id = workflow_id


def _iso(row: Shortcode) -> tuple[str | None, str | None]:
    return iso(row.created_at), iso(row.updated_at)


def _exported(row: Shortcode) -> dict[str, JSON]:
    """The definition as import takes it back: no id, no owner."""
    return {**_row_definition(row), "shared": row.shared, "workflow_id": row.workflow_id}


def _row_to_dict(row: Shortcode, user_id: int, owner: bool) -> dict[str, JSON]:
    created, updated = _iso(row)
    mine = row.owner_id == user_id
    return {
        "id": row.id,
        **_exported(row),
        "mine": mine,
        "editable": mine or (row.builtin and owner),
        "created_at": created,
        "updated_at": updated,
    }


def _in_to_definition(body: DefinitionIn, loc: list[str | int]) -> sc.CodeDefinition:
    data: dict[str, JSON] = body.model_dump(exclude={"shared", "workflow_id", "graph"})  # type: ignore[assignment]
    try:
        defn = sc.CodeDefinition.from_dict(data)
    except (ValueError, TypeError) as exc:
        raise StudioError(
            "validation_error", f"{_where(loc)}{exc}", [{"loc": loc, "message": str(exc), "type": "value_error"}]
        ) from None
    return _with_typed_default(defn)


def _with_typed_default(defn: sc.CodeDefinition) -> sc.CodeDefinition:
    """Store the default as the value the parser would produce: the parser uses it as is."""
    if defn.default is None:
        return defn
    value, err = sc.coerce(defn, sc._default_text(defn.default))
    if err is not None:
        return defn  # validate_definition reports it
    return replace(defn, default=value)


def _where(loc: list[str | int]) -> str:
    return (".".join(str(p) for p in loc) + ": ") if loc else ""


_FIELD_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _field_loc(field: str) -> list[str | int]:
    """``targets[0].template`` → ``["targets", 0, "template"]``."""
    return [int(m.group(2)) if m.group(2) is not None else m.group(1) for m in _FIELD_PART.finditer(field)]


def _definition_problems(
    defn: sc.CodeDefinition,
    others: list[sc.CodeDefinition],
    graph: Graph | None,
    workflow_id: str | None,
    taken: set[str],
) -> list[dict[str, JSON]]:
    """Everything that stops ``defn`` being saved next to ``others`` (the user's other codes that apply
    to ``workflow_id``); ``taken``: the codes of all the user's other rows, whatever their workflow."""
    registry = sc.Registry.with_user_codes(others)
    problems = [
        {"loc": _field_loc(e.field), "message": e.message, "type": "definition_error"}
        for e in sc.validate_definition(defn, registry, graph, workflow=workflow_id)
    ]
    if not defn.builtin and defn.code in taken:
        problems.append({"loc": ["code"], "message": f"--{defn.code} already exists", "type": "conflict"})
    return problems  # type: ignore[return-value]


def _ours(rows: Iterable[Shortcode], user_id: int) -> list[Shortcode]:
    """Built-ins and the user's own codes: what a new name must not collide with. Other users' shared
    codes are left out on purpose: the user's own code shadows them, so sharing never blocks a name."""
    return [r for r in rows if r.builtin or r.owner_id == user_id]


def _refuse(problems: list[dict[str, JSON]], prefix: list[str | int] | None = None) -> StudioError:
    prefix = prefix or []
    details: list[JSON] = [{**p, "loc": [*prefix, *p["loc"]]} for p in problems]  # type: ignore[list-item,misc]
    first = details[0]
    return StudioError("validation_error", f"{_where(first['loc'])}{first['message']}", details)  # type: ignore[index,arg-type]


# --------------------------------------------------------------------------------------------------
# The service


class Shortcodes:
    """Definitions in one studio's store. Methods take the acting user and whether they are the owner."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._seeded = False
        self._seed_lock: asyncio.Lock | None = None

    async def ensure_seeded(self) -> None:
        """Insert the built-in codes that have no row yet (a new release may add some); once per process."""
        if self._seeded:
            return
        if self._seed_lock is None:
            self._seed_lock = asyncio.Lock()
        async with self._seed_lock:
            if self._seeded:
                return
            async with self.store.session() as session, session.begin():
                have = set((await session.scalars(select(Shortcode.code).where(Shortcode.builtin))).all())
                added = []
                for defn in sc.BUILTIN_CODES:
                    if defn.code in have:
                        continue
                    row = Shortcode(owner_id=None, builtin=True)
                    _fill_row(row, defn, shared=True, workflow_id=None)
                    session.add(row)
                    added.append(defn.code)
            if added:
                log.info("Seeded built-in shortcodes: %s", ", ".join(added))
            self._seeded = True

    async def _visible(self, session: object, user_id: int) -> list[Shortcode]:
        """Built-ins, then the user's own codes, then others' shared codes: the registry's precedence."""
        rows = (
            await session.scalars(  # type: ignore[attr-defined]
                select(Shortcode)
                .where(or_(Shortcode.builtin, Shortcode.owner_id == user_id, Shortcode.shared))
                .order_by(Shortcode.id)
            )
        ).all()
        rank = {d.code: i for i, d in enumerate(sc.BUILTIN_CODES)}

        def precedence(r: Shortcode) -> tuple[int, int, str]:
            if r.builtin:
                return (0, rank.get(r.code, len(rank)), r.id)
            return (1 if r.owner_id == user_id else 2, 0, r.id)

        return sorted(rows, key=precedence)

    @staticmethod
    def _definitions(rows: Iterable[Shortcode], workflow_id: str | None = None) -> list[sc.CodeDefinition]:
        out = []
        for row in rows:
            if row.workflow_id is not None and row.workflow_id != workflow_id:
                continue
            try:
                out.append(_definition_of(row))
            except (ValueError, TypeError) as exc:
                # A row an older release wrote and this one cannot read: skip it rather than break prompts.
                log.warning("Skipping unreadable shortcode row %s (--%s): %s", row.id, row.code, exc)
        return out

    async def registry(self, user_id: int, workflow_id: str | None = None) -> sc.Registry:
        """The codes ``user_id`` can type: built-ins (as the owner edited them), own, others' shared."""
        await self.ensure_seeded()
        async with self.store.session() as session:
            rows = await self._visible(session, user_id)
        return sc.Registry.with_user_codes(self._definitions(rows, workflow_id))

    async def list(self, user_id: int, owner: bool) -> dict[str, JSON]:
        await self.ensure_seeded()
        async with self.store.session() as session:
            rows = await self._visible(session, user_id)
        return {"items": [_row_to_dict(r, user_id, owner) for r in rows]}

    async def _load(self, session: object, user_id: int, shortcode_id: str) -> Shortcode:
        row = await session.get(Shortcode, shortcode_id)  # type: ignore[attr-defined]
        # Another user's private code does not exist, as far as this user can tell.
        if row is None or not (row.builtin or row.shared or row.owner_id == user_id):
            raise not_found("Shortcode")
        return row

    async def get(self, user_id: int, owner: bool, shortcode_id: str) -> dict[str, JSON]:
        await self.ensure_seeded()
        async with self.store.session() as session:
            return _row_to_dict(await self._load(session, user_id, shortcode_id), user_id, owner)

    async def create(
        self, user_id: int, owner: bool, body: DefinitionIn, *, graph: Graph | None = None
    ) -> dict[str, JSON]:
        if body.builtin:
            raise StudioError(
                "validation_error",
                "builtin: built-in codes come with the studio; the owner edits the existing row",
                [{"loc": ["builtin"], "message": "cannot create a built-in code", "type": "value_error"}],
            )
        defn = _in_to_definition(body, [])
        await self.ensure_seeded()
        async with self.store.session(user_id) as session, session.begin():
            rows = await self._visible(session, user_id)
            if sum(1 for r in rows if r.owner_id == user_id) >= MAX_CODES_PER_USER:
                raise StudioError("conflict", f"You already have {MAX_CODES_PER_USER} shortcodes; delete some first")
            others = self._definitions(_ours(rows, user_id), body.workflow_id)
            taken = {r.code for r in rows if r.owner_id == user_id}
            problems = _definition_problems(defn, others, graph, body.workflow_id, taken)
            if problems:
                raise _refuse(problems)
            row = Shortcode(owner_id=user_id, builtin=False)
            _fill_row(row, defn, shared=body.shared, workflow_id=body.workflow_id)
            session.add(row)
            await session.flush()
            return _row_to_dict(row, user_id, owner)

    async def update(
        self, user_id: int, owner: bool, shortcode_id: str, body: DefinitionIn, *, graph: Graph | None = None
    ) -> dict[str, JSON]:
        await self.ensure_seeded()
        async with self.store.session(user_id) as session, session.begin():
            row = await self._load(session, user_id, shortcode_id)
            self._check_may_edit(row, user_id, owner)
            defn = self._checked_edit(row, body, [])
            rows = await self._visible(session, user_id)
            others = self._definitions((r for r in _ours(rows, user_id) if r.id != row.id), body.workflow_id)
            taken = {r.code for r in rows if r.owner_id == user_id and r.id != row.id}
            problems = _definition_problems(defn, others, graph, body.workflow_id, taken)
            if problems:
                raise _refuse(problems)
            _fill_row(row, defn, shared=True if row.builtin else body.shared, workflow_id=body.workflow_id)
            row.updated_at = utcnow()
            await session.flush()
            return _row_to_dict(row, user_id, owner)

    @staticmethod
    def _check_may_edit(row: Shortcode, user_id: int, owner: bool) -> None:
        if row.builtin and not owner:
            raise StudioError("forbidden", f"Only the owner edits built-in codes such as --{row.code}")
        if not row.builtin and row.owner_id != user_id:
            raise StudioError("forbidden", f"--{row.code} is shared with you by another user; copy it to change it")

    @staticmethod
    def _checked_edit(row: Shortcode, body: DefinitionIn, loc: list[str | int]) -> sc.CodeDefinition:
        """The new definition of ``row``; a built-in keeps its code, its type and its place for everyone."""
        if row.builtin:
            fixed = [(f, getattr(body, f), getattr(row, f)) for f in ("code", "type")]
            for name, new, old in fixed:
                if new != old:
                    msg = f"a built-in code keeps its {name} ({old})"
                    raise StudioError(
                        "validation_error",
                        f"{_where([*loc, name])}{msg}",
                        [{"loc": [*loc, name], "message": msg, "type": "value_error"}],
                    )
            if body.workflow_id is not None:
                msg = "built-in codes apply to every workflow"
                raise StudioError(
                    "validation_error",
                    f"{_where([*loc, 'workflow_id'])}{msg}",
                    [{"loc": [*loc, "workflow_id"], "message": msg, "type": "value_error"}],
                )
            body = body.model_copy(update={"builtin": True})
        elif body.builtin:
            raise StudioError(
                "validation_error",
                f"{_where([*loc, 'builtin'])}a user code cannot become built-in",
                [{"loc": [*loc, "builtin"], "message": "a user code cannot become built-in", "type": "value_error"}],
            )
        return _in_to_definition(body, loc)

    async def delete(self, user_id: int, owner: bool, shortcode_id: str) -> dict[str, JSON]:
        await self.ensure_seeded()
        async with self.store.session(user_id) as session, session.begin():
            row = await self._load(session, user_id, shortcode_id)
            if row.builtin:
                raise StudioError("conflict", f"--{row.code} is built in: edit it, but it cannot be deleted")
            self._check_may_edit(row, user_id, owner)
            await session.delete(row)
            return {"id": shortcode_id, "deleted": True}

    async def export(self, user_id: int, owner: bool) -> dict[str, JSON]:
        """The user's own codes (and for the owner the built-ins too) as an import document."""
        await self.ensure_seeded()
        async with self.store.session() as session:
            rows = await self._visible(session, user_id)
        picked = [r for r in rows if r.owner_id == user_id or (owner and r.builtin)]
        return {"version": EXPORT_VERSION, "shortcodes": [_exported(r) for r in picked]}

    async def import_(self, user_id: int, owner: bool, document: ExportDocument) -> dict[str, JSON]:
        """Create or update (by code) every definition; all are checked first and nothing is written
        unless every one is valid. Built-in entries update the built-ins and need the owner."""
        await self.ensure_seeded()
        async with self.store.session(user_id) as session, session.begin():
            rows = await self._visible(session, user_id)
            builtins = {r.code: r for r in rows if r.builtin}
            own = {r.code: r for r in rows if r.owner_id == user_id and not r.builtin}
            codes = [item.code for item in document.shortcodes]
            repeated = sorted({c for c in codes if codes.count(c) > 1})
            if repeated:
                raise StudioError(
                    "validation_error",
                    f"shortcodes: the document defines {', '.join('--' + c for c in repeated)} more than once",
                    [{"loc": ["shortcodes"], "message": "repeated codes", "type": "value_error"}],
                )
            # Check each entry against what the store will hold after the import: the other entries included.
            replaced = {own[c].id for c in codes if c in own} | {builtins[c].id for c in codes if c in builtins}
            kept = [r for r in _ours(rows, user_id) if r.id not in replaced]
            plans: list[tuple[Shortcode | None, DefinitionIn, sc.CodeDefinition]] = []
            problems: list[dict[str, JSON]] = []
            for i, item in enumerate(document.shortcodes):
                loc: list[str | int] = ["shortcodes", i]
                if item.builtin:
                    if not owner:
                        raise StudioError("forbidden", f"Only the owner imports built-in codes (--{item.code})")
                    row = builtins.get(item.code)
                    if row is None:
                        raise _refuse(
                            [{"loc": ["code"], "message": f"--{item.code} is not a built-in", "type": "value_error"}],
                            loc,
                        )
                    defn = self._checked_edit(row, item, loc)
                else:
                    row = own.get(item.code)
                    defn = _in_to_definition(item, loc)
                plans.append((row, item, defn))
            new_defs = [d for _, _, d in plans]
            taken = {r.code for r in kept if r.owner_id == user_id}
            for i, (_, item, defn) in enumerate(plans):
                others = self._definitions(kept, item.workflow_id) + [d for j, d in enumerate(new_defs) if j != i]
                for p in _definition_problems(defn, others, None, item.workflow_id, taken):
                    problems.append({**p, "loc": ["shortcodes", i, *p["loc"]]})  # type: ignore[misc]
            if problems:
                raise _refuse(problems)
            created = sum(1 for row, _, _ in plans if row is None)
            if len(own) + created > MAX_CODES_PER_USER:
                raise StudioError("conflict", f"The import would give you more than {MAX_CODES_PER_USER} shortcodes")
            now = utcnow()
            for row, item, defn in plans:
                if row is None:
                    row = Shortcode(owner_id=user_id, builtin=False)
                    session.add(row)
                else:
                    row.updated_at = now
                _fill_row(row, defn, shared=True if row.builtin else item.shared, workflow_id=item.workflow_id)
            return {"created": created, "updated": len(plans) - created}


def shortcodes_of(studio: Studio) -> Shortcodes:
    """The studio's shortcode service."""
    return studio.shortcodes


async def default_generate_graph(app: Studio, user: int) -> Graph | None:
    """The graph `POST /generate` runs when the request brings none; None: no generate workflow configured."""
    return await app.actions.graph_for_slot(user, "generate")


async def workflow_graph(app: Studio, user: int, workflow_id: str) -> Graph | None:
    """The graph of ``workflow_id``, for checking a definition's selectors against it."""
    _workflow, version = await app.workflows.head(user, workflow_id)
    return version.graph


async def _selector_graph(app: Studio, user: int, body: DefinitionRequest) -> Graph | None:
    """The graph a definition's selectors must match: the one sent along, else its workflow's."""
    if body.graph is not None:
        return check_api_graph(body.graph)  # type: ignore[arg-type,return-value]
    if body.workflow_id is not None:
        return await workflow_graph(app, user, body.workflow_id)
    return None


async def create_code(app: Studio, user: int, owner: bool, body: DefinitionRequest) -> dict[str, JSON]:
    graph = await _selector_graph(app, user, body)
    return await shortcodes_of(app).create(user, owner, body, graph=graph)


async def update_code(
    app: Studio, user: int, owner: bool, shortcode_id: str, body: DefinitionRequest
) -> dict[str, JSON]:
    graph = await _selector_graph(app, user, body)
    return await shortcodes_of(app).update(user, owner, shortcode_id, body, graph=graph)


# --------------------------------------------------------------------------------------------------
# The prompt path


@dataclass(slots=True)
class PromptPlan:
    """A parsed prompt applied to one graph: the patched graph and the exact operations that made it."""

    parsed: sc.ParseResult
    graph: Graph | None
    ops: list[PatchOp]
    reports: list[PatchReport]
    warnings: list[dict[str, JSON]]
    errors: list[dict[str, JSON]]


def _span(offsets: _Utf16, start: int | None, end: int | None, message: str, kind: str) -> dict[str, JSON]:
    return {
        "start": None if start is None else offsets.out(start),
        "end": None if end is None else offsets.out(end),
        "message": message,
        "kind": kind,
    }


def _prompt_ops(graph: Graph, clean_text: str) -> list[PatchOp]:
    """Put the clean text into every text input of the positive prompt nodes."""
    ops: list[PatchOp] = []
    names = PROMPT_INPUTS.split("|")
    for nid in GraphIndex(graph).role("positive"):
        inputs = graph[nid].get("inputs") or {}
        for name in names:
            if isinstance(inputs.get(name), str):
                path = "/" + nid.replace("~", "~0").replace("/", "~1") + "/inputs/" + name
                ops.append({"op": "replace", "path": path, "value": clean_text})
    return ops


def plan_prompt(
    text: str,
    registry: sc.Registry,
    graph: Graph | None,
    *,
    workflow_id: str | None = None,
    rng: random.Random | None = None,
) -> PromptPlan:
    """Parse ``text`` and, given a graph, build the operations: clean text into the positive prompt,
    then every winning code. An operation on the prompt text that a code also writes (``--style``
    appends) is kept once, with the final value. An all-codes prompt leaves the graph's text alone."""
    parsed = sc.parse(text, registry)
    offsets = _Utf16(text)
    errors = [_span(offsets, d.start, d.end, d.message, d.kind) for d in parsed.errors]
    warnings = [_span(offsets, d.start, d.end, d.message, d.kind) for d in parsed.warnings]
    if graph is None:
        return PromptPlan(parsed, None, [], [], warnings, errors)
    text_ops = _prompt_ops(graph, parsed.text) if parsed.text else []
    if parsed.text and not text_ops:
        warnings.append(
            _span(
                offsets,
                None,
                None,
                "This workflow has no positive prompt to put the text in; only the shortcodes were applied",
                "no_positive_prompt",
            )
        )
    with_text = apply_patches(graph, text_ops) if text_ops else graph
    plan = build_patches(with_text, parsed, registry, workflow=workflow_id, rng=rng)
    code_paths = {op["path"] for op in plan.ops}
    ops = [op for op in text_ops if op["path"] not in code_paths] + plan.ops
    tokens = {t.code: t for t in parsed.winning_tokens()}
    for report in plan.reports:
        token = tokens.get(report.code)
        for message in report.warnings:
            warnings.append(
                _span(offsets, token.start if token else None, token.end if token else None, message, "no_effect")
            )
    return PromptPlan(parsed, apply_patches(graph, ops), ops, plan.reports, warnings, errors)


def preview_dict(plan: PromptPlan, text: str) -> dict[str, JSON]:
    offsets = _Utf16(text)
    return {
        "clean_text": plan.parsed.text,
        "tokens": [
            {"code": t.code, "raw": t.raw, "value": t.value, "start": offsets.out(t.start), "end": offsets.out(t.end)}
            for t in plan.parsed.tokens
            if t.code is not None
        ],
        "errors": plan.errors,
        "warnings": plan.warnings,
        "patches": [dict(op) for op in plan.ops],  # type: ignore[misc]
        "reports": [r.to_dict() for r in plan.reports],
    }


def prompt_refused(plan: PromptPlan, field: str) -> StudioError:
    """400 naming every parse error with its offsets; the job is not submitted."""
    count = len(plan.errors)
    first = plan.errors[0]
    details: list[JSON] = [
        {"loc": [field], "message": e["message"], "type": e["kind"], "start": e["start"], "end": e["end"]}
        for e in plan.errors
    ]
    noun = "an error" if count == 1 else f"{count} errors"
    return StudioError("validation_error", f"The prompt has {noun}: {first['message']}", details)


async def preview(
    app: Studio, user: int, text: str, graph: Graph | None = None, workflow_id: str | None = None
) -> dict[str, JSON]:
    """What submitting ``text`` would do, without queueing anything."""
    check_prompt_text(text, app.config.max_prompt_chars)  # the length; offsets refer to the text as sent
    if graph is not None:
        graph = check_api_graph(graph)  # type: ignore[arg-type,assignment]
    registry = await shortcodes_of(app).registry(user, workflow_id)
    if graph is None:
        try:
            graph = await default_generate_graph(app, user)
        except StudioError:
            graph = None  # the default workflow cannot run yet (no checkpoint): the preview parses only
    return preview_dict(plan_prompt(text, registry, graph, workflow_id=workflow_id), text)


async def submit_prompt(
    app: Studio,
    user: int,
    graph: Graph,
    text: str,
    *,
    front: bool = False,
    field: str = "prompt",
    workflow_id: str | None = None,
    choice_seed: int | None = None,
) -> dict[str, JSON]:
    """Parse, patch and submit; refused with the parse errors (and nothing written) when there are any.

    The text's ``{a|b}`` choices and comments are left for ``Jobs.submit``, which draws them in every text
    input that takes dynamic prompts, the prompt's own included."""
    stored_text = check_prompt_text(text, app.config.max_prompt_chars)
    registry = await shortcodes_of(app).registry(user, workflow_id)
    plan = plan_prompt(text, registry, graph, workflow_id=workflow_id)
    if plan.errors:
        raise prompt_refused(plan, field)
    assert plan.graph is not None
    return await app.jobs.submit(
        user,
        plan.graph,  # type: ignore[arg-type]
        prompt_text=stored_text,
        clean_text=plan.parsed.text,  # the prompt without its codes, kept beside what was typed
        front=front,
        patches=plan.ops,  # type: ignore[arg-type]
        choice_seed=choice_seed,
    )


async def generate(
    app: Studio,
    user: int,
    text: str,
    graph: Graph | None = None,
    image_ids: list[str] | None = None,
    *,
    choice_seed: int | None = None,
) -> dict[str, JSON]:
    """The prompt bar's submit: ``text`` on the given graph, or on the default generate workflow.

    An image prompt (one image chip) runs the img2img action on that image with the text, as
    Midjourney's image prompts do.
    """
    if image_ids:
        if graph is not None or len(image_ids) > 1:
            raise validation_error(
                "image_ids: send one image prompt, without a graph; it runs the img2img action", ["image_ids"]
            )
        job = await app.actions.run(
            user, "img2img", image_id=checked_image_id(image_ids[0]), text=text, choice_seed=choice_seed
        )
        return job
    if graph is None:
        graph = await default_generate_graph(app, user)
        if graph is None:
            raise StudioError("conflict", "No generate workflow configured")
    else:
        graph = check_api_graph(graph)  # type: ignore[arg-type,assignment]
    return await submit_prompt(app, user, graph, text, field="text", choice_seed=choice_seed)


def checked_image_id(value: str) -> str:
    if not IMAGE.matches(value):
        raise validation_error("image_ids: not an image id", ["image_ids", 0])
    return value


async def suggest(app: Studio, user: int, text: str, cursor: int) -> dict[str, JSON]:
    """Completions at ``cursor`` (UTF-16) and the span they replace."""
    registry = await shortcodes_of(app).registry(user)
    offsets = _Utf16(text)
    found = sc.suggest(text, offsets.inward(cursor), registry)
    items: list[JSON] = [
        {"label": s.label, "insert": s.insert, "kind": s.kind, "description": s.description, "type": s.type}
        for s in found
    ]
    if found:
        replace = {"start": offsets.out(found[0].start), "end": offsets.out(found[0].end)}
    else:
        replace = {"start": cursor, "end": cursor}
    return {"items": items, "replace": replace}


# --------------------------------------------------------------------------------------------------
# Trying a definition before saving it (the Shortcodes page's live preview)


class DefinitionPreview(BaseModel):
    """A definition being edited, a sample prompt, and the workflow (or graph) to plan it on."""

    model_config = ConfigDict(extra="forbid", strict=True)

    definition: DefinitionIn
    text: str = Field(max_length=20_000)
    workflow_id: str | None = Field(default=None, min_length=1, max_length=32)
    graph: dict[str, object] | None = None
    # The code being edited: its stored row is left out, as a save would replace it.
    shortcode_id: str | None = Field(default=None, min_length=1, max_length=32)


async def preview_definition(app: Studio, user: int, owner: bool, body: DefinitionPreview) -> dict[str, JSON]:
    """What ``body.text`` would do with the definition as it stands, nothing saved: the preview of
    `POST /prompt/preview` plus ``definition_errors`` (what saving it would refuse; then the preview
    runs without the draft)."""
    # The definition is checked as a save would check it (against its own workflow's graph, if it is
    # limited to one); the sample prompt is planned on the graph sent, else the workflow named, else the
    # generate slot's.
    limited = body.definition.workflow_id
    checked = await workflow_graph(app, user, limited) if limited is not None else None
    graph: Graph | None = None
    if body.graph is not None:
        graph = check_api_graph(body.graph)  # type: ignore[arg-type,assignment]
    elif body.workflow_id is not None:
        graph = await workflow_graph(app, user, body.workflow_id)
    if graph is None:
        try:
            graph = await default_generate_graph(app, user)
        except StudioError:
            graph = None
    service = shortcodes_of(app)
    await service.ensure_seeded()
    async with service.store.session() as session:
        rows = await service._visible(session, user)
    editing = next((r for r in rows if r.id == body.shortcode_id), None)
    rest = [r for r in rows if r.id != body.shortcode_id]
    try:
        if editing is not None and editing.builtin:
            defn = Shortcodes._checked_edit(editing, body.definition, ["definition"])
        else:
            defn = _in_to_definition(body.definition, ["definition"])
    except StudioError as exc:
        defn = None
        problems = [d for d in exc.details if isinstance(d, dict)] or [
            {"loc": ["definition"], "message": exc.message, "type": "value_error"}
        ]
    else:
        others = Shortcodes._definitions(_ours(rest, user), limited)
        taken = {r.code for r in rest if r.owner_id == user}
        problems = _definition_problems(defn, others, checked, limited, taken)
    codes = Shortcodes._definitions(
        [r for r in rest if defn is None or problems or r.code != defn.code], body.workflow_id
    )
    if defn is not None and not problems:
        codes.append(defn)
    plan = plan_prompt(body.text, sc.Registry.with_user_codes(codes), graph, workflow_id=body.workflow_id)
    return {**preview_dict(plan, body.text), "definition_errors": problems}  # type: ignore[dict-item]
