"""Settings: every one declared once here (name, type, default, scope, help), overrides in the `settings` table.

`user` settings are each user's own (the prompt defaults); `global` ones apply to the whole studio and only
the owner changes them. A setting absent from the table has its default. Later features add their
settings to `SETTINGS` (and, for the page, a `section`); the docs test checks each is documented.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Literal

from ..db import settings as repo
from ..db.store import Store
from ..engine import shortcodes as sc
from ..engine.errors import StudioError
from .shortcodes import Shortcodes
from .workflows import Workflows

log = logging.getLogger("comfyui_studio.settings")

SettingType = Literal["string", "int", "float", "bool", "enum"]
JSONValue = dict | list | str | int | float | bool | None

ASPECT_RATIOS = ("", "1:1", "4:3", "3:4", "3:2", "2:3", "16:9", "9:16", "21:9", "9:21")


@dataclass(frozen=True)
class SettingDef:
    name: str
    type: SettingType
    default: JSONValue
    scope: Literal["user", "global"]
    label: str
    help: str
    section: str
    choices: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    max_length: int = 500
    # the shortcode a prompt default adds when the prompt does not set it ("" = not a prompt default)
    code: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)
    # what an empty value means, for the page's choice list
    blank: str = "Not set"


SETTINGS: tuple[SettingDef, ...] = (
    SettingDef(
        "default_aspect_ratio",
        "enum",
        "",
        "user",
        "Default aspect ratio",
        "Added as --ar to prompts from the prompt bar that do not set one (empty: the workflow's own size).",
        "prompt",
        choices=ASPECT_RATIOS,
        code="ar",
        blank="The workflow's own",
    ),
    SettingDef(
        "default_style",
        "string",
        "",
        "user",
        "Default style",
        "Added as --style to prompts that do not set one (empty: none). The choices are --style's.",
        "prompt",
        max_length=64,
        code="style",
        tags=("styles",),
        blank="None",
    ),
    SettingDef(
        "default_negative",
        "string",
        "",
        "user",
        "Default negative prompt",
        "Added as --no to prompts that do not set one: things you never want in an image (comma-separated).",
        "prompt",
        max_length=2000,
        code="no",
    ),
    SettingDef(
        "default_steps",
        "int",
        0,
        "user",
        "Default sampling steps",
        "Added as --steps to prompts that do not set them (0: the workflow's own).",
        "prompt",
        min=0,
        max=200,
        code="steps",
    ),
    SettingDef(
        "default_checkpoint",
        "string",
        "",
        "global",
        "Checkpoint of the default workflows",
        "The model the default workflows load (empty: the first one ComfyUI lists).",
        "models",
        max_length=500,
        tags=("checkpoints",),
        blank="ComfyUI's first checkpoint",
    ),
    SettingDef(
        "default_upscale_model",
        "string",
        "",
        "global",
        "Upscale model of the upscale slots",
        "The upscale model the upscale slots run when installed (empty: the first one ComfyUI lists).",
        "models",
        max_length=500,
        tags=("upscale_models",),
        blank="ComfyUI's first upscale model",
    ),
)
BY_NAME = {s.name: s for s in SETTINGS}


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
    if setting.type == "enum" and setting.choices is not None and value not in setting.choices:
        raise bad(f"must be one of {', '.join(repr(c) for c in setting.choices)}")
    return value


class Settings:
    def __init__(self, store: Store, shortcodes: Shortcodes, workflows: Workflows) -> None:
        self.store = store
        self.shortcodes = shortcodes
        self.workflows = workflows

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
        async with self.store.session() as session:
            stored = await repo.read(session, [_key(s, user_id) for s in SETTINGS])
        return {s.name: stored.get(_key(s, user_id), s.default) for s in SETTINGS}

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
            for s in SETTINGS
        ]

    async def update(self, user_id: int, owner: bool, changes: dict[str, JSONValue]) -> None:
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
        async with self.store.session(user_id) as session, session.begin():
            for key, value in planned:
                if value is None:
                    await repo.remove(session, key)
                else:
                    await repo.write(session, key, value)
        log.info("User %s changed settings: %s", user_id, ", ".join(sorted(changes)))

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
        wanted = [(s, values[s.name]) for s in SETTINGS if s.code and values[s.name] not in ("", 0, None)]
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
