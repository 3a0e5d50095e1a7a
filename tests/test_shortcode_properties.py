"""Properties of the shortcode parser that hold for every input."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from comfyui_studio.engine.shortcodes import DEFAULT_REGISTRY, parse, suggest

CODE_WORDS = [f"{d}{n}" for n in DEFAULT_REGISTRY.names() for d in ("--", "—", "–")] + [
    "--",
    "—",
    "--zz",
    "=",
    '"',
    "“",
    "”",
    "'",
    "\\",
    ",",
    "16:9",
    "0:0",
    "random",
    "vivid",
    "1024x768",
    "42",
    "-1",
]
pieces = st.one_of(st.text(max_size=12), st.sampled_from(CODE_WORDS), st.sampled_from([" ", "\n", "\t", "\x00"]))
prompts = st.lists(pieces, max_size=30).map("".join)


@settings(max_examples=400, deadline=None)
@given(prompts)
def test_parse_never_raises_and_offsets_slice_the_text(text: str) -> None:
    result = parse(text)
    for tok in result.tokens:
        assert 0 <= tok.start < tok.end <= len(text)
        src = text[tok.start : tok.end]
        assert src[:2] == "--" or src[0] in "—–"
        assert src[1:].lstrip("-").casefold().startswith(tok.name.casefold())
        if tok.raw is not None:
            assert text[tok.value_start : tok.value_end] == tok.raw
    for d in (*result.errors, *result.warnings):
        assert 0 <= d.start <= d.end <= len(text)
        assert d.message
    json.dumps(result.to_dict())


@settings(max_examples=300, deadline=None)
@given(prompts)
def test_tokens_are_ordered_and_disjoint(text: str) -> None:
    toks = parse(text).tokens
    for a, b in zip(toks, toks[1:], strict=False):
        assert a.end <= b.start


@settings(max_examples=300, deadline=None)
@given(prompts)
def test_clean_text_is_normalised(text: str) -> None:
    clean = parse(text).text
    assert clean == clean.strip()
    assert "  " not in clean and "\n" not in clean and "\x00" not in clean


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60).filter(lambda s: "-" not in s and "—" not in s and "–" not in s))
def test_text_without_dashes_is_only_whitespace_normalised(text: str) -> None:
    result = parse(text)
    assert result.tokens == [] and result.errors == [] and result.warnings == []
    assert result.text.split() == [w for w in result.text.split() if w]


@settings(max_examples=300, deadline=None)
@given(prompts)
def test_invalid_values_never_drop_words(text: str) -> None:
    result = parse(text)
    for err in result.errors:
        tok = next(t for t in result.tokens if t.start == err.start)
        if tok.raw:
            # Control characters are blanked in the clean text by design; every other word stays.
            visible = "".join(c if c.isprintable() else " " for c in tok.raw)
            for word in visible.split():
                assert word in result.text


@settings(max_examples=300, deadline=None)
@given(prompts, st.integers(min_value=-5, max_value=400))
def test_suggest_never_raises(text: str, cursor: int) -> None:
    for s in suggest(text, cursor):
        assert 0 <= s.start <= s.end <= len(text)
