"""The prompt executor: runs on the worker thread and emits ComfyUI 0.3.64's event sequence.

Reproduced from the recorded traces and execution.py's behaviour: execution_start, execution_cached,
per node progress_state(running) -> executing -> [progress/previews] -> [executed] ->
progress_state(finished); a cached output node only re-sends `executed`; errors and interrupts stop
the prompt; with no client_id every per-client message is dropped except progress_state, progress and
previews (sent to sid None, i.e. broadcast) and execution_interrupted (always broadcast).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from .imagenodes import IMPLEMENTATIONS, NodeContext
from .registry import NodeRegistry

if TYPE_CHECKING:
    from .promptserver import FakePromptServer

log = logging.getLogger("comfyui_studio.testhost")

UNENCODED_PREVIEW_IMAGE = 2  # protocol.BinaryEventTypes
PREVIEW_IMAGE_WITH_METADATA = 4
PreviewTuple = tuple[str, Image.Image, int | None]


class InterruptProcessingError(Exception):
    """Raised at the next progress update or node boundary after an interrupt, like ComfyUI's."""


class InterruptFlag:
    """nodes.interrupt_processing(): a flag the worker checks and clears when it acts on it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._set = False

    def set(self, value: bool = True) -> None:
        with self._lock:
            self._set = value

    def throw_if_set(self) -> None:
        with self._lock:
            if self._set:
                self._set = False
                raise InterruptProcessingError("Processing interrupted")


def is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int)


def format_value(x: Any) -> Any:
    if x is None or isinstance(x, (int, float, bool, str)):
        return x
    return str(x)


class ProgressState:
    """comfy_execution.progress's registry + WebUIProgressHandler, recreated for every prompt."""

    def __init__(self, server: FakePromptServer, prompt_id: str) -> None:
        self.server = server
        self.prompt_id = prompt_id
        self.nodes: dict[str, dict[str, Any]] = {}

    def _entry(self, node_id: str) -> dict[str, Any]:
        return self.nodes.setdefault(node_id, {"state": "pending", "value": 0, "max": 1})

    def _send(self) -> None:
        active = {
            node_id: {
                "value": st["value"],
                "max": st["max"],
                "state": st["state"],
                "node_id": node_id,
                "prompt_id": self.prompt_id,
                "display_node_id": node_id,
                "parent_node_id": None,
                "real_node_id": node_id,
            }
            for node_id, st in self.nodes.items()
            if st["state"] != "pending"
        }
        self.server.send_sync("progress_state", {"prompt_id": self.prompt_id, "nodes": active}, self.server.client_id)

    def start(self, node_id: str) -> None:
        self._entry(node_id).update(state="running", value=0.0, max=1.0)
        self._send()

    def update(self, node_id: str, value: float, max_value: float, image: PreviewTuple | None) -> None:
        self._entry(node_id).update(state="running", value=value, max=max_value)
        self._send()
        if image and self.server.client_supports_preview_metadata(self.server.client_id):
            metadata = {
                "node_id": node_id,
                "prompt_id": self.prompt_id,
                "display_node_id": node_id,
                "parent_node_id": None,
                "real_node_id": node_id,
            }
            self.server.send_sync(PREVIEW_IMAGE_WITH_METADATA, (image, metadata), self.server.client_id)

    def finish(self, node_id: str) -> None:
        entry = self._entry(node_id)
        entry.update(state="finished", value=entry["max"])
        self._send()


class ExecutionList:
    """Topological dissolve of the graph from the requested outputs, skipping cached ancestors."""

    def __init__(self, prompt: dict[str, Any], registry: NodeRegistry, cached: set[str]) -> None:
        self.prompt = prompt
        self.registry = registry
        self.cached = cached
        self.pending: dict[str, bool] = {}
        self.block_count: dict[str, int] = {}
        self.blocking: dict[str, dict[str, bool]] = {}

    def add_node(self, node_id: str) -> None:
        stack, links = [node_id], []
        while stack:
            uid = stack.pop()
            if uid in self.pending:
                continue
            self.pending[uid] = True
            self.block_count[uid] = 0
            self.blocking[uid] = {}
            for value in self.prompt[uid]["inputs"].values():
                if is_link(value) and value[0] not in self.cached:
                    stack.append(value[0])
                    links.append((value[0], uid))
        for src, dst in links:
            if dst not in self.blocking[src]:
                self.blocking[src][dst] = True
                self.block_count[dst] += 1

    def is_empty(self) -> bool:
        return not self.pending

    def _is_output(self, node_id: str) -> bool:
        return self.registry.is_output(self.prompt[node_id]["class_type"])

    def next_node(self) -> str:
        ready = [n for n in self.pending if self.block_count[n] == 0]
        if not ready:
            raise RuntimeError("Dependency cycle detected")
        # ComfyUI's ux_friendly_pick_node: outputs first, then what feeds an output soonest
        for n in ready:
            if self._is_output(n):
                return n
        for n in ready:
            if any(self._is_output(b) for b in self.blocking[n]):
                return n
        for n in ready:
            if any(self._is_output(b2) for b in self.blocking[n] for b2 in self.blocking[b]):
                return n
        return ready[0]

    def complete(self, node_id: str) -> None:
        del self.pending[node_id]
        for blocked in self.blocking.pop(node_id):
            self.block_count[blocked] -= 1


class OutputCache:
    """CLASSIC caching: outputs keyed by the node's input signature, kept only for the current prompt."""

    def __init__(self) -> None:
        self.outputs: dict[str, tuple[Any, ...]] = {}
        self.ui: dict[str, dict[str, Any]] = {}
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.keys: dict[str, str] = {}

    def set_prompt(self, prompt: dict[str, Any], input_dir: Path) -> None:
        keys: dict[str, str] = {}

        def signature(node_id: str, seen: tuple[str, ...]) -> Any:
            node = prompt[node_id]
            parts: list[Any] = [node["class_type"], _is_changed(node, input_dir)]
            for name in sorted(node["inputs"]):
                value = node["inputs"][name]
                if is_link(value) and value[0] in prompt and value[0] not in seen:
                    parts.append([name, "link", signature(value[0], (*seen, value[0])), value[1]])
                else:
                    parts.append([name, value])
            return parts

        for node_id in prompt:
            keys[node_id] = json.dumps(signature(node_id, (node_id,)), sort_keys=True, default=str)
        self.keys = keys
        live = set(keys.values())
        self.outputs = {k: v for k, v in self.outputs.items() if k in live}
        self.ui = {k: v for k, v in self.ui.items() if k in live}
        live_objects = {(n, prompt[n]["class_type"]) for n in prompt}
        self.objects = {k: v for k, v in self.objects.items() if k in live_objects}

    def get_outputs(self, node_id: str) -> tuple[Any, ...] | None:
        return self.outputs.get(self.keys.get(node_id, ""))

    def get_ui(self, node_id: str) -> dict[str, Any] | None:
        return self.ui.get(self.keys.get(node_id, ""))


def _is_changed(node: dict[str, Any], input_dir: Path) -> str:
    # LoadImage's IS_CHANGED is the file's sha256: a replaced input file invalidates the cache
    if node["class_type"] in ("LoadImage", "LoadImageMask"):
        name = node["inputs"].get("image")
        if isinstance(name, str):
            try:
                return hashlib.sha256((input_dir / name).read_bytes()).hexdigest()
            except OSError:
                return ""
    return ""


class PromptExecutor:
    """One per worker thread, like main.py's prompt_worker; keeps its cache between prompts."""

    def __init__(
        self,
        server: FakePromptServer,
        registry: NodeRegistry,
        interrupt: InterruptFlag,
        stop: threading.Event,
        node_delay: float = 0.0,
    ) -> None:
        self.server = server
        self.registry = registry
        self.interrupt = interrupt
        self.stop = stop
        self.node_delay = node_delay
        self.cache = OutputCache()
        self.status_messages: list[tuple[str, dict[str, Any]]] = []
        self.success = True
        self.history_result: dict[str, Any] = {}

    def add_message(self, event: str, data: dict[str, Any], broadcast: bool) -> None:
        data = {**data, "timestamp": int(time.time() * 1000)}
        self.status_messages.append((event, data))
        if self.server.client_id is not None or broadcast:
            self.server.send_sync(event, data, self.server.client_id)

    def execute(
        self, prompt: dict[str, Any], prompt_id: str, extra_data: dict[str, Any], execute_outputs: list[str]
    ) -> None:
        self.interrupt.set(False)
        self.server.client_id = extra_data.get("client_id")
        self.status_messages = []
        self.success = True
        self.add_message("execution_start", {"prompt_id": prompt_id}, broadcast=False)

        progress = ProgressState(self.server, prompt_id)
        self.cache.set_prompt(prompt, self.server.paths.input_dir)
        cached_nodes = [n for n in prompt if self.cache.get_outputs(n) is not None]
        self.add_message("execution_cached", {"nodes": cached_nodes, "prompt_id": prompt_id}, broadcast=False)

        executed: set[str] = set()
        current_outputs = list(prompt)
        todo = ExecutionList(prompt, self.registry, set(cached_nodes))
        for node_id in execute_outputs:
            todo.add_node(node_id)
        while not todo.is_empty():
            node_id = todo.next_node()
            error = self._execute_node(prompt, prompt_id, node_id, extra_data, executed, progress)
            if error is not None:
                self.success = False
                self._report_error(prompt_id, prompt, current_outputs, executed, *error)
                break
            todo.complete(node_id)
        else:
            self.add_message("execution_success", {"prompt_id": prompt_id}, broadcast=False)

        outputs, meta = {}, {}
        for node_id in prompt:
            ui = self.cache.get_ui(node_id)
            if ui is not None:
                outputs[node_id] = ui["output"]
                meta[node_id] = ui["meta"]
        self.history_result = {"outputs": outputs, "meta": meta}
        self.server.last_node_id = None

    def _execute_node(
        self,
        prompt: dict[str, Any],
        prompt_id: str,
        node_id: str,
        extra_data: dict[str, Any],
        executed: set[str],
        progress: ProgressState,
    ) -> tuple[dict[str, Any], BaseException] | None:
        server = self.server
        class_type = prompt[node_id]["class_type"]
        if self.cache.get_outputs(node_id) is not None:
            if server.client_id is not None:
                cached_ui = self.cache.get_ui(node_id) or {}
                server.send_sync(
                    "executed",
                    {
                        "node": node_id,
                        "display_node": node_id,
                        "output": cached_ui.get("output"),
                        "prompt_id": prompt_id,
                    },
                    server.client_id,
                )
            progress.finish(node_id)
            return None

        inputs: dict[str, Any] | None = None
        try:
            progress.start(node_id)
            inputs = self._input_data(prompt, node_id)
            if server.client_id is not None:
                server.last_node_id = node_id
                server.send_sync(
                    "executing",
                    {"node": node_id, "display_node": node_id, "prompt_id": prompt_id},
                    server.client_id,
                )
            if self.node_delay > 0:
                self.stop.wait(self.node_delay)
            self._before_node_execution()

            impl = IMPLEMENTATIONS.get(class_type)
            if impl is None:
                raise NotImplementedError(f"the ComfyUI test host cannot execute {class_type}")
            ctx = self._context(prompt, node_id, class_type, extra_data, progress, prompt_id)
            result = impl(ctx, **inputs)
            if isinstance(result, dict):
                ui, outputs = result.get("ui"), tuple(result.get("result", ()))
            else:
                ui, outputs = None, tuple(result)
            key = self.cache.keys[node_id]
            if ui:
                self.cache.ui[key] = {
                    "meta": {
                        "node_id": node_id,
                        "display_node": node_id,
                        "parent_node": None,
                        "real_node_id": node_id,
                    },
                    "output": ui,
                }
                if server.client_id is not None:
                    server.send_sync(
                        "executed",
                        {"node": node_id, "display_node": node_id, "output": ui, "prompt_id": prompt_id},
                        server.client_id,
                    )
            self.cache.outputs[key] = outputs
        except InterruptProcessingError as ex:
            log.info("testhost: processing interrupted")
            return {"node_id": node_id}, ex
        except Exception as ex:
            log.info("testhost: node %s (%s) raised %r", node_id, class_type, ex)
            formatted = {k: [format_value(v)] for k, v in (inputs or {}).items()}
            return (
                {
                    "node_id": node_id,
                    "exception_message": f"{ex}\n",
                    "exception_type": _full_type_name(type(ex)),
                    "traceback": traceback.format_tb(ex.__traceback__),
                    "current_inputs": formatted,
                },
                ex,
            )
        progress.finish(node_id)
        executed.add(node_id)
        return None

    def _before_node_execution(self) -> None:
        # a host shutting down interrupts for good: execute() clears the flag, not the stop event
        if self.stop.is_set():
            raise InterruptProcessingError("Processing interrupted (test host stopping)")
        self.interrupt.throw_if_set()

    def _input_data(self, prompt: dict[str, Any], node_id: str) -> dict[str, Any]:
        class_inputs = self.registry.input_types(prompt[node_id]["class_type"])
        declared = {**class_inputs.get("required", {}), **class_inputs.get("optional", {})}
        data: dict[str, Any] = {}
        for name, value in prompt[node_id]["inputs"].items():
            if name not in declared:
                continue
            if is_link(value):
                outputs = self.cache.get_outputs(value[0])
                if outputs is None or value[1] >= len(outputs):
                    continue
                data[name] = outputs[value[1]]
            else:
                data[name] = value
        return data

    def _context(
        self,
        prompt: dict[str, Any],
        node_id: str,
        class_type: str,
        extra_data: dict[str, Any],
        progress: ProgressState,
        prompt_id: str,
    ) -> NodeContext:
        paths = self.server.paths

        def report(value: int, total: int, preview: PreviewTuple | None) -> None:
            self._progress_hook(progress, prompt_id, node_id, min(value, total), total, preview)

        def sleep(seconds: float) -> None:
            self.stop.wait(seconds)

        return NodeContext(
            node_id=node_id,
            class_type=class_type,
            input_dir=paths.input_dir,
            output_dir=paths.output_dir,
            temp_dir=paths.temp_dir,
            prompt=prompt,
            extra_pnginfo=extra_data.get("extra_pnginfo"),
            report_progress=report,
            sleep=sleep,
            state=self.cache.objects.setdefault((node_id, class_type), {}),
        )

    def _progress_hook(
        self,
        progress: ProgressState,
        prompt_id: str,
        node_id: str,
        value: int,
        total: int,
        preview: PreviewTuple | None,
    ) -> None:
        """main.py's hijack_progress hook: interrupt check, progress_state, progress, legacy preview."""
        self._before_node_execution()
        progress.update(node_id, value, total, preview)
        server = self.server
        server.send_sync(
            "progress",
            {"value": value, "max": total, "prompt_id": prompt_id, "node": node_id},
            server.client_id,
        )
        if preview is not None and not server.client_supports_preview_metadata(server.client_id):
            server.send_sync(UNENCODED_PREVIEW_IMAGE, preview, server.client_id)

    def _report_error(
        self,
        prompt_id: str,
        prompt: dict[str, Any],
        current_outputs: list[str],
        executed: set[str],
        error: dict[str, Any],
        ex: BaseException,
    ) -> None:
        node_id = error["node_id"]
        mes: dict[str, Any] = {
            "prompt_id": prompt_id,
            "node_id": node_id,
            "node_type": prompt[node_id]["class_type"],
            "executed": list(executed),
        }
        if isinstance(ex, InterruptProcessingError):
            self.add_message("execution_interrupted", mes, broadcast=True)
            return
        mes.update(
            exception_message=error["exception_message"],
            exception_type=error["exception_type"],
            traceback=error["traceback"],
            current_inputs=error["current_inputs"],
            current_outputs=list(current_outputs),
        )
        self.add_message("execution_error", mes, broadcast=False)


def _full_type_name(klass: type) -> str:
    if klass.__module__ == "builtins":
        return klass.__qualname__
    return f"{klass.__module__}.{klass.__qualname__}"
