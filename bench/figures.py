"""What a benchmark reports to bench/run.py: named figures with their unit and target, in one JSON shape.

A benchmark still prints its own readable tables; it also calls `emit` once with the figures that matter.
`emit` writes them to the file named by $STUDIO_BENCH_OUT (set by bench/run.py) and does nothing otherwise.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

OUT_ENV = "STUDIO_BENCH_OUT"


def tiny_graph(i: int) -> dict[str, object]:
    """A model-free API-format graph (an 8x8 image of colour i, saved): what the submit benches send."""
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": i % 65536}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "studio_bench"}},
    }


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0–100) of every bench; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5))) - 1]


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    unit: str
    # pass when value <= target ("lower") or >= target ("higher"); None: a figure shown for scale
    target: float | None = None
    better: str = "lower"
    # the baseline measured in the same run, when the figure is a ratio against it
    baseline: str | None = None


def emit(figures: list[Figure]) -> None:
    path = os.environ.get(OUT_ENV)
    if not path:
        return
    out = Path(path)
    existing = json.loads(out.read_text()) if out.exists() else []
    out.write_text(json.dumps(existing + [asdict(f) for f in figures]))


def passes(value: float, target: float | None, better: str) -> bool | None:
    if target is None:
        return None
    return value <= target if better == "lower" else value >= target
