"""call log index: an owner's calls newest first (the call log list is keyset-paged on it)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 13:30:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # without it a user's page walks every call newest first, other users' included
    op.create_index("ix_comfy_calls_owner_id_id", "comfy_calls", ["owner_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_comfy_calls_owner_id_id", table_name="comfy_calls")
