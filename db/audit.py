"""Audit rows written on purpose, for events that are not row changes (a setup, a login, a revocation)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from .models import AuditLog


def record(
    session: AsyncSession,
    actor_id: int | None,
    action: str,
    entity: str,
    entity_id: str,
    changes: dict[str, object] | None = None,
) -> None:
    row = AuditLog(actor_id=actor_id, action=action, entity=entity, entity_id=entity_id)
    if changes is not None:
        row.changes = changes
    session.add(row)
