"""The studio mounted on the ComfyUI test host, as ComfyUI would load it: shared by tests and scripts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from testhost import ComfyTestHost, FakePromptServer, start_test_host
from testhost.models import LEGACY_NAMES
from testhost.validation import validate_prompt

from comfyui_studio.config import StudioConfig
from comfyui_studio.plugin import attach
from comfyui_studio.services.studio import Studio


@dataclass
class StudioRun:
    host: ComfyTestHost
    studio: Studio
    data_dir: Path

    @property
    def url(self) -> str:
        return self.host.url + "/studio"

    @property
    def api(self) -> str:
        return self.host.url + "/studio/api/v1"

    async def stop(self) -> None:
        await self.host.stop()


def studio_config(data_dir: Path, **overrides: object) -> StudioConfig:
    return StudioConfig(data_dir=data_dir, **overrides)  # type: ignore[arg-type]


def attach_studio(server: FakePromptServer, data_dir: Path, **config: object) -> Studio:
    """Attach the studio to a test-host PromptServer with the ComfyUI pieces the plugin would import."""
    folders = {"input": server.paths.input_dir, "output": server.paths.output_dir, "temp": server.paths.temp_dir}

    async def validate(prompt_id: str, prompt: dict, targets: list[str] | None) -> tuple:
        return await validate_prompt(server.registry, prompt_id, prompt, targets)

    def model_dirs(folder: str) -> list[str]:
        models = server.registry.models
        return list(models.paths[LEGACY_NAMES.get(folder, folder)][0])

    config.setdefault("listen", list(server.listen or ["127.0.0.1"]))
    return attach(
        server,
        validate_prompt=validate,
        interrupt_processing=server.interrupt_processing,
        folder_for_type=folders.get,
        config=studio_config(data_dir, **config),
        model_dirs=model_dirs,
    )


async def start_studio(
    base_dir: Path, *, node_delay: float = 0.0, port: int = 0, listen: list[str] | None = None, **config: object
) -> StudioRun:
    """Start the test host with the studio attached the way ComfyUI loads a custom node.

    Calling it again with the same base_dir is a ComfyUI restart: files and the studio's store kept.
    """
    data_dir = base_dir / "user" / "__studio"
    holder: dict[str, Studio] = {}

    def load_custom_nodes(server: FakePromptServer) -> None:
        holder["studio"] = attach_studio(server, data_dir, **config)

    host = await start_test_host(
        base_dir, before_start=load_custom_nodes, node_delay=node_delay, port=port, listen=listen
    )
    return StudioRun(host=host, studio=holder["studio"], data_dir=data_dir)
