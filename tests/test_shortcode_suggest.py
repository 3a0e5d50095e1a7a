"""Autocomplete at the cursor, and validation of user-defined codes."""

from __future__ import annotations

import json

import pytest

from comfyui_studio.engine.shortcodes import (
    BUILTIN_CODES,
    DEFAULT_REGISTRY,
    Choice,
    CodeDefinition,
    Registry,
    Target,
    suggest,
    validate_definition,
)

SD15 = {
    "3": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 20, "cfg": 8.0}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "x"}, "_meta": {"title": "Positive"}},
}


def labels(text: str, cursor: int | None = None, **kw: object) -> list[str]:
    return [s.label for s in suggest(text, len(text) if cursor is None else cursor, **kw)]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "first"),
    [
        ("a cat --a", "--ar"),
        ("a cat --st", "--steps"),
        ("a cat --sty", "--style"),
        ("a cat --styl", "--style"),
        ("a cat --se", "--seed"),
        ("a cat --n", "--no"),
        ("a cat --q", "--q"),
        ("a cat --qu", "--quality"),
        ("a cat --S", "--s"),
        ("a cat —se", "--seed"),
        ("a cat --ASP", "--aspect"),
    ],
)
def test_codes_ranked_by_prefix(text: str, first: str) -> None:
    assert labels(text)[0] == first


def test_all_codes_after_bare_dashes() -> None:
    names = labels("a cat --")
    assert len(names) == 10  # default limit
    assert len(labels("a cat --", limit=100)) == len({d.code for d in BUILTIN_CODES})


def test_fuzzy_after_prefix() -> None:
    out = labels("a cat --sz")
    assert out[0] == "--size"
    assert "--stylize" in labels("x --stlz")


def test_code_suggestion_carries_description_type_and_span() -> None:
    (s, *_) = suggest("a cat --ch", 10)
    assert (s.label, s.insert, s.start, s.end, s.type) == ("--chaos", "--chaos ", 6, 10, "int")
    assert s.description
    flag = next(x for x in suggest("x --ti", 6) if x.label == "--tile")
    assert flag.insert == "--tile"  # a flag takes no value


def test_enum_values_after_the_code() -> None:
    assert labels("a cat --style ") == ["vivid", "natural", "cinematic", "photo", "anime"]
    assert labels("a cat --style c") == ["cinematic"]
    assert labels("a cat --style AN") == ["anime"]
    assert labels("a cat --style=v") == ["vivid"]
    (s,) = suggest("a cat --style ci", 16)
    assert (s.start, s.end, s.insert, s.kind) == (14, 16, "cinematic ", "value")


def test_values_for_seed_ratio_and_nothing_for_numbers() -> None:
    assert labels("x --seed r") == ["random"]
    assert "16:9" in labels("x --ar ")
    assert labels("x --steps ") == []
    assert labels("x --tile ") == []


def test_cursor_in_the_middle_of_the_text() -> None:
    text = "a cat --sty and more"
    assert labels(text, 11)[0] == "--style"
    (s, *_) = suggest(text, 9)  # cursor inside the word: the whole word is replaced
    assert (s.start, s.end) == (6, 11)


@pytest.mark.parametrize(("text", "cursor"), [("a cat", 5), ("", 0), ("a cat ", 6), ("--zz ", 5), ("x", 99), ("x", -3)])
def test_nothing_to_suggest(text: str, cursor: int) -> None:
    assert suggest(text, cursor) == []


def test_user_codes_are_suggested() -> None:
    reg = Registry.with_user_codes(
        [CodeDefinition("film", "enum", "analog film stock", choices=(Choice("portra", "warm"),), targets=())]
    )
    (s,) = [x for x in suggest("x --fi", 6, reg) if x.label == "--film"]
    assert s.description == "analog film stock"
    assert labels("x --film p", registry=reg) == ["portra"]


# --- validation


def good(**kw: object) -> CodeDefinition:
    base: dict[str, object] = {
        "code": "mood",
        "type": "string",
        "description": "a mood",
        "targets": [{"selector": "title:Positive", "input": "text", "template": "{value}, masterpiece"}],
    }
    base.update(kw)
    return CodeDefinition.from_dict(base)  # type: ignore[arg-type]


def fields(defn: CodeDefinition, graph: object = None) -> list[str]:
    return [e.field for e in validate_definition(defn, DEFAULT_REGISTRY, graph)]  # type: ignore[arg-type]


def test_a_good_definition_has_no_errors() -> None:
    assert validate_definition(good(), DEFAULT_REGISTRY, SD15) == []  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"code": "ar"}, "code"),
        ({"code": "AR"}, "code"),
        ({"code": "seed"}, "code"),
        ({"aliases": ["aspect"]}, "aliases[0]"),
        ({"aliases": ["s"]}, "aliases[0]"),
        ({"code": "9lives"}, "code"),
        ({"code": "has space"}, "code"),
        ({"code": ""}, "code"),
        ({"aliases": ["mood"]}, "aliases"),
        ({"targets": []}, "targets"),
        (
            {"targets": [{"selector": "title:Positive", "input": "text", "template": "{valu}"}]},
            "targets[0].template",
        ),
        (
            {"targets": [{"selector": "title:Positive", "input": "text", "template": "{width}"}]},
            "targets[0].template",
        ),
        ({"targets": [{"selector": "role:bogus", "input": "text"}]}, "targets[0].selector"),
        ({"targets": [{"selector": "title:Positive", "input": ""}]}, "targets[0].input"),
        ({"type": "enum"}, "choices"),
        ({"type": "enum", "choices": ["a", "A"]}, "choices"),
        ({"type": "enum", "choices": ["two words"]}, "choices"),
        ({"choices": ["a"]}, "choices"),
        ({"type": "int", "min": 5, "max": 1}, "min"),
        ({"type": "int", "default": "x"}, "default"),
        ({"type": "int", "min": 1, "max": 3, "default": 9}, "default"),
        ({"scale": {"k": [[0, 1]]}}, "scale"),
        ({"type": "float", "scale": {"k": [[5, 1], [0, 2]]}}, "scale.k"),
        (
            {
                "type": "enum",
                "choices": ["a"],
                "targets": [{"selector": "id:6", "input": "text", "template": {"b": "x"}}],
            },
            "targets[0].template",
        ),
        ({"targets": [{"selector": "id:6", "input": "text", "template": {"a": "x"}}]}, "targets[0].template"),
        (
            {
                "type": "enum",
                "choices": ["a"],
                "targets": [{"selector": "id:6", "input": "", "template": {"a": "x"}}],
            },
            "targets[0].template.a",
        ),
    ],
)
def test_bad_definitions_name_the_field(kw: dict[str, object], field: str) -> None:
    errs = validate_definition(good(**kw), DEFAULT_REGISTRY)
    assert field in [e.field for e in errs], errs
    assert all(e.message for e in errs)


def test_selector_matching_nothing_in_the_graph() -> None:
    defn = good(targets=[{"selector": "title:Nope", "input": "text"}])
    (err,) = validate_definition(defn, DEFAULT_REGISTRY, SD15)  # type: ignore[arg-type]
    assert err.field == "targets[0].selector" and "matches no node" in err.message
    assert validate_definition(defn, DEFAULT_REGISTRY) == []  # without a graph it cannot tell


def test_collision_with_another_user_code() -> None:
    reg = Registry.with_user_codes([good(code="vibe", aliases=["v"])])
    errs = validate_definition(good(aliases=["v"]), reg)
    assert [(e.field, e.message) for e in errs] == [("aliases[0]", "--v is already used by --vibe")]
    assert validate_definition(good(code="vibe", aliases=["v"]), reg) == []  # editing itself


def test_builtin_rows_validate_and_round_trip() -> None:
    for defn in BUILTIN_CODES:
        assert validate_definition(defn) == [], defn.code
        row = json.loads(json.dumps(defn.to_dict()))
        assert CodeDefinition.from_dict(row) == defn


def test_a_user_cannot_mint_a_builtin() -> None:
    errs = validate_definition(good(builtin=True))
    assert [e.field for e in errs] == ["code"]


@pytest.mark.parametrize(
    "row",
    [
        {"code": "x", "type": "nope"},
        {"code": 3, "type": "int"},
        {"code": "x", "type": "int", "aliases": "y"},
        {"code": "x", "type": "int", "targets": ["id:1"]},
        {"code": "x", "type": "int", "targets": [{"selector": 5}]},
        {"code": "x", "type": "int", "targets": [{"selector": "id:1", "mode": "explode"}]},
        {"code": "x", "type": "int", "min": "1"},
        {"code": "x", "type": "int", "scale": {"k": [[1]]}},
        {"code": "x", "type": "enum", "choices": [3]},
    ],
)
def test_malformed_rows_raise_value_error(row: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        CodeDefinition.from_dict(row)  # type: ignore[arg-type]


def test_target_round_trip() -> None:
    t = Target({"class": "KSampler"}, "cfg", {"a": 1}, "multiply", "wf", 1.5)
    assert Target.from_dict(json.loads(json.dumps(t.to_dict()))) == t
