"""editor: masks and edited images linked to the image they came from; a job's mask

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 10:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source_image_id", sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f("ix_images_source_image_id"), ["source_image_id"], unique=False)
        batch_op.create_foreign_key("fk_images_source_image_id_images", "images", ["source_image_id"], ["id"])
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mask_image_id", sa.String(length=32), nullable=True))
        batch_op.create_foreign_key("fk_jobs_mask_image_id_images", "images", ["mask_image_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_constraint("fk_jobs_mask_image_id_images", type_="foreignkey")
        batch_op.drop_column("mask_image_id")
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.drop_constraint("fk_images_source_image_id_images", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_images_source_image_id"))
        batch_op.drop_column("source_image_id")
