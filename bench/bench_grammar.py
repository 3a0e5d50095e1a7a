"""Prompt grammar benchmark: parse + expand + patch a prompt with 3 permutation groups of 2 (8 jobs) and 2 LoRAs
on a 40-node graph, through the one planner (``planner.plan_prompt``), names resolved against model lists.

Run: .venv/bin/python bench/bench_grammar.py  (targets, medians: ≤ 0.5 ms per expansion, ≤ 5 ms for all 8)
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

from bench_shortcodes import measure
from figures import Figure, emit

from comfyui_studio.engine import grammar, planner
from comfyui_studio.engine.shortcodes import DEFAULT_REGISTRY

ROOT = Path(__file__).resolve().parent.parent
GRAPH = json.loads((ROOT / "tests/fixtures/graphs/sdxl_40_nodes.api.json").read_text())
PROMPT = (
    "a lone astronaut on a {red, blue} dune at {golden hour, dusk}, dust in the air, cinematic wide shot "
    "--ar {16:9, 1:1} --style cinematic --seed 1234 --steps 28 --no text, watermark "
    "--lora add_det:0.6 --lora film_grain"
)
# A studio with a realistic number of files (the names are resolved by prefix against all of them).
RESOURCES = grammar.Resources(
    checkpoints=tuple(f"sdxl/model_{i:03}.safetensors" for i in range(40)),
    loras=(
        "add_detail.safetensors",
        "styles/film_grain.safetensors",
        *(f"loras_{i:03}.safetensors" for i in range(200)),
    ),
    embeddings=tuple(f"emb_{i:03}.pt" for i in range(50)),
    samplers=("euler", "euler_ancestral", "dpmpp_2m", "dpmpp_2m_sde"),
    schedulers=("normal", "karras", "exponential"),
)
RNG = random.Random(0)


def plan_all() -> planner.PromptPlan:
    return planner.plan_prompt(PROMPT, DEFAULT_REGISTRY, GRAPH, resources=RESOURCES, rng=RNG)


def main() -> int:
    check = plan_all()
    assert check.count == 8 and not check.errors, check.errors
    assert all(sum(op["op"] == "add" for op in p.ops) == 2 for p in check.plans)  # two LoRA loaders each
    med, p99 = measure(plan_all, 2000, batch=5)
    per_med, per_p99 = med / check.count, p99 / check.count
    rows = [
        ("parse + expand + patch, all 8 jobs", med, p99, 5000.0),
        ("  per expansion", per_med, per_p99, 500.0),
    ]
    ok = True
    print(f"{'benchmark':38} {'median µs':>10} {'p99 µs':>10}  target")
    for name, m, p, target in rows:
        ok = ok and m <= target
        print(f"{name:38} {m:10.1f} {p:10.1f}  ≤ {target:g} µs " + ("ok" if m <= target else "MISSED"))
    emit([Figure(f"{name.strip()}: median", m, "µs", target) for name, m, _p, target in rows])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
