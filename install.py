"""Run by ComfyUI-Manager after cloning: make sure the studio's requirements are in ComfyUI's Python.

Idempotent; reaches the network only through pip, and only when something is missing.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

# import name → the requirement line that provides it
MODULES = {
    "aiohttp": "aiohttp",
    "aiosqlite": "aiosqlite",
    "asyncpg": "asyncpg",
    "sqlalchemy": "sqlalchemy",
    "greenlet": "sqlalchemy",
    "alembic": "alembic",
    "cryptography": "cryptography",
    "jsonpatch": "jsonpatch",
    "PIL": "pillow",
    "jwt": "pyjwt",
    "pydantic": "pydantic",
}


def missing_modules() -> list[str]:
    return [name for name in MODULES if importlib.util.find_spec(name) is None]


def main() -> int:
    missing = missing_modules()
    if not missing:
        print("ComfyUI Studio: requirements already installed")
        return 0
    requirements = Path(__file__).resolve().parent / "requirements.txt"
    print(f"ComfyUI Studio: installing requirements ({', '.join(missing)} missing)")
    return subprocess.call([sys.executable, "-m", "pip", "install", "-r", str(requirements)])


if __name__ == "__main__":
    raise SystemExit(main())
