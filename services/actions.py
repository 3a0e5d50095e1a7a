"""Actions: slots that run a workflow on an image, the default library, running them, and lineage.

The default library (``workflows/library.json`` at the repository root) is seeded at start-up as
ordinary rows owned by the studio's owner and shared: the same tables users edit. Running an action
validates its parameter values, builds one list of RFC 6902 patches (bindings, then parameters and
computed padding, then shortcodes), submits through ``Jobs.submit``, and records the workflow version,
slot, values and parent image on the job, so every image has a lineage that can be re-run.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import logging
import random
from collections.abc import Awaitable, Callable
from pathlib import Path

from ..db import actions as repo
from ..db.models import Image, Job, utcnow
from ..db.store import Session, Store
from ..db.workflows import Action
from ..engine import masks, planner
from ..engine.errors import StudioError, not_found
from ..engine.graph import check_api_graph
from ..engine.params import (
    ParamError,
    check_values,
    discover_parameters,
    merge_params,
    normalize_param,
)
from ..engine.patches import SEED_DRAW_MAX
from ..engine.shortcodes import Registry
from ..engine.text import check_prompt_text
from .comfy_host import JSON
from .files import Files
from .jobs import CHOICE_SEED, Jobs, image_to_dict, iso, jobs_answer
from .models import combo_choices
from .workflows import Imported, Workflows

log = logging.getLogger("comfyui_studio.actions")

LIBRARY_DIR = Path(__file__).resolve().parent.parent / "workflows"
BUILTIN_PREFIX = "default:"
COMPUTES = ("", "zoom", "pan")
MAX_LINEAGE = 500
CHECKPOINT_SETTING = "default_checkpoint"
UPSCALE_MODEL_SETTING = "default_upscale_model"


def _param_error(exc: ParamError) -> StudioError:
    return StudioError("validation_error", str(exc), [{"loc": list(exc.loc), "message": str(exc), "type": "parameter"}])


def image_ref(image: Image) -> str:
    """How LoadImage names a file the studio knows: input/ files by relative path, others annotated."""
    name = f"{image.subfolder}/{image.filename}" if image.subfolder else image.filename
    return name if image.folder_type == "input" else f"{name} [{image.folder_type}]"


def checkpoints(object_info: dict[str, JSON]) -> list[str]:
    """The checkpoints ComfyUI lists (``CheckpointLoaderSimple``'s ``ckpt_name``); [] without the node."""
    return combo_choices(object_info, "CheckpointLoaderSimple", "ckpt_name")


def upscale_models(object_info: dict[str, JSON]) -> list[str]:
    """The upscale models ComfyUI lists (``UpscaleModelLoader``'s ``model_name``); [] without the node or a model."""
    if "ImageUpscaleWithModel" not in object_info or "GetImageSize" not in object_info:
        return []
    return combo_choices(object_info, "UpscaleModelLoader", "model_name")


def planner_models(status: dict[str, JSON]) -> planner.Models:
    """What ``checkpoint_status`` says, as the planner's model choice."""
    available = status.get("available")
    return planner.Models(
        checkpoint=str(status["checkpoint"]) if status.get("checkpoint") else None,
        available=tuple(str(a) for a in available) if isinstance(available, list) else (),
        upscale_model=str(status["upscale_model"]) if status.get("upscale_model") else None,
        message=str(status.get("message") or "No checkpoint is installed"),
    )


RegistryFor = Callable[[int, str | None], Awaitable[Registry]]


class Actions:
    def __init__(
        self,
        store: Store,
        jobs: Jobs,
        files: Files,
        workflows: Workflows,
        owner_id: Callable[[], int],
        *,
        registry: RegistryFor,
    ) -> None:
        self.store = store
        self.files = files
        self.registry = registry  # the user's shortcodes: built-ins as the owner edited them, own, shared
        self.jobs = jobs
        self.workflows = workflows
        self._owner_id = owner_id  # a callable: the studio's owner id is known only after start-up
        self._seed_lock = asyncio.Lock()
        self.rng = random.SystemRandom()

    @property
    def owner_id(self) -> int:
        return self._owner_id()

    # -- the default library -------------------------------------------------------------------------

    async def seed_defaults(self) -> None:
        """Write the default workflows and actions that are missing, for the owner (at start-up; idempotent).

        The library's graphs are the studio's own: they are stored as they are, without asking ComfyUI
        for its node definitions, so seeding works before ComfyUI answers. Their checkpoint is chosen when
        they run (`_with_checkpoint`): the configured one, else the first installed, whenever it appears.
        Rows already there, edited or not, are left alone; a deleted default action comes back.
        """
        async with self._seed_lock:
            library = json.loads((LIBRARY_DIR / "library.json").read_text(encoding="utf-8"))
            owner = self.owner_id
            async with self.store.transaction(owner) as session:
                ids = await repo.builtin_workflows(session, BUILTIN_PREFIX)
                slots = await repo.builtin_slots(session)
            for key, meta in library["workflows"].items():
                if key in ids:
                    continue
                document = json.loads((LIBRARY_DIR / meta["file"]).read_text(encoding="utf-8"))
                graph = check_api_graph(document)
                created = await self.workflows.create(
                    owner,
                    name=meta["name"],
                    description=meta.get("description", ""),
                    document=document,
                    tags=["default"],
                    shared=True,
                    builtin_key=BUILTIN_PREFIX + key,
                    imported=Imported(graph, None, "api", discover_parameters(graph, {}), [], []),
                )
                ids[key] = str(created["id"])
            missing = [item for item in library["actions"] if item["slot"] not in slots]
            if not missing:
                return
            rows = [
                Action(
                    owner_id=owner,
                    slot=item["slot"],
                    label=item["label"],
                    icon=item.get("icon", ""),
                    position=library["actions"].index(item),
                    workflow_id=ids[item["workflow"]],
                    parameters=[normalize_param(p, None, {}) for p in item.get("parameters", [])],
                    compute=item.get("compute", ""),
                    needs_image=item.get("needs_image", True),
                    needs_mask=item.get("needs_mask", False),
                    shared=True,
                    builtin=True,
                    created_by=owner,
                    updated_by=owner,
                )
                for item in missing
            ]
            async with self.store.transaction(owner) as session:
                await repo.add(session, rows)
            log.info("Seeded the default actions: %s", ", ".join(item["slot"] for item in missing))

    async def checkpoint_status(self) -> dict[str, JSON]:
        """The checkpoint the default workflows use (the configured one, else the host's first) and how they upscale."""
        info = await self.workflows.object_info()
        names = checkpoints(info)
        models = upscale_models(info)
        async with self.store.transaction() as session:
            stored = await repo.setting_values(session, [CHECKPOINT_SETTING, UPSCALE_MODEL_SETTING])
        configured = stored.get(CHECKPOINT_SETTING)
        configured = configured if isinstance(configured, str) else None
        wanted = stored.get(UPSCALE_MODEL_SETTING)
        wanted = wanted if isinstance(wanted, str) else None
        model = wanted if wanted in models else (models[0] if models else None)
        chosen = configured if configured in names else (names[0] if names else None)
        message = None
        if not names:
            message = (
                "No checkpoint is installed: put a model in ComfyUI's models/checkpoints to use the default actions"
            )
        elif configured and configured not in names:
            message = f"The configured checkpoint {configured!r} is not installed; using {chosen!r}"
        return {
            "checkpoint": chosen,
            "configured": configured,
            "available": names,
            "message": message,
            # The upscale slots: "model" runs the upscale model then scales to the factor; "resize" scales alone.
            "upscale": "model" if model else "resize",
            "upscale_model": model,
            "upscale_models": models,
        }

    # -- reading and editing actions ---------------------------------------------------------------

    async def _visible(self, session: Session, user_id: int) -> list[Action]:
        rows = await repo.visible_actions(session, user_id)
        # A user's own action for a slot replaces the shared one.
        chosen: dict[str, Action] = {}
        for row in rows:
            if row.slot not in chosen or row.owner_id == user_id:
                chosen[row.slot] = row
        return sorted(chosen.values(), key=lambda a: (a.position, a.slot))

    def _to_dict(self, action: Action, user_id: int, problem: str | None = None) -> dict[str, JSON]:
        return {
            "id": action.id,
            "slot": action.slot,
            "label": action.label,
            "icon": action.icon,
            "position": action.position,
            "workflow_id": action.workflow_id,
            "parameters": list(action.parameters or []),
            "compute": action.compute,
            "needs_image": action.needs_image,
            "needs_mask": action.needs_mask,
            "shared": action.shared,
            "builtin": action.builtin,
            "mine": action.owner_id == user_id,
            "ready": problem is None,
            "problem": problem,
            "updated_at": iso(action.updated_at),
        }

    async def list(self, user_id: int) -> list[dict[str, JSON]]:
        problem = None
        try:
            status = await self.checkpoint_status()
            problem = status["message"] if status["checkpoint"] is None else None
        except StudioError:
            problem = "ComfyUI is unavailable"
        async with self.store.transaction(user_id) as session:
            rows = await self._visible(session, user_id)
            builtin_wf = await repo.builtin_workflow_ids(session)
        return [self._to_dict(a, user_id, problem if a.workflow_id in builtin_wf else None) for a in rows]

    async def _resolve(self, session: Session, user_id: int, slot: str) -> Action:
        for action in await self._visible(session, user_id):
            if action.slot == slot:
                return action
        raise not_found(f"Action {slot!r}")

    async def get(self, user_id: int, slot: str) -> dict[str, JSON]:
        async with self.store.transaction(user_id) as session:
            return self._to_dict(await self._resolve(session, user_id, slot), user_id)

    def _check_params(self, raw: builtins.list[JSON]) -> builtins.list[dict[str, JSON]]:
        out = []
        for item in raw:
            try:
                out.append(normalize_param(item, None, {}))
            except ParamError as exc:
                raise _param_error(exc) from None
        return out

    async def create(self, user_id: int, fields: dict[str, JSON]) -> dict[str, JSON]:
        await self.workflows.head(user_id, str(fields["workflow_id"]))  # visible to this user
        async with self.store.transaction(user_id) as session:
            mine = await repo.own_action(session, user_id, str(fields["slot"]))
            if mine is not None:
                raise StudioError(
                    "conflict", f"You already have an action in slot {fields['slot']!r}; change it instead"
                )
            action = Action(
                owner_id=user_id,
                slot=fields["slot"],
                label=fields["label"],
                icon=fields.get("icon") or "",
                position=fields.get("position") if fields.get("position") is not None else 100,
                workflow_id=fields["workflow_id"],
                parameters=self._check_params(fields.get("parameters") or []),
                compute=fields.get("compute") or "",
                needs_image=bool(fields.get("needs_image", True)),
                needs_mask=bool(fields.get("needs_mask", False)),
                shared=bool(fields.get("shared", False)),
                created_by=user_id,
                updated_by=user_id,
            )
            await repo.add(session, [action])
        return self._to_dict(action, user_id)

    async def _own(self, session: Session, user_id: int, slot: str) -> Action:
        action = await repo.own_action(session, user_id, slot)
        if action is None:
            visible = await self._resolve(session, user_id, slot)
            raise StudioError(
                "forbidden", f"Action {visible.slot!r} belongs to someone else; create your own for this slot"
            )
        return action

    async def update(self, user_id: int, slot: str, fields: dict[str, JSON]) -> dict[str, JSON]:
        if fields.get("workflow_id") is not None:
            await self.workflows.head(user_id, str(fields["workflow_id"]))
        async with self.store.transaction(user_id) as session:
            action = await self._own(session, user_id, slot)
            for key in ("label", "icon", "position", "workflow_id", "compute", "needs_image", "needs_mask", "shared"):
                if fields.get(key) is not None:
                    setattr(action, key, fields[key])
            if fields.get("parameters") is not None:
                action.parameters = self._check_params(fields["parameters"])
            action.updated_by = user_id
            action.updated_at = utcnow()
        return self._to_dict(action, user_id)

    async def delete(self, user_id: int, slot: str) -> dict[str, JSON]:
        async with self.store.transaction(user_id) as session:
            action = await self._own(session, user_id, slot)
            await repo.delete(session, action)
        return {"deleted": slot}

    async def graph_for_slot(self, user_id: int, slot: str) -> dict[str, JSON] | None:
        """The head graph of the workflow a slot runs (the checkpoint filled in for a default); None: no such slot."""
        async with self.store.transaction(user_id) as session:
            try:
                action = await self._resolve(session, user_id, slot)
            except StudioError:
                return None
        workflow, version = await self.workflows.head(user_id, action.workflow_id)
        graph: dict[str, JSON] = version.graph
        return await self._with_checkpoint(graph) if workflow.builtin_key is not None else graph

    # -- running -------------------------------------------------------------------------------------

    async def _image(self, user_id: int, image_id: str | None, what: str) -> Image | None:
        if image_id is None:
            return None
        try:
            return await self.files.image_row(user_id, image_id)
        except StudioError:
            raise StudioError("not_found", f"The {what} image {image_id} was not found") from None

    async def run(
        self,
        user_id: int,
        slot: str,
        *,
        image_id: str | None = None,
        mask_id: str | None = None,
        text: str | None = None,
        parameters: dict[str, JSON] | None = None,
        front: bool = False,
        version_id: str | None = None,
        rerun_of: str | None = None,
        choice_seed: int | None = None,
    ) -> dict[str, JSON]:
        """Gather the slot's workflow, images, values, registry and models; plan; submit in one first commit."""
        if text is not None:
            text = check_prompt_text(text, self.jobs.config.max_prompt_chars) or None
        async with self.store.transaction(user_id) as session:
            action = await self._resolve(session, user_id, slot)
            workflow, version = await repo.workflow_version(session, action.workflow_id, version_id)
        if workflow is None or version is None:
            raise StudioError("conflict", f"Action {slot!r} has no workflow to run; assign it one")
        source = await self._image(user_id, image_id, "source")
        mask = await self._image(user_id, mask_id, "mask")
        if action.needs_image and source is None:
            raise StudioError("validation_error", f"Action {slot!r} needs a source image (image_id)")
        if action.needs_mask and mask is None:
            raise StudioError("validation_error", f"Action {slot!r} needs a mask (mask_id)")
        graph: dict[str, JSON] = version.graph
        params = merge_params(list(version.parameters or []), list(action.parameters or []))
        values = self._values(params, dict(parameters or {}))
        bindings = dict(version.bindings or {})
        # A mask goes in the form its loader reads (alpha or grayscale).
        mask_form = masks.mask_form(graph, bindings.get("mask"))
        bound: dict[str, JSON] = {
            "image": image_ref(source) if source is not None else None,
            "mask": await self.files.mask_ref(user_id, mask, mask_form) if mask is not None else None,
        }
        if "seed" in bindings and "seed" not in values:
            values["seed"] = self.rng.randint(0, SEED_DRAW_MAX)  # a new image each run, recorded for re-runs
        if "seed" in values and not any(p.get("name") == "seed" for p in params):
            bound["seed"] = values["seed"]
        computed = None
        if action.compute in ("zoom", "pan"):
            width, height = (source.width, source.height) if source is not None else (None, None)
            computed = planner.Computed(action.compute, width, height, label=action.slot)
        models = None
        if workflow.builtin_key is not None and planner.needs_models(graph):
            models = planner_models(await self.checkpoint_status())
        registry = await self.registry(user_id, workflow.id)
        resources = None
        if text and planner.needs_resources(text, registry):
            resources = await self.workflows.resources()
        prompt = planner.plan_prompt(
            text,
            registry,
            graph,
            workflow_id=workflow.id,
            workflow_name=f"workflow {workflow.name!r}",
            bindings=bindings,
            bound=bound,
            parameters=params,
            values=values,
            computed=computed,
            models=models,
            node_definitions=await self.workflows.object_info(),
            resources=resources,
        )
        if prompt.errors:
            raise prompt.refusal("text")
        answers = []
        # Each job put in front goes before the last: submit them last first so they run in the prompt's order.
        for plan in reversed(prompt.plans) if front else prompt.plans:
            assert plan.graph is not None
            job_values = {**values, **plan.computed}
            # The job and its action metadata in the submit's first commit: one shape from the first event on.
            answers.append(
                await self.jobs.submit(
                    user_id,
                    plan.graph,
                    prompt_text=text,
                    clean_text=plan.parsed.text,
                    front=front,
                    patches=plan.ops,
                    choice_seed=choice_seed,
                    parameters={**job_values, **({"rerun_of": rerun_of} if rerun_of else {})},
                    workflow_version_id=version.id,
                    action_id=action.id,
                    action_slot=action.slot,
                    parent_image_id=source.id if source is not None else None,
                    mask_image_id=mask.id if mask is not None else None,
                    extra={
                        "action_warnings": plan.messages,
                        "mask_image_id": mask_id,
                        "workflow_id": workflow.id,
                        "workflow_version": version.number,
                        **({"expansion": plan.record(prompt.count)} if text else {}),
                    },
                )
            )
        return jobs_answer(answers[::-1] if front else answers)

    @staticmethod
    def _values(params: builtins.list[dict[str, JSON]], given: dict[str, JSON]) -> dict[str, JSON]:
        """The checked parameter values; a ``seed`` no parameter declares is taken as the sampler's seed."""
        seed = None if any(p.get("name") == "seed" for p in params) else given.pop("seed", None)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64):
            raise StudioError("validation_error", f"seed must be a whole number from 0 to 2^64-1, not {seed!r}")
        try:
            values = check_values(params, given)
        except ParamError as exc:
            raise _param_error(exc) from None
        if seed is not None:
            values["seed"] = seed
        return values

    async def _with_checkpoint(self, graph: dict[str, JSON]) -> dict[str, JSON]:
        """A default workflow's graph on the configured or first installed checkpoint and upscale model."""
        if not planner.needs_models(graph):
            return graph
        patched, _ops = planner.with_models(graph, planner_models(await self.checkpoint_status()))
        return patched

    # -- lineage -----------------------------------------------------------------------------------

    async def lineage(self, user_id: int, image_id: str) -> dict[str, JSON]:
        """The tree of jobs and images around an image: from its root source down to every descendant."""
        async with self.store.transaction(user_id) as session:
            image = await repo.image(session, image_id)
            if image is None or image.owner_id != user_id:
                raise not_found("Image")
            path = [image.id]
            current = image
            while current.job_id and len(path) < MAX_LINEAGE:
                job = await repo.job(session, current.job_id)
                if job is None or not job.parent_image_id:
                    break
                parent = await repo.image(session, job.parent_image_id)
                if parent is None or parent.owner_id != user_id:
                    break
                path.insert(0, parent.id)
                current = parent
            root = current
            count = [0]
            tree = await self._subtree(session, user_id, root, count)
        return {"image_id": image_id, "path": path, "root": tree}

    async def _subtree(
        self, session: Session, user_id: int, image: Image, count: builtins.list[int]
    ) -> dict[str, JSON]:
        count[0] += 1
        job_info: dict[str, JSON] | None = None
        if image.job_id:
            job = await repo.job(session, image.job_id)
            if job is not None:
                job_info = await self._job_summary(session, job)
        children: list[dict[str, JSON]] = []
        if count[0] < MAX_LINEAGE:
            for job in await repo.jobs_from_image(session, image.id, user_id):
                outputs = await repo.outputs_of(session, job.id)
                if not outputs:  # a job still running, or one that failed: a leaf without an image
                    children.append({"image": None, "job": await self._job_summary(session, job), "children": []})
                for out in outputs:
                    children.append(await self._subtree(session, user_id, out, count))
        return {"image": image_to_dict(image), "job": job_info, "children": children}

    @staticmethod
    async def _job_summary(session: Session, job: Job) -> dict[str, JSON]:
        text = await repo.prompt_text(session, job.prompt_row_id)
        return {
            "id": job.id,
            "state": job.state,
            "action": job.action_slot,
            "parameters": job.parameters or {},
            "workflow_version_id": job.workflow_version_id,
            "parent_image_id": job.parent_image_id,
            "prompt_text": text,
            "created_at": iso(job.created_at),
        }

    async def rerun(self, user_id: int, job_id: str, *, same_seed: bool = False) -> dict[str, JSON]:
        """Run a recorded action step again: same version, source, prompt and values (a new seed unless asked)."""
        async with self.store.transaction(user_id) as session:
            job = await repo.job(session, job_id)
            if job is None or job.owner_id != user_id:
                raise not_found("Job")
            text = await repo.prompt_text(session, job.prompt_row_id)
        expansion = (job.extra or {}).get("expansion")
        if isinstance(expansion, dict) and isinstance(expansion.get("text"), str):
            text = expansion["text"]  # this job's own prompt: a re-run is one job, not the whole permutation
        if not job.action_slot:
            raise StudioError("conflict", "This job was not run by an action; replay its call instead")
        values = {k: v for k, v in (job.parameters or {}).items() if not k.startswith("pad_") and k != "rerun_of"}
        # The same seed repeats the image: the sampler's seed and the prompt's drawn choices alike.
        choice_seed = values.pop(CHOICE_SEED, None)
        if not same_seed:
            values.pop("seed", None)
            choice_seed = None
        async with self.store.transaction(user_id) as session:
            action = await self._resolve(session, user_id, job.action_slot)
            version = await repo.version(session, job.workflow_version_id) if job.workflow_version_id else None
            params = merge_params(list(version.parameters or []) if version else [], list(action.parameters or []))
        known = {str(p.get("name")) for p in params} | ({"seed"} if same_seed else set())
        values = {k: v for k, v in values.items() if k in known}
        same_workflow = version is not None and version.workflow_id == action.workflow_id
        return await self.run(
            user_id,
            job.action_slot,
            image_id=job.parent_image_id,
            mask_id=(job.extra or {}).get("mask_image_id"),
            text=text,
            parameters=values,
            version_id=version.id if same_workflow and version else None,
            rerun_of=job.id,
            choice_seed=choice_seed if isinstance(choice_seed, int) else None,
        )
