"""Finding past work: the job filters of the gallery (their queries live in db/search.py)."""

from __future__ import annotations

from ..db.search import JobFilter, fts_query, page_query

__all__ = ["JobFilter", "fts_query", "page_query"]
