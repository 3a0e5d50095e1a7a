"""The prompt path: preview, jobs with a prompt, the prompt bar's generate, completions, definition drafts.

Each entry gathers what the planner needs (the user's registry, the graph, the prompt defaults), plans
with ``engine/planner.py`` and submits through ``Jobs.submit``. The prompt text is checked here, once,
first, for every path (length and control characters): a refused text writes nothing and asks nobody.
An image prompt is an action run (``Actions.run``), which plans with the same planner.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ..config import StudioConfig
from ..engine import grammar, planner
from ..engine import shortcodes as sc
from ..engine.errors import StudioError, validation_error
from ..engine.graph import check_api_graph
from ..engine.ids import IMAGE
from ..engine.selectors import JSON, Graph
from ..engine.text import check_prompt_text
from .actions import Actions
from .jobs import Jobs, jobs_answer
from .models import offered_values
from .settings import Settings
from .shortcodes import DefinitionIn, DefinitionRequest, Shortcodes
from .workflows import Workflows


class DefinitionPreview(BaseModel):
    """A definition being edited, a sample prompt, and the workflow (or graph) to plan it on."""

    model_config = ConfigDict(extra="forbid", strict=True)

    definition: DefinitionIn
    text: str = Field(max_length=20_000)
    workflow_id: str | None = Field(default=None, min_length=1, max_length=32)
    graph: dict[str, object] | None = None
    # The code being edited: its stored row is left out, as a save would replace it.
    shortcode_id: str | None = Field(default=None, min_length=1, max_length=32)


def preview_dict(prompt: planner.PromptPlan, text: str) -> dict[str, JSON]:
    """The preview of every job a prompt makes: the first job's plan at the top (as before permutations),
    each job's text, translation and operations under ``expansions``."""
    if not prompt.plans:  # refused as a whole (too many jobs)
        return {
            "clean_text": "", "tokens": [], "errors": [*prompt.errors], "warnings": [], "patches": [],
            "reports": [], "count": prompt.count, "expansions": [],
        }  # fmt: skip
    first = prompt.first
    return {
        "clean_text": first.parsed.text,
        "tokens": list(first.tokens),
        "errors": [*prompt.errors],
        "warnings": [*prompt.warnings],
        "patches": _ops(first),
        "reports": [r.to_dict() for r in first.reports],
        "count": prompt.count,
        "expansions": [
            {
                "text": p.text,
                "clean_text": p.parsed.text,
                "positive": p.positive,
                "negative": p.negative,
                "codes": dict(p.codes),
                "patches": _ops(p),
            }
            for p in prompt.plans
        ],
    }


def _ops(plan: planner.Plan) -> list[JSON]:
    return [{"op": op["op"], "path": op["path"], "value": op["value"]} for op in plan.ops]


def checked_image_id(value: str) -> str:
    if not IMAGE.matches(value):
        raise validation_error("image_ids: not an image id", ["image_ids", 0])
    return value


class Prompts:
    def __init__(
        self,
        config: StudioConfig,
        jobs: Jobs,
        shortcodes: Shortcodes,
        workflows: Workflows,
        actions: Actions,
        settings: Settings,
    ) -> None:
        self.config = config
        self.jobs = jobs
        self.shortcodes = shortcodes
        self.workflows = workflows
        self.actions = actions
        self.settings = settings

    def checked_text(self, text: str) -> str:
        """The one check of a prompt's text: its length as sent, then without control characters."""
        return check_prompt_text(text, self.config.max_prompt_chars)

    async def default_graph(self, user: int) -> Graph | None:
        """The graph `POST /generate` runs when the request brings none; None: no generate workflow configured."""
        return await self.actions.graph_for_slot(user, "generate")

    async def _default_graph_if_ready(self, user: int) -> Graph | None:
        try:
            return await self.default_graph(user)
        except StudioError:
            return None  # the default workflow cannot run yet (no checkpoint): a preview parses only

    async def workflow_graph(self, user: int, workflow_id: str) -> Graph | None:
        _workflow, version = await self.workflows.head(user, workflow_id)
        graph: Graph = version.graph
        return graph

    async def preview(
        self, user: int, text: str, graph: dict[str, object] | None = None, workflow_id: str | None = None
    ) -> dict[str, JSON]:
        """What submitting ``text`` would do (on ``graph`` as sent, checked here), without queueing anything."""
        self.checked_text(text)  # offsets refer to the text as sent
        checked = check_api_graph(graph) if graph is not None else None
        registry = await self.shortcodes.registry(user, workflow_id)
        if checked is None:
            checked = await self._default_graph_if_ready(user)
        resources = await self.resources_if_ready()
        planned = planner.plan_prompt(text, registry, checked, workflow_id=workflow_id, resources=resources)
        return preview_dict(planned, text)

    async def resources(self) -> grammar.Resources:
        """The names this ComfyUI lists, for ``--model``, ``--lora``, ``embedding:``, ``--sampler``…"""
        return await self.workflows.resources()

    async def resources_if_ready(self) -> grammar.Resources | None:
        try:
            return await self.resources()
        except StudioError:
            return None  # ComfyUI away: a preview says the names were not checked

    async def submit_job(
        self, user: int, graph: object, text: str | None, *, front: bool = False, choice_seed: int | None = None
    ) -> dict[str, JSON]:
        """``POST /jobs``: an API-format graph as sent, with an optional prompt whose codes patch it."""
        checked = check_api_graph(graph)
        if text:
            return await self.submit(user, checked, text, front=front, choice_seed=choice_seed)
        return await self.jobs.submit(user, checked, front=front, choice_seed=choice_seed)

    async def submit(
        self,
        user: int,
        graph: Graph,
        text: str,
        *,
        front: bool = False,
        field: str = "prompt",
        workflow_id: str | None = None,
        choice_seed: int | None = None,
    ) -> dict[str, JSON]:
        """Parse, expand, patch and submit every job the text makes; refused with the parse errors (and
        nothing written) when any expansion has one. One job answers as the Job; several as
        ``{"jobs": [Job…], "count": n}``.

        The text's ``{a|b}`` choices and comments are left for ``Jobs.submit``, which draws them in every text
        input that takes dynamic prompts, the prompt's own included, for each job anew."""
        stored_text = self.checked_text(text)
        registry = await self.shortcodes.registry(user, workflow_id)
        resources = await self.resources() if planner.needs_resources(stored_text, registry) else None
        prompt = planner.plan_prompt(stored_text, registry, graph, workflow_id=workflow_id, resources=resources)
        if prompt.errors:
            raise prompt.refusal(field)
        answers = []
        # Each job put in front goes before the last: submit them last first so they run in the prompt's order.
        for plan in reversed(prompt.plans) if front else prompt.plans:
            assert plan.graph is not None
            answers.append(
                await self.jobs.submit(
                    user,
                    plan.graph,
                    prompt_text=stored_text,  # as typed: "reuse prompt" gives it back
                    clean_text=plan.parsed.text,  # this job's prompt without its codes
                    front=front,
                    patches=plan.ops,
                    choice_seed=choice_seed,
                    extra={"expansion": plan.record(prompt.count)},
                )
            )
        return jobs_answer(answers[::-1] if front else answers)

    async def generate(
        self,
        user: int,
        text: str,
        graph: dict[str, object] | None = None,
        image_ids: list[str] | None = None,
        *,
        choice_seed: int | None = None,
    ) -> dict[str, JSON]:
        """The prompt bar's submit: ``text`` on the given graph (as sent), or on the default generate workflow.

        An image prompt (one image chip) runs the img2img action on that image with the text, as
        Midjourney's image prompts do; it keeps its source's size and look (no prompt defaults).
        """
        text = self.checked_text(text)  # before anything is looked up: a bad text is a 400, whatever else
        if image_ids:
            if graph is not None or len(image_ids) > 1:
                raise validation_error(
                    "image_ids: send one image prompt, without a graph; it runs the img2img action", ["image_ids"]
                )
            return await self.actions.run(
                user, "img2img", image_id=checked_image_id(image_ids[0]), text=text, choice_seed=choice_seed
            )
        text = await self.settings.prompt_with_defaults(user, text)
        checked: Graph | None
        if graph is None:
            checked = await self.default_graph(user)
            if checked is None:
                raise StudioError("conflict", "No generate workflow configured")
        else:
            checked = check_api_graph(graph)
        # checked again with the defaults added: what is stored stays within the limit
        return await self.submit(user, checked, text, field="text", choice_seed=choice_seed)

    async def suggest(self, user: int, text: str, cursor: int) -> dict[str, JSON]:
        """Completions at ``cursor`` (UTF-16) and the span they replace: codes, their values, and the names
        this ComfyUI lists after ``--model``, ``--lora``, ``embedding:``, ``--sampler`` and ``--scheduler``."""
        registry = await self.shortcodes.registry(user)
        offsets = planner.Utf16(text)
        inward = offsets.inward(cursor)
        offered: dict[str, list[sc.Offered]] = {}
        if _wants_offered(text, inward):
            resources = await self.resources_if_ready()
            if resources is not None:
                offered.update(offered_values(resources))
            offered["ar"] = await self._ratios(user)
        found = sc.suggest(text, inward, registry, offered=offered)
        items: list[JSON] = [
            {"label": s.label, "insert": s.insert, "kind": s.kind, "description": s.description, "type": s.type}
            for s in found
        ]
        replace: dict[str, JSON]
        if found:
            replace = {"start": offsets.out(found[0].start), "end": offsets.out(found[0].end)}
        else:
            replace = {"start": cursor, "end": cursor}
        return {"items": items, "replace": replace}

    async def _ratios(self, user: int) -> list[sc.Offered]:
        """The common ratios with the size each gives on the generate workflow (at its size node's pixels)."""
        graph = await self._default_graph_if_ready(user)
        pixels = planner.size_pixels(graph) if graph is not None else None
        out = []
        for ratio in sc.COMMON_RATIOS:
            w, h = (float(x) for x in ratio.split(":"))
            width, height = sc.dims_for_ratio(w, h, pixels or sc.ONE_MEGAPIXEL)
            out.append(sc.Offered(ratio, ratio, f"{width}×{height}"))
        return out

    # -- definitions: saved against their graph, tried before saving -----------------------------------

    async def _selector_graph(self, user: int, body: DefinitionRequest) -> Graph | None:
        """The graph a definition's selectors must match: the one sent along, else its workflow's."""
        if body.graph is not None:
            return check_api_graph(body.graph)
        if body.workflow_id is not None:
            return await self.workflow_graph(user, body.workflow_id)
        return None

    async def create_code(self, user: int, owner: bool, body: DefinitionRequest) -> dict[str, JSON]:
        graph = await self._selector_graph(user, body)
        return await self.shortcodes.create(user, owner, body, graph=graph)

    async def update_code(self, user: int, owner: bool, shortcode_id: str, body: DefinitionRequest) -> dict[str, JSON]:
        graph = await self._selector_graph(user, body)
        return await self.shortcodes.update(user, owner, shortcode_id, body, graph=graph)

    async def preview_definition(self, user: int, body: DefinitionPreview) -> dict[str, JSON]:
        """What ``body.text`` would do with the definition as it stands, nothing saved: the preview of
        `POST /prompt/preview` plus ``definition_errors`` (what saving it would refuse; then the preview
        runs without the draft)."""
        # The definition is checked as a save would check it (against its own workflow's graph, if it is
        # limited to one); the sample prompt is planned on the graph sent, else the workflow named, else the
        # generate slot's.
        limited = body.definition.workflow_id
        checked = await self.workflow_graph(user, limited) if limited is not None else None
        graph: Graph | None = None
        if body.graph is not None:
            graph = check_api_graph(body.graph)
        elif body.workflow_id is not None:
            graph = await self.workflow_graph(user, body.workflow_id)
        if graph is None:
            graph = await self._default_graph_if_ready(user)
        registry, problems = await self.shortcodes.draft_registry(
            user, body.definition, editing_id=body.shortcode_id, checked=checked, workflow_id=body.workflow_id
        )
        resources = await self.resources_if_ready()
        planned = planner.plan_prompt(body.text, registry, graph, workflow_id=body.workflow_id, resources=resources)
        refused: list[JSON] = list(problems)
        return {**preview_dict(planned, body.text), "definition_errors": refused}


_OFFERED_AFTER = ("--model", "--ckpt", "--lora", "--sampler", "--scheduler", "--ar", "--aspect", "embedding:")


def _wants_offered(text: str, cursor: int) -> bool:
    """Whether the caret may be where a listed name or a ratio goes (worth asking ComfyUI's lists)."""
    before = text[max(0, cursor - 400) : cursor].casefold()
    return any(marker in before for marker in _OFFERED_AFTER)
