"""SQLAlchemy 2 models of the studio's store."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from ..engine.ids import IMAGE, JOB, SESSION_FAMILY, new_id


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps naive values)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        return value.replace(tzinfo=timezone.utc) if value is not None else None


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict: JSON, list: JSON}
    # Columns whose changes alone do not make an audit row (e.g. progress ticks).
    __audit_ignore__: frozenset[str] = frozenset()


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16), default="user")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Prompt(Base):
    __tablename__ = "prompts"
    __table_args__ = (
        Index("ix_prompts_owner_id_id", "owner_id", "id"),
        # prompt history: is this row its text's last use? (migration 0009)
        Index("ix_prompts_owner_id_text_id", "owner_id", "text", "id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    text: Mapped[str] = mapped_column(Text)
    clean_text: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Job(Base):
    __tablename__ = "jobs"
    __audit_ignore__ = frozenset({"progress"})
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id(JOB))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    prompt_row_id: Mapped[int | None] = mapped_column(ForeignKey("prompts.id"))
    prompt_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    graph: Mapped[dict] = mapped_column(JSON)
    patches: Mapped[list] = mapped_column(JSON, default=list)
    extra: Mapped[dict] = mapped_column(JSON, default=dict)
    number: Mapped[float | None] = mapped_column(Float)
    progress: Mapped[dict] = mapped_column(JSON, default=dict)
    error: Mapped[dict | None] = mapped_column(JSON)
    node_errors: Mapped[dict] = mapped_column(JSON, default=dict)
    foreign: Mapped[bool] = mapped_column(Boolean, default=False)
    replay_of: Mapped[str | None] = mapped_column(ForeignKey("jobs.id"))
    # What an action run recorded (migration 0004): the version it ran, its slot, values and source image.
    workflow_version_id: Mapped[str | None] = mapped_column(ForeignKey("workflow_versions.id"))
    action_id: Mapped[str | None] = mapped_column(ForeignKey("actions.id", ondelete="SET NULL"))
    action_slot: Mapped[str | None] = mapped_column(String(64))
    parameters: Mapped[dict] = mapped_column(JSON, default=dict)
    # use_alter: images → jobs → images is a cycle that table sorting must not trip over.
    parent_image_id: Mapped[str | None] = mapped_column(
        ForeignKey("images.id", use_alter=True, name="fk_jobs_parent_image_id_images"), index=True
    )
    # The mask an editor run painted (migration 0008).
    mask_image_id: Mapped[str | None] = mapped_column(
        ForeignKey("images.id", use_alter=True, name="fk_jobs_mask_image_id_images")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    # The ComfyUI backend that took it: its URL, or "local" (migration 0013); None before it was sent.
    backend: Mapped[str | None] = mapped_column(String(500))
    # Deleting from the gallery hides a job; its rows, call log and files stay (nothing stored is lost).
    deleted_at: Mapped[datetime | None] = mapped_column()
    # When maintenance purged the files of this deleted job after the owner's Trash retention (0007).
    purged_at: Mapped[datetime | None] = mapped_column()
    # The studio process that sent it to ComfyUI and follows it (db.dispatch; None: a single-process store).
    dispatcher: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_jobs_owner_id_id", "owner_id", "id"),
        Index("ix_jobs_state", "state"),
        # the gallery's filters, each an index walk newest first (migration 0009)
        Index("ix_jobs_prompt_row_id", "prompt_row_id"),
        Index("ix_jobs_owner_id_action_slot_id", "owner_id", "action_slot", "id"),
        Index("ix_jobs_owner_id_workflow_version_id_id", "owner_id", "workflow_version_id", "id"),
        # only deleted jobs (the Trash): a full index on deleted_at lures the planner away from the feed's
        # newest-first walk into a sort of every live job (200 ms at 100k jobs)
        Index(
            "ix_jobs_deleted_at",
            "deleted_at",
            sqlite_where=text("deleted_at IS NOT NULL"),
            postgresql_where=text("deleted_at IS NOT NULL"),
        ),
    )


class Image(Base):
    __tablename__ = "images"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id(IMAGE))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # output | upload | temp | mask
    # ComfyUI's reference to the file: never a path from a client.
    filename: Mapped[str] = mapped_column(String(255))
    subfolder: Mapped[str] = mapped_column(String(255), default="")
    folder_type: Mapped[str] = mapped_column(String(16))  # output | input | temp
    node_id: Mapped[str | None] = mapped_column(String(64))
    mime: Mapped[str] = mapped_column(String(32), default="image/png")
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    size_bytes: Mapped[int | None] = mapped_column(Integer)
    sha256: Mapped[str | None] = mapped_column(String(64))
    has_thumb: Mapped[bool] = mapped_column(Boolean, default=False)
    liked_at: Mapped[datetime | None] = mapped_column()
    deleted_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The owner let maintenance remove this output's file when over quota (0007).
    expirable: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # When maintenance removed the file (Trash retention or an expirable output over quota); the row stays.
    purged_at: Mapped[datetime | None] = mapped_column()
    # What an edit started from (migration 0008): a mask's image, an edited image's original.
    source_image_id: Mapped[str | None] = mapped_column(
        ForeignKey("images.id", name="fk_images_source_image_id_images"), index=True
    )

    __table_args__ = (
        Index("ix_images_owner_id_id", "owner_id", "id"),
        Index("ix_images_kind_created_at", "kind", "created_at"),
        Index("ix_images_expirable", "expirable", "created_at"),
        # is this file already known? (the import of ComfyUI's outputs, migration 0010)
        Index("ix_images_folder_type_subfolder_filename", "folder_type", "subfolder", "filename"),
        # only liked, visible images: the `liked` filter reads a few thousand entries, not every image
        Index(
            "ix_images_liked_job_id",
            "job_id",
            sqlite_where=text("liked_at IS NOT NULL AND deleted_at IS NULL"),
            postgresql_where=text("liked_at IS NOT NULL AND deleted_at IS NULL"),
        ),
    )


class ComfyCall(Base):
    __tablename__ = "comfy_calls"
    __audit_ignore__ = frozenset({"*"})  # the call log is itself a record
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    operation: Mapped[str] = mapped_column(String(32))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(255))
    request: Mapped[dict | None] = mapped_column(JSON)
    response: Mapped[dict | list | None] = mapped_column(JSON)
    status: Mapped[int | None] = mapped_column(Integer)
    ok: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column()
    ended_at: Mapped[datetime] = mapped_column()
    runtime_ms: Mapped[float] = mapped_column(Float)
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id"), index=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    replay_of: Mapped[int | None] = mapped_column(ForeignKey("comfy_calls.id"))
    # Set when maintenance dropped request and response after their retention; the metadata row stays (0007).
    body_pruned_at: Mapped[datetime | None] = mapped_column()
    body_pruned_reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_comfy_calls_started_at", "started_at"),
        # the call log list: an owner's calls newest first (migration 0012)
        Index("ix_comfy_calls_owner_id_id", "owner_id", "id"),
    )


class AuditLog(Base):
    __tablename__ = "audit_log"
    __audit_ignore__ = frozenset({"*"})
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(16))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(64))
    changes: Mapped[dict] = mapped_column(JSON, default=dict)

    __table_args__ = (Index("ix_audit_entity", "entity", "entity_id"),)


class Setting(Base):
    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict | list | str | int | float | bool | None] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


# --- security: sessions, refresh tokens, encrypted secrets (migration 0002) ------------------------


class SessionFamily(Base):
    """One login (or one local owner session): every refresh token rotated from it shares its id."""

    __tablename__ = "session_families"
    # Security events (login, logout, revocation) are written to audit_log explicitly.
    __audit_ignore__ = frozenset({"*"})
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id(SESSION_FAMILY))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    local: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
    revoked_reason: Mapped[str | None] = mapped_column(String(32))


class RefreshToken(Base):
    """A refresh token, stored only as its SHA-256; `used_at` set when it was rotated away."""

    __tablename__ = "refresh_tokens"
    __audit_ignore__ = frozenset({"*"})
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    family_id: Mapped[str] = mapped_column(ForeignKey("session_families.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()


class Secret(Base):
    """A user's encrypted value (AES-GCM blob: version, nonce, ciphertext+tag); never stored in clear."""

    __tablename__ = "secrets"
    __audit_ignore__ = frozenset({"ciphertext", "updated_at"})
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(64))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("owner_id", "name", name="uq_secrets_owner_id_name"),)


# --- Civitai (migration 0006) ------------------------------------------------------------------------


class CivitaiCache(Base):
    """Civitai answers as the studio shaped them, by request; served until `expires_at`, and stale after."""

    __tablename__ = "civitai_cache"
    __audit_ignore__ = frozenset({"*"})  # a cache, not a record
    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of site, path and query
    endpoint: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)  # JSON text
    fetched_at: Mapped[float] = mapped_column(Float, index=True)
    expires_at: Mapped[float] = mapped_column(Float, index=True)


class ModelFileHash(Base):
    """SHA-256 of one local model file, valid while its size and modification time are unchanged."""

    __tablename__ = "model_file_hashes"
    __audit_ignore__ = frozenset({"*"})  # derived from the files, rebuilt at will
    path: Mapped[str] = mapped_column(String(1024), primary_key=True)
    folder: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(512))  # as ComfyUI lists it: relative to its folder
    size: Mapped[int] = mapped_column(BigInteger)
    mtime: Mapped[float] = mapped_column(Float)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    hashed_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- storage maintenance (migration 0007) --------------------------------------------------------------


class MaintenanceRun(Base):
    """One maintenance pass (or dry run): what it found, removed and freed; `finished_at` unset while it runs."""

    __tablename__ = "maintenance_runs"
    __audit_ignore__ = frozenset({"*"})  # each run writes its own audit row when it ends
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(Integer)
    trigger: Mapped[str] = mapped_column(String(16))  # schedule | api | cli
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default="running")  # running | done | failed
    bytes_freed: Mapped[int] = mapped_column(BigInteger, default=0)
    summary: Mapped[dict] = mapped_column(JSON, default=dict)
    removed: Mapped[list] = mapped_column(JSON, default=list)
    vacuumed: Mapped[bool] = mapped_column(Boolean, default=False)


class MaintenanceJournal(Base):
    """A removal maintenance committed to before touching the disk; a leftover row is finished by the next run."""

    __tablename__ = "maintenance_journal"
    __audit_ignore__ = frozenset({"*"})
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(Integer)
    category: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(String(1024))
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    # what the row side becomes once the file is gone: none | unthumb | purge_image | expire | drop_image | purge_job
    effect: Mapped[str] = mapped_column(String(16), default="none")
    target_id: Mapped[str | None] = mapped_column(String(32))


# --- the import of ComfyUI's past outputs (migration 0010) ---------------------------------------------------


class ImportRun(Base):
    """One import of ComfyUI's output folder: where it is, what it counted, and how far it got (a restart resumes)."""

    __tablename__ = "import_runs"
    __audit_ignore__ = frozenset({"*"})  # each batch writes one audit row of its own
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(16), default="running")  # running | paused | done | failed
    # the last file (path relative to the folder, in walk order) whose batch is committed
    cursor: Mapped[str] = mapped_column(Text, default="")
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    imported: Mapped[int] = mapped_column(Integer, default=0)
    with_metadata: Mapped[int] = mapped_column(Integer, default=0)
    known: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[dict] = mapped_column(JSON, default=dict)  # reason → count
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()


# --- per-user API tokens for the ComfyUI-compatible routes (migration 0012) ------------------------------


class ApiToken(Base):
    """A token a ComfyUI client sends as `Authorization: Bearer`: only its SHA-256 digest is kept."""

    __tablename__ = "api_tokens"
    # a use is not a change worth an audit row; creation and revocation are
    __audit_ignore__ = frozenset({"last_used_at"})
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # the token's first characters, shown to tell tokens apart
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()


from . import shortcodes as _shortcodes  # noqa: E402,F401
from . import workflows as _workflows  # noqa: E402,F401
