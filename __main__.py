"""Command line: `python -m comfyui_studio serve|calls|maintenance …`.

It runs outside ComfyUI's process, so it reads the store directly and reaches ComfyUI through
`RemoteHost` (its HTTP API).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

from aiohttp import web

from .config import DATA_DIR_ENV, StudioConfig, standalone_data_dir
from .engine.errors import StudioError
from .plugin import mount_standalone
from .services.comfy_calls import call_to_dict
from .services.comfy_pool import BackendPool, check_backend_urls
from .services.comfy_remote import DEFAULT_COMFY_URL, RemoteHost
from .services.secrets import KeyFileError
from .services.studio import Studio


def _config(args: argparse.Namespace) -> StudioConfig:
    config = StudioConfig.from_env(standalone_data_dir())
    if args.data_dir:
        config = StudioConfig(data_dir=Path(args.data_dir), dev=config.dev)
    return config


def _out(value: object) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")


async def _calls(args: argparse.Namespace) -> int:
    studio = Studio.build(_config(args), RemoteHost(args.comfy_url))
    await studio.start(follow_comfy=False)  # a one-shot command: no /ws, no reconciliation
    try:
        if args.calls_command == "list":
            for row in await studio.comfy.recent(args.limit, job_id=args.job):
                status = row.status if row.status is not None else "---"
                sys.stdout.write(
                    f"{row.id:>6}  {row.started_at:%Y-%m-%d %H:%M:%S}  {row.operation:<12} {row.method:<4} "
                    f"{status!s:>3}  {row.runtime_ms:>9.2f} ms  {row.job_id or ''}\n"
                )
            return 0
        call = await studio.comfy.logged(args.id)
        if call is None:
            sys.stderr.write(f"No logged call {args.id}\n")
            return 1
        if args.calls_command == "show":
            _out(call_to_dict(call, full=True))
            return 0
        result = await studio.jobs.replay_call(call.owner_id or studio.owner_id, call.id)
        _out(result)
        return 0
    except StudioError as exc:
        sys.stderr.write(f"{exc.code}: {exc.message}\n")
        return 1
    finally:
        await studio.stop()


async def _maintenance(args: argparse.Namespace) -> int:
    config = _config(args)
    if args.comfy_dir:
        config.comfy_dir = Path(args.comfy_dir)
    studio = Studio.build(config, RemoteHost(args.comfy_url))
    await studio.start(follow_comfy=False)  # a one-shot command: no /ws, no schedule
    try:
        maintenance = studio.maintenance
        if args.maintenance_command == "report":
            _out(await maintenance.report())
        elif args.maintenance_command == "backup":
            _out(await maintenance.backup(Path(args.path) if args.path else None))
        elif args.dry_run:
            _out(await maintenance.dry_run(None, "cli"))
        else:
            _out(await maintenance.run(None, "cli"))
        return 0
    except StudioError as exc:
        sys.stderr.write(f"{exc.code}: {exc.message}\n")
        return 1
    finally:
        await studio.stop()


def serve_urls(args: argparse.Namespace) -> list[str]:
    """The --comfy URLs, checked like the `comfy_backends` setting (default: one ComfyUI on this machine)."""
    try:
        return check_backend_urls(args.comfy or [DEFAULT_COMFY_URL])
    except ValueError as exc:
        raise SystemExit(f"--comfy: {exc}") from exc


def build_standalone(args: argparse.Namespace) -> Studio:
    """The studio `serve` runs: every --comfy URL a member of its backend pool."""
    return Studio.build(_config(args), BackendPool(serve_urls(args)))


def _serve(args: argparse.Namespace) -> int:
    studio = build_standalone(args)
    urls = ", ".join(serve_urls(args))
    sys.stderr.write(f"ComfyUI Studio: http://{args.host}:{args.port}/studio (ComfyUI at {urls})\n")
    try:
        web.run_app(mount_standalone(studio), host=args.host, port=args.port, print=None)
    except KeyFileError as exc:  # a refused key: one line that says what to fix, not a traceback
        sys.stderr.write(f"ComfyUI Studio cannot start: {exc}\n")
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="comfyui_studio", description="ComfyUI Studio")
    parser.add_argument("--data-dir", help=f"the studio's data directory (default: ${DATA_DIR_ENV} or per-user)")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the studio standalone in front of a ComfyUI")
    serve.add_argument(
        "--comfy",
        action="append",
        help=f"a ComfyUI's URL; repeat it to dispatch to several (default: {DEFAULT_COMFY_URL})",
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8189)

    calls = sub.add_parser("calls", help="the log of every call made to ComfyUI")
    calls.add_argument("--comfy-url", default=DEFAULT_COMFY_URL, help="ComfyUI's URL (for replay)")
    calls_sub = calls.add_subparsers(dest="calls_command", required=True)
    listing = calls_sub.add_parser("list", help="the latest calls, newest first")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--job", help="only the calls of this job id")
    show = calls_sub.add_parser("show", help="one call with its full request and response")
    show.add_argument("id", type=int)
    replay = calls_sub.add_parser("replay", help="re-run a call; a replayed submit makes a new job")
    replay.add_argument("id", type=int)

    maintenance = sub.add_parser("maintenance", help="storage usage, expiry, quotas, the database's upkeep")
    maintenance.add_argument("--comfy-url", default=DEFAULT_COMFY_URL, help="ComfyUI's URL (to read files it serves)")
    maintenance.add_argument(
        "--comfy-dir", help="ComfyUI's folder on this disk (its output/, input/, temp/): lets maintenance reach them"
    )
    maintenance_sub = maintenance.add_subparsers(dest="maintenance_command", required=True)
    maintenance_sub.add_parser("report", help="usage by category and what a run would do")
    run = maintenance_sub.add_parser("run", help="remove what has expired, enforce quotas, tidy the database")
    run.add_argument("--dry-run", action="store_true", help="list exactly what a run would remove; remove nothing")
    backup = maintenance_sub.add_parser("backup", help="a consistent copy of the database (SQLite's backup API)")
    backup.add_argument("path", nargs="?", help="where to write it (default: <data dir>/backups/studio-<time>.db)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "serve":
        return _serve(args)
    if args.command == "maintenance":
        return asyncio.run(_maintenance(args))
    return asyncio.run(_calls(args))


if __name__ == "__main__":
    raise SystemExit(main())
