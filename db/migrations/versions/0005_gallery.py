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

# External-content FTS5 index over prompts.text, kept in step by triggers (SQLite).
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
# PostgreSQL's own: a generated tsvector of prompts.text ('simple': lower-cased words, no stemming, as
# unicode61) and a GIN index over it; the column lives outside the models (db.store.include_name).
PG_FTS_SQL = [
    "ALTER TABLE prompts ADD COLUMN text_search tsvector "
    "GENERATED ALWAYS AS (to_tsvector('simple', coalesce(text, ''))) STORED",
    "CREATE INDEX ix_prompts_text_search ON prompts USING gin (text_search)",
]


def upgrade() -> None:
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.add_column(sa.Column("liked_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("deleted_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deleted_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("prompts", schema=None) as batch_op:
        batch_op.create_index("ix_prompts_owner_id_id", ["owner_id", "id"], unique=False)
    dialect = op.get_bind().dialect.name
    for statement in FTS_SQL if dialect == "sqlite" else PG_FTS_SQL if dialect == "postgresql" else []:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("prompts_fts_ai", "prompts_fts_ad", "prompts_fts_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS prompts_fts")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_prompts_text_search")
        op.execute("ALTER TABLE prompts DROP COLUMN IF EXISTS text_search")
    with op.batch_alter_table("prompts", schema=None) as batch_op:
        batch_op.drop_index("ix_prompts_owner_id_id")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("deleted_at")
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.drop_column("deleted_at")
        batch_op.drop_column("liked_at")
