"""Every benchmark in one command: figures with their median and p95 over repeated runs, each beside its target.

Runs each bench/bench_*.py as its own process (so one's event loop, threads and caches never colour another's),
`--repeat` times, and collects the figures each reports through bench/figures.py. Writes bench/results.json and
prints a table: figure, median and p95 over the runs, unit, target and pass/short. Ratios are measured against
their baseline inside the same run (the bench says which). The load average and CPU count are recorded, since
a shared machine moves every figure. Figures that need a real ComfyUI run when $COMFYUI_DIR points at a
checkout (with its .venv) and are listed as n/a otherwise.

Run: .venv/bin/python -m bench [--quick] [--repeat 3] [--only gallery,submit] [--out bench/results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from figures import OUT_ENV, passes, pct  # noqa: E402


@dataclass(frozen=True)
class Bench:
    name: str
    script: str
    full: tuple[str, ...] = ()
    quick: tuple[str, ...] = ()
    needs_comfyui: bool = False
    timeout_s: float = 3600


def benches(comfyui: str | None) -> list[Bench]:
    real = ("--comfyui", comfyui) if comfyui else ()
    return [
        Bench("shortcodes", "bench_shortcodes.py"),
        Bench("submit", "bench_submit.py", ("--count", "250"), ("--count", "20")),
        Bench("submit, real ComfyUI", "bench_submit.py", ("--count", "250", *real), ("--count", "10", *real), True),
        Bench(
            "events",
            "bench_events.py",
            ("--rounds", "2", "--clients", "1,10,100"),
            ("--rounds", "1", "--clients", "1", "--cost-batches", "5"),
        ),
        Bench("events, real ComfyUI", "bench_events.py", ("--rounds", "2", *real), ("--rounds", "1", *real), True),
        Bench("lifecycle", "bench_lifecycle.py", (), ("--rate", "10", "--seconds", "2", "--clients", "2")),
        Bench("civitai", "bench_civitai.py", (), ("--count", "30", "--tabs", "2", "--pages", "2")),
        Bench(
            "gallery",
            "bench_gallery.py",
            ("--sizes", "10000,100000,1000000", "--count", "200"),
            ("--sizes", "500,2000", "--count", "10"),
        ),
        Bench("ui", "bench_ui.py", (), ("--jobs", "300")),
        Bench("grammar", "bench_grammar.py"),
        Bench(
            "memory, real ComfyUI",
            "bench_rss.py",
            ("--jobs", "200", "--clients", "20", *real),
            ("--jobs", "10", "--clients", "2", *real),
            True,
        ),
        Bench("maintenance", "bench_maintenance.py", (), ("--rows", "2000", "--thumbs", "4")),
        Bench("proxy", "bench_proxy.py", ("--count", "300"), ("--count", "20")),
        Bench("backends", "bench_backends.py", ("--jobs", "1000"), ("--jobs", "30", "--clients", "2")),
    ]


def run_once(bench: Bench, quick: bool) -> tuple[int, list[dict[str, Any]], str]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "figures.json"
        args = bench.quick if quick else bench.full
        proc = subprocess.run(
            [sys.executable, str(BENCH / bench.script), *args],
            env={**os.environ, OUT_ENV: str(out)},
            capture_output=True,
            text=True,
            timeout=bench.timeout_s,
            cwd=BENCH.parent,
        )
        figures = json.loads(out.read_text()) if out.exists() else []
    return proc.returncode, figures, (proc.stdout + proc.stderr)[-4000:]


def collect(bench: Bench, quick: bool, repeat: int) -> dict[str, Any]:
    started = time.perf_counter()
    exits: list[int] = []
    by_name: dict[str, dict[str, Any]] = {}
    tail = ""
    for _ in range(repeat):
        code, figures, tail = run_once(bench, quick)
        exits.append(code)
        for figure in figures:
            entry = by_name.setdefault(figure["name"], {**figure, "values": []})
            entry["values"].append(figure["value"])
    rows = []
    for entry in by_name.values():
        values = entry.pop("values")
        entry.pop("value")
        median, p95 = statistics.median(values), pct(values, 95)
        # judged on the median over the runs (one noisy run on a shared machine does not decide it)
        verdict = passes(median, entry["target"], entry["better"])
        rows.append({**entry, "runs": values, "median": median, "p95": p95, "verdict": _word(verdict)})
    # A bench exits non-zero when a target is short; that is a figure, not a failure. No figures at all is one.
    failed = not rows
    return {
        "seconds": round(time.perf_counter() - started, 1),
        "exit_codes": exits,
        "figures": rows,
        "status": "failed" if failed else "ran",
        **({"output_tail": tail} if failed else {}),
    }


def _word(verdict: bool | None) -> str:
    return "—" if verdict is None else ("pass" if verdict else "short")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: every bench in seconds (a smoke run)")
    parser.add_argument("--repeat", type=int, default=None, help="runs of each bench (default 3, quick 2)")
    parser.add_argument("--only", default="", help="comma-separated bench names")
    parser.add_argument("--out", type=Path, default=BENCH / "results.json")
    args = parser.parse_args(argv)
    repeat = args.repeat or (2 if args.quick else 3)
    comfyui = os.environ.get("COMFYUI_DIR") or None
    chosen = [b for b in benches(comfyui) if not args.only or b.name.split(",")[0] in args.only.split(",")]
    results: dict[str, Any] = {
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "quick": args.quick,
        "repeat": repeat,
        "cpus": os.cpu_count(),
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
        "comfyui": comfyui,
        "benches": {},
    }
    for bench in chosen:
        if bench.needs_comfyui and not comfyui:
            results["benches"][bench.name] = {"status": "n/a", "reason": "set COMFYUI_DIR to a ComfyUI checkout"}
            continue
        print(f"running {bench.name} ×{repeat} …", file=sys.stderr, flush=True)
        results["benches"][bench.name] = collect(bench, args.quick, repeat)
    results["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print_table(results)
    return 1 if any(b["status"] == "failed" for b in results["benches"].values()) else 0


def print_table(results: dict[str, Any]) -> None:
    load = results["load_average_start"][0]
    print(
        f"\n## Benchmarks ({'quick, ' if results['quick'] else ''}{results['repeat']} runs each; "
        f"{results['cpus']} CPUs, load average {load} at the start)"
    )
    print("| bench | figure | median | p95 | unit | target | verdict |")
    print("|---|---|---|---|---|---|---|")
    for name, bench in results["benches"].items():
        if bench["status"] != "ran":
            print(f"| {name} | — | n/a | n/a | | | {bench.get('reason') or bench['status']} |")
            continue
        for f in bench["figures"]:
            target = "" if f["target"] is None else f"{'≤' if f['better'] == 'lower' else '≥'} {f['target']:g}"
            print(
                f"| {name} | {f['name']} | {f['median']:.3g} | {f['p95']:.3g} | {f['unit']} | {target} "
                f"| {f['verdict']} |"
            )


if __name__ == "__main__":
    sys.exit(main())
