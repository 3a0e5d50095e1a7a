"""Table-driven specification of the shortcode parser."""

from __future__ import annotations

import gc
import time

import pytest

from comfyui_studio.engine.shortcodes import (
    BUILTIN_CODES,
    DEFAULT_REGISTRY,
    Choice,
    CodeDefinition,
    Registry,
    Target,
    coerce,
    dims_for_ratio,
    parse,
)

R169 = {"ratio": "16:9", "w": 16.0, "h": 9.0, "width": 1344, "height": 768}
R11 = {"ratio": "1:1", "w": 1.0, "h": 1.0, "width": 1024, "height": 1024}

# (text, clean text, values, error kinds, warning kinds)
CASES: list[tuple[str, str, dict[str, object], list[str], list[str]]] = [
    ("", "", {}, [], []),
    ("a cat", "a cat", {}, [], []),
    ("  a   cat \n\t on  a mat ", "a cat on a mat", {}, [], []),
    ("a cat --ar 16:9", "a cat", {"ar": R169}, [], []),
    ("--ar 16:9 a cat", "a cat", {"ar": R169}, [], []),
    ("a --ar 16:9 cat", "a cat", {"ar": R169}, [], []),
    ("a cat --aspect 16:9", "a cat", {"ar": R169}, [], []),
    ("a cat --AR 16:9", "a cat", {"ar": R169}, [], []),
    ("a cat --Aspect 16:9", "a cat", {"ar": R169}, [], []),
    ("a cat --ar=16:9", "a cat", {"ar": R169}, [], []),
    ("a cat —ar 16:9", "a cat", {"ar": R169}, [], []),
    ("a cat –ar 16:9", "a cat", {"ar": R169}, [], []),
    ("a cat —sitting on a mat", "a cat —sitting on a mat", {}, [], []),
    ("a cat — sitting", "a cat — sitting", {}, [], []),
    ("well--known cat", "well--known cat", {}, [], []),
    ("a cat --- b", "a cat --- b", {}, [], []),
    ("a cat -- ar 16:9", "a cat -- ar 16:9", {}, [], []),
    ("a cat --ar, 16:9", "a cat --ar, 16:9", {}, [], []),
    ("a cat --ar 16:0", "a cat 16:0", {}, ["invalid_value"], []),
    ("a cat --ar 0:9", "a cat 0:9", {}, ["invalid_value"], []),
    ("a cat --ar wide", "a cat wide", {}, ["invalid_value"], []),
    ("a cat --ar 100:1", "a cat 100:1", {}, ["invalid_value"], []),
    ("a cat --ar", "a cat", {}, ["missing_value"], []),
    ("a cat --ar --seed 4", "a cat", {"seed": 4}, ["missing_value"], []),
    ("a cat --ar= dog", "a cat dog", {}, ["missing_value"], []),
    ("a cat --seed 42", "a cat", {"seed": 42}, [], []),
    ("a cat --seed random", "a cat", {"seed": "random"}, [], []),
    ("a cat --seed RANDOM", "a cat", {"seed": "random"}, [], []),
    ("a cat --seed -1", "a cat -1", {}, ["invalid_value"], []),
    ("a cat --seed 18446744073709551615", "a cat", {"seed": 18446744073709551615}, [], []),
    ("a cat --seed 18446744073709551616", "a cat 18446744073709551616", {}, ["invalid_value"], []),
    ("a cat --seed 4.5", "a cat 4.5", {}, ["invalid_value"], []),
    ("a cat --seed ٤٢", "a cat ٤٢", {}, ["invalid_value"], []),
    ("a cat --seed " + "9" * 5000, "a cat " + "9" * 5000, {}, ["invalid_value"], []),
    ("a cat --no text, watermark", "a cat", {"no": ["text", "watermark"]}, [], []),
    ("a cat --no text, watermark --ar 1:1", "a cat", {"no": ["text", "watermark"], "ar": R11}, [], []),
    ("--no text, watermark --ar 1:1 a cat", "a cat", {"no": ["text", "watermark"], "ar": R11}, [], []),
    ("a cat --no blurry —ar 1:1", "a cat", {"no": ["blurry"], "ar": R11}, [], []),
    ("a cat --no blurry —sitting", "a cat", {"no": ["blurry —sitting"]}, [], []),
    ("a cat --no ,", "a cat ,", {}, ["invalid_value"], []),
    ("a cat --no , , ,", "a cat , , ,", {}, ["invalid_value"], []),
    ('a cat --no "text, watermark" big', "a cat big", {"no": ["text", "watermark"]}, [], []),
    ("a cat --style vivid", "a cat", {"style": "vivid"}, [], []),
    ("a cat --style VIVID", "a cat", {"style": "vivid"}, [], []),
    ("a cat --style Anime", "a cat", {"style": "anime"}, [], []),
    ('a cat --style "vivid"', "a cat", {"style": "vivid"}, [], []),
    ("a cat --style “vivid”", "a cat", {"style": "vivid"}, [], []),
    ("a cat --style 'vivid'", "a cat", {"style": "vivid"}, [], []),
    ('a cat --style "film noir"', 'a cat "film noir"', {}, ["invalid_value"], []),
    ("a cat --style vivd", "a cat vivd", {}, ["invalid_value"], []),
    ("a cat --style", "a cat", {}, ["missing_value"], []),
    ('a cat --style "vivid', 'a cat "vivid', {}, ["invalid_value"], ["unterminated_quote"]),
    ("a cat --style 'vivid", "a cat 'vivid", {}, ["invalid_value"], []),
    ("a cat --chaos 30", "a cat", {"chaos": 30}, [], []),
    ("a cat --chaos 0", "a cat", {"chaos": 0}, [], []),
    ("a cat --chaos 100", "a cat", {"chaos": 100}, [], []),
    ("a cat --chaos 101", "a cat 101", {}, ["invalid_value"], []),
    ("a cat --chaos -1", "a cat -1", {}, ["invalid_value"], []),
    ("a cat --chaos lots", "a cat lots", {}, ["invalid_value"], []),
    ("a cat --stylize 250", "a cat", {"stylize": 250}, [], []),
    ("a cat --s 250", "a cat", {"stylize": 250}, [], []),
    ("a cat --s 1001", "a cat 1001", {}, ["invalid_value"], []),
    ("a cat --q 2", "a cat", {"quality": 2.0}, [], []),
    ("a cat --q .5", "a cat", {"quality": 0.5}, [], []),
    ("a cat --quality 0.25", "a cat", {"quality": 0.25}, [], []),
    ("a cat --q 0.1", "a cat 0.1", {}, ["invalid_value"], []),
    ("a cat --q nan", "a cat nan", {}, ["invalid_value"], []),
    ("a cat --q inf", "a cat inf", {}, ["invalid_value"], []),
    ("a cat --q 1e3", "a cat 1e3", {}, ["invalid_value"], []),
    ("a cat --steps 30", "a cat", {"steps": 30}, [], []),
    ("a cat --steps 0", "a cat 0", {}, ["invalid_value"], []),
    ("a cat --steps 201", "a cat 201", {}, ["invalid_value"], []),
    ("a cat --steps +30", "a cat", {"steps": 30}, [], []),
    ("a cat --cfg 7.5", "a cat", {"cfg": 7.5}, [], []),
    ("a cat --cfg 7", "a cat", {"cfg": 7.0}, [], []),
    ("a cat --cfg 31", "a cat 31", {}, ["invalid_value"], []),
    ("a cat --batch 4", "a cat", {"batch": 4}, [], []),
    ("a cat --batch 65", "a cat 65", {}, ["invalid_value"], []),
    ("a cat --size 1024x768", "a cat", {"size": {"width": 1024, "height": 768}}, [], []),
    ("a cat --size 1024X768", "a cat", {"size": {"width": 1024, "height": 768}}, [], []),
    ("a cat --size 1000x700", "a cat", {"size": {"width": 1000, "height": 704}}, [], []),
    ("a cat --size 10x10", "a cat 10x10", {}, ["invalid_value"], []),
    ("a cat --size big", "a cat big", {}, ["invalid_value"], []),
    ("a cat --tile", "a cat", {"tile": True}, [], []),
    ("a cat --tile big", "a cat big", {"tile": True}, [], []),
    ("a cat --tile=false", "a cat", {"tile": False}, [], []),
    ("a cat --tile=yes", "a cat", {"tile": True}, [], []),
    ("a cat --tile=maybe", "a cat maybe", {}, ["invalid_value"], []),
    ("--tile", "", {"tile": True}, [], []),
    ("a cat --foo bar", "a cat bar", {}, [], ["unknown_code"]),
    ("a cat --foo=bar baz", "a cat baz", {}, [], ["unknown_code"]),
    ("--wombat a cat", "a cat", {}, [], ["unknown_code"]),
    ("a cat --seed 1 --seed 2", "a cat", {"seed": 2}, [], ["repeated_code"]),
    ("a cat --ar 1:1 --aspect 16:9", "a cat", {"ar": R169}, [], ["repeated_code"]),
    ("a cat --seed 1 --seed x", "a cat x", {"seed": 1}, ["invalid_value"], []),
    ("日本の猫 --ar 16:9 桜", "日本の猫 桜", {"ar": R169}, [], []),
    ("🐱 --style anime 🌸", "🐱 🌸", {"style": "anime"}, [], []),
    ("a\x00cat --seed 1", "a cat", {"seed": 1}, [], []),
    ("a\u0085cat\x1b[31m", "a cat [31m", {}, [], []),
    ("a cat\n--ar 16:9\nsecond line", "a cat second line", {"ar": R169}, [], []),
    ("a cat\t--seed\t7", "a cat", {"seed": 7}, [], []),
    ('a cat --style "a \\"quoted\\" style"', 'a cat "a \\"quoted\\" style"', {}, ["invalid_value"], []),
    ("a cat --seed=", "a cat", {}, ["missing_value"], []),
    (
        "a cat --ar 3:2",
        "a cat",
        {"ar": {"ratio": "3:2", "w": 3.0, "h": 2.0, "width": 1280, "height": 832}},
        [],
        [],
    ),
    (
        "x --ar 1.91:1",
        "x",
        {"ar": {"ratio": "1.91:1", "w": 1.91, "h": 1.0, "width": 1408, "height": 768}},
        [],
        [],
    ),
    ("x --ar 16/9", "x", {"ar": R169}, [], []),
]


@pytest.mark.parametrize(("text", "clean", "values", "errors", "warnings"), CASES)
def test_parse_table(text: str, clean: str, values: dict[str, object], errors: list[str], warnings: list[str]) -> None:
    result = parse(text)
    assert result.text == clean
    assert result.values == values
    assert [e.kind for e in result.errors] == errors
    assert [w.kind for w in result.warnings] == warnings
    for item in (*result.tokens, *result.errors, *result.warnings):
        assert 0 <= item.start <= item.end <= len(text)


# Every built-in code and alias, in every spelling and position, with a value that fits.
GOOD_VALUES = {
    "ratio": ("16:9", 1344),
    "size": ("1024x768", None),
    "seed": ("42", 42),
    "list": ("text, watermark", ["text", "watermark"]),
    "int": (None, None),
    "float": (None, None),
    "enum": ("vivid", "vivid"),
    "flag": (None, True),
    "string": ("euler", "euler"),
}


def timed_parse(text: str) -> tuple[object, float]:
    """The parser's own CPU time: neither a collection of the whole suite's garbage nor other processes on the
    machine count against it."""
    gc.collect()
    gc.disable()
    try:
        t0 = time.process_time()
        result = parse(text)
        return result, time.process_time() - t0
    finally:
        gc.enable()


def _good(defn: CodeDefinition) -> str | None:
    if defn.type in ("int", "float"):
        lo = defn.min if defn.min is not None else 0
        return str(int(lo) if float(lo).is_integer() else lo)
    return GOOD_VALUES[defn.type][0]


SPELLINGS = [
    (name, dash, case, where)
    for defn in BUILTIN_CODES
    for name in defn.names()
    for dash in ("--", "—", "–")
    for case in ("lower", "upper")
    for where in ("start", "middle", "end")
]


@pytest.mark.parametrize(("name", "dash", "case", "where"), SPELLINGS)
def test_every_builtin_in_every_spelling(name: str, dash: str, case: str, where: str) -> None:
    defn = DEFAULT_REGISTRY.lookup(name)
    assert defn is not None
    value = _good(defn)
    if defn.type == "list" and where != "end":
        value = '"text, watermark"'  # unquoted, a list runs to the next code or the end
    typed = name if case == "lower" else name.upper()
    token = f"{dash}{typed}" + ("" if value is None else f" {value}")
    text = {"start": f"{token} red fox", "middle": f"red {token} fox", "end": f"red fox {token}"}[where]
    result = parse(text)
    assert result.errors == []
    assert result.text == "red fox"
    assert list(result.values) == [defn.code]
    (tok,) = result.tokens
    assert text[tok.start : tok.end] == token
    assert tok.name == typed
    if value is not None:
        assert text[tok.value_start : tok.value_end] == value


@pytest.mark.parametrize(
    "defn", [d for d in BUILTIN_CODES if d.type not in ("flag", "list", "string")], ids=lambda d: d.code
)
@pytest.mark.parametrize("form", ["space", "equals"])
def test_invalid_values_keep_the_users_words(defn: CodeDefinition, form: str) -> None:
    bad = "banana"
    text = f"a cat --{defn.code} {bad} on a mat" if form == "space" else f"a cat --{defn.code}={bad} on a mat"
    result = parse(text)
    assert "banana" in result.text
    assert result.text.endswith("on a mat")
    (err,) = result.errors
    assert err.kind == "invalid_value"
    assert err.message.startswith(f"--{defn.code} banana: ") or err.message.startswith(f"--{defn.code}")
    assert text[err.start : err.end].startswith(f"--{defn.code}")


def test_error_message_reads_like_the_issue() -> None:
    (err,) = parse("a cat --ar 16:0").errors
    assert err.message == "--ar 16:0: ratio must be two positive numbers"
    (err,) = parse("--chaos 300").errors
    assert err.message == "--chaos 300: must be between 0 and 100"
    (err,) = parse("--style vivd").errors
    assert "did you mean vivid?" in err.message


def test_unknown_code_suggests_the_close_one() -> None:
    (warn,) = parse("a cat --seeed 4").warnings
    assert "did you mean --seed?" in warn.message
    assert parse("a cat --seeed 4").text == "a cat 4"


def test_repeated_code_warns_on_the_earlier_token_and_last_wins() -> None:
    text = "x --seed 1 y --seed 2"
    result = parse(text)
    (warn,) = result.warnings
    assert text[warn.start : warn.end] == "--seed 1"
    assert [t.overridden for t in result.tokens] == [True, False]
    assert [t.raw for t in result.winning_tokens()] == ["2"]


def test_tokens_carry_code_raw_typed_value_and_offsets() -> None:
    text = "red fox --AR=16:9 --style “cinematic” --no a, b"
    toks = parse(text).tokens
    assert [(t.name, t.code, t.raw, t.value) for t in toks] == [
        ("AR", "ar", "16:9", R169),
        ("style", "style", "“cinematic”", "cinematic"),
        ("no", "no", "a, b", ["a", "b"]),
    ]
    assert [text[t.start : t.end] for t in toks] == ["--AR=16:9", "--style “cinematic”", "--no a, b"]


def test_quoted_value_with_escaped_quote_for_a_string_code() -> None:
    reg = Registry([*BUILTIN_CODES, CodeDefinition("title", "string", targets=(Target("id:1", "v"),))])
    result = parse('x --title "say \\"hi\\" now" y', reg)
    assert result.values == {"title": 'say "hi" now'}
    assert result.text == "x y"


def test_user_enum_with_spaces_needs_quotes() -> None:
    noir = CodeDefinition("look", "enum", choices=(Choice("noir"), Choice("pastel")), targets=(Target("id:1", "v"),))
    reg = Registry([*BUILTIN_CODES, noir])
    assert parse("x --look NOIR", reg).values == {"look": "noir"}
    assert parse("x --look", reg).errors[0].kind == "missing_value"


def test_default_fills_a_missing_value() -> None:
    d = CodeDefinition("hd", "float", default=1.5, targets=(Target("id:1", "v"),))
    reg = Registry([*BUILTIN_CODES, d])
    result = parse("x --hd --seed 3", reg)
    assert result.values == {"hd": 1.5, "seed": 3}
    assert result.errors == []


def test_dash_code_only_when_known() -> None:
    assert parse("—seed 5 cat").values == {"seed": 5}
    assert parse("—seeds 5 cat").text == "—seeds 5 cat"
    assert parse("—seeds 5 cat").warnings == []


@pytest.mark.parametrize(
    ("w", "h", "pixels", "expected"),
    [
        (16, 9, 1024 * 1024, (1344, 768)),
        (9, 16, 1024 * 1024, (768, 1344)),
        (1, 1, 1024 * 1024, (1024, 1024)),
        (1, 1, 512 * 512, (512, 512)),
        (16, 9, 512 * 512, (704, 384)),
        (3, 2, 1024 * 1024, (1280, 832)),
        (4, 3, 1024 * 1024, (1152, 896)),
        (21, 9, 1024 * 1024, (1536, 640)),
        (16, 1, 64 * 64, (256, 64)),
    ],
)
def test_ratio_dims_are_multiples_of_64_near_the_pixel_count(
    w: float, h: float, pixels: int, expected: tuple[int, int]
) -> None:
    width, height = dims_for_ratio(w, h, pixels)
    assert (width, height) == expected
    assert width % 64 == 0 and height % 64 == 0


def test_registry_target_pixels_changes_the_preview_size() -> None:
    reg = Registry(target_pixels=512 * 512)
    assert parse("--ar 1:1", reg).values["ar"] == {
        "ratio": "1:1",
        "w": 1.0,
        "h": 1.0,
        "width": 512,
        "height": 512,
    }


@pytest.mark.parametrize("code", ["int", "float", "ratio", "size", "seed", "enum", "flag", "list", "string"])
def test_coerce_never_raises_on_junk(code: str) -> None:
    defn = CodeDefinition("x", code, choices=(Choice("a"),))  # type: ignore[arg-type]
    for junk in ["", " ", "\x00", "1" * 10000, "-", "::", "x" * 3, "1e999", "NaN", "１２", "0:0", "0x0"]:
        value, err = coerce(defn, junk)
        assert (value is None) == (err is not None) or code in ("string", "flag")


# --- adversarial inputs: results, and fast


def test_100kb_prompt_without_codes() -> None:
    text = "a very long prompt, " * 5000
    result, elapsed = timed_parse(text)
    assert elapsed < 0.5
    assert result.tokens == []
    assert result.text == text.strip()


def test_10000_codes() -> None:
    text = " ".join(f"w{i} --seed {i}" for i in range(10_000))
    result, elapsed = timed_parse(text)
    assert elapsed < 2
    assert result.values == {"seed": 9999}
    assert len(result.tokens) == 10_000
    assert len(result.warnings) == 9_999


def test_10000_unknown_codes_stay_linear() -> None:
    text = " ".join(f"--zz{i} word" for i in range(10_000))
    result, elapsed = timed_parse(text)
    assert elapsed < 2
    assert result.text == " ".join(["word"] * 10_000)


def test_many_unclosed_quotes_stay_linear() -> None:
    text = "--style “a " * 20_000
    result, elapsed = timed_parse(text)
    assert elapsed < 3
    assert len(result.tokens) == 20_000


def test_nested_and_mismatched_quotes() -> None:
    for text in ["--style \"a 'b' c\"", "--style '\"'", '--style """', "--style “a “b” c”", '--no "a", "b"']:
        result = parse(text)
        for t in result.tokens:
            assert text[t.start : t.end].startswith("--")


def test_control_characters_everywhere() -> None:
    text = "".join(chr(c) for c in range(32)) + " --seed 5 " + "\x7f\x85\x9f"
    result = parse(text)
    assert result.values == {"seed": 5}
    assert all(ch.isprintable() for ch in result.text)


def test_long_list_value_to_the_end() -> None:
    items = ", ".join(f"thing{i}" for i in range(5000))
    result = parse(f"cat --no {items}")
    assert result.values["no"] == [f"thing{i}" for i in range(5000)]


def test_to_dict_is_json_serialisable() -> None:
    import json

    data = parse("x --ar 16:9 --wombat --seed q").to_dict()
    assert json.loads(json.dumps(data)) == data
