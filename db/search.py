"""Finding past work: full-text search over prompts (SQLite FTS5, LIKE elsewhere) and job filters."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, select, text
from sqlalchemy.engine import make_url

from .models import Image, Job, Prompt
from .store import Store
from .workflows import WorkflowVersion

_WORD = re.compile(r"\w+", re.UNICODE)


def fts_query(user_text: str) -> str | None:
    """A safe FTS5 query: every word of the user's text must appear, the last one as a prefix.

    Words are quoted, so FTS5 operators typed by the user (AND, NEAR, *, column filters) are plain words.
    """
    words = _WORD.findall(user_text)[:16]
    if not words:
        return None
    quoted = [f'"{w}"' for w in words]
    quoted[-1] += "*"
    return " ".join(quoted)


def _like_pattern(user_text: str) -> str:
    escaped = user_text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass(frozen=True)
class JobFilter:
    q: str | None = None
    liked: bool | None = None
    action: str | None = None
    workflow_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def apply(self, query: Select[Job], store: Store) -> Select[Job]:
        if self.q:
            if make_url(store.url).get_backend_name() == "sqlite":
                match = fts_query(self.q)
                if match is None:
                    return query.where(text("0"))
                rows = (
                    select(text("rowid"))
                    .select_from(text("prompts_fts"))
                    .where(text("prompts_fts MATCH :match").bindparams(match=match))
                )
                query = query.where(Job.prompt_row_id.in_(rows))
            else:
                matching = select(Prompt.id).where(Prompt.text.ilike(_like_pattern(self.q), escape="\\"))
                query = query.where(Job.prompt_row_id.in_(matching))
        if self.liked is not None:
            liked_jobs = select(Image.job_id).where(Image.liked_at.is_not(None), Image.deleted_at.is_(None))
            query = query.where(Job.id.in_(liked_jobs) if self.liked else Job.id.not_in(liked_jobs))
        if self.action:
            query = query.where(Job.action_slot == self.action)
        if self.workflow_id:
            versions = select(WorkflowVersion.id).where(WorkflowVersion.workflow_id == self.workflow_id)
            query = query.where(Job.workflow_version_id.in_(versions))
        if self.since:
            query = query.where(Job.created_at >= self.since)
        if self.until:
            query = query.where(Job.created_at < self.until)
        return query
