"""The prompts of a sampling job: a dataset version's samples (filtered), cut before their last answer.

A sample's prompt is its messages up to, not including, the last assistant turn, and that turn is the
reference the answers are compared with; an eval set's sample without an assistant turn is all prompt,
with its `reference` field as the reference. Samples with nothing left to prompt with are skipped.

prompts.jsonl is written once per job (a temp file renamed into place): a resumed job must see the very
prompts whose answers it already stored. A prompt's id is its sample's id.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.datasets.browse import BrowseFilters, all_matching_ids
from app.models import SamplingMode
from app.sampling.request import Filter, SamplingError

BATCH = 500


@dataclass
class Prompt:
    messages: list[dict[str, Any]]
    reference: str


def split_prompt(messages: list[dict[str, Any]], reference: str | None = None) -> Prompt:
    """Messages before the last assistant turn, and that turn's content as the reference.

    >>> split_prompt([{"role": "user", "content": "1+1?"}, {"role": "assistant", "content": "2"}])
    Prompt(messages=[{'role': 'user', 'content': '1+1?'}], reference='2')
    """
    last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=None)
    if last is None:
        return Prompt(list(messages), reference or "")
    content = messages[last].get("content")
    return Prompt(list(messages[:last]), content if isinstance(content, str) else "")


def continuation_text(messages: list[dict[str, Any]]) -> str:
    """A base model's input: the prompt turns' text joined by newlines, no template."""
    return "\n".join(str(m.get("content") or "") for m in messages)


def _filters(flt: Filter) -> BrowseFilters:
    f = BrowseFilters(q=flt.q, task=flt.task, tag=flt.tag)
    try:
        f.validate()
    except ValueError as exc:
        raise SamplingError("filter", str(exc)) from None
    return f


def select_ids(session: Session, *, dataset_id: int, version: int, flt: Filter) -> list[int]:
    """The ids of the version's samples the filter selects, ascending."""
    return all_matching_ids(session, dataset_id=dataset_id, version=version, filters=_filters(flt))


def iter_samples(engine: Engine, ids: list[int]) -> Iterator[tuple[int, list[dict[str, Any]], str | None]]:
    """(id, messages, reference) of the samples, in the order of `ids`, a batch at a time."""
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        params = {f"i{k}": sid for k, sid in enumerate(chunk)}
        sql = text(
            f"SELECT id, messages, reference FROM sample WHERE id IN ({', '.join(':' + k for k in params)})"
        )
        with engine.connect() as conn:
            rows = {r[0]: (r[1], r[2]) for r in conn.execute(sql, params)}
        for sid in chunk:
            if sid in rows:
                yield sid, orjson.loads(rows[sid][0]), rows[sid][1]


def prompt_line(
    sample_id: int, messages: list[dict[str, Any]], reference: str | None, mode: str
) -> bytes | None:
    """One line of prompts.jsonl in the contract's shape, or None when the sample has no prompt."""
    prompt = split_prompt(messages, reference)
    if not prompt.messages:
        return None
    if mode == SamplingMode.continuation:
        return orjson.dumps({"id": str(sample_id), "text": continuation_text(prompt.messages)}) + b"\n"
    return orjson.dumps({"id": str(sample_id), "messages": prompt.messages}) + b"\n"


def write_prompts(engine: Engine, *, ids: list[int], mode: str, path: Path) -> int:
    """Write prompts.jsonl unless it exists; returns the number of prompts in the file."""
    if path.is_file():
        with open(path, "rb") as fh:
            return sum(1 for _ in fh)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    count = 0
    with open(tmp, "wb") as fh:
        for sid, messages, reference in iter_samples(engine, ids):
            line = prompt_line(sid, messages, reference, mode)
            if line is not None:
                fh.write(line)
                count += 1
    os.replace(tmp, path)
    return count


def references(session: Session, sample_ids: list[int]) -> dict[int, str]:
    """The reference of each sample, for the results page and exports (computed as the prompts were)."""
    out: dict[int, str] = {}
    for start in range(0, len(sample_ids), BATCH):
        params = {f"i{k}": sid for k, sid in enumerate(sample_ids[start : start + BATCH])}
        sql = text(
            f"SELECT id, messages, reference FROM sample WHERE id IN ({', '.join(':' + k for k in params)})"
        )
        for sid, messages, reference in session.connection().execute(sql, params):
            out[sid] = split_prompt(orjson.loads(messages), reference).reference
    return out
