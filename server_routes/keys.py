"""Typed app-state keys shared by the studio's route modules."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from ..services.eventhub import EventHub
from ..services.studio import Studio

# Builds the resync payload (current jobs and queue) for a user id (None = everything).
SnapshotProvider = Callable[[int | None], Awaitable[dict[str, object]]]

EVENT_HUB: web.AppKey[EventHub] = web.AppKey("studio_event_hub", EventHub)
SNAPSHOT_PROVIDER: web.AppKey[SnapshotProvider] = web.AppKey("studio_snapshot_provider")
STUDIO: web.AppKey[Studio] = web.AppKey("studio", Studio)
