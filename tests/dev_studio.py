"""Serve the studio on the ComfyUI test host until interrupted (run through scripts/dev-studio)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
from pathlib import Path

from harness import start_studio


async def serve(port: int, node_delay: float, base: Path) -> None:
    run = await start_studio(base, port=port, node_delay=node_delay)
    sys.stderr.write(f"ComfyUI Studio (test host): {run.url}\n")
    try:
        await asyncio.Event().wait()
    finally:
        await run.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8199)
    parser.add_argument("--node-delay", type=float, default=0.4, help="seconds per node, to watch jobs move")
    parser.add_argument("--dir", type=Path, default=None, help="where the fake ComfyUI keeps its folders")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    base = args.dir or Path(tempfile.mkdtemp(prefix="studio-dev-"))
    try:
        asyncio.run(serve(args.port, args.node_delay, base))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
