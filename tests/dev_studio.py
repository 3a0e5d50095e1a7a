"""Serve the studio on the ComfyUI test host until interrupted (run through scripts/dev-studio)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
from pathlib import Path

import aiohttp
from harness import start_studio
from studio_api import Api
from test_actions_api import use_standins


async def serve(port: int, node_delay: float, base: Path, standins: bool) -> None:
    run = await start_studio(base, port=port, node_delay=node_delay)
    if standins:
        # The default workflows need a checkpoint; the test host runs model-free stand-ins instead.
        async with aiohttp.ClientSession() as session:
            await use_standins(Api(session, run.api))
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
    parser.add_argument("--no-standins", action="store_true", help="keep the default (checkpoint) workflows")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    base = args.dir or Path(tempfile.mkdtemp(prefix="studio-dev-"))
    try:
        asyncio.run(serve(args.port, args.node_delay, base, not args.no_standins))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
