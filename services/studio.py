"""The studio's services bundle: one per application, built by the app factory."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..config import StudioConfig
from ..db import accounts as accounts_db
from ..db import jobs as jobs_db
from ..db.private import ensure_private_dir
from ..db.store import Store
from .actions import Actions
from .background import cancel_and_wait
from .boards import Boards
from .civitai import Civitai
from .civitai_files import Downloads, LocalModels
from .comfy_calls import LoggedComfy
from .comfy_host import ComfyHost, FollowsEvents
from .comfy_pool import BackendPool, running_by_backend
from .eventhub import EventHub
from .files import Files
from .gallery import Gallery
from .imports import Imports, output_folder
from .jobs import Jobs
from .live import LiveJobs
from .maintenance import Maintenance
from .models import Models
from .nodepacks import NodePacks
from .notify import EventRelay
from .prompts import Prompts
from .queue_control import QueueControl
from .reconcile import Reconciler
from .security import Security
from .settings import DRAINING_SETTING, Settings
from .shortcodes import Shortcodes
from .workflows import Workflows

log = logging.getLogger("comfyui_studio")

__version__ = "0.1.0"


@dataclass
class Studio:
    config: StudioConfig
    store: Store
    host: ComfyHost
    comfy: LoggedComfy
    jobs: Jobs
    files: Files
    queue: QueueControl
    hub: EventHub
    shortcodes: Shortcodes
    workflows: Workflows
    actions: Actions
    models: Models
    settings: Settings
    prompts: Prompts
    gallery: Gallery
    boards: Boards
    security: Security
    civitai: Civitai
    local_models: LocalModels
    downloads: Downloads
    maintenance: Maintenance
    imports: Imports
    owner_id: int = 0
    live: LiveJobs | None = None
    reconciler: Reconciler | None = None
    _background: set[asyncio.Task[None]] = field(default_factory=set)
    relay: EventRelay | None = None
    _sweep_task: asyncio.Task[None] | None = None

    @classmethod
    def build(cls, config: StudioConfig, host: ComfyHost) -> Studio:
        store = Store(config.db_url)
        comfy = LoggedComfy(host, store)
        shortcodes = Shortcodes(store)
        hub = EventHub()
        models = Models(host, comfy, hub)
        workflows = Workflows(store, comfy, models)
        workflows.node_packs = NodePacks(config.node_map_paths, config.custom_nodes_dirs)
        jobs = Jobs(config, store, comfy, node_definitions=lambda: workflows.object_info())
        files = Files(config, store, comfy)
        studio: Studio
        actions = Actions(store, jobs, files, workflows, lambda: studio.owner_id, registry=shortcodes.registry)
        models.status = actions.checkpoint_status  # the `models` event carries what the default actions can do
        settings = Settings(store, shortcodes, workflows)
        queue = QueueControl(store, comfy, jobs)
        security = Security.build(config, store)
        civitai = Civitai(store, lambda: security.secrets, lambda: studio.owner_id)
        settings.listeners.append(civitai.settings_changed)
        # ComfyUI's model folders (folder_paths in plugin mode); None: a remote ComfyUI, no files to reach
        local = host.local if isinstance(host, BackendPool) else host
        local_models = LocalModels(store, getattr(local, "model_dirs", None))
        folders = comfy_folders(config, local)
        studio = cls(
            config=config,
            store=store,
            host=host,
            comfy=comfy,
            jobs=jobs,
            files=files,
            queue=queue,
            hub=hub,
            shortcodes=shortcodes,
            workflows=workflows,
            actions=actions,
            models=models,
            settings=settings,
            prompts=Prompts(config, jobs, shortcodes, workflows, actions, settings),
            gallery=Gallery(store, jobs, queue, files),
            boards=Boards(store),
            security=security,
            civitai=civitai,
            local_models=local_models,
            downloads=Downloads(civitai, local_models, hub, models, lambda: studio.owner_id),
            maintenance=Maintenance(config, store, comfy, settings.values, folders, lambda: studio.owner_id),
            imports=Imports(config, store, hub, output_folder(folders), lambda: studio.owner_id),
        )
        return studio

    async def start(self, *, follow_comfy: bool = True) -> None:
        """Open the store and start following ComfyUI (`follow_comfy=False`: one-shot command-line use)."""
        if follow_comfy:
            self.security.load_keys()  # first: a refused key file stops start-up with nothing open
        ensure_private_dir(self.config.data_dir)
        await self.store.open()
        self.owner_id = await self._ensure_local_owner()
        if follow_comfy:
            await self.security.share_keys(self.owner_id)  # PostgreSQL: one signing-key set for every process
        self.live = LiveJobs(self.store, self.comfy, self.jobs, self.files, self.hub, lambda: self.owner_id)
        self.jobs.lifecycle = self.live
        self.host.subscribe(self.live.on_event)
        self.live.start()
        pool = self.host if isinstance(self.host, BackendPool) else None
        self.reconciler = Reconciler(
            self.config, self.store, self.comfy, self.jobs, self.live, requeue_lost=self._requeue_lost_jobs, pool=pool
        )
        if not follow_comfy:
            return
        if isinstance(self.host, BackendPool):
            self.host.down_listeners.append(self.reconciler.backend_down)
            self.host.job_backend = self._job_backend
            await self.host.configure(await self._backend_urls())
            await self._restore_draining()
            self.settings.listeners.append(self._settings_changed)
        # Other studio processes on the same PostgreSQL database: their jobs' events, live (nothing on SQLite).
        self.relay = EventRelay(self.store, self.hub, self.jobs.get)
        await self.relay.start()
        self.relay.run_command = self._run_for_other_process
        self.queue.elsewhere = self.relay.elsewhere
        # The built-in shortcodes and the default library exist before the first request, so a request the
        # studio refuses writes nothing; then ComfyUI's definitions and model lists, watched from here on.
        await self.shortcodes.ensure_seeded()
        await self.actions.seed_defaults()
        await self.models.start()
        # Jobs a previous process left active: followed, settled, re-queued or lost.
        await self.reconciler.run()
        if self.store.dispatch.shared:
            # a studio process sharing the database may die while this one runs on: its jobs must not hang
            self._sweep_task = asyncio.get_running_loop().create_task(self._sweep_dead_processes())
        await self.security.start(self.owner_id)
        self.local_models.start()  # hashes ComfyUI's model files in the background, once each
        await self.civitai.prune()  # Civitai answers too old to serve even as stale
        self.maintenance.start()  # storage maintenance on its schedule (maintenance_interval_hours)
        await self.imports.load()  # an import of ComfyUI's outputs the last process left running carries on
        if isinstance(self.host, FollowsEvents):
            # A remote ComfyUI: its /ws, and after every reconnect a reconciliation for what was missed.
            self.host.on_connect(self._on_host_connect)
            self.host.start_events()

    async def _run_for_other_process(self, operation: str, owner_id: int, job_id: str) -> None:
        """A job operation another studio process was asked for: this one dispatched the job."""
        if operation == "cancel":
            await self.queue.cancel(owner_id, job_id)
        elif operation == "front":
            await self.queue.move_to_front(owner_id, job_id)
        else:
            raise ValueError(f"no such operation {operation!r}")

    async def _on_host_connect(self, first: bool) -> None:
        if not first:
            self.models.forget()  # ComfyUI may have restarted with other nodes and models
        if self.reconciler is not None:
            await self.reconciler.run()

    async def _job_backend(self, job_id: str) -> str | None:
        """Which backend ran a job: stored once ComfyUI took it; before that, the pool's own record."""
        async with self.store.transaction() as session:
            job = await jobs_db.job(session, job_id)
        if job is None:
            return None
        if job.backend:
            return job.backend
        return self.host.backend_of(job.prompt_id or "") if isinstance(self.host, BackendPool) else None

    async def _requeue_lost_jobs(self) -> bool:
        return bool(await self.settings.value(self.owner_id, "requeue_lost_jobs"))

    async def _backend_urls(self) -> list[str]:
        value = await self.settings.value(self.owner_id, "comfy_backends")
        return [str(url) for url in value] if isinstance(value, list) else []

    def _settings_changed(self, _user_id: int, names: list[str]) -> None:
        if "comfy_backends" in names:
            task = asyncio.get_running_loop().create_task(self._apply_backends())
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _apply_backends(self) -> None:
        assert isinstance(self.host, BackendPool)
        await self.host.configure(await self._backend_urls())
        await self._restore_draining()
        self.models.forget()  # the union of the backends' nodes and models changed

    async def _restore_draining(self) -> None:
        """The backends the owner switched off stay off across restarts and setting changes."""
        assert isinstance(self.host, BackendPool)
        value = await self.settings.value(self.owner_id, DRAINING_SETTING)
        for name in value if isinstance(value, list) else []:
            if name in self.host.members:
                self.host.set_draining(str(name), True)

    async def set_draining(self, name: str, draining: bool) -> None:
        """Switch a backend off (it finishes what it has) or on again; kept in `draining_backends`."""
        assert isinstance(self.host, BackendPool)
        self.host.set_draining(name, draining)
        value = await self.settings.value(self.owner_id, DRAINING_SETTING)
        names = {str(n) for n in value} if isinstance(value, list) else set()
        names = names | {name} if draining else names - {name}
        await self.settings.update(self.owner_id, True, {DRAINING_SETTING: sorted(names)})

    async def backends(self) -> list[dict[str, object]]:
        """Every backend with its health, load and the studio's jobs running on it."""
        if not isinstance(self.host, BackendPool):
            return []
        async with self.store.transaction() as session:
            active = await jobs_db.active_jobs(session, None, None)
        return self.host.listing(running_by_backend((j.backend, j.state) for j in active))

    async def snapshot(self, user_id: int | None) -> dict[str, object]:
        """The resync payload: this user's unfinished jobs and the queue counts."""
        if user_id is not None and self.live is not None:
            self.live.audience.add(user_id)  # from now on this user gets its own queue events
        active = await self.jobs.active(user_id)  # with the lifecycle's newest progress (Jobs.serialize)
        try:
            raw = await self.comfy.host.queue()
        except Exception:
            raw = None  # unreachable: counted as empty, `connected: false`
        assert self.live is not None
        return {"jobs": active, "queue": self.live.queue_view(raw, user_id)[0]}

    async def stop(self) -> None:
        stop_events = getattr(self.host, "stop_events", None)
        if callable(stop_events):
            await stop_events()  # no reconnect or reconciliation may start while we shut down
        await self.maintenance.stop()
        await self.imports.stop()
        await self.models.stop()
        await self.downloads.stop()
        await self.local_models.stop()
        await self.civitai.close()
        if self.live is not None:
            await self.live.stop()
        await cancel_and_wait(self._sweep_task)
        if self.relay is not None:
            await self.relay.stop()
        self.hub.close()
        await self.host.close()
        await self.store.close()

    async def _sweep_dead_processes(self) -> None:
        while True:
            await asyncio.sleep(self.config.dead_process_sweep_s)
            try:
                async with self.store.transaction() as session:
                    others = {j.dispatcher for j in await jobs_db.active_jobs(session, None, None)}
                others.discard(self.store.dispatch.name)
                for name in others:
                    if name is None or not await self.store.dispatch.alive(name):
                        assert self.reconciler is not None
                        await self.reconciler.run()  # takes over the dead one's jobs (db.dispatch.claim)
                        break
            except Exception:
                log.exception("Looking for the jobs of studio processes that stopped failed; trying again later")

    async def _ensure_local_owner(self) -> int:
        async with self.store.transaction() as session:
            return await accounts_db.ensure_owner(session)


def comfy_folders(config: StudioConfig, host: ComfyHost | None) -> Callable[[str], Path | None] | None:
    """Where ComfyUI's output/input/temp folders are on this disk: the in-process host knows; standalone,
    the configured ComfyUI folder (None: a remote ComfyUI whose files maintenance cannot reach)."""
    local = getattr(host, "local_folder", None)
    if callable(local):
        return local
    if config.comfy_dir is not None:
        base = Path(config.comfy_dir)
        return lambda folder_type: base / folder_type if folder_type in ("output", "input", "temp") else None
    return None
