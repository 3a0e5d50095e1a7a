"""A replica of execution.PromptQueue: a heap of pending items, the running ones, and in-memory history."""

from __future__ import annotations

import copy
import heapq
import threading
from collections.abc import Callable
from typing import Any, Literal, NamedTuple, Protocol

MAXIMUM_HISTORY_SIZE = 10000
# extra_data keys ComfyUI strips before an item reaches history
SENSITIVE_EXTRA_DATA_KEYS = ("auth_token_comfy_org", "api_key_comfy_org")

QueueItem = tuple[float | int, str, dict[str, Any], dict[str, Any], list[str]]


class _Notifier(Protocol):
    def queue_updated(self) -> None: ...


class ExecutionStatus(NamedTuple):
    status_str: Literal["success", "error"]
    completed: bool
    messages: list[tuple[str, dict[str, Any]]]


class PromptQueue:
    """Thread-safe like ComfyUI's: the HTTP handlers and the worker thread share it under one lock."""

    ExecutionStatus = ExecutionStatus

    def __init__(self, server: _Notifier) -> None:
        self.server = server
        self.mutex = threading.RLock()
        self.not_empty = threading.Condition(self.mutex)
        self.task_counter = 0
        self.queue: list[QueueItem] = []
        self.currently_running: dict[int, QueueItem] = {}
        self.history: dict[str, dict[str, Any]] = {}
        self.flags: dict[str, Any] = {}

    def put(self, item: QueueItem) -> None:
        with self.mutex:
            heapq.heappush(self.queue, item)
            self.server.queue_updated()
            self.not_empty.notify()

    def get(self, timeout: float | None = None) -> tuple[QueueItem, int] | None:
        with self.not_empty:
            while not self.queue:
                self.not_empty.wait(timeout=timeout)
                if timeout is not None and not self.queue:
                    return None
            item = heapq.heappop(self.queue)
            i = self.task_counter
            self.currently_running[i] = copy.deepcopy(item)
            self.task_counter += 1
            self.server.queue_updated()
            return (item, i)

    def task_done(self, item_id: int, history_result: dict[str, Any], status: ExecutionStatus | None) -> None:
        with self.mutex:
            prompt = self.currently_running.pop(item_id)
            if len(self.history) > MAXIMUM_HISTORY_SIZE:
                self.history.pop(next(iter(self.history)))
            status_dict = copy.deepcopy(status._asdict()) if status is not None else None
            for key in SENSITIVE_EXTRA_DATA_KEYS:
                prompt[3].pop(key, None)
            self.history[prompt[1]] = {"prompt": prompt, "outputs": {}, "status": status_dict}
            self.history[prompt[1]].update(history_result)
            self.server.queue_updated()

    def get_current_queue(self) -> tuple[list[QueueItem], list[QueueItem]]:
        with self.mutex:
            return (list(self.currently_running.values()), copy.deepcopy(self.queue))

    def get_current_queue_volatile(self) -> tuple[list[QueueItem], list[QueueItem]]:
        with self.mutex:
            return (list(self.currently_running.values()), copy.copy(self.queue))

    def get_tasks_remaining(self) -> int:
        with self.mutex:
            return len(self.queue) + len(self.currently_running)

    def wipe_queue(self) -> None:
        with self.mutex:
            self.queue = []
            self.server.queue_updated()

    def delete_queue_item(self, function: Callable[[QueueItem], bool]) -> bool:
        with self.mutex:
            for x in range(len(self.queue)):
                if function(self.queue[x]):
                    if len(self.queue) == 1:
                        self.wipe_queue()  # ComfyUI then reports the status a second time
                    else:
                        self.queue.pop(x)
                        heapq.heapify(self.queue)
                    self.server.queue_updated()
                    return True
        return False

    def get_history(
        self,
        prompt_id: str | None = None,
        max_items: int | None = None,
        offset: int = -1,
        map_function: Callable[[dict[str, Any]], Any] | None = None,
    ) -> dict[str, Any]:
        with self.mutex:
            if prompt_id is None:
                out: dict[str, Any] = {}
                if offset < 0 and max_items is not None:
                    offset = len(self.history) - max_items
                for i, (k, entry) in enumerate(self.history.items()):
                    if i >= offset:
                        out[k] = map_function(entry) if map_function is not None else entry
                        if max_items is not None and len(out) >= max_items:
                            break
                return out
            if prompt_id in self.history:
                entry = self.history[prompt_id]
                return {prompt_id: copy.deepcopy(entry) if map_function is None else map_function(entry)}
            return {}

    def wipe_history(self) -> None:
        with self.mutex:
            self.history = {}

    def delete_history_item(self, id_to_delete: str) -> None:
        with self.mutex:
            self.history.pop(id_to_delete, None)

    def set_flag(self, name: str, data: Any) -> None:
        with self.mutex:
            self.flags[name] = data
            self.not_empty.notify()

    def get_flags(self, reset: bool = True) -> dict[str, Any]:
        with self.mutex:
            if reset:
                ret, self.flags = self.flags, {}
                return ret
            return self.flags.copy()

    def wake_all(self) -> None:
        """Test host only: release a worker blocked in get() so it can notice shutdown."""
        with self.not_empty:
            self.not_empty.notify_all()
