"""Shortcodes in the store: each user's registry, definitions CRUD, import and export.

Built-in codes are rows of the same table users edit (``builtin`` set, no owner). They are seeded when
missing the first time a studio touches the table after start-up, and only the owner edits them: that
is how the owner changes, say, the style suffixes for everyone. User codes are private to their owner
unless ``shared``; a user sees the built-ins, their own codes, then other users' shared codes, and the
first definition of a name wins, so nobody's edit changes what another user's own codes mean.

Registries are read on every submit, so each is kept in memory until a definition changes. What a prompt
does to a graph is planned in ``engine/planner.py``; ``services/prompts.py`` gathers its inputs.
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from typing import Concatenate, Literal, ParamSpec, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from ..db import shortcodes as repo
from ..db.models import utcnow
from ..db.shortcodes import Shortcode
from ..db.store import Session, Store
from ..engine import shortcodes as sc
from ..engine.errors import StudioError, not_found
from ..engine.selectors import JSON, Graph
from .jobs import iso

log = logging.getLogger("comfyui_studio.shortcodes")

P = ParamSpec("P")
R = TypeVar("R")

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
    targets: list[dict[str, object]] = Field(max_length=32)  # [] only for planned built-ins
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
    data: dict[str, JSON] = body.model_dump(exclude={"shared", "workflow_id", "graph"})
    try:
        defn = sc.CodeDefinition.from_dict(data)
    except (ValueError, TypeError) as exc:
        where: list[JSON] = list(loc)
        raise StudioError(
            "validation_error", f"{_where(loc)}{exc}", [{"loc": where, "message": str(exc), "type": "value_error"}]
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
    located: list[dict[str, JSON]] = []
    for problem in problems:
        loc = problem.get("loc")
        located.append({**problem, "loc": [*prefix, *(loc if isinstance(loc, list) else [])]})
    first_loc = located[0]["loc"]
    where = [p for p in first_loc if isinstance(p, str | int)] if isinstance(first_loc, list) else []
    details: list[JSON] = list(located)
    return StudioError("validation_error", f"{_where(where)}{located[0]['message']}", details)


# --------------------------------------------------------------------------------------------------
# The service


def _changes(
    method: Callable[Concatenate[Shortcodes, P], Awaitable[R]],
) -> Callable[Concatenate[Shortcodes, P], Awaitable[R]]:
    """A method that may write definitions: cached registries are dropped when it ends, however it ends."""

    @functools.wraps(method)
    async def wrapper(self: Shortcodes, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await method(self, *args, **kwargs)
        finally:
            self.changed()

    return wrapper


class Shortcodes:
    """Definitions in one studio's store. Methods take the acting user and whether they are the owner."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._seeded = False
        self._seed_lock: asyncio.Lock | None = None
        # (user, workflow) → registry; any change of any definition clears it (shared codes and
        # built-ins are in other users' registries too)
        self._registries: dict[tuple[int, str | None], sc.Registry] = {}
        self._generation = 0

    def changed(self) -> None:
        """A definition was written: registries are read again from the store."""
        self._generation += 1
        self._registries.clear()

    async def ensure_seeded(self) -> None:
        """Insert the built-in codes that have no row yet (a new release may add some); once per process."""
        if self._seeded:
            return
        if self._seed_lock is None:
            self._seed_lock = asyncio.Lock()
        async with self._seed_lock:
            if self._seeded:
                return
            async with self.store.transaction() as session:
                have = await repo.builtin_codes(session)
                added: list[Shortcode] = []
                for defn in sc.BUILTIN_CODES:
                    if defn.code in have:
                        continue
                    row = Shortcode(owner_id=None, builtin=True)
                    _fill_row(row, defn, shared=True, workflow_id=None)
                    added.append(row)
                await repo.add(session, added)
            if added:
                log.info("Seeded built-in shortcodes: %s", ", ".join(row.code for row in added))
                self.changed()
            self._seeded = True

    async def _visible(self, session: Session, user_id: int) -> list[Shortcode]:
        """Built-ins, then the user's own codes, then others' shared codes: the registry's precedence."""
        rows = await repo.visible(session, user_id)
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
        key = (user_id, workflow_id)
        cached = self._registries.get(key)
        if cached is not None:
            return cached
        await self.ensure_seeded()
        generation = self._generation
        async with self.store.transaction() as session:
            rows = await self._visible(session, user_id)
        registry = sc.Registry.with_user_codes(self._definitions(rows, workflow_id))
        if generation == self._generation:  # no write landed while this one was read
            self._registries[key] = registry
        return registry

    async def list(self, user_id: int, owner: bool) -> dict[str, JSON]:
        await self.ensure_seeded()
        async with self.store.transaction() as session:
            rows = await self._visible(session, user_id)
        return {"items": [_row_to_dict(r, user_id, owner) for r in rows]}

    async def _load(self, session: Session, user_id: int, shortcode_id: str) -> Shortcode:
        row = await repo.get(session, shortcode_id)
        # Another user's private code does not exist, as far as this user can tell.
        if row is None or not (row.builtin or row.shared or row.owner_id == user_id):
            raise not_found("Shortcode")
        return row

    async def get(self, user_id: int, owner: bool, shortcode_id: str) -> dict[str, JSON]:
        await self.ensure_seeded()
        async with self.store.transaction() as session:
            return _row_to_dict(await self._load(session, user_id, shortcode_id), user_id, owner)

    @_changes
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
        async with self.store.transaction(user_id) as session:
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
            await repo.add(session, [row])
            return _row_to_dict(row, user_id, owner)

    @_changes
    async def update(
        self, user_id: int, owner: bool, shortcode_id: str, body: DefinitionIn, *, graph: Graph | None = None
    ) -> dict[str, JSON]:
        await self.ensure_seeded()
        async with self.store.transaction(user_id) as session:
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
            await repo.save(session)
            return _row_to_dict(row, user_id, owner)

    @staticmethod
    def _check_may_edit(row: Shortcode, user_id: int, owner: bool) -> None:
        if row.builtin and not owner:
            raise StudioError("forbidden", f"Only the owner edits built-in codes such as --{row.code}")
        if not row.builtin and row.owner_id != user_id:
            raise StudioError("forbidden", f"--{row.code} is shared with you by another user; copy it to change it")

    @staticmethod
    def _checked_edit(row: Shortcode, body: DefinitionIn, loc: builtins.list[str | int]) -> sc.CodeDefinition:
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

    @_changes
    async def delete(self, user_id: int, owner: bool, shortcode_id: str) -> dict[str, JSON]:
        await self.ensure_seeded()
        async with self.store.transaction(user_id) as session:
            row = await self._load(session, user_id, shortcode_id)
            if row.builtin:
                raise StudioError("conflict", f"--{row.code} is built in: edit it, but it cannot be deleted")
            self._check_may_edit(row, user_id, owner)
            await repo.delete(session, row)
            return {"id": shortcode_id, "deleted": True}

    async def export(self, user_id: int, owner: bool) -> dict[str, JSON]:
        """The user's own codes (and for the owner the built-ins too) as an import document."""
        await self.ensure_seeded()
        async with self.store.transaction() as session:
            rows = await self._visible(session, user_id)
        picked = [r for r in rows if r.owner_id == user_id or (owner and r.builtin)]
        return {"version": EXPORT_VERSION, "shortcodes": [_exported(r) for r in picked]}

    @_changes
    async def import_(self, user_id: int, owner: bool, document: ExportDocument) -> dict[str, JSON]:
        """Create or update (by code) every definition; all are checked first and nothing is written
        unless every one is valid. Built-in entries update the built-ins and need the owner."""
        await self.ensure_seeded()
        async with self.store.transaction(user_id) as session:
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
            new_rows: list[Shortcode] = []
            for row, item, defn in plans:
                if row is None:
                    row = Shortcode(owner_id=user_id, builtin=False)
                    new_rows.append(row)
                else:
                    row.updated_at = now
                _fill_row(row, defn, shared=True if row.builtin else item.shared, workflow_id=item.workflow_id)
            await repo.add(session, new_rows)
            return {"created": created, "updated": len(plans) - created}

    async def draft_registry(
        self,
        user_id: int,
        draft: DefinitionIn,
        *,
        editing_id: str | None,
        checked: Graph | None,
        workflow_id: str | None,
    ) -> tuple[sc.Registry, builtins.list[dict[str, JSON]]]:
        """The registry ``user_id`` would have with ``draft`` saved (replacing ``editing_id``), and what saving it
        would refuse (then the registry leaves the draft out). ``checked``: the graph its selectors must match."""
        await self.ensure_seeded()
        async with self.store.transaction() as session:
            rows = await self._visible(session, user_id)
        editing = next((r for r in rows if r.id == editing_id), None)
        rest = [r for r in rows if r.id != editing_id]
        limited = draft.workflow_id
        defn: sc.CodeDefinition | None
        try:
            if editing is not None and editing.builtin:
                defn = self._checked_edit(editing, draft, ["definition"])
            else:
                defn = _in_to_definition(draft, ["definition"])
        except StudioError as exc:
            defn = None
            problems = [d for d in exc.details if isinstance(d, dict)] or [
                {"loc": ["definition"], "message": exc.message, "type": "value_error"}
            ]
        else:
            others = self._definitions(_ours(rest, user_id), limited)
            taken = {r.code for r in rest if r.owner_id == user_id}
            problems = _definition_problems(defn, others, checked, limited, taken)
        codes = self._definitions([r for r in rest if defn is None or problems or r.code != defn.code], workflow_id)
        if defn is not None and not problems:
            codes.append(defn)
        return sc.Registry.with_user_codes(codes), problems
