"""A running job's results page, kept up to date by appending: the answers stored after a cursor.

The cursor is the highest Generation id the page has seen (ids grow as the sink stores answers). The page
shows, for each prompt with an answer matching its filters, all of that prompt's answers (results.page).
So an update has two parts: answers of prompts the page already shows, appended to their row whatever they
say, and prompts that now match for the first time, sent whole. The page stays one keyset window: only
prompts after its `after` and, when a later page exists, up to its `upto` (the next page's start).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from app.models import Generation
from app.sampling.results import GenerationFilter, PromptRow, generation_dict, prompt_rows

# Answers per update: a page that fell behind catches up over a few polls instead of in one large reply.
LIVE_LIMIT = 200


@dataclass
class LiveUpdate:
    cursor: int  # the highest Generation id this update covers: the next poll's `since`
    added: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # sample id -> new answers
    rows: list[PromptRow] = field(default_factory=list)  # prompts the page did not show yet
    more: bool = False  # `limit` answers were read: more may wait after the cursor


def cursor(session: Session, sampling_id: int) -> int:
    """The highest Generation id of the job (0 before its first answer)."""
    found = session.exec(
        select(func.max(Generation.id)).where(col(Generation.sampling_job_id) == sampling_id)
    ).one()
    return int(found or 0)


def _window(sampling_id: int, after: int, upto: int | None) -> list[Any]:
    conds: list[Any] = [col(Generation.sampling_job_id) == sampling_id, col(Generation.sample_id) > after]
    if upto is not None:
        conds.append(col(Generation.sample_id) <= upto)
    return conds


def since(
    session: Session,
    sampling_id: int,
    *,
    flt: GenerationFilter,
    since_id: int,
    after: int = 0,
    upto: int | None = None,
    limit: int = LIVE_LIMIT,
) -> LiveUpdate:
    """What a page that has seen every answer up to `since_id` lacks (see module doc), up to `limit` answers."""
    window = _window(sampling_id, after, upto)
    new = list(
        session.exec(
            select(Generation)
            .where(*window, col(Generation.id) > since_id)
            .order_by(col(Generation.id))
            .limit(limit)
        ).all()
    )
    if not new:
        return LiveUpdate(cursor=since_id)
    top = new[-1].id or since_id
    touched = sorted({g.sample_id for g in new})

    def matching(upto_id: int) -> set[int]:
        return set(
            session.exec(
                select(Generation.sample_id)
                .where(
                    *flt.where(sampling_id),
                    col(Generation.sample_id).in_(touched),
                    col(Generation.id) <= upto_id,
                )
                .distinct()
            ).all()
        )

    shown, now = matching(since_id), matching(top)
    update = LiveUpdate(cursor=top, more=len(new) == limit)
    for g in new:
        if g.sample_id in shown:
            update.added.setdefault(g.sample_id, []).append(generation_dict(g))
    fresh = sorted(now - shown)
    if fresh:
        gens = session.exec(
            select(Generation)
            .where(
                col(Generation.sampling_job_id) == sampling_id,
                col(Generation.sample_id).in_(fresh),
                col(Generation.id) <= top,
            )
            .order_by(col(Generation.sample_id), col(Generation.index))
        ).all()
        rows = prompt_rows(session, gens)
        update.rows = [rows[s] for s in fresh]
    return update
