"""maintenance: runs and their removal journal, purge marks, expirable outputs, pruned call bodies, indexes

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 10:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "maintenance_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("bytes_freed", sa.BigInteger(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("removed", sa.JSON(), nullable=False),
        sa.Column("vacuumed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "maintenance_journal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("effect", sa.String(length=16), nullable=False),
        sa.Column("target_id", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("purged_at", sa.DateTime(), nullable=True))
        batch_op.create_index(batch_op.f("ix_jobs_deleted_at"), ["deleted_at"], unique=False)
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expirable", sa.Boolean(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("purged_at", sa.DateTime(), nullable=True))
        batch_op.create_index("ix_images_kind_created_at", ["kind", "created_at"], unique=False)
        batch_op.create_index("ix_images_expirable", ["expirable", "created_at"], unique=False)
    with op.batch_alter_table("comfy_calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("body_pruned_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("body_pruned_reason", sa.Text(), nullable=True))
        batch_op.create_index("ix_comfy_calls_started_at", ["started_at"], unique=False)
    with op.batch_alter_table("civitai_cache", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_civitai_cache_fetched_at"), ["fetched_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("civitai_cache", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_civitai_cache_fetched_at"))
    with op.batch_alter_table("comfy_calls", schema=None) as batch_op:
        batch_op.drop_index("ix_comfy_calls_started_at")
        batch_op.drop_column("body_pruned_reason")
        batch_op.drop_column("body_pruned_at")
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.drop_index("ix_images_expirable")
        batch_op.drop_index("ix_images_kind_created_at")
        batch_op.drop_column("purged_at")
        batch_op.drop_column("expirable")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_jobs_deleted_at"))
        batch_op.drop_column("purged_at")
    op.drop_table("maintenance_journal")
    op.drop_table("maintenance_runs")
