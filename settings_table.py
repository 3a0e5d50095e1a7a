"""Every setting the studio has, declared once: name, type, default, scope, help, and where it is set.

`user` and `global` settings are stored in the `settings` table and listed by the settings API
(services/settings.py); `environment` settings are environment variables read at start-up through
`from_environment` (config.py, services/security.py, services/secrets.py). This module imports nothing of
the studio's, so the configuration can read it before anything else is loaded.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

JSONValue: TypeAlias = dict | list | str | int | float | bool | None

ASPECT_RATIOS = ("", "1:1", "4:3", "3:4", "3:2", "2:3", "16:9", "9:16", "21:9", "9:21")
_FALSE = ("0", "false", "no", "off")


SettingType = Literal["string", "int", "float", "bool", "enum", "list"]


@dataclass(frozen=True)
class SettingDef:
    name: str
    type: SettingType
    default: JSONValue
    # user: each user's own; global: the studio's, changed by the owner; environment: an environment variable,
    # read at start-up and never listed by the settings API
    scope: Literal["user", "global", "environment"]
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
    # the environment variable that sets it (environment settings)
    env: str = ""
    # a value never shown or logged (a key)
    secret: bool = False
    # a regular expression a string value must match in full ("" = any)
    pattern: str = ""


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
    SettingDef(
        "civitai_url",
        "string",
        "https://civitai.com",
        "global",
        "Civitai site",
        "Where the studio asks Civitai (civitai.com; civitai.red also lists mature content). Any http(s) URL; "
        "when never set here, STUDIO_CIVITAI_URL or civitai.com.",
        "civitai",
        max_length=300,
        pattern=r"https?://[^\s/?#]+(/[^\s?#]*)?",
    ),
    SettingDef(
        "civitai_rate",
        "float",
        2.0,
        "global",
        "Civitai requests per second",
        "The most requests per second the studio sends to Civitai, however many pages are browsing.",
        "civitai",
        min=0.1,
        max=20.0,
    ),
    SettingDef(
        "civitai_nsfw",
        "enum",
        "none",
        "user",
        "Civitai content level",
        "The most mature content you browse on Civitai: none, soft, mature or x.",
        "civitai",
        choices=("none", "soft", "mature", "x"),
    ),
    # --- storage maintenance (services/maintenance.py); the Settings page's Storage section
    SettingDef(
        "maintenance_interval_hours",
        "int",
        24,
        "global",
        "Maintenance every (hours)",
        "How often the studio runs storage maintenance by itself (0: never; run it from here or the command line).",
        "maintenance",
        min=0,
        max=24 * 30,
    ),
    SettingDef(
        "storage_quota_gb",
        "float",
        0.0,
        "global",
        "Disk quota (GB)",
        "The most disk the studio's files may use (0: no quota). Over it, maintenance removes expirable files, "
        "oldest first: previews, temp files, thumbnails it can rebuild, outputs marked expirable.",
        "maintenance",
        min=0,
        max=100_000,
    ),
    SettingDef(
        "storage_user_quota_gb",
        "float",
        0.0,
        "global",
        "Disk quota per user (GB)",
        "The most disk one user's files may use (0: no quota); over it, that user's expirable files go first.",
        "maintenance",
        min=0,
        max=100_000,
    ),
    SettingDef(
        "retention_previews_days",
        "float",
        1.0,
        "global",
        "Keep previews (days)",
        "ComfyUI's temp and preview files are removed after this age (ComfyUI empties that folder at every start); "
        "a job's preview goes too, its tile and thumbnail stay.",
        "maintenance",
        min=0.01,
        max=3650,
    ),
    SettingDef(
        "retention_temp_days",
        "float",
        7.0,
        "global",
        "Keep unused uploads (days)",
        "The studio's own uploads that no job uses are removed after this age (partial uploads after an hour).",
        "maintenance",
        min=0.01,
        max=3650,
    ),
    SettingDef(
        "retention_call_bodies_days",
        "float",
        30.0,
        "global",
        "Keep call-log bodies (days)",
        "Requests and responses of the ComfyUI call log are dropped after this age; the rows stay, and so do "
        "the bodies of submits whose job still exists (replay keeps working).",
        "maintenance",
        min=1,
        max=3650,
    ),
    SettingDef(
        "retention_civitai_days",
        "float",
        30.0,
        "global",
        "Keep Civitai answers (days)",
        "Cached Civitai answers are dropped this long after they expired.",
        "maintenance",
        min=0,
        max=3650,
    ),
    SettingDef(
        "civitai_cache_max_mb",
        "float",
        64.0,
        "global",
        "Civitai cache size (MB)",
        "Above this size the oldest cached Civitai answers are dropped.",
        "maintenance",
        min=1,
        max=100_000,
    ),
    SettingDef(
        "vacuum_interval_days",
        "float",
        7.0,
        "global",
        "Compact the database every (days)",
        "How often a maintenance run compacts the database (VACUUM); every run analyses and optimises it.",
        "maintenance",
        min=0,
        max=365,
    ),
    SettingDef(
        "trash_retention_days",
        "float",
        30.0,
        "user",
        "Keep deleted jobs in Trash (days)",
        "Jobs you delete stay in Trash, restorable, this long; then their files are removed. Never sooner, "
        "and never to make room.",
        "maintenance",
        min=1,
        max=3650,
    ),
    # --- several ComfyUI backends (services/comfy_pool.py); the Settings page's Backends card
    SettingDef(
        "comfy_backends",
        "list",
        [],
        "global",
        "ComfyUI backends",
        "More ComfyUIs the studio dispatches jobs to, by URL (http or https, no credentials), beside the "
        "--comfy ones or, inside ComfyUI, beside this one. Applies at once.",
        "backends",
    ),
    SettingDef(
        "requeue_lost_jobs",
        "bool",
        False,
        "global",
        "Re-queue jobs of a lost backend",
        "When a backend stops responding, its running and waiting jobs end lost; on, each is queued again "
        "on another backend (same job, once).",
        "backends",
    ),
    SettingDef(
        "draining_backends",
        "list",
        [],
        "global",
        "Backends that take no new jobs",
        "The backends switched off in Settings › Backends (by name: a URL, or local), kept across restarts.",
        "backends",
    ),
    # --- environment: read once at start-up; README.md's configuration table documents each
    SettingDef(
        "data_dir",
        "string",
        "",
        "environment",
        "Data directory",
        "The studio's database, keys and thumbnails (empty: inside ComfyUI `<user directory>/__studio/`, "
        "standalone `~/.local/share/comfyui-studio`).",
        "environment",
        env="STUDIO_DATA_DIR",
    ),
    SettingDef(
        "db_url",
        "string",
        "",
        "environment",
        "Database URL",
        "Any SQLAlchemy async URL (empty: `sqlite+aiosqlite:///<data dir>/studio.db`).",
        "environment",
        env="STUDIO_DB_URL",
    ),
    SettingDef(
        "dev",
        "bool",
        False,
        "environment",
        "Development mode",
        "Error responses carry a `debug` member with the traceback and timings.",
        "environment",
        env="STUDIO_DEV",
    ),
    SettingDef(
        "allowed_hosts",
        "list",
        [],
        "environment",
        "More allowed host names",
        "Host names the studio answers to besides this machine's and ComfyUI's --listen addresses, comma-separated.",
        "environment",
        env="STUDIO_ALLOWED_HOSTS",
    ),
    SettingDef(
        # A stored row under this name (no API writes it) applies when the variable is unset.
        "security.local_owner_login",
        "bool",
        True,
        "environment",
        "Password-less local owner",
        "Off: no password-less owner session for loopback requests when ComfyUI listens on loopback only.",
        "environment",
        env="STUDIO_LOCAL_OWNER_LOGIN",
    ),
    SettingDef(
        "civitai_url_env",
        "string",
        "",
        "environment",
        "Civitai site",
        "The Civitai site while the owner has not chosen one in Settings (empty: https://civitai.com).",
        "environment",
        env="STUDIO_CIVITAI_URL",
    ),
    SettingDef(
        "secret_key",
        "string",
        "",
        "environment",
        "Secrets key",
        "The key that encrypts stored secrets (32 bytes, base64url; empty: a 0600 secrets.key in the data directory).",
        "environment",
        env="STUDIO_SECRET_KEY",
        secret=True,
    ),
    SettingDef(
        "secret_key_previous",
        "string",
        "",
        "environment",
        "Previous secrets key",
        "The secrets key being replaced (32 bytes, base64url): stored secrets only it opens are re-encrypted "
        "under STUDIO_SECRET_KEY at start-up.",
        "environment",
        env="STUDIO_SECRET_KEY_PREVIOUS",
        secret=True,
    ),
)
BY_NAME = {s.name: s for s in SETTINGS}
STORED = tuple(s for s in SETTINGS if s.scope != "environment")
ENVIRONMENT = {s.env: s for s in SETTINGS if s.scope == "environment"}


def from_environment(variable: str, environ: Mapping[str, str] | None = None) -> JSONValue:
    """A declared environment setting's value: the variable parsed by the setting's type, else its default."""
    setting = ENVIRONMENT[variable]
    raw = (os.environ if environ is None else environ).get(variable, "").strip()
    if not raw:
        return setting.default
    if setting.type == "bool":
        return raw.lower() not in _FALSE
    if setting.type == "list":
        return [item.strip() for item in raw.split(",") if item.strip()]
    return raw


def list_from_environment(variable: str, environ: Mapping[str, str] | None = None) -> list[str]:
    """A declared `list` environment setting's items (its default when the variable is unset)."""
    value = from_environment(variable, environ)
    return [str(item) for item in value] if isinstance(value, list) else []


def is_set(variable: str, environ: Mapping[str, str] | None = None) -> bool:
    """Whether a declared environment setting's variable is set (to anything but blanks)."""
    setting = ENVIRONMENT[variable]
    return bool((os.environ if environ is None else environ).get(setting.env, "").strip())
