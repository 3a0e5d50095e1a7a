"""Starting and stopping the test host in the order of ComfyUI's main.py."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import WSCloseCode, web

from .executor import InterruptFlag, PromptExecutor
from .files import HostPaths
from .promptqueue import ExecutionStatus
from .promptserver import FakePromptServer
from .validation import ValidationResult, validate_prompt

log = logging.getLogger("comfyui_studio.testhost")

DEFAULT_LISTEN = ["127.0.0.1"]


class ComfyTestHost:
    """A running fake ComfyUI: server, worker thread and HTTP site. Build it with start_test_host()."""

    def __init__(self, server: FakePromptServer, paths: HostPaths, listen: list[str], node_delay: float) -> None:
        self.server = server
        self.paths = paths
        self.base_dir: Path = paths.base_dir
        self.input_dir: Path = paths.input_dir
        self.output_dir: Path = paths.output_dir
        self.temp_dir: Path = paths.temp_dir
        self.user_dir: Path = paths.user_dir
        self.listen = listen
        self.url = ""
        self.node_delay = node_delay
        self._interrupt = InterruptFlag()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._publisher: asyncio.Task[None] | None = None
        server.interrupt_handler = self._interrupt.set

    async def validate_prompt(
        self, prompt_id: str, prompt: dict[str, Any], partial_execution_targets: list[str] | None
    ) -> ValidationResult:
        """Same contract as execution.validate_prompt."""
        return await validate_prompt(self.server.registry, prompt_id, prompt, partial_execution_targets)

    def interrupt_processing(self, value: bool = True) -> None:
        """Like nodes.interrupt_processing: acts at the next progress update or node boundary."""
        self._interrupt.set(value)

    def _start_worker(self) -> None:
        self._worker = threading.Thread(target=self._prompt_worker, name="testhost-prompt-worker", daemon=True)
        self._worker.start()

    def _prompt_worker(self) -> None:
        """main.py's prompt_worker: one prompt at a time, history written before `executing null`."""
        server = self.server
        queue = server.prompt_queue
        executor = PromptExecutor(server, server.registry, self._interrupt, self._stop, self.node_delay)
        while not self._stop.is_set():
            got = queue.get(timeout=0.2)  # short, so stop() never waits long for a missed wake-up
            if got is None:
                continue
            item, item_id = got
            prompt_id = item[1]
            server.last_prompt_id = prompt_id
            try:
                executor.execute(item[2], prompt_id, item[3], item[4])
            except Exception:
                # a bug in the host itself; ComfyUI would die here, we record an error instead
                log.exception("testhost: executor failed on %s", prompt_id)
                executor.success = False
                executor.history_result = {"outputs": {}, "meta": {}}
            queue.task_done(
                item_id,
                executor.history_result,
                status=ExecutionStatus(
                    status_str="success" if executor.success else "error",
                    completed=executor.success,
                    messages=executor.status_messages,
                ),
            )
            if server.client_id is not None:
                server.send_sync("executing", {"node": None, "prompt_id": prompt_id}, server.client_id)
            queue.get_flags()  # /free flags: nothing to unload here

    async def _start_site(self, port: int) -> None:
        # a short shutdown_timeout: open websockets are closed first, nothing else is long-lived
        self._runner = web.AppRunner(self.server.app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        bound_port = self._runner.addresses[0][1]
        self.server.port = bound_port
        self.url = f"http://127.0.0.1:{bound_port}"
        self._publisher = asyncio.get_running_loop().create_task(self.server.publish_loop())
        self._publisher.add_done_callback(_report_publisher_death)

    async def stop(self) -> None:
        """Stop like a ComfyUI shutdown: worker joined, sockets closed, queue and history gone."""
        self._stop.set()
        self._interrupt.set(True)
        self.server.prompt_queue.wake_all()
        worker = self._worker
        while worker is not None and worker.is_alive():
            await asyncio.sleep(0.005)
        if worker is not None:
            worker.join()
        # let the publish loop deliver what the worker sent last
        for _ in range(100):
            if self.server.messages.empty():
                break
            await asyncio.sleep(0.002)
        if self._publisher is not None:
            self._publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._publisher
        for ws in list(self.server.sockets.values()):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"Server shutdown")
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner = None
        self._worker = None

    async def __aenter__(self) -> ComfyTestHost:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def _report_publisher_death(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("testhost: publish_loop died (as ComfyUI's would)", exc_info=task.exception())


async def start_test_host(
    base_dir: Path,
    *,
    before_start: Callable[[FakePromptServer], None] | None = None,
    port: int = 0,
    listen: list[str] | None = None,
    node_delay: float = 0.0,
) -> ComfyTestHost:
    """Start a fake ComfyUI on 127.0.0.1. The same base_dir again is a restart: files kept, queue empty."""
    paths = HostPaths.create(Path(base_dir))
    loop = asyncio.get_running_loop()
    server = FakePromptServer(loop, paths, listen=listen, port=port)
    host = ComfyTestHost(server, paths, list(listen) if listen is not None else list(DEFAULT_LISTEN), node_delay)
    if before_start is not None:
        before_start(server)  # where custom nodes import and hook in
    server.add_routes()
    host._start_worker()
    try:
        await host._start_site(port)
    except BaseException:
        await host.stop()
        raise
    return host
