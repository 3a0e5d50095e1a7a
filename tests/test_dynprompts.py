"""Dynamic prompts processed as ComfyUI's frontend processes them, checked against the frontend's own code."""

from __future__ import annotations

import copy
import json
import random
import shutil
import subprocess
import time
from pathlib import Path

import jsonpatch
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from comfyui_studio.engine import dynprompts
from comfyui_studio.engine.dynprompts import apply, process

FIXTURES = Path(__file__).parent / "fixtures"
OBJECT_INFO = json.loads((FIXTURES / "comfyui" / "object_info.json").read_text())
FRONTEND_VERSION = "1.27.10"


class Draws:
    """A random source that returns a given sequence of numbers, over and over (as Math.random stand-in)."""

    def __init__(self, numbers: list[float]) -> None:
        self.numbers = numbers
        self.count = 0

    def random(self) -> float:
        value = self.numbers[self.count % len(self.numbers)]
        self.count += 1
        return value


def first(text: str) -> str:
    return process(text, Draws([0.0]))  # type: ignore[arg-type]


def last(text: str) -> str:
    return process(text, Draws([0.999999]))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "first_choice", "last_choice"),
    [
        ("a {red|green|blue} cat", "a red cat", "a blue cat"),
        ("{a|{b|c}} and {d|e}", "a and d", "c and e"),
        ("{x|}", "x", ""),
        ("{single}", "single", "single"),
        ("{open|ended", "open", "ended"),  # a group left open runs to the end
        ("stray } and | stay", "stray } and | stay", "stray } and | stay"),
        ("line // a comment\nnext", "line \nnext", "line \nnext"),
        ("a /* {x|y}\nblock */b", "a b", "a b"),
        ("see http://example.com now", "see http:", "see http:"),  # the frontend strips it too
        (r"literal \{a|b\} and \| kept", "literal {a|b} and | kept", "literal {a|b} and | kept"),
        (r"{\{x\}|y}", "{x}", "y"),
        (r"other \n \\ escapes", r"other \n \\ escapes", r"other \n \\ escapes"),
        ("ends with a backslash \\", "ends with a backslash \\", "ends with a backslash \\"),
        ("unterminated /* comment", "unterminated /* comment", "unterminated /* comment"),
    ],
)
def test_comments_choices_and_escapes(text: str, first_choice: str, last_choice: str) -> None:
    assert (first(text), last(text)) == (first_choice, last_choice)


def test_the_choice_is_drawn_before_the_chosen_options_own_groups() -> None:
    # 0.6 picks the second option of the outer group, then 0.1 the first of the inner one.
    assert process("{a|{b|c}|d} {e|f}", Draws([0.6, 0.1, 0.9])) == "b f"  # type: ignore[arg-type]


# --- against the frontend's own processDynamicPrompt --------------------------------------------

JS_RUNNER = """
const fs = require('fs');
const __name = (f) => f;
eval(fs.readFileSync(process.argv[2], 'utf8'));
const cases = JSON.parse(fs.readFileSync(0, 'utf8'));
process.stdout.write(JSON.stringify(cases.map(([text, draws]) => {
  let k = 0;
  Math.random = () => draws[k++ % draws.length];
  return processDynamicPrompt(text);
})));
"""


def frontend_function(tmp_path: Path) -> Path:
    """processDynamicPrompt as the installed frontend package ships it (the built bundle is not minified)."""
    package = pytest.importorskip("comfyui_frontend_package")
    assets = Path(package.__file__).parent / "static" / "assets"
    for bundle in sorted(assets.glob("*.js")):
        source = bundle.read_text(encoding="utf-8")
        start = source.find("function processDynamicPrompt(")
        if start >= 0:
            end = source.index('__name(processDynamicPrompt, "processDynamicPrompt");', start)
            path = tmp_path / "processDynamicPrompt.js"
            path.write_text(source[start:end], encoding="utf-8")
            return path
    raise AssertionError(f"comfyui-frontend-package {FRONTEND_VERSION} has no processDynamicPrompt")


def test_the_port_gives_the_frontends_text_for_the_same_draws(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js runs the frontend's function")
    function = frontend_function(tmp_path)
    runner = tmp_path / "run.js"
    runner.write_text(JS_RUNNER)
    rng = random.Random(20251202)
    alphabet = ["{", "}", "|", "\\", "/", "*", "a", "b", " ", "\n", "\r", "\u2028", "\U0001f600", "word"]
    cases = []
    while len(cases) < 6000:
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        stripped = dynprompts.strip_comments(text)
        if (len(stripped) - len(stripped.rstrip("\\"))) % 2 == 1:
            continue  # the frontend turns a final lone backslash into "\undefined"; the port keeps it
        cases.append((text, [rng.random() for _ in range(rng.randint(1, 5))]))
    # Deep nesting up to MAX_UNESCAPE_DEPTH, where every level unescapes a backslash of its own.
    for depth in (5, 20, dynprompts.MAX_UNESCAPE_DEPTH - 1):
        for run in (0, 1, 3, 40):
            text = "{x|" * depth + "\\" * run + "\\{y\\|z\\}" + "}" * depth
            cases.append((text, [0.9]))
    out = subprocess.run(
        [node, str(runner), str(function)], input=json.dumps(cases), capture_output=True, text=True, check=True
    )
    expected = json.loads(out.stdout)
    differences = [
        (text, draws, process(text, Draws(draws)), want)  # type: ignore[arg-type]
        for (text, draws), want in zip(cases, expected, strict=True)
        if process(text, Draws(draws)) != want  # type: ignore[arg-type]
    ]
    assert differences == []


# --- properties -----------------------------------------------------------------------------------

seeds = st.integers(min_value=0, max_value=dynprompts.MAX_SEED)
syntax = st.text(alphabet=st.sampled_from(list("{}|\\/*ab \n")) | st.characters(), max_size=200)


@given(syntax, seeds)
def test_any_text_is_processed_without_error_and_the_same_seed_repeats_it(text: str, seed: int) -> None:
    out = process(text, random.Random(seed))  # noqa: S311
    assert isinstance(out, str)
    assert process(text, random.Random(seed)) == out  # noqa: S311


@given(st.text(st.characters(blacklist_characters="{\\/"), max_size=300) | st.just("a / b * c } d | e"), seeds)
def test_text_without_groups_comments_or_escapes_is_left_alone(text: str, seed: int) -> None:
    assert process(text, random.Random(seed)) == text  # noqa: S311


@given(st.text(alphabet=st.sampled_from(list("{}|/*ab \n")) | st.characters(blacklist_characters="\\")), seeds)
def test_without_escapes_no_brace_group_survives(text: str, seed: int) -> None:
    assert "{" not in process(text, random.Random(seed))  # noqa: S311


@given(st.lists(st.text(alphabet="abcdefgh ", max_size=8), min_size=1, max_size=6), seeds)
def test_a_group_becomes_one_of_its_options(options: list[str], seed: int) -> None:
    assert process("{" + "|".join(options) + "}", random.Random(seed)) in options  # noqa: S311


@given(st.text(alphabet=st.sampled_from(list("{}|\\ab")), max_size=60), seeds)
def test_processing_is_done_once_its_output_holds_no_group(text: str, seed: int) -> None:
    out = process(text, random.Random(seed))  # noqa: S311
    if "\\" not in out and "{" not in out:
        assert process(out, random.Random(seed + 1)) == out  # noqa: S311


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(["{", "{a|", "{\\", "{x", "\\{", "{}", "{|"]), st.sampled_from(["", "\\\\", "z}", "|"]))
def test_pathological_nesting_is_linear_and_never_recurses(opening: str, tail: str) -> None:
    text = (opening * 20_000)[:20_000] + tail * 2_000
    # CPU time, not wall time: other processes on the machine do not count against it
    started = time.process_time()
    out = process(text, random.Random(1))  # noqa: S311
    assert isinstance(out, str)
    assert time.process_time() - started < 5.0  # linear: ~0.1 s here; quadratic work would take minutes


# --- graphs ---------------------------------------------------------------------------------------


def graph() -> dict:
    return {
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a {red|blue} fox // notes", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry /* old: grainy */", "clip": ["4", 1]}},
        "8": {"class_type": "CLIPTextEncode", "inputs": {"text": "plain", "clip": ["4", 1]}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["10", 0], "filename_prefix": "out/{a|b}"}},
        "11": {"class_type": "StudioPrompt", "inputs": {"text": "{kept|as is}"}},
    }


def test_only_inputs_that_declare_dynamic_prompts_are_processed() -> None:
    info = {**OBJECT_INFO, "StudioPrompt": {"input": {"required": {"text": ["STRING", {"dynamicPrompts": False}]}}}}
    original = graph()
    result = apply(original, info, seed=7)
    assert original == graph(), "the graph given is not changed"
    assert result.graph["6"]["inputs"]["text"] in ("a red fox ", "a blue fox ")
    assert result.graph["7"]["inputs"]["text"] == "blurry "
    assert result.graph["8"] == original["8"] and result.graph["9"] == original["9"]
    assert result.graph["11"] == original["11"]
    assert [op["path"] for op in result.ops] == ["/6/inputs/text", "/7/inputs/text"]
    assert jsonpatch.apply_patch(original, result.ops) == result.graph
    assert result.seed == 7


def test_the_seed_repeats_every_draw_and_is_kept_only_when_there_was_one() -> None:
    texts = {apply(graph(), OBJECT_INFO, seed=s).graph["6"]["inputs"]["text"] for s in range(40)}
    assert texts == {"a red fox ", "a blue fox "}
    drawn = apply(graph(), OBJECT_INFO)
    assert drawn.seed is not None and 0 <= drawn.seed <= dynprompts.MAX_SEED
    assert apply(graph(), OBJECT_INFO, seed=drawn.seed).graph == drawn.graph
    only_comments = {"7": copy.deepcopy(graph()["7"])}
    assert apply(only_comments, OBJECT_INFO, seed=3).seed is None
    untouched = {"8": graph()["8"]}
    assert not dynprompts.may_change(untouched)
    assert apply(untouched, OBJECT_INFO).graph is untouched


def test_every_dynamic_prompt_input_of_object_info_is_found() -> None:
    found = dynprompts.dynamic_inputs(OBJECT_INFO)
    assert found["CLIPTextEncode"] == {"text"}
    assert {"clip_l", "t5xxl"} <= found["CLIPTextEncodeFlux"]
    assert sum(len(v) for v in found.values()) == 25  # every STRING input ComfyUI 0.3.64 flags


# --- with shortcodes -----------------------------------------------------------------------------

groups = st.lists(
    st.one_of(
        st.text(alphabet="abc xyz,", min_size=1, max_size=8),
        st.lists(st.text(alphabet="abcxyz ", max_size=5), min_size=1, max_size=4).map(
            lambda o: "{" + "|".join(o) + "}"
        ),
        st.sampled_from(["{", "}", "|", "\\{", "\\}", "//", "/*", "*/", "{a|{b|c}}"]),
    ),
    max_size=12,
).map("".join)


@given(groups)
def test_the_shortcode_parser_keeps_brace_groups_for_the_submit_to_draw(text: str) -> None:
    from comfyui_studio.engine.shortcodes import parse

    plain = parse(text)
    coded = parse(f"{text} --ar 16:9 --seed 7")
    assert coded.text == plain.text and not coded.errors
    assert coded.values["seed"] == 7
    assert plain.text.replace(" ", "") == text.replace(" ", "")  # only whitespace is normalised
