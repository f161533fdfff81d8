"""Samples: a page of the browser's results, a count, and one sample."""

from typing import Any

from pydantic import BaseModel

from app.models import VersionStatus


class SampleItem(BaseModel):
    id: int
    task_l1: str
    task_l2: str
    prompt_chars: int
    answer_chars: int
    n_turns: int
    # The browser's raw queries give SQLite's 0/1 (PostgreSQL's true/false); one sample read through the
    # model gives true/false on both. Declared as both so the answers stay as they were.
    has_system: bool | int
    task_type: str
    tags: list[str]
    prompt: str
    answer: str
    reference: str | None = None  # eval sets: the expected answer


# One page of 50; `next_after` / `prev_before` are the ids to continue from (null at either end).
class SamplePage(BaseModel):
    dataset_id: int
    version: int
    status: VersionStatus
    items: list[SampleItem]
    next_after: int | None
    prev_before: int | None


class SampleCount(BaseModel):
    count: int


class SampleDetail(SampleItem):
    dataset_id: int
    added_in: int
    removed_in: int | None
    messages: list[dict[str, Any]]
