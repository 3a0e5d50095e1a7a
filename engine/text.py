"""Prompt text checks: length limits and control characters."""

from __future__ import annotations

import re

from .errors import StudioError

# Tabs and newlines are part of a prompt; every other control character is dropped.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def check_prompt_text(text: str, max_chars: int) -> str:
    if len(text) > max_chars:
        raise StudioError(
            "validation_error",
            f"The prompt is {len(text)} characters long; the limit is {max_chars}",
            [{"loc": ["prompt"], "message": f"at most {max_chars} characters", "type": "too_long"}],
        )
    return _CONTROL.sub("", text)
