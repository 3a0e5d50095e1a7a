"""Finding past work: the gallery's page queries, full-text search over prompts and job filters.

Every page is keyset-paged newest first and served from an index, whatever the filter (plans are pinned by
tests/test_gallery_plans.py at a realistic size):
- the feed and the plain filters walk ``ix_jobs_owner_id_id`` (or the action/workflow indexes), newest first;
- ``liked`` probes a partial index that holds only liked, visible images;
- ``board_id`` walks the board's memberships newest job first (``ix_board_items_board_id_job_id_image_id``),
  keeping each job once, so a page costs the board's next items, however few of all jobs the board holds;
  with a text search the FTS walk drives and the board is probed;
- a text search on SQLite is driven by FTS5: its hits are read newest prompt first (each job has its own prompt
  row, inserted with it) and joined to their jobs through ``ix_jobs_prompt_row_id``, so a rare word costs its
  few hits and a common one only the first page of them, instead of a walk over every job;
- on PostgreSQL the same query reads ``prompts.text_search`` (a generated tsvector with a GIN index, migration
  0005): the same words must match, the last as a prefix, and hits are paged newest prompt first as on SQLite.
- ``since``/``until`` also bound the job id, which starts with its creation time, so a date range is an index range.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import ColumnElement, Select, column, false, func, literal, literal_column, select, table
from sqlalchemy.dialects.postgresql import REGCONFIG
from sqlalchemy.engine import make_url
from sqlalchemy.orm import aliased

from ..engine.ids import JOB, id_floor
from .boards import BoardItem
from .models import Image, Job, Prompt
from .store import Store
from .workflows import WorkflowVersion

_WORD = re.compile(r"\w+", re.UNICODE)
# A job's id is made a moment before its row's created_at: bound ids loosely, filter dates exactly.
_ID_CLOCK_MARGIN = timedelta(minutes=5)
PROMPTS_FTS = table("prompts_fts", column("rowid"))
PROMPTS_TSV = table("prompts", column("id"), column("text_search"))


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


def tsquery(user_text: str) -> str | None:
    """The same search for PostgreSQL's to_tsquery: every word, the last one as a prefix.

    Words are quoted lexemes of letters, digits and underscores only, so no tsquery operator gets through.
    """
    words = _WORD.findall(user_text)[:16]
    if not words:
        return None
    quoted = [f"'{w}'" for w in words]
    quoted[-1] += ":*"
    return " & ".join(quoted)


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
    board_id: str | None = None

    def conditions(self, *, board: bool = True) -> list[ColumnElement[bool]]:
        """The filters other than the text, as conditions on jobs (``board=False``: the board drives the walk)."""
        where: list[ColumnElement[bool]] = []
        if self.board_id and board:
            where.append(Job.id.in_(select(BoardItem.job_id).where(BoardItem.board_id == self.board_id)))
        if self.liked is not None:
            liked_jobs = select(Image.job_id).where(Image.liked_at.is_not(None), Image.deleted_at.is_(None))
            where.append(Job.id.in_(liked_jobs) if self.liked else Job.id.not_in(liked_jobs))
        if self.action:
            where.append(Job.action_slot == self.action)
        if self.workflow_id:
            versions = select(WorkflowVersion.id).where(WorkflowVersion.workflow_id == self.workflow_id)
            where.append(Job.workflow_version_id.in_(versions))
        if self.since:
            where += [Job.created_at >= _naive(self.since), Job.id >= id_floor(JOB, self.since - _ID_CLOCK_MARGIN)]
        if self.until:
            where += [Job.created_at < _naive(self.until), Job.id < id_floor(JOB, self.until + _ID_CLOCK_MARGIN)]
        return where


def _naive(at: datetime) -> datetime:
    """Stored datetimes are naive UTC."""
    return at.astimezone(timezone.utc).replace(tzinfo=None) if at.tzinfo is not None else at


# A page is read as plain rows of the columns it shows: no graph or patches loaded or decoded, no ORM objects.
_JOBS = Job.__table__
LIST_COLUMNS = tuple(c for c in _JOBS.c if c.name not in ("graph", "patches"))


def page_query(
    store: Store, owner_id: int, cursor: str | None, limit: int, filters: JobFilter | None = None
) -> Select[Any]:
    """A page of a user's live jobs after ``cursor`` (a job id), newest first, matching ``filters``.

    Text search uses SQLite's FTS5 table or PostgreSQL's tsvector, or a LIKE over the prompts elsewhere.
    """
    filters = filters or JobFilter()
    backend = make_url(store.url).get_backend_name()
    fts = backend in ("sqlite", "postgresql")
    if filters.board_id and not (filters.q and fts):
        return _board_page(owner_id, cursor, limit, filters)
    where = [Job.owner_id == owner_id, Job.deleted_at.is_(None), *filters.conditions()]
    if filters.q and fts:
        match = fts_query(filters.q) if backend == "sqlite" else tsquery(filters.q)
        if match is None:
            return select(*LIST_COLUMNS).where(false()).limit(limit)
        if backend == "sqlite":
            hits = PROMPTS_FTS.c.rowid
            query = select(*LIST_COLUMNS).select_from(PROMPTS_FTS.join(_JOBS, Job.prompt_row_id == hits))
            query = query.where(literal_column("prompts_fts").op("MATCH")(match), *where)
        else:
            hits = PROMPTS_TSV.c.id
            query = select(*LIST_COLUMNS).select_from(PROMPTS_TSV.join(_JOBS, Job.prompt_row_id == hits))
            matches = PROMPTS_TSV.c.text_search.op("@@")(func.to_tsquery(literal("simple", REGCONFIG), match))
            query = query.where(matches, *where)
        if cursor:
            query = query.where(hits < select(Job.prompt_row_id).where(Job.id == cursor).scalar_subquery())
        return query.order_by(hits.desc()).limit(limit)
    if filters.q:
        matching = select(Prompt.id).where(Prompt.text.ilike(_like_pattern(filters.q), escape="\\"))
        where.append(Job.prompt_row_id.in_(matching))
    if cursor:
        where.append(Job.id < cursor)
    return select(*LIST_COLUMNS).where(*where).order_by(Job.id.desc()).limit(limit)


def _board_page(owner_id: int, cursor: str | None, limit: int, filters: JobFilter) -> Select[Any]:
    """A board's page: its memberships newest job first, each job once (at its first image in the board)."""
    item, earlier = BoardItem, aliased(BoardItem)
    another_image_first = (
        select(earlier.image_id)
        .where(earlier.board_id == item.board_id, earlier.job_id == item.job_id, earlier.image_id < item.image_id)
        .exists()
    )
    where = [
        item.board_id == filters.board_id,
        ~another_image_first,
        Job.owner_id == owner_id,
        Job.deleted_at.is_(None),
        *filters.conditions(board=False),
    ]
    if filters.q:
        matching = select(Prompt.id).where(Prompt.text.ilike(_like_pattern(filters.q), escape="\\"))
        where.append(Job.prompt_row_id.in_(matching))
    if cursor:
        where.append(item.job_id < cursor)
    query = select(*LIST_COLUMNS).select_from(item).join(_JOBS, Job.id == item.job_id)
    return query.where(*where).order_by(item.job_id.desc()).limit(limit)
