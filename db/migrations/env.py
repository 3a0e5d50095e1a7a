"""Alembic environment: migrations run on the connection and metadata the studio hands over.

Inside ComfyUI the package has a path-derived module name, so nothing here imports it by name.
"""

from __future__ import annotations

from alembic import context


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("Studio migrations run through the studio's db.store.migrate")
    context.configure(
        connection=connection,
        target_metadata=context.config.attributes.get("target_metadata"),
        include_name=context.config.attributes.get("include_name"),
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
