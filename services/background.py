"""Stopping background tasks: every service's `stop` cancels its tasks and waits until they have ended."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger("comfyui_studio")


async def cancel_and_wait(*tasks: asyncio.Future[Any] | None) -> None:
    """Cancel the tasks, then wait for each to end; a stop never fails because a task had failed (it is logged)."""
    pending = [t for t in tasks if t is not None]
    for task in pending:
        task.cancel()
    for task in pending:
        try:
            await task
        except asyncio.CancelledError:
            pass
        except Exception:
            log.warning("A background task had failed before it was stopped", exc_info=True)
