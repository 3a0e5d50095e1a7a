"""Bench-only ComfyUI custom node: `StudioBenchEmit` sends progress messages from the executor thread.

Linked into a throwaway base directory's custom_nodes/ by bench/bench_events.py --comfyui; never installed.
Each message is ComfyUI's `progress` shape with `value` = i and `t_ns` = time.time_ns() taken just before
`send_sync`; the t_ns values are also written to `out` so the studio's stream (which drops unknown keys) can
be matched by i.
"""

from __future__ import annotations

import json
import time


class StudioBenchEmit:
    @classmethod
    def INPUT_TYPES(cls) -> dict:  # noqa: N802
        return {
            "required": {
                "count": ("INT", {"default": 300, "min": 1, "max": 100000}),
                "spacing_ms": ("FLOAT", {"default": 10.0, "min": 0.0, "max": 1000.0}),
                "out": ("STRING", {"default": ""}),
                "nonce": ("INT", {"default": 0, "min": 0, "max": 2**62}),
            }
        }

    RETURN_TYPES = ()
    FUNCTION = "emit"
    OUTPUT_NODE = True
    CATEGORY = "studio/bench"

    def emit(self, count: int, spacing_ms: float, out: str, nonce: int) -> dict:
        from server import PromptServer  # ComfyUI's, at run time

        server = PromptServer.instance
        prompt_id = server.last_prompt_id
        sent: dict[int, int] = {}
        spacing = spacing_ms / 1000
        next_at = time.perf_counter()
        for i in range(count):
            next_at += spacing
            delay = next_at - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            t_ns = time.time_ns()
            sent[i] = t_ns
            data = {"value": i, "max": count, "prompt_id": prompt_id, "node": "1", "t_ns": t_ns}
            server.send_sync("progress", data, None)
        if out:
            with open(out, "w", encoding="utf-8") as f:
                json.dump(sent, f)
        return {}


NODE_CLASS_MAPPINGS = {"StudioBenchEmit": StudioBenchEmit}
