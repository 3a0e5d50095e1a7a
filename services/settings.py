"""Stored settings: the `user` and `global` ones of the table in settings_table.py, overrides in the `settings` table.

`user` settings are each user's own (the prompt defaults); `global` ones apply to the whole studio and only
the owner changes them. A setting absent from the table has its default. Later features add their
settings to `SETTINGS` (and, for the page, a `section`); the docs tests check each is documented.
Environment settings share the table but are never listed or changed here.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Mapping

from ..db import settings as repo
from ..db.store import Store
from ..engine import shortcodes as sc
from ..engine.errors import StudioError
from ..settings_table import ASPECT_RATIOS, SETTINGS, STORED, JSONValue, SettingDef
from .comfy_pool import MAX_BACKENDS, check_backend_urls
from .shortcodes import Shortcodes
from .workflows import Workflows

log = logging.getLogger("comfyui_studio.settings")

__all__ = ["ASPECT_RATIOS", "BY_NAME", "SETTINGS", "STORED", "JSONValue", "SettingDef", "Settings", "checked_value"]

BY_NAME = {s.name: s for s in STORED}
BACKENDS_SETTING = "comfy_backends"
DRAINING_SETTING = "draining_backends"


def _key(setting: SettingDef, user_id: int) -> str:
    return repo.user_key(user_id, setting.name) if setting.scope == "user" else setting.name


def checked_value(setting: SettingDef, value: JSONValue) -> JSONValue:
    """``value`` as the setting stores it, or a validation error naming it."""

    def bad(message: str) -> StudioError:
        return StudioError(
            "validation_error",
            f"{setting.name}: {message}",
            [{"loc": ["values", setting.name], "message": message, "type": "value_error"}],
        )

    if setting.type == "list":
        if setting.name == BACKENDS_SETTING:
            try:
                return list(check_backend_urls(value))
            except ValueError as exc:
                raise bad(str(exc)) from exc
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise bad("must be a list of texts")
        if setting.name == DRAINING_SETTING and (len(value) > MAX_BACKENDS + 1 or any(len(v) > 500 for v in value)):
            raise bad(f"at most {MAX_BACKENDS + 1} backend names of at most 500 characters")
        return list(value)
    if setting.type == "bool":
        if not isinstance(value, bool):
            raise bad("must be true or false")
        return value
    if setting.type in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise bad("must be a number")
        if setting.type == "int":
            if isinstance(value, float) and not value.is_integer():
                raise bad("must be a whole number")
            value = int(value)
        if setting.min is not None and value < setting.min:
            raise bad(f"must be at least {setting.min:g}")
        if setting.max is not None and value > setting.max:
            raise bad(f"must be at most {setting.max:g}")
        return value
    if not isinstance(value, str):
        raise bad("must be text")
    if len(value) > setting.max_length:
        raise bad(f"must be at most {setting.max_length} characters")
    if setting.pattern and not re.fullmatch(setting.pattern, value):
        raise bad("is not in the expected form")
    if setting.type == "enum" and setting.choices is not None and value not in setting.choices:
        raise bad(f"must be one of {', '.join(repr(c) for c in setting.choices)}")
    return value


class Settings:
    def __init__(self, store: Store, shortcodes: Shortcodes, workflows: Workflows) -> None:
        self.store = store
        self.shortcodes = shortcodes
        self.workflows = workflows
        # called with (user id, changed names) after a change is stored: services that keep a setting in memory
        self.listeners: list[Callable[[int, list[str]], None]] = []

    async def _choices(self, user_id: int) -> dict[str, list[str]]:
        """Choices that depend on the studio: --style's values, ComfyUI's checkpoints and upscale models."""
        out: dict[str, list[str]] = {}
        style = (await self.shortcodes.registry(user_id)).lookup("style")
        out["styles"] = ["", *(c.value for c in style.choices)] if style is not None else [""]
        try:
            info = await self.workflows.object_info()
        except StudioError:
            return out  # ComfyUI away: the page offers free text
        from .actions import checkpoints, upscale_models

        out["checkpoints"] = ["", *checkpoints(info)]
        out["upscale_models"] = ["", *upscale_models(info)]
        return out

    async def values(self, user_id: int) -> dict[str, JSONValue]:
        """Every setting's effective value for ``user_id``."""
        async with self.store.transaction() as session:
            stored = await repo.read(session, [_key(s, user_id) for s in STORED])
        return {s.name: stored.get(_key(s, user_id), s.default) for s in STORED}

    async def value(self, user_id: int, name: str) -> JSONValue:
        return (await self.values(user_id))[name]

    async def listing(self, user_id: int, owner: bool) -> list[dict[str, JSONValue]]:
        values = await self.values(user_id)
        dynamic = await self._choices(user_id)

        def choices(s: SettingDef) -> list[str] | None:
            if s.choices is not None:
                return list(s.choices)
            for tag in s.tags:
                if tag in dynamic:
                    return dynamic[tag]
            return None

        return [
            {
                "name": s.name,
                "type": s.type,
                "scope": s.scope,
                "default": s.default,
                "value": values[s.name],
                "label": s.label,
                "help": s.help,
                "section": s.section,
                "choices": choices(s),
                "blank": s.blank,
                "min": s.min,
                "max": s.max,
                "editable": s.scope == "user" or owner,
            }
            for s in STORED
        ]

    async def update(self, user_id: int, owner: bool, changes: Mapping[str, JSONValue]) -> None:
        """Set (or, with null, reset to the default) several settings at once: all checked before any is written."""
        planned: list[tuple[str, JSONValue | None]] = []
        for name, value in changes.items():
            setting = BY_NAME.get(name)
            if setting is None:
                raise StudioError(
                    "validation_error",
                    f"{name}: no such setting",
                    [{"loc": ["values", name], "message": "no such setting", "type": "unknown_setting"}],
                )
            if setting.scope == "global" and not owner:
                raise StudioError("forbidden", f"Only the owner changes {name}: it applies to every user")
            if value is not None:
                value = checked_value(setting, value)
                await self._check_choice(user_id, setting, value)
            planned.append((_key(setting, user_id), value))
        async with self.store.transaction(user_id) as session:
            for key, value in planned:
                if value is None:
                    await repo.remove(session, key)
                else:
                    await repo.write(session, key, value)
        log.info("User %s changed settings: %s", user_id, ", ".join(sorted(changes)))
        for listener in self.listeners:
            listener(user_id, list(changes))

    async def _check_choice(self, user_id: int, setting: SettingDef, value: JSONValue) -> None:
        if not setting.tags or value == "":
            return
        dynamic = await self._choices(user_id)
        for tag in setting.tags:
            if tag in dynamic and value not in dynamic[tag]:
                message = f"must be one of {', '.join(repr(c) for c in dynamic[tag][1:])} or empty"
                raise StudioError(
                    "validation_error",
                    f"{setting.name}: {message}",
                    [{"loc": ["values", setting.name], "message": message, "type": "value_error"}],
                )

    async def prompt_with_defaults(self, user_id: int, text: str) -> str:
        """``text`` with the user's prompt defaults added as codes, for each code it does not set itself."""
        values = await self.values(user_id)
        wanted = [(s, values[s.name]) for s in STORED if s.code and values[s.name] not in ("", 0, None)]
        if not wanted:
            return text
        registry = await self.shortcodes.registry(user_id)
        present = {t.code for t in sc.parse(text, registry).tokens if t.code}
        added = []
        for setting, value in wanted:
            if setting.code in present or setting.code not in registry:
                continue
            shown = f'"{value}"' if isinstance(value, str) and " " in value and setting.code != "no" else value
            added.append(f"--{setting.code} {shown}")
        return " ".join([text.rstrip(), *added]) if added else text
