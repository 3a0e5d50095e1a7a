"""Workflows: import (API format, UI format, PNG metadata), versions, parameters, sharing, deletion.

Every change to a workflow's graph, parameters or bindings writes a new version; the row keeps the
head's number. Reading is allowed to the owner and, for shared workflows, to everyone; changing only
to the owner (the built-ins belong to the studio's owner, who edits them like any other row).
"""

from __future__ import annotations

import base64
import binascii
import builtins
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from ..db import workflows as workflows_db
from ..db.models import utcnow
from ..db.store import Store
from ..db.workflows import Workflow, WorkflowVersion
from ..engine.actions import BINDING_KEYS, Binding, discover_bindings
from ..engine.errors import StudioError, not_found
from ..engine.grammar import Resources
from ..engine.graph import check_api_graph
from ..engine.jsoncodec import JSON, JSONInputError, loads_input
from ..engine.params import ParamError, discover_parameters, normalize_param
from ..engine.readiness import readiness, ui_node_types
from ..engine.selectors import Graph
from ..engine.uiformat import (
    MAX_DOCUMENT_DEPTH,
    PNG_SIGNATURE,
    ConversionError,
    convert,
    is_api_graph,
    is_ui_workflow,
    workflow_from_png,
)
from .comfy_calls import LoggedComfy
from .models import Models
from .nodepacks import NodePacks

log = logging.getLogger("comfyui_studio.workflows")

MAX_VERSIONS_PAGE = 200


@dataclass
class Imported:
    graph: Graph
    source: dict[str, JSON] | None
    source_format: str
    parameters: list[dict[str, JSON]]
    outputs: list[str]
    warnings: list[str]


def _json_file(data: bytes) -> JSON:
    try:
        return loads_input(data, max_depth=MAX_DOCUMENT_DEPTH, what="The workflow file")
    except JSONInputError as exc:
        message = "The file is neither a PNG nor JSON" if exc.kind == "syntax" else exc.message
        detail: dict[str, JSON] = {"loc": ["file", *exc.loc], "message": message, "type": f"json_{exc.kind}"}
        raise StudioError("validation_error", message, [detail]) from None


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def json_list(items: Iterable[JSON]) -> list[JSON]:
    """The items as a JSON list (a list[str] is not a list[JSON]: lists are invariant)."""
    return list(items)


def _problem_count(report: dict[str, JSON]) -> int:
    """The node types and model files a readiness report finds missing."""
    return sum(len(found) for key in ("missing_nodes", "missing_models") if isinstance(found := report[key], list))


def conversion_error(exc: ConversionError | ParamError, where: str = "document") -> StudioError:
    node = getattr(exc, "node_id", None)
    loc: list[JSON] = [where, "nodes", node] if node else [where, *getattr(exc, "loc", [])]
    return StudioError("validation_error", str(exc), [{"loc": loc, "message": str(exc), "type": "workflow_error"}])


class Workflows:
    def __init__(self, store: Store, comfy: LoggedComfy, models: Models) -> None:
        self.store = store
        self.comfy = comfy
        self.models = models
        self.node_packs = NodePacks()

    async def object_info(self, *, fresh: bool = False) -> dict[str, JSON]:
        """ComfyUI's node definitions, cached and kept in step with its model folders (services/models.py)."""
        return await self.models.object_info(fresh=fresh)

    async def resources(self) -> Resources:
        """The model, LoRA, embedding, sampler and scheduler names ComfyUI lists (services/models.py)."""
        return await self.models.resources()

    # -- import ------------------------------------------------------------------------------------

    async def import_document(self, document: JSON | bytes | bytearray) -> Imported:
        """An API-format graph from whatever the user gave: API JSON, UI JSON, or a PNG (as base64 or bytes)."""
        if isinstance(document, str):
            try:
                document = base64.b64decode(document, validate=True)
            except (binascii.Error, ValueError):
                raise StudioError("validation_error", "A string document must be a base64 PNG") from None
        if not isinstance(document, bytes | bytearray):
            return self._import_json(document, await self.object_info())
        # The file is read and checked before ComfyUI is asked anything: a refused file writes nothing.
        if bytes(document[:8]) != PNG_SIGNATURE:
            return self._import_json(_json_file(bytes(document)), await self.object_info())
        try:
            prompt, workflow = workflow_from_png(bytes(document))
        except ConversionError as exc:
            raise conversion_error(exc) from None
        if prompt is None and workflow is None:
            raise StudioError("validation_error", "This PNG carries no ComfyUI workflow in its metadata")
        info = await self.object_info()
        if is_ui_workflow(workflow):
            # The UI workflow brings App Mode's parameters; the API prompt is what actually ran.
            imported = self._import_json(workflow, info)
            if is_api_graph(prompt):
                imported.graph = check_api_graph(prompt)
        else:
            imported = self._import_json(prompt, info)
        imported.source_format = "png"
        return imported

    def _import_json(self, document: JSON, info: dict[str, JSON]) -> Imported:
        if isinstance(document, dict) and is_ui_workflow(document):
            lacking = self._lacking_ui_types(document, info)
            if lacking:
                # Kept, not ready: it converts once the packs are installed and the file is uploaded again.
                return Imported({}, document, "ui", [], [], [lacking])
            try:
                converted = convert(document, info)
            except ConversionError as exc:
                raise conversion_error(exc) from None
            # The converter writes API-format nodes (class_type, inputs, _meta): the shape Graph describes.
            graph = cast("Graph", converted.graph)
            params = discover_parameters(graph, info, converted.linear_inputs)
            return Imported(
                graph,
                document,
                "ui",
                params,
                converted.linear_outputs,
                converted.warnings,
            )
        pair = self._editor_pair(document)
        if pair is not None:
            return self._import_pair(*pair, info)
        if isinstance(document, dict) and isinstance(document.get("prompt"), dict) and not document.get("class_type"):
            document = document["prompt"]  # {"prompt": {...}} as POST /prompt takes it
        if not is_api_graph(document):
            raise StudioError(
                "validation_error",
                "This is neither an API-format graph (ComfyUI's Export (API)) nor a UI workflow (nodes and links)",
                [{"loc": ["document"], "message": "unrecognised workflow format", "type": "workflow_error"}],
            )
        graph = check_api_graph(document)
        # Node types this ComfyUI lacks do not stop the import: the readiness report lists them.
        unknown = [
            f"node {nid} has the unknown node type {n['class_type']!r}"
            for nid, n in graph.items()
            if n["class_type"] not in info
        ]
        for nid, node in graph.items():
            for name, value in (node.get("inputs") or {}).items():
                if (
                    isinstance(value, list)
                    and len(value) == 2
                    and isinstance(value[1], int)
                    and str(value[0]) not in graph
                ):
                    raise StudioError(
                        "validation_error",
                        f"node {nid} input {name} is linked to node {value[0]}, which the graph does not have",
                        [
                            {
                                "loc": ["document", "nodes", nid, name],
                                "message": "missing link",
                                "type": "workflow_error",
                            }
                        ],
                    )
        params = discover_parameters(graph, info)
        return Imported(graph, None, "api", params, [], unknown)

    @staticmethod
    def _editor_pair(document: JSON) -> tuple[dict[str, JSON], dict[str, JSON]] | None:
        """(API prompt, UI workflow) from what ComfyUI's editor sends: `{"prompt", "workflow"}` or the
        `POST /prompt` body, whose `extra_data.extra_pnginfo.workflow` is the UI workflow."""
        if not isinstance(document, dict):
            return None
        prompt = document.get("prompt")
        if not isinstance(prompt, dict) or not is_api_graph(prompt):
            return None
        workflow = document.get("workflow")
        extra = document.get("extra_data")
        if workflow is None and isinstance(extra, dict) and isinstance(pnginfo := extra.get("extra_pnginfo"), dict):
            workflow = pnginfo.get("workflow")
        if not isinstance(workflow, dict) or not is_ui_workflow(workflow):
            return None
        return prompt, workflow

    def _import_pair(self, prompt: dict[str, JSON], workflow: dict[str, JSON], info: dict[str, JSON]) -> Imported:
        """The editor's own export is the graph, exactly; the UI workflow brings App Mode's parameters."""
        graph = check_api_graph(prompt)
        try:
            imported = self._import_json(workflow, info)
        except StudioError as exc:
            # The editor converted it, so its prompt stands even where our converter cannot follow.
            imported = Imported(graph, workflow, "editor", [], [], [f"UI workflow not converted: {exc.message}"])
        imported.graph = graph
        imported.source = workflow
        imported.source_format = "editor"
        if not imported.parameters:
            imported.parameters = discover_parameters(graph, info)
        unknown = [
            f"node {nid} has the unknown node type {n['class_type']!r}"
            for nid, n in graph.items()
            if n["class_type"] not in info
        ]
        imported.warnings = [w for w in imported.warnings if "unknown node type" not in w] + unknown
        return imported

    @staticmethod
    def _lacking_ui_types(document: dict[str, JSON], info: dict[str, JSON]) -> str | None:
        """A warning naming the UI workflow's node types this ComfyUI does not have, if any."""
        missing = {t: ids for t, ids in ui_node_types(document).items() if t not in info}
        if not missing:
            return None
        return "; ".join(f"node {ids[0]} has the unknown node type {t!r}" for t, ids in sorted(missing.items()))

    async def readiness_of(self, version: WorkflowVersion, *, builtin: bool = False) -> dict[str, JSON]:
        """Node types and model files this version needs that ComfyUI lacks (unchecked while ComfyUI is away)."""
        try:
            info = await self.object_info()
        except StudioError:
            return {"ready": None, "checked": False, "missing_nodes": [], "missing_models": [], "node_map": False}
        source = version.source if not version.graph and isinstance(version.source, dict) else None
        # The default workflows get the installed checkpoint at run time (GET /actions/status reports it).
        skip = frozenset({("CheckpointLoaderSimple", "ckpt_name")}) if builtin else frozenset()
        return readiness(version.graph or {}, info, self.node_packs.node_map(), ui_source=source, skip_inputs=skip)

    # -- reading -----------------------------------------------------------------------------------

    async def _load(self, session: Any, user_id: int, workflow_id: str, *, write: bool = False) -> Workflow:
        row = await workflows_db.get(session, workflow_id)
        if row is None or row.deleted_at is not None or (row.owner_id != user_id and not row.shared):
            raise not_found("Workflow")
        if write and row.owner_id != user_id:
            raise StudioError("forbidden", "Only its owner can change this workflow; duplicate it to make your own")
        return row

    async def _version(self, session: Any, workflow: Workflow, number: int | None = None) -> WorkflowVersion:
        version = await workflows_db.version(session, workflow.id, number or workflow.head_version)
        if version is None:
            raise not_found("Workflow version")
        return version

    def _summary(self, row: Workflow, user_id: int) -> dict[str, JSON]:
        return {
            "id": row.id,
            "name": row.name,
            "description": row.description,
            "tags": list(row.tags or []),
            "source_format": row.source_format,
            "shared": row.shared,
            "builtin": row.builtin_key is not None,
            "mine": row.owner_id == user_id,
            "owner_id": row.owner_id,
            "version": row.head_version,
            "created_by": row.created_by,
            "updated_by": row.updated_by,
            "created_at": iso(row.created_at),
            "updated_at": iso(row.updated_at),
        }

    @staticmethod
    def version_dict(version: WorkflowVersion, *, full: bool = True) -> dict[str, JSON]:
        out: dict[str, JSON] = {
            "id": version.id,
            "number": version.number,
            "note": version.note,
            "created_by": version.created_by,
            "created_at": iso(version.created_at),
        }
        if full:
            out.update(
                graph=version.graph,
                parameters=list(version.parameters or []),
                bindings=dict(version.bindings or {}),
                outputs=list(version.outputs or []),
                has_source=version.source is not None,
            )
        return out

    async def list(self, user_id: int, *, tag: str | None = None) -> list[dict[str, JSON]]:
        """Summaries with what the Workflows page lists: node count, the slots that run each, readiness."""
        async with self.store.transaction(user_id) as session:
            rows = await workflows_db.visible(session, user_id)
            rows = [r for r in rows if tag is None or tag in (r.tags or [])]
            heads = await workflows_db.heads(session, [r.id for r in rows])
            slots = await workflows_db.visible_action_slots(session, user_id)
        used_by: dict[str, set[str]] = {}
        for wf_id, slot in slots:
            used_by.setdefault(wf_id, set()).add(slot)
        out = []
        for row in rows:
            head = heads.get(row.id)
            summary = self._summary(row, user_id)
            summary["node_count"] = len(head.graph or {}) if head else 0
            summary["used_by"] = json_list(sorted(used_by.get(row.id, ())))
            report = await self.readiness_of(head, builtin=row.builtin_key is not None) if head else None
            summary["ready"] = report["ready"] if report else None
            summary["problems"] = _problem_count(report) if report else 0
            out.append(summary)
        return out

    async def get(self, user_id: int, workflow_id: str, number: int | None = None) -> dict[str, JSON]:
        async with self.store.transaction(user_id) as session:
            row = await self._load(session, user_id, workflow_id)
            version = await self._version(session, row, number)
            used_by = await workflows_db.slots_using(session, row.id)
        return {
            **self._summary(row, user_id),
            "head": self.version_dict(version),
            "used_by": json_list(sorted(set(used_by))),
            "readiness": await self.readiness_of(version, builtin=row.builtin_key is not None),
        }

    async def head(self, user_id: int, workflow_id: str) -> tuple[Workflow, WorkflowVersion]:
        async with self.store.transaction(user_id) as session:
            row = await self._load(session, user_id, workflow_id)
            return row, await self._version(session, row)

    async def version_by_id(self, version_id: str) -> WorkflowVersion | None:
        async with self.store.transaction() as session:
            return await workflows_db.version_by_id(session, version_id)

    async def versions(self, user_id: int, workflow_id: str) -> builtins.list[dict[str, JSON]]:
        async with self.store.transaction(user_id) as session:
            row = await self._load(session, user_id, workflow_id)
            versions = await workflows_db.history(session, row.id, MAX_VERSIONS_PAGE)
        return [self.version_dict(v, full=False) for v in versions]

    # -- writing -----------------------------------------------------------------------------------

    async def _checked_parameters(self, raw: builtins.list[JSON], graph: Graph) -> builtins.list[dict[str, JSON]]:
        info = await self.object_info()
        out: list[dict[str, JSON]] = []
        seen: set[str] = set()
        for index, item in enumerate(raw):
            try:
                param = normalize_param(item, graph, info)
            except ParamError as exc:
                raise StudioError(
                    "validation_error",
                    str(exc),
                    [{"loc": ["parameters", index, *exc.loc], "message": str(exc), "type": "parameter"}],
                ) from None
            if param["name"] in seen:
                raise StudioError("validation_error", f"parameter {param['name']!r} is defined twice")
            seen.add(str(param["name"]))
            out.append(param)
        return out

    @staticmethod
    def _checked_bindings(raw: dict[str, JSON], graph: Graph) -> dict[str, Binding]:
        out: dict[str, Binding] = {}
        for key, value in raw.items():
            if key not in BINDING_KEYS:
                raise StudioError(
                    "validation_error", f"unknown binding {key!r}; bindings are {', '.join(BINDING_KEYS)}"
                )
            if value is None:
                continue
            if not isinstance(value, dict) or not isinstance(value.get("input"), str) or not value.get("selector"):
                raise StudioError("validation_error", f"binding {key} needs a selector and an input")
            out[key] = {"selector": value["selector"], "input": value["input"]}
        return out

    async def create(
        self,
        user_id: int,
        *,
        name: str,
        document: JSON | bytes | bytearray,
        description: str = "",
        tags: builtins.list[str] | None = None,
        shared: bool = False,
        parameters: builtins.list[JSON] | None = None,
        bindings: dict[str, JSON] | None = None,
        builtin_key: str | None = None,
        imported: Imported | None = None,
    ) -> dict[str, JSON]:
        """A new workflow from ``document``, or from ``imported`` when the caller has already read it."""
        imported = imported or await self.import_document(document)
        params = imported.parameters
        if parameters is not None:
            params = await self._checked_parameters(parameters, imported.graph)
        found = discover_bindings(imported.graph)
        if bindings is not None:
            found.update(self._checked_bindings(bindings, imported.graph))
        async with self.store.transaction(user_id) as session:
            row = await workflows_db.add(
                session,
                owner_id=user_id,
                name=name,
                description=description,
                source_format=imported.source_format,
                tags=sorted(set(tags or [])),
                shared=shared,
                builtin_key=builtin_key,
                head_version=1,
                created_by=user_id,
                updated_by=user_id,
            )
            workflows_db.add_version(
                session,
                workflow_id=row.id,
                number=1,
                graph=imported.graph,
                source=imported.source,
                parameters=params,
                bindings=found,
                outputs=imported.outputs,
                note="imported",
                created_by=user_id,
            )
        log.info("Workflow %s (%s) imported from %s", row.id, name, imported.source_format)
        result = await self.get(user_id, row.id)
        result["warnings"] = json_list(imported.warnings)
        return result

    async def update(
        self,
        user_id: int,
        workflow_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        tags: builtins.list[str] | None = None,
        shared: bool | None = None,
        document: JSON | None = None,
        parameters: builtins.list[JSON] | None = None,
        bindings: dict[str, JSON] | None = None,
        note: str = "",
    ) -> dict[str, JSON]:
        """Change the row's fields; a new graph, parameters or bindings make a new version."""
        imported = await self.import_document(document) if document is not None else None
        async with self.store.transaction(user_id) as session:
            row = await self._load(session, user_id, workflow_id, write=True)
            head = await self._version(session, row)
        graph = imported.graph if imported else head.graph
        params = list(head.parameters or [])
        if imported is not None:
            params = imported.parameters or [p for p in params if self._still_applies(p, graph)]
        if parameters is not None:
            params = await self._checked_parameters(parameters, graph)
        new_bindings = dict(head.bindings or {})
        if imported is not None:
            new_bindings = discover_bindings(graph)
        if bindings is not None:
            new_bindings.update(self._checked_bindings(bindings, graph))
            new_bindings = {k: v for k, v in new_bindings.items() if bindings.get(k, v) is not None}
        versioned = imported is not None or parameters is not None or bindings is not None
        warnings = imported.warnings if imported else []
        async with self.store.transaction(user_id) as session:
            row = await self._load(session, user_id, workflow_id, write=True)
            if name is not None:
                row.name = name
            if description is not None:
                row.description = description
            if tags is not None:
                row.tags = sorted(set(tags))
            if shared is not None:
                row.shared = shared
            if versioned:
                number = await workflows_db.next_version_number(session, row.id)
                workflows_db.add_version(
                    session,
                    workflow_id=row.id,
                    number=number,
                    graph=graph,
                    source=imported.source if imported else head.source,
                    parameters=params,
                    bindings=new_bindings,
                    outputs=imported.outputs if imported else list(head.outputs or []),
                    note=note or ("new graph" if imported else "parameters and bindings"),
                    created_by=user_id,
                )
                row.head_version = number
                if imported is not None:
                    row.source_format = imported.source_format
            row.updated_by = user_id
            row.updated_at = utcnow()
        result = await self.get(user_id, workflow_id)
        result["warnings"] = json_list(warnings)
        return result

    @staticmethod
    def _still_applies(param: JSON, graph: Graph) -> bool:
        from ..engine.selectors import GraphIndex

        if not isinstance(param, dict) or param.get("selector") is None:
            return True
        nodes = GraphIndex(graph).select(param["selector"])
        return any(str(param.get("input")) in (graph[n].get("inputs") or {}) for n in nodes)

    async def restore(self, user_id: int, workflow_id: str, number: int) -> dict[str, JSON]:
        """Make an old version the head again, as a new version (history is never rewritten)."""
        async with self.store.transaction(user_id) as session:
            row = await self._load(session, user_id, workflow_id, write=True)
            old = await self._version(session, row, number)
            new_number = await workflows_db.next_version_number(session, row.id)
            workflows_db.add_version(
                session,
                workflow_id=row.id,
                number=new_number,
                graph=old.graph,
                source=old.source,
                parameters=old.parameters,
                bindings=old.bindings,
                outputs=old.outputs,
                note=f"restored version {number}",
                created_by=user_id,
            )
            row.head_version = new_number
            row.updated_by = user_id
            row.updated_at = utcnow()
        return await self.get(user_id, workflow_id)

    async def delete(self, user_id: int, workflow_id: str) -> dict[str, JSON]:
        """Refused while an action runs it; otherwise hidden (its versions stay for the jobs that ran them)."""
        async with self.store.transaction(user_id) as session:
            row = await self._load(session, user_id, workflow_id, write=True)
            users = await workflows_db.slots_using(session, row.id)
            if users:
                slots = ", ".join(sorted(set(users)))
                raise StudioError(
                    "conflict",
                    f"Workflow {row.name!r} is used by the action(s) {slots}: assign them another workflow first",
                    [{"loc": ["actions"], "message": slots, "type": "in_use"}],
                )
            row.deleted_at = utcnow()
            row.updated_by = user_id
        return {"deleted": workflow_id}
