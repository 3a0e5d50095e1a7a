"""`python -m bench --quick`: every benchmark runs at tiny sizes and bench/results.json has every figure's keys."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

from run import benches  # noqa: E402

FIGURE_KEYS = {"name", "unit", "target", "better", "baseline", "runs", "median", "p95", "verdict"}


def test_the_one_command_runs_every_benchmark_and_writes_every_key(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    env = {k: v for k, v in os.environ.items() if k != "COMFYUI_DIR"}
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--repeat", "1", "--out", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads(out.read_text())
    assert {"generated_at", "quick", "repeat", "cpus", "load_average_start", "load_average_end", "benches"} <= set(
        results
    )
    assert results["cpus"] >= 1 and len(results["load_average_start"]) == 3
    assert set(results["benches"]) == {b.name for b in benches(None)}
    for bench in benches(None):
        entry = results["benches"][bench.name]
        if bench.needs_comfyui:
            assert entry["status"] == "n/a" and "COMFYUI_DIR" in entry["reason"]
            continue
        assert entry["status"] == "ran", (bench.name, entry)
        assert entry["figures"], bench.name
        for figure in entry["figures"]:
            assert FIGURE_KEYS <= set(figure), (bench.name, figure)
            assert figure["runs"] and figure["median"] == figure["runs"][0]
            assert figure["verdict"] in ("pass", "short", "—")
    table = proc.stdout
    assert "| gallery | feed at 2,000 jobs: API p95 |" in table and "set COMFYUI_DIR" in table
