"""What a sampling job produced: the list of jobs, one job's summary, pages of prompts with their answers,
finish-reason counts, exports.

A results page is a keyset page over prompts (sample ids): the prompts with at least one answer matching
the filters (task_type, finish_reason, a substring of the answer), each shown with all its n answers side by
side, since comparing them is the point of asking for several.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import and_, func, or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app.models import Dataset, DatasetVersion, Generation, Job, SamplingJob, User
from app.sampling.prompts import references

PAGE_SIZE = 20
EXPORT_BATCH = 1000
EXPORT_FIELDS = (
    "sample_id",
    "prompt_id",
    "index",
    "task_type",
    "prompt_text",
    "text",
    "tokens",
    "prompt_tokens",
    "finish_reason",
    "ttft_s",
    "tpot_s",
    "time_s",
)


@dataclass
class GenerationFilter:
    task_type: str = ""
    finish_reason: str = ""
    q: str = ""  # substring of the answer

    def where(self, sampling_id: int) -> list[Any]:
        conds: list[Any] = [col(Generation.sampling_job_id) == sampling_id]
        if self.task_type:
            conds.append(col(Generation.task_type) == self.task_type)
        if self.finish_reason:
            conds.append(col(Generation.finish_reason) == self.finish_reason)
        if self.q:
            conds.append(col(Generation.text).contains(self.q, autoescape=True))
        return conds


@dataclass
class Summary:
    """One sampling job as the list and the results page head show it."""

    id: int
    job_id: int
    owner: str
    model_ref: str
    model_dir: str
    dataset_id: int
    dataset: str
    version: int
    filter: dict
    params: dict
    mode: str
    backend: str
    backend_version: str
    n_prompts: int
    tokens: int
    status: str
    progress_done: float
    progress_total: float
    error: str
    created_at: str


@dataclass
class PromptRow:
    sample_id: int
    prompt_id: str
    task_type: str
    prompt_text: str
    reference: str
    generations: list[dict] = field(default_factory=list)


@dataclass
class Page:
    rows: list[PromptRow]
    next_after: int | None  # the sample id the next page starts after; None on the last page


def _summary_query():  # noqa: ANN202
    return (
        select(SamplingJob, Job, DatasetVersion, Dataset, User.username)
        .join(Job, col(Job.id) == col(SamplingJob.job_id))
        .join(DatasetVersion, col(DatasetVersion.id) == col(SamplingJob.dataset_version_id))
        .join(Dataset, col(Dataset.id) == col(DatasetVersion.dataset_id))
        .join(User, col(User.id) == col(SamplingJob.owner_id))
    )


def _summary(row: Any) -> Summary:
    s, job, version, dataset, owner = row
    return Summary(
        id=s.id,
        job_id=job.id,
        owner=owner,
        model_ref=s.model_ref,
        model_dir=s.model_dir,
        dataset_id=dataset.id,
        dataset=dataset.name,
        version=version.number,
        filter=json.loads(s.filter_json),
        params=json.loads(s.params_json),
        mode=s.mode,
        backend=s.backend,
        backend_version=s.backend_version,
        n_prompts=s.n_prompts,
        tokens=s.tokens,
        status=str(job.status.value),
        progress_done=job.progress_done,
        progress_total=job.progress_total,
        error=job.error,
        created_at=s.created_at.isoformat(),
    )


def list_jobs(session: Session, *, limit: int = 200) -> list[Summary]:
    """Sampling jobs, newest first."""
    rows = session.exec(_summary_query().order_by(col(SamplingJob.id).desc()).limit(limit)).all()
    return [_summary(r) for r in rows]


def summary(session: Session, sampling_id: int) -> Summary | None:
    row = session.exec(_summary_query().where(col(SamplingJob.id) == sampling_id)).first()
    return None if row is None else _summary(row)


def finish_counts(session: Session, sampling_id: int) -> dict[str, int]:
    """Generations per finish reason ("length": cut by max_new_tokens)."""
    rows = session.exec(
        select(Generation.finish_reason, func.count())
        .where(col(Generation.sampling_job_id) == sampling_id)
        .group_by(col(Generation.finish_reason))
    ).all()
    return {reason: int(n) for reason, n in rows}


def task_types(session: Session, sampling_id: int) -> list[str]:
    rows = session.exec(
        select(Generation.task_type).where(col(Generation.sampling_job_id) == sampling_id).distinct()
    ).all()
    return sorted(rows)


def generation_dict(g: Generation) -> dict[str, Any]:
    return {name: getattr(g, name) for name in EXPORT_FIELDS}


def page(
    session: Session, sampling_id: int, *, flt: GenerationFilter, after: int = 0, max_id: int | None = None
) -> Page:
    """Up to PAGE_SIZE prompts after sample id `after` with an answer matching `flt`, all answers each.

    max_id leaves out answers stored after that Generation id: a live page then appends them exactly once.
    """
    stored = [col(Generation.id) <= max_id] if max_id is not None else []
    ids = session.exec(
        select(Generation.sample_id)
        .where(*flt.where(sampling_id), col(Generation.sample_id) > after, *stored)
        .distinct()
        .order_by(col(Generation.sample_id))
        .limit(PAGE_SIZE + 1)
    ).all()
    more = len(ids) > PAGE_SIZE
    ids = list(ids[:PAGE_SIZE])
    gens = session.exec(
        select(Generation)
        .where(col(Generation.sampling_job_id) == sampling_id, col(Generation.sample_id).in_(ids), *stored)
        .order_by(col(Generation.sample_id), col(Generation.index))
    ).all()
    rows = prompt_rows(session, gens)
    return Page([rows[i] for i in ids if i in rows], ids[-1] if more and ids else None)


def prompt_rows(session: Session, gens: Sequence[Generation]) -> dict[int, PromptRow]:
    """Answers grouped by the sample they answer, each row with its prompt and reference, in `gens`' order."""
    refs = references(session, list({g.sample_id for g in gens}))
    rows: dict[int, PromptRow] = {}
    for g in gens:
        row = rows.get(g.sample_id)
        if row is None:
            row = rows[g.sample_id] = PromptRow(
                g.sample_id, g.prompt_id, g.task_type, g.prompt_text, refs.get(g.sample_id, "")
            )
        row.generations.append(generation_dict(g))
    return rows


def answered_prompt_ids(session: Session, sampling_id: int, n: int) -> list[str]:
    """Prompts that already have all n answers: a resumed job skips them."""
    rows = session.exec(
        select(Generation.prompt_id)
        .where(col(Generation.sampling_job_id) == sampling_id)
        .group_by(col(Generation.prompt_id))
        .having(func.count() >= n)
    ).all()
    return sorted(rows)


def _batches(engine: Engine, sampling_id: int) -> Iterator[tuple[list[Generation], dict[int, str]]]:
    """Every generation by prompt then index, EXPORT_BATCH at a time with their prompts' references; a
    keyset walk on ix_generation_page, each batch in a session of its own, so an export streams."""
    last = (-1, -1)
    while True:
        with Session(engine) as session:
            after = or_(
                col(Generation.sample_id) > last[0],
                and_(col(Generation.sample_id) == last[0], col(Generation.index) > last[1]),
            )
            batch = list(
                session.exec(
                    select(Generation)
                    .where(col(Generation.sampling_job_id) == sampling_id, after)
                    .order_by(col(Generation.sample_id), col(Generation.index))
                    .limit(EXPORT_BATCH)
                ).all()
            )
            if not batch:
                return
            refs = references(session, sorted({g.sample_id for g in batch}))
        yield batch, refs
        last = (batch[-1].sample_id, batch[-1].index)


def export_jsonl(engine: Engine, sampling_id: int) -> Iterator[bytes]:
    """One JSON object a line per generation, with the reference, by prompt then index."""
    for batch, refs in _batches(engine, sampling_id):
        yield b"".join(
            orjson.dumps({**generation_dict(g), "reference": refs.get(g.sample_id, "")}) + b"\n"
            for g in batch
        )


def export_csv(engine: Engine, sampling_id: int) -> Iterator[str]:
    """The same rows as CSV (a header line first), for a spreadsheet."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*EXPORT_FIELDS, "reference"])
    yield out.getvalue()
    for batch, refs in _batches(engine, sampling_id):
        out.seek(0)
        out.truncate()
        for g in batch:
            d = generation_dict(g)
            writer.writerow([*(d[k] for k in EXPORT_FIELDS), refs.get(g.sample_id, "")])
        yield out.getvalue()
