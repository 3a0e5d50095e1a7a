"""UI-format (LiteGraph) workflows → API-format graphs, the way ComfyUI's frontend does it.

A port of the frontend's ``graphToPrompt`` (ComfyUI_frontend ``src/utils/executionUtil.ts``) for the
server side, driven by the host's ``/object_info``:

- widget values are written by input name: ``widgets_values`` is positional over the node's widget
  inputs in ``input_order``, with the frontend-only widgets skipped (``control_after_generate`` after
  seeds, the ``upload`` button after ``image_upload`` combos);
- links become ``[origin_id, origin_slot]``; Reroute nodes are walked through, a PrimitiveNode's value is
  written into the input it feeds, Note/MarkdownNote nodes vanish;
- muted nodes (mode 2) are dropped, and an input wired to one is left out, widget value and all (the
  frontend links it, then deletes links to nodes not in the prompt); a PrimitiveNode applies its value
  whatever its mode; bypassed nodes (mode 4) are rewired: a consumer of their output gets the link of
  their input of the same type (same slot first), or keeps its widget value when there is none;
- subgraphs (``definitions.subgraphs``) are expanded with ids ``outer:inner``, as the frontend's
  ``ExecutableNodeDTO`` does;
- legacy group nodes (type ``workflow>NAME``, or ``workflow/NAME`` in older files, defined in
  ``extra.groupNodes``) are expanded with ids ``outer:index`` as the frontend's ``groupNode.ts`` does: the
  group's widget values are split over the inner nodes' widgets in order, its inputs go to the inner
  nodes' inputs that no inner link feeds, its outputs are the inner outputs not linked inside the group
  (or listed in ``external``);
- literal arrays are wrapped as ``{"__value__": [...]}``.

Every refusal is a ``ConversionError`` naming the node. PNG files written by ComfyUI carry the API
prompt and the UI workflow in tEXt chunks: ``png_text`` reads them without an image library.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Final, Literal, TypeAlias

from . import imagemeta
from .jsoncodec import JSON, JSONInputError, loads_input

ObjectInfo: TypeAlias = "dict[str, JSON]"

# Frontend-only nodes: they shape the editor, never the prompt.
VIRTUAL_TYPES = frozenset({"Note", "MarkdownNote", "Reroute", "PrimitiveNode", "Comfy.Note"})
WIDGET_TYPES = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO", "PREVIEW_3D"})
CONTROL_VALUES = frozenset({"fixed", "increment", "decrement", "randomize"})
UPLOAD_FLAGS = ("image_upload", "video_upload", "audio_upload")
UPLOAD_VALUES = frozenset({"image", "video", "audio"})
MODE_MUTED = 2
MODE_BYPASS = 4
SUBGRAPH_INPUT = -10
SUBGRAPH_OUTPUT = -20
MAX_SUBGRAPH_DEPTH = 16
GROUP_PREFIXES = ("workflow>", "workflow/")
SEED_NAMES = frozenset({"seed", "noise_seed"})

# What the frontend's own extensions (1.27.10) add to some nodes. ComfyUI ignores these inputs, but the
# frontend sends them, and they take places in widgets_values.
# Comfy.Preview3D and Comfy.SaveGLB add a required 3D preview widget named "image".
FRONTEND_INPUTS: dict[str, dict[str, JSON]] = {
    "Preview3D": {"image": ["PREVIEW_3D", {}]},
    "SaveGLB": {"image": ["PREVIEW_3D", {}]},
}
# Comfy.PreviewAny shows the value in a text widget that is never saved but is sent, empty.
FRONTEND_SENT_ONLY: dict[str, dict[str, JSON]] = {"PreviewAny": {"preview": ""}}
# A remote combo (``remote`` in its options) is followed by an "Auto-refresh after generation" toggle that
# is saved but never sent and, with ``refresh_button``, by a "refresh" button that is saved and sent.
REFRESH_BUTTON = "refresh"
_UNSENT = ""  # the name of a widget that takes a place in widgets_values and is never sent


class ConversionError(ValueError):
    """A workflow that cannot be converted; ``node_id`` names the node when one is to blame."""

    def __init__(self, message: str, node_id: str | None = None) -> None:
        super().__init__(message)
        self.node_id = node_id


@dataclass
class Converted:
    graph: dict[str, JSON]
    warnings: list[str] = field(default_factory=list)
    # App Mode's chosen widgets, as (node id, widget name, config) in the converted graph's ids.
    linear_inputs: list[tuple[str, str, dict[str, JSON]]] = field(default_factory=list)
    linear_outputs: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Link:
    origin: int
    origin_slot: int
    target: int
    target_slot: int
    type: str


@dataclass
class _Scope:
    """One graph level: the top level, or one instance of a subgraph."""

    prefix: str
    nodes: dict[int, dict[str, JSON]]
    links: dict[int, _Link]
    parent: _Scope | None = None
    instance: dict[str, JSON] | None = None  # the subgraph node in the parent scope
    depth: int = 0


@dataclass(frozen=True)
class _Ref:
    node_id: str
    slot: int


@dataclass(frozen=True)
class _Literal:
    value: JSON


@dataclass(frozen=True)
class _Dropped:
    """An input wired to a muted node: the frontend leaves the input out, its widget value too."""


_DROPPED = _Dropped()
_Source: TypeAlias = "_Ref | _Literal | _Dropped | None"


# -- detecting formats ---------------------------------------------------------------------------


def is_ui_workflow(data: JSON) -> bool:
    return isinstance(data, dict) and isinstance(data.get("nodes"), list) and "links" in data


def is_api_graph(data: JSON) -> bool:
    return (
        isinstance(data, dict)
        and bool(data)
        and all(isinstance(n, dict) and isinstance(n.get("class_type"), str) for n in data.values())
    )


# -- PNG metadata ----------------------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# Only these chunks can hold what the studio imports: ComfyUI's SaveImage writes ``prompt`` and
# ``workflow`` (one chunk per extra_pnginfo key). Others are skipped without being inflated.
WORKFLOW_CHUNK_KEYS = frozenset({"prompt", "workflow"})
# All the text inflated from one PNG, together: a few compressed chunks must not become gigabytes.
MAX_PNG_TEXT_BYTES = 16 * 1024 * 1024
# Nesting allowed in a JSON document read from a file or a PNG chunk (request bodies allow less).
MAX_DOCUMENT_DEPTH = 64


def png_text(
    data: bytes, limit: int = MAX_PNG_TEXT_BYTES, keys: frozenset[str] = WORKFLOW_CHUNK_KEYS
) -> dict[str, str]:
    """The tEXt/zTXt/iTXt entries named in keys (ComfyUI writes ``prompt`` and ``workflow`` there).

    Read leniently (imagemeta.png_text, strict=False): a chunk that cannot be read is skipped. limit caps the
    text of all those chunks together, inflated; the first chunk that would pass it stops the reading with a
    ConversionError.
    """
    if not data.startswith(PNG_SIGNATURE):
        raise ConversionError("The file is not a PNG")
    try:
        return imagemeta.png_text(data, strict=False, keys=keys, limit=limit)
    except imagemeta.MetadataError:  # the lenient reader's only refusal: too much text
        raise ConversionError(
            f"The PNG's text metadata is larger than {limit // (1024 * 1024)} MiB once inflated"
        ) from None


def workflow_from_png(data: bytes) -> tuple[JSON | None, JSON | None]:
    """(API prompt, UI workflow) from a PNG's metadata; either may be None."""
    texts = png_text(data)
    found: list[JSON | None] = []
    for key in ("prompt", "workflow"):
        raw = texts.get(key)
        value: JSON | None = None
        if raw:
            try:
                value = loads_input(raw, max_depth=MAX_DOCUMENT_DEPTH, what=f"The PNG's {key} metadata")
            except JSONInputError as exc:
                if exc.kind != "syntax":
                    raise ConversionError(exc.message) from None
                value = None
        found.append(value)
    return found[0], found[1]


# -- converting ----------------------------------------------------------------------------------


def _int(value: JSON, what: str, node_id: str | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConversionError(f"{what} is not an id: {value!r}", node_id)
    try:
        return int(value)
    except ValueError:
        raise ConversionError(f"{what} is not an id: {value!r}", node_id) from None


def _parse_links(raw: JSON, prefix: str) -> dict[int, _Link]:
    links: dict[int, _Link] = {}
    if raw is None:
        return links
    if not isinstance(raw, list):
        raise ConversionError("The workflow's links must be a list")
    for item in raw:
        if isinstance(item, list) and len(item) >= 5:
            lid, origin, oslot, target, tslot = item[:5]
            ltype = item[5] if len(item) > 5 else "*"
        elif isinstance(item, dict):
            lid, origin, oslot = item.get("id"), item.get("origin_id"), item.get("origin_slot")
            target, tslot, ltype = item.get("target_id"), item.get("target_slot"), item.get("type", "*")
        else:
            raise ConversionError(f"A link of the workflow{' ' + prefix if prefix else ''} is malformed: {item!r}")
        link = _Link(
            _int(origin, "a link's origin"),
            _int(oslot, "a link's origin slot"),
            _int(target, "a link's target"),
            _int(tslot, "a link's target slot"),
            ltype if isinstance(ltype, str) else "*",
        )
        links[_int(lid, "a link id")] = link
    return links


def _parse_nodes(raw: JSON) -> dict[int, dict[str, JSON]]:
    if not isinstance(raw, list):
        raise ConversionError("The workflow's nodes must be a list")
    nodes: dict[int, dict[str, JSON]] = {}
    for node in raw:
        if not isinstance(node, dict):
            raise ConversionError(f"A node of the workflow is not an object: {node!r}"[:200])
        nid = _int(node.get("id"), "a node id")
        if not isinstance(node.get("type"), str) or not node.get("type"):
            raise ConversionError(f"node {nid} has no type", str(nid))
        nodes[nid] = node
    return nodes


class _Converter:
    def __init__(self, workflow: dict[str, JSON], object_info: ObjectInfo) -> None:
        self.object_info = object_info
        self.warnings: list[str] = []
        self.subgraphs: dict[str, dict[str, JSON]] = {}
        definitions = workflow.get("definitions")
        subgraphs = definitions.get("subgraphs") if isinstance(definitions, dict) else None
        if isinstance(subgraphs, list):
            for sub in subgraphs:
                if isinstance(sub, dict) and isinstance(sub_id := sub.get("id"), str):
                    self.subgraphs[sub_id] = sub
        self.group_nodes: dict[str, JSON] = {}
        for holder in [workflow, *self.subgraphs.values()]:  # the workflow's definitions win over a subgraph's
            extra = holder.get("extra")
            groups = extra.get("groupNodes") if isinstance(extra, dict) else None
            if isinstance(groups, dict):
                for name, definition in groups.items():
                    self.group_nodes.setdefault(str(name), definition)
        self.top = _Scope("", _parse_nodes(workflow.get("nodes")), _parse_links(workflow.get("links"), ""))
        self.graph: dict[str, JSON] = {}

    # -- following links -----------------------------------------------------------------------

    def _node_label(self, scope: _Scope, nid: int) -> str:
        node = scope.nodes.get(nid) or {}
        return f"node {scope.prefix}{nid} ({node.get('type', '?')})"

    def follow(self, scope: _Scope, link_id: JSON, consumer: str) -> _Source:
        """What an input wired to ``link_id`` receives."""
        if link_id is None:
            return None
        lid = _int(link_id, "a link id", consumer)
        link = scope.links.get(lid)
        if link is None:
            raise ConversionError(f"node {consumer} is wired to link {lid}, which the workflow does not have", consumer)
        return self.source(scope, link.origin, link.origin_slot, link.type, consumer)

    def source(self, scope: _Scope, nid: int, slot: int, ltype: str, consumer: str) -> _Source:
        if nid == SUBGRAPH_INPUT:  # the subgraph's input: whatever feeds the instance's input there
            if scope.parent is None or scope.instance is None:
                raise ConversionError(f"node {consumer} reads a subgraph input outside a subgraph", consumer)
            inputs = scope.instance.get("inputs") or []
            wired = inputs[slot] if isinstance(inputs, list) and slot < len(inputs) else None
            if not isinstance(wired, dict):
                return None
            return self.follow(scope.parent, wired.get("link"), consumer)
        node = scope.nodes.get(nid)
        if node is None:
            raise ConversionError(
                f"node {consumer} is wired to node {scope.prefix}{nid}, which does not exist", consumer
            )
        ntype = str(node.get("type"))
        mode = node.get("mode") or 0
        label = f"{scope.prefix}{nid}"
        if ntype == "Reroute":
            inputs = node.get("inputs") or []
            first = inputs[0] if isinstance(inputs, list) and inputs else None
            return self.follow(scope, first.get("link") if isinstance(first, dict) else None, label)
        if ntype == "PrimitiveNode":
            values = node.get("widgets_values")
            if isinstance(values, list) and values:
                return _Literal(_wrap(values[0]))  # muted or bypassed, the frontend still applies its value
            return None
        if mode == MODE_MUTED:
            # The frontend links to it, then drops the input because the node is not in the prompt.
            return None if self.is_container(ntype) or ntype in VIRTUAL_TYPES else _DROPPED
        if mode == MODE_BYPASS:
            return self.bypass(scope, node, slot, label)
        if self.is_container(ntype):
            inner = self.inner_scope(scope, node)
            for link in inner.links.values():
                if link.target == SUBGRAPH_OUTPUT and link.target_slot == slot:
                    return self.source(inner, link.origin, link.origin_slot, link.type, label)
            return None
        if ntype in VIRTUAL_TYPES:
            return None
        return _Ref(label, slot)

    def bypass(self, scope: _Scope, node: dict[str, JSON], slot: int, label: str) -> _Source:
        """A bypassed node passes the input of its output's type through, preferring the same slot."""
        outputs = node.get("outputs") or []
        output = outputs[slot] if isinstance(outputs, list) and slot < len(outputs) else None
        out_type = output.get("type") if isinstance(output, dict) else None
        inputs = [i for i in _items(node.get("inputs")) if isinstance(i, dict)]
        order = ([inputs[slot]] if slot < len(inputs) else []) + inputs
        for inp in order:
            if inp.get("link") is not None and (out_type is None or _types_match(inp.get("type"), out_type)):
                return self.follow(scope, inp.get("link"), label)
        return None

    def is_group(self, ntype: str) -> bool:
        """A legacy group node: its type is no real node's and names a group (or has the group prefix)."""
        if ntype in self.object_info or ntype in self.subgraphs:
            return False
        return ntype in self.group_nodes or ntype.startswith(GROUP_PREFIXES)

    def is_container(self, ntype: str) -> bool:
        return ntype in self.subgraphs or self.is_group(ntype)

    def inner_scope(self, scope: _Scope, node: dict[str, JSON]) -> _Scope:
        if scope.depth >= MAX_SUBGRAPH_DEPTH:
            raise ConversionError("Subgraphs are nested too deeply", f"{scope.prefix}{node.get('id')}")
        prefix = f"{scope.prefix}{node.get('id')}:"
        ntype = str(node.get("type"))
        if ntype not in self.subgraphs:
            nodes, links = self.expand_group(node, prefix[:-1])
            return _Scope(prefix, nodes, links, parent=scope, instance=node, depth=scope.depth + 1)
        sub = self.subgraphs[ntype]
        try:
            return _Scope(
                prefix,
                _parse_nodes(sub.get("nodes")),
                _parse_links(sub.get("links"), prefix),
                parent=scope,
                instance=node,
                depth=scope.depth + 1,
            )
        except ConversionError as exc:
            raise ConversionError(f"subgraph node {prefix[:-1]}: {exc}", prefix[:-1]) from None

    # -- writing nodes -------------------------------------------------------------------------

    def emit_scope(self, scope: _Scope) -> None:
        for nid, node in scope.nodes.items():
            ntype = str(node.get("type"))
            mode = node.get("mode") or 0
            if mode in (MODE_MUTED, MODE_BYPASS) or ntype in VIRTUAL_TYPES:
                continue
            if self.is_container(ntype):
                self.emit_scope(self.inner_scope(scope, node))
                continue
            self.emit_node(scope, nid, node)

    # -- legacy group nodes --------------------------------------------------------------------

    def group_definition(self, ntype: str, label: str) -> JSON:
        if ntype in self.group_nodes:
            return self.group_nodes[ntype]
        for prefix in GROUP_PREFIXES:
            if ntype.startswith(prefix) and ntype[len(prefix) :] in self.group_nodes:
                return self.group_nodes[ntype[len(prefix) :]]
        raise ConversionError(
            f"node {label} is a legacy group node ({ntype}) whose definition is missing from the workflow's "
            "extra.groupNodes",
            label,
        )

    def expand_group(
        self, instance: dict[str, JSON], label: str
    ) -> tuple[dict[int, dict[str, JSON]], dict[int, _Link]]:
        """One instance of a legacy group node as a scope's nodes and links (ComfyUI_frontend ``groupNode.ts``).

        Inner nodes are numbered by their position in the definition. Inner links become links of the
        scope; the group's inputs become links from ``SUBGRAPH_INPUT`` (slot = the instance's input index)
        and its outputs links to ``SUBGRAPH_OUTPUT``, so following them works as for subgraphs.
        """
        ntype = str(instance.get("type"))
        definition = self.group_definition(ntype, label)

        def bad(why: str) -> ConversionError:
            return ConversionError(
                f"node {label} is a legacy group node ({ntype}) with a malformed definition: {why}", label
            )

        inner_nodes = definition.get("nodes") if isinstance(definition, dict) else None
        if not isinstance(definition, dict) or not isinstance(inner_nodes, list) or not inner_nodes:
            raise bad("it has no list of inner nodes")
        inner: list[dict[str, JSON]] = []
        for index, item in enumerate(inner_nodes):
            if not isinstance(item, dict) or not isinstance(item.get("type"), str) or not item.get("type"):
                raise bad(f"inner node {index} has no type")
            inner.append(item)
        links_to: dict[tuple[int, int], tuple[int, int, str]] = {}
        links_from: dict[int, set[int]] = {}
        raw_links = definition.get("links") if definition.get("links") is not None else []
        if not isinstance(raw_links, list):
            raise bad("its links are not a list")
        for item in raw_links:
            if not isinstance(item, list) or len(item) < 4:
                raise bad(f"the link {item!r} is not [from, from_slot, to, to_slot, …]")
            if item[0] is None:  # a link to outside the copied nodes: the frontend skips it too
                continue
            ends = _ints(item[:4])
            if ends is None:
                raise bad(f"the link {item!r} is not [from, from_slot, to, to_slot, …]")
            origin, origin_slot, target, target_slot = ends
            if not (0 <= origin < len(inner) and 0 <= target < len(inner)):
                raise bad(f"the link {item!r} names an inner node it does not have")
            ltype = item[5] if len(item) > 5 and isinstance(item[5], str) else "*"
            links_to[(target, target_slot)] = (origin, origin_slot, ltype)
            links_from.setdefault(origin, set()).add(origin_slot)
        external: set[tuple[int, int]] = set()
        raw_external = definition.get("external") if definition.get("external") is not None else []
        if not isinstance(raw_external, list):
            raise bad("its external outputs are not a list")
        for item in raw_external:
            output_slot = _ints(item[:2]) if isinstance(item, list) and len(item) >= 2 else None
            if output_slot is None:
                raise bad(f"the external output {item!r} is not [node, slot, type]")
            external.add((output_slot[0], output_slot[1]))
        config = definition.get("config") if isinstance(definition.get("config"), dict) else {}

        def custom(index: int, kind: str, key: str | int) -> dict[str, JSON]:
            entry = config.get(str(index)) if isinstance(config, dict) else None
            section = entry.get(kind) if isinstance(entry, dict) else None
            found = section.get(str(key)) if isinstance(section, dict) else None
            return found if isinstance(found, dict) else {}

        # The group's widgets, inputs and outputs in the order the frontend registers them.
        widgets: list[tuple[int, str, dict[str, JSON]]] = []
        group_inputs: list[tuple[int, str]] = []
        group_outputs: list[tuple[int, int]] = []
        slot_names: dict[int, list[str]] = {}
        specs_of: dict[int, dict[str, tuple[JSON, dict[str, JSON]]]] = {}
        late: list[tuple[int, int, list[str]]] = []
        for index, item in enumerate(inner):
            itype = str(item["type"])
            outputs = 0
            if itype == "PrimitiveNode":
                slot_names[index] = []
                if index not in links_from:
                    continue  # an unlinked primitive is skipped by the frontend
                widgets.append((index, "value", {"control_after_generate": True}))
                outputs = 1
            elif itype == "Reroute":
                slot_names[index] = ["*"]
                if (index, 0) in links_to and index in links_from and (index, 0) not in external:
                    continue  # a reroute used inside the group adds no slot
                if (index, 0) not in links_to:
                    group_inputs.append((index, "*"))
                outputs = 1
            else:
                info = self.object_info.get(itype)
                if not isinstance(info, dict):
                    if itype in VIRTUAL_TYPES:
                        continue
                    raise ConversionError(
                        f"node {label}:{index} (in group {ntype}) has the unknown node type {itype!r}",
                        f"{label}:{index}",
                    )
                specs = specs_of[index] = _input_specs(info)
                declared = _items(item.get("inputs"))
                slots: list[str] = []
                converted: dict[int, str] = {}
                for name, (stype, opts) in specs.items():
                    if not _is_widget(stype, opts):
                        slots.append(name)
                        continue
                    position = next(
                        (
                            k
                            for k, inp in enumerate(declared)
                            if isinstance(inp, dict) and inp.get("name") == name and _widget_name(inp) == name
                        ),
                        -1,
                    )
                    if position >= 0:
                        converted[position] = name  # a widget converted to an input: a slot after the others
                    else:
                        widgets.append((index, name, _group_widget_opts(name, opts)))
                # The frontend sorts converted slots by their index as strings (JavaScript's default sort).
                late_names = [converted[k] for k in sorted(converted, key=str)]
                slot_names[index] = slots + late_names
                for slot, name in enumerate(slots):
                    if (index, slot) not in links_to and custom(index, "input", name).get("visible") is not False:
                        group_inputs.append((index, name))
                late.append((index, len(slots), late_names))
                out = info.get("output")
                outputs = len(out) if isinstance(out, list) else 0
            for slot in range(outputs):
                linked = slot in links_from.get(index, set()) and (index, slot) not in external
                visible = custom(index, "output", slot).get("visible")
                if visible if isinstance(visible, bool) else not linked:
                    group_outputs.append((index, slot))
        for index, base, late_names in late:
            for offset, name in enumerate(late_names):
                if (index, base + offset) in links_to:
                    continue
                # a widget converted to an input inside the group: a group widget the instance shows as an input
                widgets.append((index, name, _group_widget_opts(name, specs_of[index][name][1])))

        # The group's widget values, split over the inner widgets.
        values = instance.get("widgets_values")
        given: dict[int, dict[str, JSON]] = {}
        if isinstance(values, list):
            for (index, name, _), value in zip(widgets, _positional([o for _, _, o in widgets], values), strict=False):
                given.setdefault(index, {})[name] = value
        elif values is not None and not isinstance(values, dict):
            raise ConversionError(f"node {label} has malformed widgets_values", label)

        nodes: dict[int, dict[str, JSON]] = {}
        links: dict[int, _Link] = {}

        def wire(link: _Link) -> int:
            links[len(links) + 1] = link
            return len(links)

        wired_inputs: dict[int, list[JSON]] = {}  # each inner node's "inputs", filled in below
        for index, item in enumerate(inner):
            itype = str(item["type"])
            wired: list[JSON] = []
            wired_inputs[index] = wired
            names = slot_names.get(index, [])
            for (target, target_slot), (origin, origin_slot, ltype) in sorted(links_to.items()):
                if target != index:
                    continue
                if target_slot >= len(names):
                    raise bad(f"a link goes to input {target_slot} of inner node {index} ({itype}), which it lacks")
                wired.append(
                    {
                        "name": names[target_slot],
                        "type": ltype,
                        "link": wire(_Link(origin, origin_slot, index, target_slot, ltype)),
                    }
                )
            own = item.get("widgets_values")
            if itype == "PrimitiveNode":
                value = given.get(index, {}).get("value")
                widget_values: JSON = (
                    [value] if "value" in given.get(index, {}) else (own if isinstance(own, list) else None)
                )
            elif index in specs_of:
                widget_values = {**_raw_widgets(specs_of[index], own, f"{label}:{index}"), **given.get(index, {})}
            else:
                widget_values = own
            nodes[index] = {
                "id": index,
                "type": itype,
                "mode": item.get("mode") or 0,
                "title": item.get("title"),
                "inputs": wired,
                "outputs": item.get("outputs") if isinstance(item.get("outputs"), list) else [],
                "widgets_values": widget_values,
            }
        # The instance's inputs: an input for a widget (converted on the instance or inside the group) by the
        # group widget's name, every other one by position over the group's input sockets.
        widget_names = _group_widget_names(inner, widgets)
        sockets = iter(group_inputs)
        for position, inp in enumerate(_items(instance.get("inputs"))):
            if not isinstance(inp, dict):
                continue
            if isinstance(inp.get("widget"), dict):
                widget_name = _widget_name(inp)
                target_input = widget_names.get(widget_name) if isinstance(widget_name, str) else None
            else:
                target_input = next(sockets, None)
            if target_input is None:
                continue
            index, name = target_input
            input_type = inp.get("type")
            ltype = input_type if isinstance(input_type, str) else "*"
            wired_inputs[index].append(
                {"name": name, "type": ltype, "link": wire(_Link(SUBGRAPH_INPUT, position, index, 0, ltype))}
            )
        for position, (index, slot) in enumerate(group_outputs):
            wire(_Link(index, slot, SUBGRAPH_OUTPUT, position, "*"))
        return nodes, links

    def emit_node(self, scope: _Scope, nid: int, node: dict[str, JSON]) -> None:
        label = f"{scope.prefix}{nid}"
        ntype = str(node.get("type"))
        info = self.object_info.get(ntype)
        if not isinstance(info, dict):
            raise ConversionError(f"node {label} has the unknown node type {ntype!r}", label)
        specs = _input_specs(info)
        by_name: dict[str, dict[str, JSON]] = {}
        for inp in _items(node.get("inputs")):
            if isinstance(inp, dict):
                widget = inp.get("widget")
                name = widget.get("name") if isinstance(widget, dict) else inp.get("name")
                if isinstance(name, str):
                    by_name[name] = inp
        values = node.get("widgets_values")
        widget_values = _assign_widgets(specs, values, label)
        # A widget the saved values do not cover keeps the value the frontend gave it when it made the
        # node: its declared default (optional inputs too), as graphToPrompt then sends it.
        for name, itype, opts in _frontend_widgets(specs):
            if name != _UNSENT and name not in widget_values:
                default = _widget_default(itype, opts)
                if default is not _NO_VALUE:
                    widget_values[name] = _wrap(default)
        widget_values.update(FRONTEND_SENT_ONLY.get(ntype, {}))
        inputs: dict[str, JSON] = {name: value for name, value in widget_values.items() if name not in specs}
        for name in specs:
            inp = by_name.get(name)
            if inp is not None and inp.get("link") is not None:
                src = self.follow(scope, inp.get("link"), label)
                if isinstance(src, _Ref):
                    inputs[name] = [src.node_id, src.slot]
                elif isinstance(src, _Literal):
                    inputs[name] = src.value
                elif src is None and name in widget_values:  # nothing upstream: the widget's own value
                    inputs[name] = widget_values[name]
                continue
            if name in widget_values:
                inputs[name] = widget_values[name]
        title = node.get("title")
        if not isinstance(title, str) or not title:
            display = info.get("display_name")
            title = display if isinstance(display, str) and display else ntype
        self.graph[label] = {"inputs": inputs, "class_type": ntype, "_meta": {"title": title}}

    def run(self) -> dict[str, JSON]:
        self.emit_scope(self.top)
        return self.graph


def _types_match(a: JSON, b: JSON) -> bool:
    if a == b or a == "*" or b == "*":
        return True
    if isinstance(a, str) and isinstance(b, str):
        return bool({t.strip() for t in a.split(",")} & {t.strip() for t in b.split(",")})
    return False


def _items(value: JSON) -> list[JSON]:
    """value when it is a list; no items when it is missing or not a list."""
    return value if isinstance(value, list) else []


def _ints(values: list[JSON]) -> list[int] | None:
    """values when every one is an int (a bool is not), else None."""
    ints = [v for v in values if isinstance(v, int) and not isinstance(v, bool)]
    return ints if len(ints) == len(values) else None


def _widget_name(inp: dict[str, JSON]) -> JSON:
    """The name of the widget an input was converted from (None when it is a plain input)."""
    widget = inp.get("widget")
    return widget.get("name") if isinstance(widget, dict) else None


def _wrap(value: JSON) -> JSON:
    return {"__value__": value} if isinstance(value, list) else value


def _input_specs(info: dict[str, JSON]) -> dict[str, tuple[JSON, dict[str, JSON]]]:
    """name → (type, options) for required then optional inputs, in ComfyUI's input order."""
    section = info.get("input")
    order = info.get("input_order")
    out: dict[str, tuple[JSON, dict[str, JSON]]] = {}
    if not isinstance(section, dict):
        return out
    added = FRONTEND_INPUTS.get(str(info.get("name")))
    required = section.get("required")
    if added and isinstance(required, dict):
        section = {**section, "required": {**required, **added}}  # appended, as the extension does
    for category in ("required", "optional"):
        specs = section.get(category)
        if not isinstance(specs, dict):
            continue
        names = list(specs)
        listed = order.get(category) if isinstance(order, dict) else None
        if isinstance(listed, list):
            names = [n for n in listed if isinstance(n, str) and n in specs] + [n for n in specs if n not in listed]
        for name in names:
            spec = specs[name]
            if isinstance(spec, list) and spec:
                opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
                out[name] = (spec[0], opts)
    return out


class _Unset(Enum):
    """A combo with no default and no options: the frontend's widget holds undefined."""

    VALUE = 0


_NO_VALUE: Final = _Unset.VALUE
# What the frontend's widget of each type starts with when its definition gives no default.
_TYPE_DEFAULTS: dict[str, JSON] = {"INT": 0, "FLOAT": 0, "BOOLEAN": False, "STRING": ""}


def _widget_default(itype: JSON, opts: dict[str, JSON]) -> JSON | Literal[_Unset.VALUE]:
    """The value the frontend's widget starts with (``useIntWidget``, ``useComboWidget``' ``getDefaultValue``…)."""
    default = opts.get("default")
    if isinstance(itype, list) or itype == "COMBO":
        if default:  # the frontend tests truthiness: an empty default falls to the first option
            return default
        options = itype if isinstance(itype, list) else opts.get("options")
        return options[0] if isinstance(options, list) and options else _NO_VALUE
    if default is not None:
        return default
    return _TYPE_DEFAULTS.get(str(itype), _NO_VALUE)


def _is_widget(itype: JSON, opts: dict[str, JSON]) -> bool:
    if opts.get("forceInput") or opts.get("rawLink"):
        return False
    return isinstance(itype, list) or itype in WIDGET_TYPES


def _assign_widgets(specs: dict[str, tuple[JSON, dict[str, JSON]]], values: JSON, label: str) -> dict[str, JSON]:
    """Widget values by input name from ``widgets_values`` (a list by position, or a dict by name)."""
    return {name: _wrap(value) for name, value in _raw_widgets(specs, values, label).items()}


def _frontend_widgets(specs: dict[str, tuple[JSON, dict[str, JSON]]]) -> list[tuple[str, JSON, dict[str, JSON]]]:
    """(name, type, options) of the node's widgets in the frontend's order, its own added widgets included.

    The flags of what follows a widget's value (``control_after_generate``, the upload flags) move to the
    last widget the frontend adds for that input, since their places come after it.
    """
    out: list[tuple[str, JSON, dict[str, JSON]]] = []
    for name, (itype, opts) in specs.items():
        if not _is_widget(itype, opts):
            continue
        opts = _control_opts(name, itype, opts)
        remote = opts.get("remote")
        if not isinstance(remote, dict) or not (isinstance(itype, list) or itype == "COMBO"):
            out.append((name, itype, opts))
            continue
        trailing = {k: opts[k] for k in ("control_after_generate", *UPLOAD_FLAGS) if k in opts}
        out.append((name, itype, {k: v for k, v in opts.items() if k not in trailing}))
        out.append((_UNSENT, "BOOLEAN", {}))
        if remote.get("refresh_button"):
            out.append((REFRESH_BUTTON, "STRING", {"default": REFRESH_BUTTON}))
        last_name, last_type, last_opts = out[-1]
        out[-1] = (last_name, last_type, {**last_opts, **trailing})
    return out


def _raw_widgets(specs: dict[str, tuple[JSON, dict[str, JSON]]], values: JSON, label: str) -> dict[str, JSON]:
    widgets = _frontend_widgets(specs)
    if values is None:
        return {}
    if isinstance(values, dict):
        return {name: values[name] for name, _, _ in widgets if name in values and name != _UNSENT}
    if not isinstance(values, list):
        raise ConversionError(f"node {label} has malformed widgets_values", label)
    found = zip([name for name, _, _ in widgets], _positional([opts for _, _, opts in widgets], values), strict=False)
    return {name: value for name, value in found if name != _UNSENT}


def _positional(widgets: list[dict[str, JSON]], values: list[JSON]) -> list[JSON]:
    """The value of each widget (by its options) from a positional ``widgets_values``; may be shorter."""
    extras = sum(1 for opts in widgets if opts.get("control_after_generate") or _upload(opts))
    skip_all = len(values) >= len(widgets) + extras
    out: list[JSON] = []
    pos = 0
    for opts in widgets:
        if pos >= len(values):
            break
        out.append(values[pos])
        pos += 1
        # The frontend's "control after generate" combo and upload button sit right after the value and
        # take their own place in widgets_values (never in the prompt). A file from before they existed
        # lacks them: a value that is not theirs stays for the next widget.
        if pos < len(values) and opts.get("control_after_generate"):
            if skip_all or values[pos] in CONTROL_VALUES:
                pos += 1
        elif pos < len(values) and _upload(opts):
            if skip_all or values[pos] in UPLOAD_VALUES:
                pos += 1
    return out


def _control_opts(name: str, itype: JSON, opts: dict[str, JSON]) -> dict[str, JSON]:
    # useIntWidget: `control_after_generate ?? ["seed", "noise_seed"].includes(name)`.
    if itype == "INT" and name in SEED_NAMES and opts.get("control_after_generate") is None:
        return {**opts, "control_after_generate": True}
    return opts


def _group_widget_opts(name: str, opts: dict[str, JSON]) -> dict[str, JSON]:
    # A group gives every seed input a "control after generate" widget, whatever its definition says.
    return {**opts, "control_after_generate": True} if name in SEED_NAMES else opts


def _group_widget_names(
    inner: list[dict[str, JSON]], widgets: list[tuple[int, str, dict[str, JSON]]]
) -> dict[str, tuple[int, str]]:
    """The group's widget names (an inner name, or "<title> name" when taken) → (inner index, input name)."""
    out: dict[str, tuple[int, str]] = {}
    for index, name, _ in widgets:
        key = name
        if key in out:
            title = inner[index].get("title") or inner[index].get("type")
            key = f"{title} {name}"
            if key in out:
                key = f"{title} {index} {name}"
        out[key] = (index, name)
    return out


def _upload(opts: dict[str, JSON]) -> bool:
    return any(opts.get(flag) for flag in UPLOAD_FLAGS)


def convert(workflow: JSON, object_info: ObjectInfo) -> Converted:
    """An API-format graph from a UI-format workflow; raises ConversionError naming the node at fault."""
    if not isinstance(workflow, dict) or not isinstance(workflow.get("nodes"), list):
        raise ConversionError("This is not a ComfyUI workflow: it has no list of nodes")
    converter = _Converter(workflow, object_info)
    graph = converter.run()
    if not graph:
        raise ConversionError("The workflow has no nodes that ComfyUI would run")
    result = Converted(graph, converter.warnings)
    extra = workflow.get("extra")
    linear = extra.get("linearData") if isinstance(extra, dict) else None
    if isinstance(linear, dict):
        for item in _items(linear.get("inputs")):
            if isinstance(item, list) and len(item) >= 2 and isinstance(item[1], str):
                config = item[2] if len(item) > 2 and isinstance(item[2], dict) else {}
                nid = str(item[0])
                if nid in graph:
                    result.linear_inputs.append((nid, item[1], config))
                else:
                    result.warnings.append(f"App Mode input {item[1]!r} names node {nid}, which does not run")
        for item in _items(linear.get("outputs")):
            nid = str(item[0] if isinstance(item, list) and item else item)
            if nid in graph:
                result.linear_outputs.append(nid)
    return result
