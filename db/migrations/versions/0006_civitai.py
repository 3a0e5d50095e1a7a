"""civitai: cached Civitai answers with their expiry, SHA-256 of local model files

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 08:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "civitai_cache",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("endpoint", sa.String(length=32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("fetched_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    with op.batch_alter_table("civitai_cache", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_civitai_cache_expires_at"), ["expires_at"], unique=False)
    op.create_table(
        "model_file_hashes",
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("folder", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mtime", sa.Float(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("hashed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("path"),
    )
    with op.batch_alter_table("model_file_hashes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_model_file_hashes_sha256"), ["sha256"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("model_file_hashes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_model_file_hashes_sha256"))
    op.drop_table("model_file_hashes")
    with op.batch_alter_table("civitai_cache", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_civitai_cache_expires_at"))
    op.drop_table("civitai_cache")
