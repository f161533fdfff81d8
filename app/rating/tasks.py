"""Creating a rating task: its cases from one sampling job (absolute) or two (pairwise), its raters, its overlap.

Cases are the prompts whose first answer (index 0) exists: for pairwise, in both jobs, matched by sample
id. The selection is all of them, one task_type (level 1 "l1" takes its level-2 types too; "l1/l2" only
that one), or K per task_type drawn with the task's seed. Left/right is drawn per case and recorded on it, from a generator seeded
with the random task key, so a known seed does not tell anyone the order; an answer that names a model
is marked for the researcher.
"""

from __future__ import annotations

import json
import random
import secrets
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from app.models import (
    Generation,
    RatingCase,
    RatingMode,
    RatingTask,
    RatingTaskRater,
    RubricVersion,
    SamplingJob,
    User,
)
from app.rating.rubrics import default_version
from app.sampling_analysis.flags import identity_flags

MAX_ID = 2**31 - 1
MAX_RATERS = 200
SELECTIONS = ("all", "task_type", "sample")


class TaskError(ValueError):
    """A task that cannot be created; `field` is the form field (or API key) at fault."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass
class TaskRequest:
    name: str
    mode: str
    sampling_a: int
    sampling_b: int | None
    raters: list[int]
    overlap: int
    selection: dict[str, Any] = field(default_factory=dict)
    rubric_version_id: int | None = None
    score_sides: bool = True
    seed: int = 0


def _int(raw: dict, key: str, *, lo: int, hi: int, default: int | None = None) -> int:
    value = raw.get(key, default)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise TaskError(key, f"{key} must be a whole number from {lo} to {hi}")
    return value


def _selection(raw: Any) -> dict[str, Any]:
    raw = raw if raw is not None else {"kind": "all"}
    if not isinstance(raw, dict) or raw.get("kind", "all") not in SELECTIONS:
        raise TaskError("cases", f"cases.kind must be one of {', '.join(SELECTIONS)}")
    kind = raw.get("kind", "all")
    if kind == "task_type":
        task_type = raw.get("task_type")
        if not isinstance(task_type, str) or not task_type.strip() or len(task_type) > 401:
            raise TaskError("task_type", "task_type must name one task type (l1 or l1/l2)")
        return {"kind": kind, "task_type": task_type.strip()}
    if kind == "sample":
        return {
            "kind": kind,
            "per_type": _int(raw, "per_type", lo=1, hi=100000),
            "level": _int(raw, "level", lo=1, hi=2, default=1),
        }
    return {"kind": "all"}


def parse_task(raw: Any) -> TaskRequest:
    """A task request from the API's JSON or the form's fields; every refusal names its field."""
    if not isinstance(raw, dict):
        raise TaskError("body", "the body must be a JSON object")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise TaskError("name", "name must be 1 to 200 characters")
    mode = raw.get("mode", RatingMode.absolute.value)
    if mode not in (m.value for m in RatingMode):
        raise TaskError("mode", "mode must be absolute or pairwise")
    b_raw = raw.get("sampling_b")
    if mode == RatingMode.pairwise.value:
        if b_raw in (None, ""):
            raise TaskError("sampling_b", "a pairwise task needs a second sampling job (sampling_b)")
        b: int | None = _int(raw, "sampling_b", lo=1, hi=MAX_ID)
    elif b_raw not in (None, ""):
        raise TaskError("sampling_b", "an absolute task rates one sampling job: leave sampling_b out")
    else:
        b = None
    raters = raw.get("raters")
    if isinstance(raters, int | str) and not isinstance(raters, bool):
        raters = [raters]
    if not isinstance(raters, list) or not 1 <= len(raters) <= MAX_RATERS:
        raise TaskError("raters", f"raters must list 1 to {MAX_RATERS} user ids")
    ids = []
    for r in raters:
        if isinstance(r, str) and r.isdigit():
            r = int(r)
        if isinstance(r, bool) or not isinstance(r, int) or not 0 < r <= MAX_ID:
            raise TaskError("raters", "raters must be user ids")
        ids.append(r)
    ids = sorted(set(ids))
    version = raw.get("rubric_version_id")
    return TaskRequest(
        name=name.strip(),
        mode=mode,
        sampling_a=_int(raw, "sampling_a", lo=1, hi=MAX_ID),
        sampling_b=b,
        raters=ids,
        overlap=_int(raw, "overlap", lo=1, hi=len(ids), default=1),
        selection=_selection(raw.get("cases")),
        rubric_version_id=None if version in (None, "") else _int(raw, "rubric_version_id", lo=1, hi=MAX_ID),
        score_sides=bool(raw.get("score_sides", True)),
        seed=_int(raw, "seed", lo=0, hi=MAX_ID, default=0),
    )


def _first_answers(session: Session, sampling_id: int) -> dict[int, Generation]:
    rows = session.exec(
        select(Generation).where(Generation.sampling_job_id == sampling_id, Generation.index == 0)
    ).all()
    return {g.sample_id: g for g in rows}


def _group(task_type: str, level: int) -> str:
    return task_type if level == 2 else task_type.split("/", 1)[0]


def select_samples(answers: dict[int, str], selection: dict[str, Any], seed: int) -> list[int]:
    """Sample ids (answers: sample id -> task_type) the selection keeps, in ascending order.

    >>> select_samples({1: "a/x", 2: "a/y", 3: "b"}, {"kind": "task_type", "task_type": "a"}, 0)
    [1, 2]
    """
    ids = sorted(answers)
    kind = selection.get("kind", "all")
    if kind == "task_type":
        wanted = selection["task_type"]
        return [i for i in ids if answers[i] == wanted or answers[i].startswith(wanted + "/")]
    if kind == "sample":
        groups: dict[str, list[int]] = {}
        for i in ids:
            groups.setdefault(_group(answers[i], selection["level"]), []).append(i)
        rng = random.Random(seed)
        kept = [
            i
            for g in sorted(groups)
            for i in rng.sample(groups[g], min(len(groups[g]), selection["per_type"]))
        ]
        return sorted(kept)
    return ids


def _flagged(*texts: str) -> bool:
    return any(hits for text in texts for hits in identity_flags(text).values())


def create_task(session: Session, *, req: TaskRequest, owner_id: int) -> RatingTask:
    """Check the request against the database, then store the task, its raters and its cases in one commit."""
    a = session.get(SamplingJob, req.sampling_a)
    if a is None:
        raise TaskError("sampling_a", f"sampling job {req.sampling_a} does not exist")
    if req.sampling_b is not None:
        if req.sampling_b == req.sampling_a:
            raise TaskError("sampling_b", "a pairwise task compares two different sampling jobs")
        if session.get(SamplingJob, req.sampling_b) is None:
            raise TaskError("sampling_b", f"sampling job {req.sampling_b} does not exist")
    found = session.exec(select(User.id).where(col(User.id).in_(req.raters), User.is_active)).all()
    missing = sorted(set(req.raters) - set(found))
    if missing:
        raise TaskError("raters", f"no active user with id {missing[0]}")
    if req.rubric_version_id is None:
        version = default_version(session)
    else:
        got = session.get(RubricVersion, req.rubric_version_id)
        if got is None:
            raise TaskError("rubric_version_id", f"rubric version {req.rubric_version_id} does not exist")
        version = got
    answers_a = _first_answers(session, req.sampling_a)
    answers_b = _first_answers(session, req.sampling_b) if req.sampling_b is not None else {}
    common = {s: g.task_type for s, g in answers_a.items() if req.sampling_b is None or s in answers_b}
    chosen = select_samples(common, req.selection, req.seed)
    if not chosen:
        raise TaskError(
            "cases", "no prompt matches: the jobs have no common answered prompt of that selection"
        )
    task = RatingTask(
        task_key=secrets.token_urlsafe(16),
        owner_id=owner_id,
        name=req.name,
        mode=req.mode,
        rubric_version_id=version.id or 0,
        sampling_a_id=req.sampling_a,
        sampling_b_id=req.sampling_b,
        score_sides=req.score_sides,
        overlap=req.overlap,
        selection_json=json.dumps(req.selection),
        seed=req.seed,
        n_cases=len(chosen),
    )
    session.add(task)
    session.flush()
    session.add_all(RatingTaskRater(task_id=task.id or 0, rater_id=r) for r in req.raters)
    swap = random.Random(f"swap-{req.seed}-{task.task_key}")
    for sample_id in chosen:
        ga, gb = answers_a[sample_id], answers_b.get(sample_id)
        session.add(
            RatingCase(
                task_id=task.id or 0,
                sample_id=sample_id,
                task_type=ga.task_type,
                generation_a_id=ga.id or 0,
                generation_b_id=gb.id if gb is not None else None,
                swapped=gb is not None and swap.random() < 0.5,
                identity_flag=_flagged(ga.text, gb.text if gb is not None else ""),
            )
        )
    session.commit()
    session.refresh(task)
    return task
