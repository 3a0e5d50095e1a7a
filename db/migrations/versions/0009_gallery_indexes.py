"""gallery indexes: FTS hits joined to their jobs, liked images apart, action/workflow filters, prompt history

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 10:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

LIKED = "liked_at IS NOT NULL AND deleted_at IS NULL"
DELETED = "deleted_at IS NOT NULL"


def upgrade() -> None:
    # 0007's index on every job's deleted_at made the planner sort all live jobs for the feed: only the Trash's
    op.drop_index("ix_jobs_deleted_at", table_name="jobs")
    op.create_index(
        "ix_jobs_deleted_at",
        "jobs",
        ["deleted_at"],
        unique=False,
        sqlite_where=sa.text(DELETED),
        postgresql_where=sa.text(DELETED),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index("ix_jobs_prompt_row_id", ["prompt_row_id"], unique=False)
        batch_op.create_index("ix_jobs_owner_id_action_slot_id", ["owner_id", "action_slot", "id"], unique=False)
        batch_op.create_index(
            "ix_jobs_owner_id_workflow_version_id_id", ["owner_id", "workflow_version_id", "id"], unique=False
        )
    if op.get_bind().dialect.name == "postgresql":
        # A B-tree entry holds at most ~2.7 kB and prompts run to 20,000 characters: PostgreSQL indexes the
        # text's md5 (db.gallery compares md5s there).
        op.execute("CREATE INDEX ix_prompts_owner_id_text_id ON prompts (owner_id, md5(text), id)")
    else:
        op.create_index("ix_prompts_owner_id_text_id", "prompts", ["owner_id", "text", "id"], unique=False)
    op.create_index(
        "ix_images_liked_job_id",
        "images",
        ["job_id"],
        unique=False,
        sqlite_where=sa.text(LIKED),
        postgresql_where=sa.text(LIKED),
    )
    if op.get_bind().dialect.name == "sqlite":
        # The planner needs statistics to prefer these indexes on a large store; later runs come from maintenance.
        op.execute("ANALYZE")


def downgrade() -> None:
    op.drop_index("ix_prompts_owner_id_text_id", table_name="prompts")
    op.drop_index("ix_images_liked_job_id", table_name="images")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_owner_id_workflow_version_id_id")
        batch_op.drop_index("ix_jobs_owner_id_action_slot_id")
        batch_op.drop_index("ix_jobs_prompt_row_id")
    op.drop_index("ix_jobs_deleted_at", table_name="jobs")
    op.create_index("ix_jobs_deleted_at", "jobs", ["deleted_at"], unique=False)
