"""The seam between the studio and a ComfyUI: one interface, one adapter per way of reaching it.

`InProcessHost` lives in `comfy_inprocess.py` (plugin mode), `RemoteHost` in `comfy_remote.py`
(standalone and command line). Everything version-specific about ComfyUI stays in those adapters.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

JSON = Any

FOLDER_TYPES = ("input", "output", "temp")


# Receives ComfyUI's executor messages: event is a str, or an int for binary frames.
EventSink = Callable[[str | int, Any], None]


class HostError(Exception):
    """ComfyUI answered in a way the studio cannot use (a 5xx, a malformed body)."""

    def __init__(self, message: str, status: int | None = None, body: JSON = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class HostUnavailable(HostError):
    """ComfyUI could not be reached at all."""


class HostRejected(HostError):
    """ComfyUI refused a graph: `body` is its `{"error", "node_errors"}` answer."""


class HostNotFound(HostError):
    """ComfyUI has no such file or entry."""


@dataclass
class SubmitResult:
    prompt_id: str
    number: float
    node_errors: dict[str, JSON] = field(default_factory=dict)
    backend: str | None = None  # the pool member that took it (services/comfy_pool.py)


@dataclass
class FileData:
    data: bytes
    content_type: str


class ComfyHost(Protocol):
    """What the studio needs from a ComfyUI, whichever way it is reached."""

    client_id: str
    description: str

    async def submit(
        self,
        graph: dict[str, JSON],
        *,
        prompt_id: str,
        front: bool = False,
        extra_data: dict[str, JSON] | None = None,
    ) -> SubmitResult: ...

    async def queue(self) -> dict[str, list[JSON]]: ...

    async def history(self, prompt_id: str | None = None, max_items: int | None = None) -> dict[str, JSON]: ...

    async def delete_pending(self, prompt_ids: list[str]) -> None: ...

    async def clear_pending(self) -> None: ...

    async def interrupt(self, prompt_id: str | None = None) -> None: ...

    async def upload_image(self, data: bytes, filename: str, *, subfolder: str = "") -> dict[str, str]: ...

    async def view(self, filename: str, subfolder: str, folder_type: str) -> FileData: ...

    async def object_info(self) -> dict[str, JSON]: ...

    async def model_files(self, folder: str) -> list[str]:
        """The files ComfyUI lists in one model folder (`/models/{folder}`); HostNotFound for an unknown folder."""
        ...

    async def system_stats(self) -> dict[str, JSON]: ...

    def subscribe(self, sink: EventSink) -> None:
        """Call `sink(event, data)` on the event loop for every executor message, in order."""

    async def close(self) -> None: ...


@runtime_checkable
class FollowsEvents(Protocol):
    """A host that reads ComfyUI's /ws itself (a remote ComfyUI) and says whenever it (re)connects."""

    def on_connect(self, listener: Callable[[bool], Awaitable[None]]) -> None: ...

    def start_events(self) -> None: ...


def content_type_for(filename: str) -> str:
    lower = filename.lower()
    if lower.endswith(".png"):
        return "image/png"
    if lower.endswith((".jpg", ".jpeg")):
        return "image/jpeg"
    if lower.endswith(".webp"):
        return "image/webp"
    return "application/octet-stream"


def prompt_request(
    graph: dict[str, JSON], *, client_id: str, prompt_id: str, front: bool, extra_data: dict[str, JSON] | None
) -> dict[str, JSON]:
    """The body of ComfyUI's POST /prompt as the studio sends it (always with its own client id)."""
    request: dict[str, JSON] = {"prompt": graph, "client_id": client_id, "prompt_id": prompt_id}
    if front:
        request["front"] = True
    if extra_data:
        request["extra_data"] = dict(extra_data)
    return request
