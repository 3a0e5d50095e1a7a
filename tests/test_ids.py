"""Id kinds are defined once (engine/ids.py): generation, validation and routes agree."""

from __future__ import annotations

import re
from pathlib import Path

from comfyui_studio.engine.ids import JOB, KINDS, WORKFLOW, new_id

ROOT = Path(__file__).resolve().parent.parent


def test_every_kind_matches_its_own_ids_and_no_other_kinds() -> None:
    for kind in KINDS:
        value = new_id(kind)
        assert kind.matches(value) and re.fullmatch(kind.pattern, value)
        assert [other for other in KINDS if other.matches(value)] == [kind]
    assert not WORKFLOW.matches("wf_" + new_id(JOB)[2:])
    assert not JOB.matches(new_id(JOB) + "\n")


def test_ids_sort_in_creation_order() -> None:
    values = [new_id(JOB) for _ in range(2000)]
    assert values == sorted(values) and len(set(values)) == len(values)


def test_no_module_writes_an_id_shape_of_its_own() -> None:
    shape = re.compile(r"\[0-9A-Z\]\{26\}")
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("server_routes", "services", "engine", "db", "nodes")
        for path in (ROOT / folder).rglob("*.py")
        if path.name != "ids.py" and shape.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
