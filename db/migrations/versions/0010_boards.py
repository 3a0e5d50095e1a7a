"""boards: a user's named collections of gallery images, an image in several boards

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 11:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "boards",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("name_key", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("owner_id", "name_key", name="uq_boards_owner_id_name_key"),
    )
    op.create_table(
        "board_items",
        sa.Column("board_id", sa.String(length=32), nullable=False),
        sa.Column("image_id", sa.String(length=32), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["board_id"], ["boards.id"]),
        sa.ForeignKeyConstraint(["image_id"], ["images.id"]),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"]),
        sa.PrimaryKeyConstraint("board_id", "image_id"),
    )
    op.create_index(
        "ix_board_items_board_id_job_id_image_id", "board_items", ["board_id", "job_id", "image_id"], unique=False
    )
    op.create_index("ix_board_items_image_id", "board_items", ["image_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_board_items_image_id", table_name="board_items")
    op.drop_index("ix_board_items_board_id_job_id_image_id", table_name="board_items")
    op.drop_table("board_items")
    op.drop_table("boards")
