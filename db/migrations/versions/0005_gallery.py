"""gallery: likes, deletion from the gallery, full-text search over prompts

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 19:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# External-content FTS5 index over prompts.text, kept in step by triggers (SQLite only; other
# databases search with LIKE).
FTS_SQL = [
    "CREATE VIRTUAL TABLE prompts_fts USING fts5(text, content='prompts', content_rowid='id', "
    "tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER prompts_fts_ai AFTER INSERT ON prompts BEGIN "
    "INSERT INTO prompts_fts(rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER prompts_fts_ad AFTER DELETE ON prompts BEGIN "
    "INSERT INTO prompts_fts(prompts_fts, rowid, text) VALUES ('delete', old.id, old.text); END",
    "CREATE TRIGGER prompts_fts_au AFTER UPDATE OF text ON prompts BEGIN "
    "INSERT INTO prompts_fts(prompts_fts, rowid, text) VALUES ('delete', old.id, old.text); "
    "INSERT INTO prompts_fts(rowid, text) VALUES (new.id, new.text); END",
    "INSERT INTO prompts_fts(prompts_fts) VALUES ('rebuild')",
]


def upgrade() -> None:
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.add_column(sa.Column("liked_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("deleted_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deleted_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("prompts", schema=None) as batch_op:
        batch_op.create_index("ix_prompts_owner_id_id", ["owner_id", "id"], unique=False)
    if op.get_bind().dialect.name == "sqlite":
        for statement in FTS_SQL:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("prompts_fts_ai", "prompts_fts_ad", "prompts_fts_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS prompts_fts")
    with op.batch_alter_table("prompts", schema=None) as batch_op:
        batch_op.drop_index("ix_prompts_owner_id_id")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("deleted_at")
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.drop_column("deleted_at")
        batch_op.drop_column("liked_at")
