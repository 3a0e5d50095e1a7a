"""Studio configuration: where its data lives and the limits it enforces."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .settings_table import from_environment

DATA_DIR_ENV = "STUDIO_DATA_DIR"
DB_URL_ENV = "STUDIO_DB_URL"
DEV_ENV = "STUDIO_DEV"


def standalone_data_dir() -> Path:
    """Per-user data folder for the standalone server and the command line."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "comfyui-studio"


def plugin_data_dir(comfy_user_dir: str | os.PathLike[str]) -> Path:
    """Inside ComfyUI: a `__`-prefixed system folder that /userdata and /view never serve."""
    return Path(comfy_user_dir) / "__studio"


@dataclass
class StudioConfig:
    data_dir: Path
    db_url: str = ""
    dev: bool = False
    max_json_bytes: int = 2 * 1024 * 1024
    max_upload_bytes: int = 32 * 1024 * 1024
    max_image_pixels: int = 64 * 1024 * 1024
    max_prompt_chars: int = 20_000
    requeue_pending_on_start: bool = True
    extra_allowed_hosts: list[str] = field(default_factory=list)
    # The addresses ComfyUI (or the standalone server) listens on: decides loopback-only trust.
    listen: list[str] = field(default_factory=lambda: ["127.0.0.1"])
    # ComfyUI-Manager's node list (names the pack a workflow's missing node comes from): files to read,
    # and the custom_nodes folders to look for an installed Manager in (the plugin passes ComfyUI's).
    node_map_paths: list[Path] = field(default_factory=list)
    custom_nodes_dirs: list[str] = field(default_factory=list)
    # ComfyUI's base folder (output/, input/, temp/ inside) when the studio runs outside its process and
    # shares its disk: what lets `maintenance` on the command line reach ComfyUI's files.
    comfy_dir: Path | None = None
    # On a shared PostgreSQL database: how often a process looks for the active jobs of processes that died.
    dead_process_sweep_s: float = 30.0

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        if not self.db_url:
            self.db_url = f"sqlite+aiosqlite:///{self.data_dir / 'studio.db'}"

    @property
    def thumbs_dir(self) -> Path:
        return self.data_dir / "thumbs"

    @classmethod
    def from_env(cls, default_data_dir: Path) -> StudioConfig:
        data_dir = Path(str(from_environment(DATA_DIR_ENV)) or default_data_dir)
        return cls(
            data_dir=data_dir,
            db_url=str(from_environment(DB_URL_ENV)),
            dev=bool(from_environment(DEV_ENV)),
        )
