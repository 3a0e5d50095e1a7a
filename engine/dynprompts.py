"""Dynamic prompts: comments and ``{a|b|c}`` choices in text inputs, processed as ComfyUI's frontend does.

ComfyUI's frontend (``processDynamicPrompt``, ``src/utils/formatUtil.ts``, frontend 1.27.10) rewrites
the value of every ``STRING`` widget whose ``/object_info`` input says ``dynamicPrompts: true``
(CLIPTextEncode's ``text``, …) each time it queues:

1. ``/* … */`` block comments and ``// …`` line comments are removed (a ``//`` in a URL too: the
   frontend does the same);
2. ``{a|b|c}`` becomes one of its options, picked at random; options may hold further groups
   (``{a|{b|c}}``), and a group left open runs to the end of the text;
3. ``\\{``, ``\\}`` and ``\\|`` become literal ``{``, ``}``, ``|`` (once per nesting level, as the
   frontend's recursion does); any other backslash stays.

The frontend recurses once per nesting level; this port parses the text once into a tree and walks
it with explicit stacks, so a 20,000-character ``{{{{…`` costs linear time and no recursion. One
deliberate difference: a lone backslash at the very end of the text stays a backslash, where the
frontend reads past the end and writes ``\\undefined``.

The choice is not ``Math.random``: every input draws from its own generator seeded by
``(seed, node id, input name)``, so the same seed repeats the same text, and editing one prompt does
not change the choices drawn in another.
"""

from __future__ import annotations

import copy
import random
import re
from dataclasses import dataclass, field

from .jsoncodec import JSON

# JavaScript's ``.`` stops at every line terminator, Python's only at ``\n``.
_COMMENTS = re.compile(r"/\*[\s\S]*?\*/|//[^\n\r\u2028\u2029]*")
_UNESCAPE = re.compile(r"\\([{}|])")
_TOKENS = re.compile(r"\\[\s\S]|\\|[{}|]|[^\\{}|]+")
MAX_SEED = 2**53 - 1  # a seed stays exact in JavaScript too
# Levels that unescape their own result. The frontend unescapes once per level (and its recursion
# overflows the stack near 10,000 levels); no real prompt nests this deep. Past it only the outer levels
# unescape, which keeps a pathological 20,000-level text linear instead of quadratic.
MAX_UNESCAPE_DEPTH = 64

# A parsed text: literal chunks (escape pairs kept as written) and choice groups (lists of options).
_Seq = list["str | _Group"]


class _Group(list[_Seq]):
    """One ``{…|…}`` group: its options, each a sequence."""


@dataclass
class Processed:
    """A graph with its dynamic prompts drawn: the graph sent, the patches that made it, the seed used."""

    graph: dict[str, JSON]
    ops: list[dict[str, JSON]] = field(default_factory=list)
    seed: int | None = None  # None: no text had a choice to draw, so the seed made no difference


def strip_comments(text: str) -> str:
    return _COMMENTS.sub("", text)


def _parse(text: str) -> _Seq:
    """One pass over ``text`` (comments already stripped) into literal chunks and nested groups."""
    top: _Seq = []
    # Each open group and the option being filled in it.
    open_groups: list[tuple[_Group, _Seq]] = []
    current = top
    for match in _TOKENS.finditer(text):
        piece = match.group()
        if piece == "{":
            group = _Group([[]])
            current.append(group)
            open_groups.append((group, current))
            current = group[0]
        elif open_groups and piece == "|":
            group = open_groups[-1][0]
            group.append([])
            current = group[-1]
        elif open_groups and piece == "}":
            _, current = open_groups.pop()
        else:
            current.append(piece)  # text, an escape pair, or a stray | or } outside any group
    return top


def _join(parts: list[str], depth: int) -> str:
    text = "".join(parts)
    return _UNESCAPE.sub(r"\1", text) if depth <= MAX_UNESCAPE_DEPTH and "\\" in text else text


def process(text: str, rng: random.Random) -> str:
    """``text`` as the frontend sends it: comments removed, each group replaced by one drawn option."""
    return _walk(_parse(strip_comments(text)), rng)


def _walk(tree: _Seq, rng: random.Random) -> str:
    # Frames of the walk: (sequence, next index, the parts produced so far).
    stack: list[tuple[_Seq, int, list[str]]] = [(tree, 0, [])]
    while True:
        seq, index, parts = stack[-1]
        if index < len(seq):
            item = seq[index]
            stack[-1] = (seq, index + 1, parts)
            if isinstance(item, _Group):
                # Drawn before the chosen option's own groups, as the frontend draws them.
                stack.append((item[int(rng.random() * len(item))], 0, []))
            else:
                parts.append(item)
            continue
        stack.pop()
        value = _join(parts, len(stack))  # each level unescapes its own result, as each frontend call does
        if not stack:
            return value
        stack[-1][2].append(value)


def changes(text: str) -> bool:
    """Whether processing may change ``text`` at all: a comment, a group or an escape in it."""
    return any(mark in text for mark in ("{", "//", "/*", "\\"))


def may_change(graph: dict[str, JSON]) -> bool:
    """Whether any text input of the graph could be processed (cheap: no node definitions needed)."""
    for node in graph.values():
        inputs = node.get("inputs") if isinstance(node, dict) else None
        if isinstance(inputs, dict) and any(isinstance(v, str) and changes(v) for v in inputs.values()):
            return True
    return False


def dynamic_inputs(object_info: dict[str, JSON]) -> dict[str, frozenset[str]]:
    """class_type → the names of its STRING inputs that declare ``dynamicPrompts: true``."""
    out: dict[str, frozenset[str]] = {}
    for class_type, info in object_info.items():
        section = info.get("input") if isinstance(info, dict) else None
        if not isinstance(section, dict):
            continue
        names: set[str] = set()
        for category in ("required", "optional"):
            specs = section.get(category)
            if not isinstance(specs, dict):
                continue
            for name, spec in specs.items():
                if (
                    isinstance(spec, list)
                    and len(spec) > 1
                    and spec[0] == "STRING"
                    and isinstance(spec[1], dict)
                    and spec[1].get("dynamicPrompts") is True
                ):
                    names.add(name)
        if names:
            out[class_type] = frozenset(names)
    return out


def input_rng(seed: int, node_id: str, name: str) -> random.Random:
    # String seeds are hashed with SHA-512: the same on every platform and Python version.
    return random.Random(f"{seed}:{node_id}:{name}")  # noqa: S311 (a reproducible draw, not a secret)


def new_seed() -> int:
    return random.SystemRandom().randint(0, MAX_SEED)


def _pointer(node_id: str, name: str) -> str:
    def escape(part: str) -> str:
        return part.replace("~", "~0").replace("/", "~1")

    return f"/{escape(node_id)}/inputs/{escape(name)}"


def apply(graph: dict[str, JSON], object_info: dict[str, JSON], seed: int | None = None) -> Processed:
    """Process every dynamic-prompt text input of an API-format graph; the graph given is not changed.

    ``seed`` repeats an earlier draw; without one a new seed is drawn. ``ops`` are RFC 6902 replaces of
    each changed text, in node order; ``seed`` is kept only when some text had a choice to draw.
    """
    chosen = new_seed() if seed is None else seed
    dynamic = dynamic_inputs(object_info)
    out: dict[str, JSON] | None = None
    ops: list[dict[str, JSON]] = []
    drew = False
    for node_id, node in graph.items():
        if not isinstance(node, dict):
            continue
        class_type = node.get("class_type")
        names = dynamic.get(class_type) if isinstance(class_type, str) else None
        inputs = node.get("inputs")
        if not names or not isinstance(inputs, dict):
            continue
        for name, value in inputs.items():
            if name not in names or not isinstance(value, str) or not changes(value):
                continue
            tree = _parse(strip_comments(value))
            drew = drew or any(isinstance(item, _Group) for item in tree)
            text = _walk(tree, input_rng(chosen, node_id, name))
            if text == value:
                continue
            if out is None:
                out = copy.deepcopy(graph)
            copied = out[node_id]
            if isinstance(copied, dict) and isinstance(copied_inputs := copied.get("inputs"), dict):
                copied_inputs[name] = text
            ops.append({"op": "replace", "path": _pointer(node_id, name), "value": text})
    return Processed(out if out is not None else graph, ops, chosen if drew else None)
